import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { tools } from "../../src/workflows/actions";
import { planWorkflows } from "../../src/workflows";
import { GH_API_STUB, ghFixture } from "../support/gh-stub";
import { hasJq, runWithStubs, stackConfig } from "../support/workflows";

/**
 * The OTA scripts of `mobile-update.yml` and `mobile-ota.yml`, run for real with bash and jq.
 * `npx --yes eas-cli@<pinned>` is a stand-in that prints what EAS CLI prints with `--json`
 * (shapes from eas-cli's `getUpdateJsonInfosForUpdates` and `renderUpdateGroupsOnBranch`, in
 * build/update/utils.js and build/update/queries.js of the pinned version) and records its
 * arguments; `pulumi stack output` and `gh api` (GitHub's compare) are stand-ins as well.
 */
type Step = { name: string; id?: string; run?: string; env?: Record<string, string> };
type Doc = { jobs: Record<string, { steps: Step[] }> };

const NO_JQ = !hasJq() && process.env.CI !== "true" && "jq is not installed here";
const plan = planWorkflows(stackConfig("staging"));
const doc = (name: string) =>
  parse(plan.files.find((f) => f.path === `.github/workflows/${name}`)?.content ?? "") as Doc;
const step = (d: Doc, job: string, pick: (s: Step) => boolean) => {
  const found = d.jobs[job]?.steps.find(pick);
  assert.ok(found?.run, `no such step in ${job}`);
  return found.run;
};

const STACK = "clicky-foundation/clicky-delivery/production";
const SERVED = "a".repeat(40);
const COMMIT = "b".repeat(40);
const GROUP = "4f2e8c1a-0b6d-4e7f-9a3c-5d1e2f3a4b5c";
const OLDER_GROUP = "11111111-2222-4333-8444-555555555555";

/** EAS CLI's `--json` answers: one update per platform, one group. */
function updates(group: string, branch: string, commit: string | null) {
  return ["ios", "android"].map((platform, i) => ({
    id: `${group.slice(0, 8)}-${i}`,
    createdAt: "2026-12-01T10:00:00.000Z",
    group,
    branch,
    message: "Fix the login screen",
    runtimeVersion: "1.4.0",
    platform,
    manifestPermalink: `https://u.expo.dev/update/${group}-${i}`,
    isRollBackToEmbedded: false,
    gitCommitHash: commit,
  }));
}
function branchList(branch: string, groups: readonly string[]) {
  return {
    name: branch,
    id: "9c0e",
    currentPage: groups.map((group) => ({
      branch,
      message: `"Fix" (1 day ago by ci)`,
      runtimeVersion: "1.4.0",
      isRollBackToEmbedded: false,
      group,
      platforms: "android, ios",
    })),
  };
}

const EAS_STUB = `echo "$*" >> "$STUB_LOG"
[[ "$1" == --yes && "$2" == "eas-cli@${tools.easCli}" ]] || { echo "not the pinned eas-cli: $*" >&2; exit 2; }
[[ -n "\${EXPO_TOKEN:-}" ]] || { echo "not logged in" >&2; exit 1; }
shift 2
command=$1
shift
branch=""
args=("$@")
for ((i = 0; i < \${#args[@]}; i++)); do
  [[ "\${args[i]}" == --branch ]] && branch=\${args[i + 1]}
done
case "$command" in
  update) cat eas/update.json ;;
  update:list) cat "eas/list-$branch.json" ;;
  update:view) cat "eas/view-$1.json" 2>/dev/null || { echo "Could not find any updates with group ID: $1" >&2; exit 1; } ;;
  update:republish | update:rollback) echo "ok" ;;
  *) echo "unexpected: $command" >&2; exit 2 ;;
esac`;

const PULUMI_STUB = `[[ "$*" == "stack output deployedImage --stack $EXPECT_STACK --json" ]] || { echo "unexpected: $*" >&2; exit 2; }
printf '{\\n  "repository": "ghcr.io/o/r/backend",\\n  "tag": "%s",\\n  "digest": "sha256:%s",\\n  "migrate": true\\n}\\n' "$SERVED_TAG" "$(printf 'd%.0s' {1..64})"`;

