import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { planWorkflows } from "../../src/workflows";
import { hasJq, runWithStubs, stackConfig } from "../support/workflows";
import { GH_API_STUB, ghFixture } from "../support/gh-stub";

/**
 * The main pipeline's decision to build and deploy the backend, run for real with bash and
 * jq: `gh` is a stand-in that answers from JSON files shaped like GitHub's REST answers
 * ("List deployments", "List deployment statuses", "Get a tree" with `recursive=1`) and
 * applies the script's own `--jq` filter with jq, as gh does.
 */
type Step = { name: string; id?: string; run?: string; env?: Record<string, string> };
type Doc = { jobs: Record<string, { steps: Step[]; if?: string; needs?: string[] }> };

const NO_JQ = !hasJq() && process.env.CI !== "true" && "jq is not installed here";
const sha = (c: string) => c.repeat(40);
const SERVED = sha("a");
const HEAD = sha("b");
const OLDER = sha("c");

const plan = planWorkflows(stackConfig("staging"));
const doc = parse(
  plan.files.find((f) => f.path === ".github/workflows/deploy-staging.yml")?.content ?? "",
) as Doc;
const decide = doc.jobs.changes?.steps.find((s) => s.id === "backend")?.run ?? "";

/** A tree answer: path -> blob SHA. */
function tree(files: Readonly<Record<string, string>>, truncated = false) {
  return {
    sha: sha("f"),
    truncated,
    tree: [
      { path: "backend", mode: "040000", type: "tree", sha: sha("9") },
      ...Object.entries(files).map(([path, blob]) => ({
        path,
        mode: "100644",
        type: "blob",
        sha: blob,
      })),
    ],
  };
}

const BASE_FILES = {
  "backend/app/main.py": sha("1"),
  "mobile/App.tsx": sha("2"),
  "Pulumi.staging.yaml": sha("3"),
  "src/program.ts": sha("4"),
  "README.md": sha("5"),
};

const CASE_BY_HAND = { event: "workflow_dispatch" } as const;

interface Case {
  readonly event?: string;
  readonly deployments?: readonly { id: number; sha: string; state: string }[] | null;
  readonly head?: Readonly<Record<string, string>>;
  readonly truncated?: boolean;
}

function run(c: Case) {
  const deployments =
    c.deployments === undefined ? [{ id: 7, sha: SERVED, state: "success" }] : c.deployments;
  const files: Record<string, string> = {
    [ghFixture(`repos/o/r/git/trees/${SERVED}`)]: JSON.stringify(tree(BASE_FILES)),
    [ghFixture(`repos/o/r/git/trees/${OLDER}`)]: JSON.stringify(tree(BASE_FILES)),
    [ghFixture(`repos/o/r/git/trees/${HEAD}`)]: JSON.stringify(
      tree(c.head ?? BASE_FILES, c.truncated ?? false),
    ),
  };
  if (deployments !== null) {
    files[ghFixture("repos/o/r/deployments")] = JSON.stringify(
      deployments.map((d) => ({ id: d.id, sha: d.sha, environment: "staging", ref: "main" })),
    );
    for (const d of deployments) {
      files[ghFixture(`repos/o/r/deployments/${d.id}/statuses`)] = JSON.stringify([
        { id: d.id * 10, state: d.state, environment: "staging" },
      ]);
    }
  }
  const r = runWithStubs(
    decide,
    { gh: GH_API_STUB },
    {
      GH_TOKEN: "x",
      REPOSITORY: "o/r",
      HEAD_SHA: HEAD,
      EVENT: c.event ?? "push",
      ENVIRONMENT: "staging",
      GITHUB_OUTPUT: "output",
      GITHUB_STEP_SUMMARY: "summary",
    },
    { ...files, output: "", summary: "" },
  );
  assert.equal(r.status, 0, r.stderr);
  const output = readFileSync(join(r.dir, "output"), "utf8");
  const summary = readFileSync(join(r.dir, "summary"), "utf8");
  const log = join(r.dir, ".stub-log");
  const calls = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [];
  return { backend: /^backend=(\w+)$/m.exec(output)?.[1], summary, calls };
}

