import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  gatedEnvironmentApproval,
  gatedHostKeyPinned,
  gatedNoPullRequestPreviews,
  productionSecretPlacement,
  workflowSecretEnvironment,
} from "../../policy/policies";
import { describeResource, type ResourceView, TYPES } from "../../policy/resources";
import { githubValues } from "../../src/config/catalog";
import { PROJECT } from "../../src/config/schema";
import { readStackFile } from "../../src/config/stack-file";
import { expr } from "../../src/workflows/expr";
import {
  find,
  policyResources,
  productionUp,
  runPolicies,
  stagingSynth,
  type Violation,
  withJob,
  withProps,
} from "../support/policy";
import { REPO_ROOT, runProgram } from "../support/program";

/** The committed environment section of a stack file, changed. */
function environmentOf(
  stack: string,
  change: (env: Record<string, unknown>) => Record<string, unknown>,
): { environment: Record<string, unknown> } {
  const file = readStackFile(join(REPO_ROOT, `Pulumi.${stack}.yaml`));
  const env = JSON.parse(file.config[`${PROJECT}:environment`] ?? "{}") as Record<string, unknown>;
  return { environment: change(env) };
}

function approvalOf(env: Record<string, unknown>): Record<string, unknown> {
  return env.approval as Record<string, unknown>;
}

/** Asserts the violations are exactly one per expected message pattern, all from `policy`. */
function assertViolations(
  violations: readonly Violation[],
  policy: { readonly name: string },
  resource: Pick<ResourceView, "type" | "name">,
  patterns: readonly RegExp[],
): void {
  assert.equal(
    violations.length,
    patterns.length,
    violations.map((v) => `${v.policy}: ${v.message}`).join("\n"),
  );
  for (const [i, pattern] of patterns.entries()) {
    const v = violations[i] as Violation;
    assert.equal(v.policy, policy.name);
    assert.ok(v.message.startsWith(`${describeResource(resource)}: `), v.message);
    assert.match(v.message, pattern);
  }
}

describe("a gated environment that does not wait for production's reviewers fails the preview", () => {
  test("a gated environment without reviewers", async () => {
    const committed = await productionUp();
    const env = find(committed, TYPES.environment, "production");
    const resources = withProps(committed, env, (p) => ({ ...p, reviewers: [] }));
    assertViolations(await runPolicies(resources), gatedEnvironmentApproval, env, [
      /the approval-gated environment "production" requires no reviewer, so every job that names it runs, and reads its secrets, without an approval; list production's reviewers in environment\.approval\.reviewers\.users \(logins\) or environment\.approval\.reviewers\.teams \(team slugs\) in Pulumi\.production\.yaml$/,
    ]);
  });

  test("staging's stack file naming production's environment: no reviewer, self-review allowed", async () => {
    const github = JSON.parse(
      readStackFile(join(REPO_ROOT, "Pulumi.staging.yaml")).config[`${PROJECT}:github`] ?? "{}",
    ) as Record<string, unknown>;
    const run = await runProgram({
      stack: "staging",
      mode: "synth",
      overrides: {
        ...environmentOf("staging", (env) => ({ ...env, name: "production" })),
        // Another stack owns the workflows, whose targets would otherwise refuse the name.
        github: { ...github, repositoryStack: "production" },
      },
    });
    const resources = policyResources(run, "staging");
    const env = find(resources, TYPES.environment, "production");
    assertViolations(await runPolicies(resources), gatedEnvironmentApproval, env, [
      /requires no reviewer.*environment\.approval\.reviewers\.users .*Pulumi\.staging\.yaml; or, since stack "staging" does not deploy production, give it an environment of its own \(environment\.name in Pulumi\.staging\.yaml\)/,
      /lets whoever started a deploy approve it; set environment\.approval\.preventSelfReview: true in Pulumi\.staging\.yaml/,
    ]);
  });

  test("production allowing self-review", async () => {
    const resources = await productionUp(
      environmentOf("production", (env) => ({
        ...env,
        approval: { ...approvalOf(env), preventSelfReview: false },
      })),
    );
    const env = find(resources, TYPES.environment, "production");
    assertViolations(await runPolicies(resources), gatedEnvironmentApproval, env, [
      /set environment\.approval\.preventSelfReview: true in Pulumi\.production\.yaml/,
    ]);
  });

  test("production letting admins bypass its reviewers", async () => {
    const resources = await productionUp(
      environmentOf("production", (env) => ({
        ...env,
        approval: { ...approvalOf(env), adminsBypass: true },
      })),
    );
    const env = find(resources, TYPES.environment, "production");
    assertViolations(await runPolicies(resources), gatedEnvironmentApproval, env, [
      /lets repository admins deploy without its reviewers.*set environment\.approval\.adminsBypass: false in Pulumi\.production\.yaml/,
    ]);
  });

  test("an environment with an empty reviewer entry counts as having no reviewer", async () => {
    const committed = await productionUp();
    const env = find(committed, TYPES.environment, "production");
    const resources = withProps(committed, env, (p) => ({
      ...p,
      reviewers: [{ users: [], teams: [] }],
    }));
    assertViolations(
      await runPolicies(resources, { only: [gatedEnvironmentApproval] }),
      gatedEnvironmentApproval,
      env,
      [/requires no reviewer/],
    );
  });
});

