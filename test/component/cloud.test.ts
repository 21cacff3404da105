import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseStackConfig } from "../../src/config/schema";
import { ofType, runProgram } from "../support/program";

const SETTINGS = "pulumiservice:index:DeploymentSettings";
const DRIFT = "pulumiservice:index:DriftSchedule";

for (const stack of ["staging", "production"]) {
  describe(`the committed ${stack} stack on Pulumi Cloud`, async () => {
    const run = await runProgram({ stack, mode: "synth" });
    const [settings, ...moreSettings] = ofType(run, SETTINGS);
    const [drift, ...moreDrift] = ofType(run, DRIFT);

    test("has exactly one DeploymentSettings and one DriftSchedule", () => {
      assert.equal(run.error, undefined);
      assert.ok(settings && drift);
      assert.equal(moreSettings.length + moreDrift.length, 0);
      assert.equal(settings.parent, stack);
      assert.equal(drift.parent, stack);
    });

    test("deploys this repository's default branch, never on its own at every commit", () => {
      assert.deepEqual(settings?.inputs.sourceContext, {
        git: { branch: "refs/heads/main", repoDir: "." },
      });
      const vcs = settings?.inputs.vcs as Record<string, unknown>;
      assert.equal(vcs.provider, "github");
      assert.equal(vcs.repository, "clicky-foundation/clicky-foundation");
      assert.equal(vcs.deployCommits, false, "a commit must not deploy before its image exists");
      assert.equal(vcs.previewPullRequests, true);
      assert.ok((vcs.paths as string[]).includes("src/**"));
    });

    test("uses the current inputs, not the deprecated github block", () => {
      assert.equal(settings?.inputs.github, undefined);
    });

    test("checks the program compiles before any operation", () => {
      const ctx = settings?.inputs.operationContext as Record<string, unknown>;
      assert.deepEqual(ctx.preRunCommands, ["npm run typecheck"]);
    });

    test("schedules drift detection without auto-remediation", () => {
      assert.deepEqual(drift?.inputs, {
        organization: "clicky-foundation",
        project: "clicky-delivery",
        stack,
        scheduleCron: "17 5 * * *",
        autoRemediate: false,
      });
    });
  });
}

describe("a self-managed (local backend) stack", async () => {
  const run = await runProgram({
    stack: "production",
    mode: "synth",
    overrides: { deployments: { backend: "self-managed" } },
  });
  test("synthesizes without any Pulumi Cloud resource", () => {
    assert.equal(run.error, undefined);
    assert.deepEqual(
      run.resources.filter((r) => r.type.startsWith("pulumiservice:")),
      [],
    );
  });
});

describe("drift auto-remediation", () => {
  const base = {
    github: { owner: "clicky-foundation", repository: "clicky-foundation" },
    deploy: {
      hosts: [{ name: "web-1", host: "web-1.example.org" }],
      image: { repository: "ghcr.io/clicky-foundation/clicky-foundation/backend", tag: "v1.0.0" },
    },
    deployments: { backend: "cloud", organization: "clicky-foundation", driftAutoRemediate: true },
  };
  test("is refused for an environment that requires approval", () => {
    const result = parseStackConfig(
      {
        ...base,
        environment: {
          name: "production",
          url: "https://api.example.org",
          approval: { reviewers: { users: ["alice"] } },
        },
      },
      { stack: "production" },
    );
    assert.ok(!result.ok);
    assert.deepEqual(result.problems, [
      'Pulumi.production.yaml: clicky-delivery:deployments.driftAutoRemediate: must be false: environment "production" requires approval, and auto-remediation would deploy without it',
    ]);
  });
  test("is allowed where nobody approves deploys", () => {
    const result = parseStackConfig(
      { ...base, environment: { name: "staging", url: "https://staging.example.org" } },
      { stack: "staging" },
    );
    assert.ok(result.ok);
  });
  test("needs an organization on Pulumi Cloud", () => {
    const result = parseStackConfig(
      {
        github: base.github,
        deploy: base.deploy,
        environment: { name: "staging", url: "https://staging.example.org" },
        deployments: { backend: "cloud" },
      },
      { stack: "staging" },
    );
    assert.ok(!result.ok);
    assert.match(
      result.problems[0] ?? "",
      /clicky-delivery:deployments\.organization: is required when backend is cloud/,
    );
  });
});