describe("the main pipeline deploys the backend only when it changed", { skip: NO_JQ }, () => {
  test("the image, and so the deploy and smoke test, wait for the decision", () => {
    assert.equal(doc.jobs.image?.if, "needs.changes.outputs.backend == 'true'");
    assert.ok(doc.jobs.image?.needs?.includes("changes"));
    assert.deepEqual(doc.jobs.deploy?.needs, ["image"]);
    assert.deepEqual(doc.jobs.smoke?.needs, ["deploy"]);
  });

  test("a mobile-only push builds and deploys nothing, and the summary says so", () => {
    const r = run({ head: { ...BASE_FILES, "mobile/App.tsx": sha("e") } });
    assert.equal(r.backend, "false");
    assert.match(
      r.summary,
      new RegExp(`^Backend: not built or deployed: .*differs from ${SERVED}, which staging serves`),
    );
  });

  test("a change under backend/ deploys, naming the file", () => {
    const r = run({ head: { ...BASE_FILES, "backend/app/main.py": sha("e") } });
    assert.equal(r.backend, "true");
    assert.match(
      r.summary,
      /^Backend: built and deployed: changed since a{40}, which staging serves: backend\/app\/main\.py$/m,
    );
  });

  for (const [what, head] of [
    ["a stack file", { ...BASE_FILES, "Pulumi.staging.yaml": sha("e") }],
    ["the program's code", { ...BASE_FILES, "src/program.ts": sha("e") }],
    ["a workflow", { ...BASE_FILES, ".github/workflows/deploy-staging.yml": sha("e") }],
    ["a file removed from backend/", { ...BASE_FILES, "backend/app/main.py": undefined }],
  ] as const) {
    test(`${what} changed deploys`, () => {
      const files = Object.fromEntries(
        Object.entries(head).filter((e): e is [string, string] => e[1] !== undefined),
      );
      assert.equal(run({ head: files }).backend, "true");
    });
  }

  test("a README change alone deploys nothing", () => {
    assert.equal(run({ head: { ...BASE_FILES, "README.md": sha("e") } }).backend, "false");
  });

  test("compares with the newest deployment that succeeded, not the previous push", () => {
    // The newest deployment failed (its commit changed the backend and never went live): the
    // backend of the commit before it is what staging serves, so this push must deploy.
    const r = run({
      deployments: [
        { id: 9, sha: sha("d"), state: "failure" },
        { id: 8, sha: SERVED, state: "success" },
      ],
      head: { ...BASE_FILES, "backend/app/main.py": sha("e") },
    });
    assert.equal(r.backend, "true");
    assert.ok(r.calls.includes("repos/o/r/deployments/9/statuses?per_page=1"), r.calls.join("\n"));
    assert.ok(r.calls.includes(`repos/o/r/git/trees/${SERVED}?recursive=1`), r.calls.join("\n"));
    const same = run({
      deployments: [
        { id: 9, sha: sha("d"), state: "failure" },
        { id: 8, sha: SERVED, state: "success" },
      ],
    });
    assert.equal(same.backend, "false");
  });

  test("the newest deployment is the highest id, in whatever order GitHub lists them", () => {
    const r = run({
      deployments: [
        { id: 3, sha: OLDER, state: "success" },
        { id: 8, sha: SERVED, state: "success" },
      ],
    });
    assert.ok(r.calls.includes(`repos/o/r/git/trees/${SERVED}?recursive=1`), r.calls.join("\n"));
    assert.ok(!r.calls.some((c) => c.includes(OLDER)), r.calls.join("\n"));
  });

  test("a run of an older commit than staging serves is a difference too (trees, not history)", () => {
    const r = run({
      deployments: [{ id: 7, sha: OLDER, state: "success" }],
      head: { ...BASE_FILES, "backend/app/main.py": sha("0") },
    });
    assert.equal(r.backend, "true");
  });

  for (const [what, c, why] of [
    ["no deployment yet", { deployments: [] }, /no successful deployment of staging/],
    [
      "every deployment failed",
      { deployments: [{ id: 3, sha: SERVED, state: "failure" }] },
      /no successful deployment of staging/,
    ],
    ["GitHub does not answer", { deployments: null }, /GitHub did not list the deployments/],
    ["a tree too large for one answer", { truncated: true }, /could not be listed in one answer/],
    ["a run started by hand", CASE_BY_HAND, /started by hand/],
  ] as const) {
    test(`${what}: deploys, and says why`, () => {
      const r = run(c);
      assert.equal(r.backend, "true");
      assert.match(r.summary, why);
      if (c === CASE_BY_HAND) assert.deepEqual(r.calls, [], "asks GitHub nothing");
    });
  }
});