describe("a secret that can read or change production outside a gated environment fails the preview", () => {
  test("EXPO_TOKEN as a repository secret", async () => {
    const committed = await stagingSynth();
    const codecov = find(committed, TYPES.repositorySecret, "repository-codecov-token");
    const expo: ResourceView = {
      ...codecov,
      name: "repository-expo-token",
      urn: codecov.urn.replace(/repository-codecov-token$/, "repository-expo-token"),
      props: { ...codecov.props, secretName: "EXPO_TOKEN" },
    };
    const violations = await runPolicies([...committed, expo]);
    assertViolations(violations, productionSecretPlacement, expo, [
      /EXPO_TOKEN can read or change production, but it is a repository secret.*set the scope of EXPO_TOKEN in src\/config\/catalog\.ts to "gated-environment"/,
    ]);
    assert.equal(violations[0]?.urn, expo.urn);
  });

  test("production's environment renamed to one the pack does not know as gated", async () => {
    const resources = await productionUp(
      environmentOf("production", (env) => ({ ...env, name: "prod" })),
    );
    const violations = await runPolicies(resources);
    const expo = find(resources, TYPES.environmentSecret, "prod-expo-token");
    const token = find(resources, TYPES.environmentSecret, "prod-pulumi-access-token");
    // The Pulumi token, and each production-reaching secret of the catalog (Expo, store keys).
    const reaching = githubValues.filter(
      (v) => v.scope === "gated-environment" && v.reaches === "production",
    );
    assert.equal(reaching.length, 5);
    assert.equal(
      violations.length,
      1 + reaching.length,
      violations.map((v) => v.message).join("\n"),
    );
    assert.ok(violations.every((v) => v.policy === productionSecretPlacement.name));
    const byUrn = new Map(violations.map((v) => [v.urn, v.message]));
    assert.match(
      byUrn.get(expo.urn) ?? "",
      /EXPO_TOKEN can read or change production, but it is a secret of environment "prod", which is neither approval-gated \(pack config gatedEnvironments: production\)/,
    );
    assert.match(
      byUrn.get(token.urn) ?? "",
      /PULUMI_ACCESS_TOKEN is the deploy credential of stack "production".*set environment\.name in Pulumi\.production\.yaml to an approval-gated environment \(production\), or add "prod" to the pack config gatedEnvironments/,
    );
  });

  test("the drift environment also allowing the branches release/*", async () => {
    const committed = await productionUp();
    const main = find(committed, TYPES.deploymentPolicy, "drift-branch-main");
    const release: ResourceView = {
      ...main,
      name: "drift-branch-release-slash-star",
      urn: main.urn.replace(/drift-branch-main$/, "drift-branch-release-slash-star"),
      props: { ...main.props, branchPattern: "release/*" },
    };
    const violations = await runPolicies([...committed, release]);
    assertViolations(violations, productionSecretPlacement, release, [
      /lets branch "release\/\*" deploy to the drift environment "drift", which holds PULUMI_DRIFT_TOKEN \(can read or change production\); only the default branch "main" may: the drift environment's branches come from github\.defaultBranch in Pulumi\.production\.yaml/,
    ]);
    assert.equal(violations[0]?.urn, release.urn);
  });

  test("the drift environment allowing a tag, or every protected branch", async () => {
    const committed = await productionUp();
    const main = find(committed, TYPES.deploymentPolicy, "drift-branch-main");
    const tag: ResourceView = {
      ...main,
      name: "drift-tag-v",
      urn: main.urn.replace(/drift-branch-main$/, "drift-tag-v"),
      props: { repository: "clicky-foundation", environment: "drift", tagPattern: "v*" },
    };
    assertViolations(await runPolicies([...committed, tag]), productionSecretPlacement, tag, [
      /lets tags "v\*" deploy to the drift environment "drift"/,
    ]);
    const drift = find(committed, TYPES.environment, "drift");
    const protectedBranches = withProps(committed, drift, (p) => ({
      ...p,
      deploymentBranchPolicy: { customBranchPolicies: false, protectedBranches: true },
    }));
    assertViolations(await runPolicies(protectedBranches), productionSecretPlacement, drift, [
      /lets every protected branch deploy.*customBranchPolicies true, protectedBranches false/,
    ]);
  });

  test("the drift token in a stack that does not manage the drift environment", async () => {
    const production = await productionUp();
    const token = find(production, TYPES.environmentSecret, "drift-pulumi-drift-token");
    const staging = await stagingSynth();
    const moved: ResourceView = { ...token, urn: token.urn.replace(":production::", ":staging::") };
    assertViolations(await runPolicies([...staging, moved]), productionSecretPlacement, moved, [
      /this stack does not manage that environment, so nothing here limits it to the default branch/,
    ]);
  });

  test("a production secret placed in the drift environment", async () => {
    const committed = await productionUp();
    const expo = find(committed, TYPES.environmentSecret, "production-expo-token");
    const resources = withProps(committed, expo, (p) => ({ ...p, environment: "drift" }));
    assertViolations(await runPolicies(resources), productionSecretPlacement, expo, [
      /EXPO_TOKEN can read or change production, but it is a secret of the drift environment "drift", whose job runs without an approval and must change nothing/,
    ]);
  });
});

