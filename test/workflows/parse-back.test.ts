import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { pulumiProjectCheck } from "../../src/cloud/deployments";
import { planWorkflows } from "../../src/workflows";
import { PROGRAM_NODE_VERSION } from "../../src/workflows/node-version";
import { expression, stackConfig } from "../support/workflows";

type Doc = {
  on: Record<string, unknown>;
  permissions: Record<string, string>;
  concurrency?: { group: string; "cancel-in-progress": boolean };
  jobs: Record<
    string,
    {
      name: string;
      needs?: string[];
      if?: string;
      permissions: Record<string, string>;
      environment?: { name: string; url?: string };
      outputs?: Record<string, string>;
      steps: {
        name?: string;
        id?: string;
        if?: string;
        "working-directory"?: string;
        uses?: string;
        run?: string;
        env?: Record<string, string>;
        with?: Record<string, unknown>;
      }[];
    }
  >;
};

const plan = planWorkflows(stackConfig("staging"));
const pulumiUpPlan = planWorkflows(
  stackConfig("staging", { workflows: { deployMode: "pulumi-up" } }),
);
const docs = new Map(
  plan.files.map((f) => [f.path.replace(".github/workflows/", ""), parse(f.content) as Doc]),
);
function doc(name: string): Doc {
  const found = docs.get(name);
  assert.ok(found, `no ${name}`);
  return found;
}

describe("every workflow", () => {
  for (const [name, d] of docs) {
    test(`${name}: grants nothing by default and every job declares its permissions`, () => {
      assert.deepEqual(d.permissions, {});
      for (const [id, job] of Object.entries(d.jobs)) assert.ok(job.permissions, `${name} ${id}`);
    });
    test(`${name}: no run script expands an expression`, () => {
      for (const job of Object.values(d.jobs)) {
        for (const step of job.steps) assert.ok(!step.run?.includes("${{"), step.run);
      }
    });
    test(`${name}: only packages: write in the image job, nothing else writes`, () => {
      for (const [id, job] of Object.entries(d.jobs)) {
        const writes = Object.entries(job.permissions).filter(([, level]) => level === "write");
        const expected =
          name === "deploy-staging.yml" && id === "image" ? [["packages", "write"]] : [];
        assert.deepEqual(writes, expected, `${name} ${id}`);
      }
    });
    test(`${name}: every action is pinned to a commit SHA or an exact release tag`, () => {
      for (const job of Object.values(d.jobs)) {
        for (const step of job.steps.filter((s) => s.uses)) {
          assert.match(step.uses ?? "", /@([0-9a-f]{40}|v\d+\.\d+\.\d+)$/);
        }
      }
    });
  }
});

describe("pr.yml", () => {
  const pr = doc("pr.yml");
  test("runs on pull requests to main and develop", () => {
    assert.deepEqual(pr.on, { pull_request: { branches: ["main", "develop"] } });
  });
  test("cancels superseded runs of the same pull request", () => {
    assert.deepEqual(pr.concurrency, {
      group: `pr-${expression("github.event.pull_request.number")}`,
      "cancel-in-progress": true,
    });
  });
  test("every check waits for the change detection and is skipped by its area's condition", () => {
    for (const [id, job] of Object.entries(pr.jobs)) {
      if (id === "changes") continue;
      assert.deepEqual(job.needs, ["changes"], id);
      assert.match(
        job.if ?? "",
        /^needs\.changes\.outputs\.(backend|mobile|program) == 'true'$/,
        id,
      );
    }
  });
  test("tests run against PostgreSQL 16 and Redis 7 after alembic upgrade head, and upload coverage with the token", () => {
    const job = pr.jobs["backend-test"];
    assert.ok(job);
    const services = (job as unknown as { services: Record<string, { image: string }> }).services;
    assert.equal(services.postgres?.image, "postgres:16");
    assert.equal(services.redis?.image, "redis:7-alpine");
    const migrate = job.steps.findIndex((s) => s.run === "alembic upgrade head");
    const pytest = job.steps.findIndex((s) => s.run?.startsWith("pytest "));
    assert.ok(migrate >= 0 && migrate < pytest, "alembic upgrade head runs before pytest");
    const upload = job.steps.find((s) => s.uses?.startsWith("codecov/codecov-action@"));
    assert.equal(upload?.with?.token, expression("secrets.CODECOV_TOKEN"));
  });
});

