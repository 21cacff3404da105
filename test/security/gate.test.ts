import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { secretKeySpecs } from "../../src/config/schema";
import type { RecordedResource } from "../../src/synth/engine";
import { reveal } from "../../src/synth/wire";
import { committedDeploy, runProgram, withLogin, withoutStoredTokens } from "../support/program";
import {
  type CredentialPath,
  credentialPaths,
  gateViolation,
  previewsOfPullRequests,
} from "../support/security-paths";
import { committedValues } from "../support/workflows";

const SECRETS = Object.fromEntries(
  secretKeySpecs.filter((s) => !s.names).map((s) => [s.key, `${s.key}-value`]),
);
const CTX = { productionStack: "production", defaultBranch: "main" };

async function resourcesOf(stack: string): Promise<RecordedResource[]> {
  const run = await runProgram({
    stack,
    mode: "up",
    secrets: SECRETS,
    overrides: committedDeploy(stack),
  });
  assert.equal(run.error, undefined, String(run.error));
  return [...run.resources];
}

function describePath(p: CredentialPath): string {
  return `${p.secret} @ ${p.scope} (managed by ${p.managedBy}; branches ${p.branches.join(",") || "-"}; tags ${p.tags.join(",") || "-"}; reviewers ${p.reviewers}${p.preventSelfReview ? ", no self-review" : ""}${p.adminsBypass ? ", admins bypass" : ""}) read by ${p.readers.join("; ") || "no job"}`;
}

describe("every path to a production credential passes production's gate", async () => {
  const staging = await resourcesOf("staging");
  const production = await resourcesOf("production");
  const paths = credentialPaths(
    [
      { stack: "staging", resources: staging },
      { stack: "production", resources: production },
    ],
    "production",
  );

  test("the paths, listed", (t) => {
    for (const p of paths) t.diagnostic(describePath(p));
    assert.deepEqual(
      paths
        .map((p) => `${p.secret} @ ${p.scope}${p.reachesProduction ? " (reaches production)" : ""}`)
        .sort(),
      [
        "ASC_API_KEY_ID @ production (reaches production)",
        "ASC_API_KEY_ISSUER_ID @ production (reaches production)",
        "ASC_API_KEY_P8 @ production (reaches production)",
        "CODECOV_TOKEN @ repository",
        "EXPO_TOKEN @ production (reaches production)",
        "GOOGLE_SERVICE_ACCOUNT_KEY @ production (reaches production)",
        "PULUMI_ACCESS_TOKEN @ production (reaches production)",
        "PULUMI_ACCESS_TOKEN @ staging",
        "PULUMI_DRIFT_TOKEN @ drift (reaches production)",
      ],
    );
  });

  test("each production credential is behind the reviewers, or on the default branch with read-only jobs", () => {
    const violations = paths
      .map((p) => [describePath(p), gateViolation(p, CTX)] as const)
      .filter(([, why]) => why !== undefined);
    assert.deepEqual(violations, []);
  });

  test("each production credential is read by some job, and only in its environment", () => {
    for (const p of paths.filter((p) => p.reachesProduction)) {
      assert.ok(p.readers.length > 0, describePath(p));
    }
  });

  test("no repository-scoped secret can read production", () => {
    assert.deepEqual(
      paths.filter((p) => p.scope === "repository" && p.reachesProduction).map(describePath),
      [],
    );
  });

  test("no stack's Pulumi Deployments settings preview pull requests", () => {
    // Production's config decrypts production's secrets; staging's holds a GitHub token that
    // can administer the repository, and so change production's reviewers.
    assert.equal(previewsOfPullRequests(production), false);
    assert.equal(previewsOfPullRequests(staging), false);
  });
});

describe("with workflows.notify, each stack's webhook is read by its own deploy job only", async () => {
  const notifying = async (stack: string) => {
    const committed = committedValues(stack).workflows as Record<string, unknown> | undefined;
    const run = await runProgram({
      stack,
      mode: "up",
      secrets: SECRETS,
      overrides: { ...committedDeploy(stack), workflows: { ...committed, notify: true } },
    });
    assert.equal(run.error, undefined, String(run.error));
    return [...run.resources];
  };
  const paths = credentialPaths(
    [
      { stack: "staging", resources: await notifying("staging") },
      { stack: "production", resources: await notifying("production") },
    ],
    "production",
  );

  test("DEPLOY_WEBHOOK_URL: one per environment, reaching nothing, read by that environment's deploy job", () => {
    const webhook = paths.filter((p) => p.secret === "DEPLOY_WEBHOOK_URL");
    assert.deepEqual(
      webhook.map((p) => `${p.scope} managed by ${p.managedBy}: ${p.readers.join("; ")}`).sort(),
      [
        "production managed by production: deploy-prod.yml: deploy",
        "staging managed by staging: deploy-staging.yml: deploy",
      ],
    );
    assert.ok(webhook.every((p) => !p.reachesProduction));
    for (const p of paths) assert.equal(gateViolation(p, CTX), undefined, describePath(p));
  });
});