describe("a production host without a pinned host key fails the preview", () => {
  test("a deploy command whose connection has no hostKey", async () => {
    const committed = await productionUp();
    const run = find(committed, TYPES.remoteCommand, "deploy-prod-1-run");
    const resources = withProps(committed, run, (p) => {
      const { hostKey: _pinned, ...connection } = p.connection as Record<string, unknown>;
      return { ...p, connection };
    });
    assertViolations(await runPolicies(resources), gatedHostKeyPinned, run, [
      /connects to api\.clicky-foundation\.example:22 with no host key.*set deploy\.hosts\[\]\.hostKey of host api\.clicky-foundation\.example in Pulumi\.production\.yaml/,
    ]);
  });

  test("a copy whose jump host has no hostKey", async () => {
    const committed = await productionUp();
    const copy = find(committed, TYPES.copyToRemote, "deploy-prod-1-site-conf");
    const resources = withProps(committed, copy, (p) => ({
      ...p,
      connection: { ...(p.connection as object), proxy: { host: "bastion.example", user: "jump" } },
    }));
    assertViolations(await runPolicies(resources), gatedHostKeyPinned, copy, [
      /jumps through bastion\.example:22 with no host key/,
    ]);
  });

  test("staging's unpinned host is not production's concern", async () => {
    assert.deepEqual(await runPolicies(await stagingSynth(), { only: [gatedHostKeyPinned] }), []);
  });
});

