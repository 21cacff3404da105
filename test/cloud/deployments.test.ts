import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { deploymentPreRunCommands, pulumiProjectCheck } from "../../src/cloud/deployments";
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
      assert.equal(
        vcs.previewPullRequests,
        false,
        "a preview runs the pull request's code with the stack's config decrypted",
      );
      assert.equal(vcs.paths, undefined, "no path filter: nothing runs on a push or pull request");
    });

    test("uses the current inputs, not the deprecated github block", () => {
      assert.equal(settings?.inputs.github, undefined);
    });

    test("checks the program is where the config says, then that it compiles, before any operation", () => {
      const ctx = settings?.inputs.operationContext as Record<string, unknown>;
      const location = {
        repository: "clicky-foundation/clicky-foundation",
        directory: ".",
        stackFile: `Pulumi.${stack}.yaml`,
      };
      assert.deepEqual(ctx.preRunCommands, [pulumiProjectCheck(location), "npm run typecheck"]);
      // The workflows pass the same commands again (src/workflows/steps.ts): one function.
      assert.deepEqual(ctx.preRunCommands, deploymentPreRunCommands(location));
      assert.equal(
        pulumiProjectCheck(location),
        `test -f Pulumi.yaml || { echo "clicky-delivery: no Pulumi.yaml in clicky-foundation/clicky-foundation at this commit; set deployments.source.repository and deployments.source.directory in Pulumi.${stack}.yaml" >&2; exit 1; }`,
      );
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
    deployments: {
      backend: "cloud",
      organization: "clicky-foundation",
      source: { repository: "clicky-foundation/clicky-foundation", directory: "." },
      driftAutoRemediate: true,
    },
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