interface World {
  readonly stagingGroups?: readonly string[];
  readonly productionGroups?: readonly string[];
  /** Group -> [branch, commit]. */
  readonly groups?: Readonly<Record<string, readonly [string, string | null]>>;
  readonly servedTag?: string;
  /** Files GitHub's compare lists, or none for no compare answer. */
  readonly compared?: readonly string[];
}

function files(w: World): Record<string, string> {
  const groups = w.groups ?? {
    [GROUP]: ["staging", COMMIT],
    [OLDER_GROUP]: ["production", SERVED],
  };
  const out: Record<string, string> = {
    "eas/list-staging.json": JSON.stringify(branchList("staging", w.stagingGroups ?? [GROUP])),
    "eas/list-production.json": JSON.stringify(
      branchList("production", w.productionGroups ?? [OLDER_GROUP]),
    ),
    "eas/update.json": JSON.stringify(updates(GROUP, "staging", COMMIT)),
    output: "",
    summary: "",
  };
  for (const [group, [branch, commit]] of Object.entries(groups)) {
    out[`eas/view-${group}.json`] = JSON.stringify(updates(group, branch, commit));
  }
  if (w.compared !== undefined) {
    out[ghFixture(`repos/o/r/compare/${w.servedTag ?? SERVED}...${COMMIT}`)] = JSON.stringify({
      status: "ahead",
      ahead_by: 3,
      behind_by: 0,
      files: w.compared.map((filename) => ({ filename, status: "modified" })),
    });
  }
  return out;
}

function runStep(script: string, w: World, env: Record<string, string>) {
  const r = runWithStubs(
    script,
    { npx: EAS_STUB, pulumi: PULUMI_STUB, gh: GH_API_STUB },
    {
      EXPO_TOKEN: "expo-secret",
      STAGING_BRANCH: "staging",
      PRODUCTION_BRANCH: "production",
      GROUP: "",
      EXPECT_STACK: STACK,
      STACK,
      SERVED_TAG: w.servedTag ?? SERVED,
      GH_TOKEN: "x",
      REPOSITORY: "o/r",
      GITHUB_RUN_ID: "991",
      GITHUB_OUTPUT: "output",
      GITHUB_STEP_SUMMARY: "summary",
      ...env,
    },
    files(w),
  );
  const read = (f: string) => {
    try {
      return readFileSync(join(r.dir, f), "utf8");
    } catch {
      return "";
    }
  };
  const outputs = Object.fromEntries(
    read("output")
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => l.split("=") as [string, string]),
  );
  return { ...r, outputs, summary: read("summary"), eas: read(".stub-log") };
}

const ota = doc("mobile-ota.yml");
const findGroup = step(ota, "promote", (s) => s.id === "group");
const served = step(ota, "promote", (s) => s.id === "served");
const republish = step(ota, "promote", (s) => s.name.startsWith("Republish"));
const rollback = step(ota, "rollback", (s) => s.name.startsWith("Roll back"));

/** The promote job's three steps in order, outputs passed on as GitHub does. */
function promote(w: World, group = "") {
  const found = runStep(findGroup, w, { GROUP: group });
  if (found.status !== 0) return { failedAt: "group", run: found };
  const ids = { GROUP_ID: found.outputs.id ?? "", UPDATE_COMMIT: found.outputs.commit ?? "" };
  const check = runStep(served, w, ids);
  if (check.status !== 0) return { failedAt: "served", run: check };
  const done = runStep(republish, w, ids);
  return { failedAt: done.status === 0 ? undefined : "republish", run: done };
}

describe("publishing each push to the staging branch", { skip: NO_JQ }, () => {
  const publish = step(doc("mobile-update.yml"), "ota-staging", (s) =>
    s.name.startsWith("Publish"),
  );
  test("publishes to staging only, and says how to promote the group", () => {
    const r = runStep(publish, {}, { BRANCH: "staging", COMMIT_MESSAGE: `it's "$(rm -rf /)"` });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.eas,
      /update --branch staging --message it's "\$\(rm -rf \/\)" --non-interactive --json/,
    );
    assert.doesNotMatch(r.eas, /production/);
    assert.match(
      r.summary,
      new RegExp(`Published update group ${GROUP} to the EAS Update branch staging`),
    );
    assert.match(r.summary, new RegExp(`action promote and group ${GROUP}`));
  });
});