describe("pull request previews of production fail the preview", () => {
  test("previewPullRequests true", async () => {
    const committed = await productionUp();
    const settings = find(committed, TYPES.deploymentSettings, "production");
    const resources = withProps(committed, settings, (p) => ({
      ...p,
      vcs: { ...(p.vcs as object), previewPullRequests: true },
    }));
    assertViolations(await runPolicies(resources), gatedNoPullRequestPreviews, settings, [
      /vcs\.previewPullRequests is true for stack "production", so anyone who opens a pull request runs its code with production's config decrypted/,
    ]);
  });

  test("previewPullRequests not set, which the provider defaults to true", async () => {
    const committed = await productionUp();
    const settings = find(committed, TYPES.deploymentSettings, "production");
    const resources = withProps(committed, settings, (p) => {
      const { previewPullRequests: _off, ...vcs } = p.vcs as Record<string, unknown>;
      return { ...p, vcs };
    });
    assertViolations(await runPolicies(resources), gatedNoPullRequestPreviews, settings, [
      /vcs\.previewPullRequests is not set \(true by default\)/,
    ]);
  });
});

describe("a workflow job reading a production secret outside its environment fails the preview", () => {
  async function withDriftJob(change: (job: Record<string, unknown>) => Record<string, unknown>) {
    const committed = await stagingSynth();
    const file = find(committed, TYPES.repositoryFile, "workflows-drift.yml");
    const resources = withProps(committed, file, (p) => ({
      ...p,
      content: withJob(String(p.content), "drift", change),
    }));
    return { file, violations: await runPolicies(resources) };
  }

  test("the drift job without its environment reading PULUMI_DRIFT_TOKEN", async () => {
    const { file, violations } = await withDriftJob(({ environment: _drift, ...job }) => job);
    assertViolations(violations, workflowSecretEnvironment, file, [
      /job "drift" of \.github\/workflows\/drift\.yml reads PULUMI_DRIFT_TOKEN \(can read or change production\) but runs in no environment.*give the job environment "production" \(or "drift"\) in src\/workflows\/pipelines\/drift\.ts/,
    ]);
  });

  test("the drift job reading EXPO_TOKEN, which the drift environment does not hold", async () => {
    const { file, violations } = await withDriftJob((job) => ({
      ...job,
      env: { EXPO: expr.secret("EXPO_TOKEN").render() },
    }));
    assertViolations(violations, workflowSecretEnvironment, file, [
      /reads EXPO_TOKEN .* in the drift environment "drift", which holds only the drift job's read-only token; give the job environment "production" in/,
    ]);
  });

  test("a mobile job moved to staging", async () => {
    const committed = await stagingSynth();
    const file = find(committed, TYPES.repositoryFile, "workflows-mobile-update.yml");
    const resources = withProps(committed, file, (p) => ({
      ...p,
      content: withJob(String(p.content), "ota-staging", (job) => ({
        ...job,
        environment: "staging",
      })),
    }));
    assertViolations(await runPolicies(resources), workflowSecretEnvironment, file, [
      /job "ota-staging" .* reads EXPO_TOKEN .* in environment "staging", which is not approval-gated/,
    ]);
  });

  test("a job calling a reusable workflow with secrets: inherit", async () => {
    const committed = await stagingSynth();
    const file = find(committed, TYPES.repositoryFile, "workflows-pr.yml");
    const resources = withProps(committed, file, (p) => ({
      ...p,
      content: `${String(p.content)}  shared:\n    uses: ./.github/workflows/shared.yml\n    secrets: inherit\n`,
    }));
    assertViolations(await runPolicies(resources), workflowSecretEnvironment, file, [
      /job "shared" of \.github\/workflows\/pr\.yml reads every secret \(secrets: inherit\), among them EXPO_TOKEN, ASC_API_KEY_P8, ASC_API_KEY_ID, ASC_API_KEY_ISSUER_ID, GOOGLE_SERVICE_ACCOUNT_KEY, PULUMI_DRIFT_TOKEN .* but runs in no environment/,
    ]);
  });
});