describe("deploy-staging.yml", () => {
  const main = doc("deploy-staging.yml");
  test("runs on pushes to main and by hand, queued, never cancelled", () => {
    assert.deepEqual(main.on, { push: { branches: ["main"] }, workflow_dispatch: {} });
    assert.deepEqual(main.concurrency, { group: "deploy-staging", "cancel-in-progress": false });
  });
  test("runs the same check jobs as the PR pipeline, without the path conditions", () => {
    const pr = doc("pr.yml");
    const shared = Object.keys(pr.jobs).filter(
      (id) => !["changes", "docker-build", "program-checks"].includes(id),
    );
    for (const id of shared) {
      const { needs: _n, if: _i, ...prJob } = pr.jobs[id] as Doc["jobs"][string];
      assert.deepEqual(main.jobs[id], prJob, id);
    }
  });
  test("image after every check, only when the backend changed; deploy after image in staging; smoke after deploy", () => {
    assert.equal(main.jobs.image?.if, "needs.changes.outputs.backend == 'true'");
    assert.deepEqual(main.jobs.changes?.permissions, { contents: "read", deployments: "read" });
    assert.equal(main.jobs.changes?.environment, undefined, "decides with no secret");
    assert.deepEqual(main.jobs.image?.needs, [
      "changes",
      "backend-lint",
      "backend-test",
      "backend-audit",
      "mobile-lint",
      "mobile-test",
      "mobile-audit",
    ]);
    assert.deepEqual(main.jobs.deploy?.needs, ["image"]);
    assert.equal(main.jobs.deploy?.environment?.name, "staging");
    assert.deepEqual(main.jobs.smoke?.needs, ["deploy"]);
    assert.equal(main.jobs.smoke?.environment, undefined);
  });
  test("pushes the image tagged with the commit SHA and deploys exactly that tag", () => {
    const push = main.jobs.image?.steps.find((s) =>
      s.uses?.startsWith("docker/build-push-action@"),
    );
    assert.equal(
      push?.with?.tags,
      `ghcr.io/clicky-foundation/clicky-foundation/backend:${expression("github.sha")}`,
    );
    assert.equal(main.jobs.image?.outputs?.tag, expression("github.sha"));
    const deploy = main.jobs.deploy?.steps.find((s) => s.env?.IMAGE_TAG);
    assert.equal(deploy?.env?.IMAGE_TAG, expression("needs.image.outputs.tag"));
    assert.match(deploy?.run ?? "", /deploy\.image\.tag "?\$IMAGE_TAG/);
  });
});

describe("the image", () => {
  const main = doc("deploy-staging.yml");
  test("is labelled with its commit and its source repository (GHCR links the package to it)", () => {
    const push = main.jobs.image?.steps.find((s) =>
      s.uses?.startsWith("docker/build-push-action@"),
    );
    assert.deepEqual(String(push?.with?.labels).split("\n"), [
      `org.opencontainers.image.revision=${expression("github.sha")}`,
      "org.opencontainers.image.source=https://github.com/clicky-foundation/clicky-foundation",
    ]);
  });
});

describe("jobs that run this Pulumi program", () => {
  const all = [
    ...plan.files.map((f) => ({ mode: "deployments", f })),
    ...pulumiUpPlan.files.map((f) => ({ mode: "pulumi-up", f })),
  ];
  /** Jobs that install the program (npm ci at the program's root) or run pulumi in it. */
  const programJobs = all.flatMap(({ mode, f }) =>
    Object.entries((parse(f.content) as Doc).jobs)
      .filter(([, job]) =>
        job.steps.some(
          (s) =>
            s.run !== undefined &&
            s["working-directory"] === undefined &&
            /(^|\n)(npm ci|pulumi |url=\$\(pulumi|want=\$\(pulumi)/.test(s.run),
        ),
      )
      .map(([id, job]) => ({ where: `${mode} ${f.path} ${id}`, job })),
  );

  test("are the drift, program-check and deploy jobs", () => {
    assert.deepEqual(
      programJobs.map((j) => j.where),
      [
        "deployments .github/workflows/pr.yml program-checks",
        "deployments .github/workflows/deploy-staging.yml deploy",
        "deployments .github/workflows/deploy-prod.yml deploy",
        "deployments .github/workflows/drift.yml drift",
        "pulumi-up .github/workflows/pr.yml program-checks",
        "pulumi-up .github/workflows/deploy-staging.yml deploy",
        "pulumi-up .github/workflows/deploy-prod.yml deploy",
        "pulumi-up .github/workflows/drift.yml drift",
      ],
    );
  });
  test("check right after checkout that Pulumi.yaml is where deployments.source says", () => {
    const check = pulumiProjectCheck({
      repository: "clicky-foundation/clicky-foundation",
      directory: ".",
      stackFile: "Pulumi.staging.yaml",
    });
    for (const { where, job } of programJobs) {
      assert.ok(job.steps[0]?.uses?.startsWith("actions/checkout@"), where);
      assert.equal(job.steps[1]?.run, check, where);
    }
  });
  test("set up the Node.js the Pulumi SDK declares, with the lockfile's cache", () => {
    assert.equal(PROGRAM_NODE_VERSION, "22");
    for (const { where, job } of programJobs) {
      const node = job.steps.find((s) => s.uses?.startsWith("actions/setup-node@"));
      if (where.startsWith("deployments ") && where.endsWith(" deploy")) {
        // Pulumi Deployments runs the program; this job only runs the CLI.
        assert.equal(node, undefined, where);
        continue;
      }
      assert.deepEqual(
        node?.with,
        {
          "node-version": PROGRAM_NODE_VERSION,
          cache: "npm",
          "cache-dependency-path": "package-lock.json",
        },
        where,
      );
    }
  });
  test("while the mobile jobs keep the app's nodeVersion", () => {
    const node = doc("pr.yml").jobs["mobile-lint"]?.steps.find((s) =>
      s.uses?.startsWith("actions/setup-node@"),
    );
    assert.equal(node?.with?.["node-version"], "20");
  });
});

describe("pr.yml: Pulumi Program Checks", () => {
  const job = doc("pr.yml").jobs["program-checks"];
  test("runs when the program changed, with read access and no secret", () => {
    assert.equal(job?.name, "Pulumi Program Checks");
    assert.equal(job?.if, "needs.changes.outputs.program == 'true'");
    assert.deepEqual(job?.permissions, { contents: "read" });
    assert.ok(!JSON.stringify(job).includes("secrets."));
  });
  test("installs, type checks, lints, checks formatting and tests, in that order", () => {
    assert.deepEqual(
      job?.steps.filter((s) => s.run?.startsWith("npm")).map((s) => s.run),
      [
        "npm ci --no-audit --no-fund",
        "npm run typecheck",
        "npm run lint",
        "npm run format:check",
        "npm test",
      ],
    );
  });
  test("tests with CI=false, so the e2e suites skip on a runner without their harness", () => {
    const testStep = job?.steps.find((s) => s.run === "npm test");
    assert.deepEqual(testStep?.env, { CI: "false" });
  });
});

describe("deploy-prod.yml", () => {
  const prod = doc("deploy-prod.yml");
  test("is started by hand with a required version and run_migrations", () => {
    const inputs = (
      prod.on.workflow_dispatch as { inputs: Record<string, Record<string, unknown>> }
    ).inputs;
    assert.equal(inputs.version?.required, true);
    assert.equal(inputs.version?.default, undefined, "no 'latest' default");
    assert.equal(inputs.run_migrations?.type, "boolean");
  });
  test("one production deploy at a time, never cancelled midway", () => {
    assert.deepEqual(prod.concurrency, { group: "deploy-production", "cancel-in-progress": false });
  });
  test("deploys exactly inputs.version in the production environment", () => {
    assert.equal(prod.jobs.deploy?.environment?.name, "production");
    const step = prod.jobs.deploy?.steps.find((s) => s.env?.IMAGE_TAG);
    assert.equal(step?.env?.IMAGE_TAG, expression("inputs.version"));
    assert.equal(step?.env?.RUN_MIGRATIONS, expression("inputs.run_migrations"));
    assert.match(step?.run ?? "", /deploy\.migrate/);
  });
  test("verifies from outside the environment, with the URL from the deploy job", () => {
    assert.deepEqual(prod.jobs.verify?.needs, ["deploy"]);
    assert.equal(prod.jobs.verify?.environment, undefined);
    assert.equal(
      prod.jobs.verify?.steps[0]?.env?.APP_URL,
      expression("needs.deploy.outputs.app-url"),
    );
  });
});

describe("mobile and drift", () => {
  test("mobile-build.yml builds iOS and Android on v*.*.* tags", () => {
    const d = doc("mobile-build.yml");
    assert.deepEqual(d.on, { push: { tags: ["v*.*.*"] } });
    assert.deepEqual(Object.keys(d.jobs), ["build-ios", "build-android"]);
  });
  test("mobile-update.yml publishes to the staging branch after the mobile checks, message through env", () => {
    const d = doc("mobile-update.yml");
    assert.deepEqual(d.on, { push: { branches: ["main"], paths: ["mobile/**"] } });
    assert.deepEqual(Object.keys(d.jobs), [
      "mobile-lint",
      "mobile-test",
      "mobile-audit",
      "ota-staging",
    ]);
    const job = d.jobs["ota-staging"];
    assert.deepEqual(job?.needs, ["mobile-lint", "mobile-test", "mobile-audit"]);
    assert.deepEqual(job?.environment, { name: "production" }, "EXPO_TOKEN reaches production");
    const step = job?.steps.at(-1);
    assert.equal(step?.env?.COMMIT_MESSAGE, expression("github.event.head_commit.message"));
    assert.equal(step?.env?.BRANCH, "staging");
    assert.match(step?.run ?? "", /update --branch "\$BRANCH" --message "\$COMMIT_MESSAGE"/);
    assert.doesNotMatch(step?.run ?? "", /--branch production/);
  });
  test("mobile-ota.yml promotes or rolls back production by hand, each job approved in production", () => {
    const d = doc("mobile-ota.yml");
    assert.deepEqual(Object.keys(d.on), ["workflow_dispatch"]);
    assert.deepEqual(Object.keys(d.jobs), ["promote", "rollback"]);
    assert.equal(d.jobs.promote?.if, "inputs.action == 'promote'");
    assert.equal(d.jobs.rollback?.if, "inputs.action == 'rollback'");
    for (const job of Object.values(d.jobs)) {
      assert.deepEqual(job.environment, { name: "production" });
    }
    const names = d.jobs.promote?.steps.map((s) => s.name) ?? [];
    const at = (n: string) => names.findIndex((x) => x?.startsWith(n));
    assert.ok(at("Find the update group") > 0);
    assert.ok(at("Check that production serves") > at("Find the update group"));
    assert.ok(at("Republish") > at("Check that production serves"), names.join(", "));
    assert.match(
      d.jobs.rollback?.steps.at(-1)?.run ?? "",
      /update:rollback "\$group" --non-interactive/,
    );
  });
  test("drift.yml previews both stacks on a schedule and by hand, in the drift environment", () => {
    const d = doc("drift.yml");
    assert.deepEqual(d.on, { workflow_dispatch: {}, schedule: [{ cron: "17 5 * * *" }] });
    const job = d.jobs.drift;
    assert.deepEqual(
      job?.environment,
      { name: "drift" },
      "where the drift token is, and only there",
    );
    const preview = job?.steps.find((s) => s.name?.startsWith("Preview with refresh"));
    assert.match(preview?.run ?? "", /pulumi preview .*--refresh --expect-no-changes --diff/);
    assert.match(
      preview?.run ?? "",
      /--policy-pack policy\b/,
      "the policy pack runs in the drift check too",
    );
    assert.equal(preview?.env?.PULUMI_ACCESS_TOKEN, expression("secrets.PULUMI_DRIFT_TOKEN"));
  });
  test("drift.yml then checks the approval rules in GitHub, also after a failed preview", () => {
    const job = doc("drift.yml").jobs.drift;
    assert.deepEqual(job?.permissions, { contents: "read", actions: "read" });
    const names = job?.steps.map((s) => s.name) ?? [];
    assert.deepEqual(names.slice(-2), [
      "Preview with refresh (program against GitHub and hosts)",
      "Check the approval rules in GitHub",
    ]);
    const check = job?.steps.at(-1);
    assert.equal(check?.if, "(!cancelled()) && (steps.preview.outcome != 'skipped')");
    assert.equal(job?.steps.at(-2)?.id, "preview");
    assert.equal(check?.env?.GH_TOKEN, expression("github.token"));
    assert.equal(check?.env?.PULUMI_ACCESS_TOKEN, expression("secrets.PULUMI_DRIFT_TOKEN"));
    assert.match(check?.run ?? "", /pulumi config get --stack "\$STACK" --path environment --json/);
    assert.match(check?.run ?? "", /gh api "repos\/\$REPOSITORY\/environments\/\$env_name"/);
  });
});