describe("the gate check fails on a broken variant", () => {
  const gated: CredentialPath = {
    secret: "PULUMI_ACCESS_TOKEN",
    scope: "production",
    managedBy: "production",
    reachesProduction: true,
    branches: ["main"],
    tags: ["v*.*.*"],
    reviewers: 2,
    preventSelfReview: true,
    adminsBypass: false,
    readers: ["deploy-prod.yml: deploy"],
    readersChange: ["runs pulumi up or a deployment"],
  };
  const drift: CredentialPath = {
    ...gated,
    secret: "PULUMI_DRIFT_TOKEN",
    scope: "drift",
    branches: ["main"],
    tags: [],
    reviewers: 0,
    preventSelfReview: false,
    readers: ["drift.yml: drift"],
    readersChange: [],
  };
  const cases: [string, CredentialPath, RegExp][] = [
    [
      "a production credential as a repository secret",
      { ...gated, scope: "repository" },
      /every branch's workflows/,
    ],
    ["the last reviewer removed", { ...gated, reviewers: 0 }, /no approval gate/],
    ["self-review allowed", { ...gated, preventSelfReview: false }, /no approval gate/],
    ["admins may bypass", { ...gated, adminsBypass: true }, /no approval gate/],
    [
      "managed by the stack deployed without approval",
      { ...gated, managedBy: "staging" },
      /managed by stack staging/,
    ],
    [
      "the drift environment opened to another branch",
      { ...drift, branches: ["main", "release/*"] },
      /allows main, release\/\*/,
    ],
    ["the drift environment opened to tags", { ...drift, tags: ["v*"] }, /tag v\*/],
    [
      "a drift job that deploys",
      { ...drift, readersChange: ["contents: write"] },
      /change things \(contents: write\)/,
    ],
  ];
  test("the committed shapes pass", () => {
    assert.equal(gateViolation(gated, CTX), undefined);
    assert.equal(gateViolation(drift, CTX), undefined);
  });
  for (const [name, path, why] of cases) {
    test(name, () => assert.match(gateViolation(path, CTX) ?? "(passes)", why));
  }
});

describe("with OIDC login, every team that reaches production is bound to the gate", async () => {
  const run = await runProgram({
    stack: "production",
    mode: "up",
    secrets: withoutStoredTokens(SECRETS),
    overrides: { ...committedDeploy("production"), ...withLogin("production", "oidc") },
  });
  const resources = run.resources;
  const inputsOf = (type: string) =>
    resources
      .filter((r) => r.type === type)
      .map((r) => reveal(r.inputs) as Record<string, unknown>);
  const policies = (inputsOf("pulumiservice:index:OidcIssuer")[0]?.policies ?? []) as {
    teamName: string;
    rules: { sub: string };
  }[];
  const permissions = inputsOf("pulumiservice:index:TeamStackPermission") as {
    team: string;
    stack: string;
    permission: number;
  }[];
  const environments = inputsOf("github:index/repositoryEnvironment:RepositoryEnvironment");
  const branchPolicies = inputsOf(
    "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy",
  );

  test("each team that can update or read production logs in only from production's environment or the default-branch-only drift environment", () => {
    assert.equal(run.error, undefined, String(run.error));
    const reaching = permissions.filter((p) => p.stack === "production");
    assert.ok(reaching.length >= 2);
    for (const grant of reaching) {
      const subs = policies.filter((p) => p.teamName === grant.team).map((p) => p.rules.sub);
      assert.equal(subs.length, 1, grant.team);
      const environment = /:environment:(.+)$/.exec(subs[0] ?? "")?.[1];
      const env = environments.find((e) => e.environment === environment);
      assert.ok(env, `${grant.team}: environment ${environment} is managed here`);
      const reviewers = (env.reviewers as { users?: unknown[]; teams?: unknown[] }[]).reduce(
        (n, g) => n + (g.users?.length ?? 0) + (g.teams?.length ?? 0),
        0,
      );
      if (grant.permission > 101) {
        assert.ok(
          reviewers > 0 && env.preventSelfReview === true && env.canAdminsBypass === false,
          `${grant.team} updates production: only from the gated environment`,
        );
      } else {
        const refs = branchPolicies.filter((b) => b.environment === environment);
        assert.deepEqual(
          refs.map((b) => [b.branchPattern, b.tagPattern]),
          [["main", undefined]],
          `${grant.team} reads production: only from the default branch`,
        );
      }
    }
  });
});