describe("promoting an update to production", { skip: NO_JQ }, () => {
  test("the newest staging group, when production serves its backend: republished to production", () => {
    const r = promote({ compared: ["mobile/App.tsx", "README.md"] });
    assert.equal(r.failedAt, undefined, r.run.stderr);
    assert.match(
      r.run.eas,
      new RegExp(
        `update:republish --group ${GROUP} --destination-branch production --message Promoted from staging \\(GitHub run 991\\) --non-interactive`,
      ),
    );
    assert.match(
      r.run.summary,
      new RegExp(`${GROUP} \\(commit ${COMMIT}\\) is now the newest on production`),
    );
  });

  test("an update whose commit changed the backend since what production serves is refused", () => {
    const r = promote({
      compared: ["mobile/api.ts", "backend/app/routes.py", "backend/alembic/versions/7.py"],
    });
    assert.equal(r.failedAt, "served");
    assert.match(
      r.run.stdout,
      new RegExp(
        `::error::production serves the backend of ${SERVED}, but the update was published from ${COMMIT}, which changed the backend since: backend/app/routes.py backend/alembic/versions/7.py. Deploy production`,
      ),
    );
  });

  test("an older update than the served backend (nothing on its side of the compare) passes", () => {
    assert.equal(promote({ compared: [] }).failedAt, undefined);
  });

  for (const [what, w, error] of [
    [
      "a tag that is not a commit",
      { servedTag: "v1.2.3", compared: [] },
      /serves the image tag 'v1\.2\.3', not a commit/,
    ],
    [
      "more files than GitHub lists",
      { compared: Array.from({ length: 300 }, (_, i) => `mobile/f${i}.ts`) },
      /GitHub lists at most 300/,
    ],
    ["no compare answer", {}, /Not Found/],
  ] as const) {
    test(`refused when it cannot tell: ${what}`, () => {
      const r = promote(w);
      assert.equal(r.failedAt, "served");
      assert.match(`${r.run.stdout}${r.run.stderr}`, error);
    });
  }

  test("an update published without a commit is refused", () => {
    const r = promote({ groups: { [GROUP]: ["staging", null] }, compared: [] });
    assert.equal(r.failedAt, "served");
    assert.match(r.run.stdout, /records no git commit/);
  });

  test("a group given by hand must be on the staging branch", () => {
    const r = promote({ compared: [] }, OLDER_GROUP);
    assert.equal(r.failedAt, "group");
    assert.match(
      r.run.stdout,
      new RegExp(`update group ${OLDER_GROUP} is on the branch 'production', not staging`),
    );
  });

  test("a group input that is not an ID never reaches a command", () => {
    const r = promote({ compared: [] }, "x; echo pwned");
    assert.equal(r.failedAt, "group");
    assert.match(r.run.stdout, /must be an update group ID/);
    assert.doesNotMatch(r.run.eas, /pwned/);
  });

  test("an empty staging branch: nothing to promote, said so", () => {
    const r = promote({ stagingGroups: [] });
    assert.equal(r.failedAt, "group");
    assert.match(r.run.stdout, /the EAS Update branch staging has no update group/);
  });

  test("never prints the Expo token", () => {
    const r = promote({ compared: ["backend/x.py"] });
    assert.doesNotMatch(`${r.run.stdout}${r.run.stderr}`, /expo-secret/);
  });
});

describe("rolling production back", { skip: NO_JQ }, () => {
  test("rolls back the newest production group (EAS republishes the one before it)", () => {
    const r = runStep(rollback, {}, {});
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.eas,
      new RegExp(
        `update:rollback ${OLDER_GROUP} --non-interactive --message Roll back ${OLDER_GROUP} \\(GitHub run 991\\)`,
      ),
    );
    assert.match(r.summary, /Rolled production back from update group/);
  });
  test("a group given by hand must be on the production branch", () => {
    const r = runStep(rollback, {}, { GROUP });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /is on the branch 'staging', not production/);
    assert.doesNotMatch(r.eas, /update:rollback/);
  });
  test("an empty production branch: nothing to roll back, said so", () => {
    const r = runStep(rollback, { productionGroups: [] }, {});
    assert.equal(r.status, 1);
    assert.match(r.stdout, /the EAS Update branch production has no update group/);
  });
});
