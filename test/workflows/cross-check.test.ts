import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  activeGithubValues,
  type GithubValueSpec,
  githubValueContext,
  githubValues,
} from "../../src/config/catalog";
import {
  buildWorkflows,
  environmentScopes,
  planWorkflows,
  WorkflowPlanError,
} from "../../src/workflows";
import { crossCheckValues, valueReferences } from "../../src/workflows/cross-check";
import { pipelineSettings } from "../../src/workflows/settings";
import { committedValues, stackConfig } from "../support/workflows";

const config = stackConfig("staging");
const workflows = buildWorkflows(pipelineSettings(config));
const ENVS = environmentScopes(pipelineSettings(config));
/** The catalog entries the committed config uses (DEPLOY_WEBHOOK_URL only with workflows.notify). */
const CATALOG = activeGithubValues(githubValueContext(config));

function problemsOf(error: unknown): readonly string[] {
  assert.ok(error instanceof WorkflowPlanError, String(error));
  return error.problems;
}

describe("the secrets cross-check", () => {
  test("holds for the committed stacks' workflows and the catalog", () => {
    assert.deepEqual(crossCheckValues(workflows, CATALOG, ENVS), []);
  });

  test("with workflows.notify, only the deploy jobs read their environment's DEPLOY_WEBHOOK_URL, and the check holds", () => {
    const notifying = stackConfig("staging", { workflows: { notify: true } });
    const settings = pipelineSettings(notifying);
    const built = buildWorkflows(settings);
    const catalog = activeGithubValues(githubValueContext(notifying));
    assert.ok(catalog.some((v) => v.name === "DEPLOY_WEBHOOK_URL"));
    assert.deepEqual(crossCheckValues(built, catalog, environmentScopes(settings)), []);
    const refs = valueReferences(built)
      .filter((r) => r.name === "DEPLOY_WEBHOOK_URL")
      .map((r) => `${r.file} ${r.job}@${r.environment ?? "-"}`);
    assert.deepEqual(refs.sort(), [
      "deploy-prod.yml deploy@production",
      "deploy-staging.yml deploy@staging",
    ]);
    // The committed config does not notify: the entry is not active, and the full catalog's
    // entry would be a managed secret no workflow reads.
    assert.ok(!CATALOG.some((v) => v.name === "DEPLOY_WEBHOOK_URL"));
    assert.notDeepEqual(crossCheckValues(workflows, githubValues, ENVS), []);
  });

  test("the generated workflows read exactly these values", () => {
    const refs = valueReferences(workflows).map(
      (r) => `${r.file} ${r.job}${r.environment ? `@${r.environment}` : ""} ${r.kind}:${r.name}`,
    );
    assert.deepEqual([...new Set(refs.map((r) => r.split(" ").slice(2).join(" ")))].sort(), [
      "secret:ASC_API_KEY_ID",
      "secret:ASC_API_KEY_ISSUER_ID",
      "secret:ASC_API_KEY_P8",
      "secret:CODECOV_TOKEN",
      "secret:EXPO_TOKEN",
      "secret:GOOGLE_SERVICE_ACCOUNT_KEY",
      "secret:PULUMI_ACCESS_TOKEN",
      "secret:PULUMI_DRIFT_TOKEN",
    ]);
    assert.ok(refs.includes("deploy-staging.yml deploy@staging secret:PULUMI_ACCESS_TOKEN"));
    assert.ok(refs.includes("deploy-prod.yml deploy@production secret:PULUMI_ACCESS_TOKEN"));
    assert.ok(refs.includes("drift.yml drift@drift secret:PULUMI_DRIFT_TOKEN"));
    assert.ok(refs.includes("mobile-build.yml build-ios@production secret:EXPO_TOKEN"));
    assert.ok(refs.includes("mobile-update.yml ota-staging@production secret:EXPO_TOKEN"));
    assert.ok(refs.includes("mobile-ota.yml promote@production secret:EXPO_TOKEN"));
    assert.ok(refs.includes("mobile-ota.yml promote@production secret:PULUMI_ACCESS_TOKEN"));
    assert.ok(refs.includes("mobile-ota.yml rollback@production secret:EXPO_TOKEN"));
    assert.ok(refs.includes("mobile-build.yml build-ios@production secret:ASC_API_KEY_P8"));
    assert.ok(
      refs.includes("mobile-build.yml build-android@production secret:GOOGLE_SERVICE_ACCOUNT_KEY"),
    );
    assert.ok(
      !refs.some((r) => r.startsWith("mobile-build.yml build-android") && r.includes("ASC_")),
      "each build job reads its own store's key only",
    );
  });

  test("without store uploads, no job reads a store key and no stack manages one", () => {
    const off = stackConfig("staging", {
      workflows: {
        ...(committedValues("staging").workflows as object),
        mobile: { submit: false },
      },
    });
    const plan = planWorkflows(off);
    const text = plan.files.map((f) => f.content).join("\n");
    assert.doesNotMatch(text, /ASC_API_KEY|GOOGLE_SERVICE_ACCOUNT|auto-submit/);
    const names = activeGithubValues(githubValueContext(off)).map((v) => v.name);
    assert.ok(!names.some((n) => n.startsWith("ASC_") || n.startsWith("GOOGLE_")), names.join());
  });

  test("a value read but provided by no resource fails, naming the job and what it can see", () => {
    const catalog = CATALOG.filter((v) => v.name !== "EXPO_TOKEN");
    let error: unknown;
    try {
      planWorkflows(config, catalog);
    } catch (err) {
      error = err;
    }
    const problems = problemsOf(error);
    assert.ok(
      problems.includes(
        'Pulumi.staging.yaml: clicky-delivery:workflows: mobile-build.yml: job "build-ios" reads secrets.EXPO_TOKEN, which no managed resource provides to it (src/config/catalog.ts; repository values: secret CODECOV_TOKEN; environment "production" values: secret ASC_API_KEY_P8, secret ASC_API_KEY_ID, secret ASC_API_KEY_ISSUER_ID, secret GOOGLE_SERVICE_ACCOUNT_KEY, secret PULUMI_ACCESS_TOKEN)',
      ),
      problems.join("\n"),
    );
  });

  test("an environment secret is not visible to a job outside that environment", () => {
    const moved: GithubValueSpec[] = CATALOG.map((v) =>
      v.name === "PULUMI_DRIFT_TOKEN" ? { ...v, scope: "gated-environment" } : v,
    );
    const problems = crossCheckValues(workflows, moved, ENVS);
    const found = problems.find((p) =>
      /^drift\.yml: job "drift" reads secrets\.PULUMI_DRIFT_TOKEN, which no managed resource provides/.test(
        p.message,
      ),
    );
    assert.ok(found, JSON.stringify(problems));
    assert.deepEqual(found.path, ["pulumiDriftToken"], "the secret key that feeds it");
  });

  test("a managed secret no workflow reads fails, naming the catalog entry", () => {
    const extra: GithubValueSpec = {
      name: "STAGING_SSH_KEY",
      kind: "secret",
      scope: "repository",
      reaches: "own-stack",
      purpose: "the spec's SSH key",
      source: { kind: "secretKey", key: "sshKey" },
    };
    assert.deepEqual(crossCheckValues(workflows, [...CATALOG, extra], ENVS), [
      {
        path: ["sshKey"],
        message:
          "src/config/catalog.ts: repository secret STAGING_SSH_KEY is read by no workflow job",
      },
    ]);
  });

  test("an environment secret must be read in every environment", () => {
    const problems = crossCheckValues(
      workflows,
      CATALOG,
      new Map([...ENVS, ["qa", ["environment"]]]),
    );
    assert.deepEqual(problems, [
      {
        path: ["pulumiAccessToken"],
        message:
          'src/config/catalog.ts: environment secret PULUMI_ACCESS_TOKEN is read by no job of environment "qa"',
      },
    ]);
  });

  test("a deploy job must run in the environment this stack creates", () => {
    const renamed = stackConfig("staging", {
      workflows: {
        targets: { staging: { stack: "staging", environment: "stage", checkPaths: ["/health"] } },
      },
    });
    let error: unknown;
    try {
      planWorkflows(renamed);
    } catch (err) {
      error = err;
    }
    assert.deepEqual(problemsOf(error), [
      'Pulumi.staging.yaml: clicky-delivery:workflows.targets.staging.environment: is "stage" but stack staging creates environment "staging" (clicky-delivery:environment.name)',
    ]);
  });

  test("every problem is written like a config problem: file, key path, what is wrong", () => {
    const renamed = stackConfig("staging", {
      workflows: {
        targets: { staging: { stack: "staging", environment: "stage", checkPaths: ["/health"] } },
      },
    });
    const catalog = [
      ...CATALOG.filter((v) => v.name !== "EXPO_TOKEN"),
      {
        name: "UNUSED_TOKEN",
        kind: "secret",
        scope: "repository",
        reaches: "nothing",
        purpose: "nothing",
        source: { kind: "secretKey", key: "unusedToken" },
      } as const,
    ];
    let error: unknown;
    try {
      planWorkflows(renamed, catalog);
    } catch (err) {
      error = err;
    }
    const problems = problemsOf(error);
    assert.ok(problems.length >= 4, problems.join("\n"));
    for (const line of problems) {
      assert.match(line, /^Pulumi\.staging\.yaml: clicky-delivery:[A-Za-z][\w.[\]]*: \S/, line);
    }
    assert.ok(
      problems.includes(
        "Pulumi.staging.yaml: clicky-delivery:unusedToken: src/config/catalog.ts: repository secret UNUSED_TOKEN is read by no workflow job",
      ),
      problems.join("\n"),
    );
  });

  test("a job in an environment no stack manages points at the deploy targets", () => {
    const problems = crossCheckValues(workflows, CATALOG, new Map([["staging", ["environment"]]]));
    assert.ok(
      problems.some(
        (p) =>
          p.path.join(".") === "workflows.targets" &&
          p.message.startsWith(
            'deploy-prod.yml: job "deploy" runs in environment "production", which no stack manages',
          ),
      ),
      JSON.stringify(problems),
    );
  });
});
