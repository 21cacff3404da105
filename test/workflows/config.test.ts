import assert from "node:assert/strict";
import { describe, test } from "node:test";
import pulumiSdkPackage from "@pulumi/pulumi/package.json";
import { parseStackConfig } from "../../src/config/schema";
import { DEFAULT_PULUMI_CLI, workflowsConfigSchema } from "../../src/config/workflows";
import { minimumNodeMajor, PROGRAM_NODE_VERSION } from "../../src/workflows/node-version";
import { pipelineSettings } from "../../src/workflows/settings";
import { committedValues, stackConfig } from "../support/workflows";

/** The problems of the committed staging stack with this `workflows` section. */
function problems(workflows: unknown): readonly string[] {
  const parsed = parseStackConfig(
    { ...committedValues("staging"), workflows },
    { stack: "staging" },
  );
  return parsed.ok ? [] : parsed.problems;
}

describe("clicky-delivery:workflows", () => {
  test("every key has a default: the committed stacks need no workflows section", () => {
    const parsed = workflowsConfigSchema.parse({});
    assert.equal(parsed.commit.mode, "pull-request");
    assert.equal(parsed.pythonVersion, "3.11");
    assert.equal(parsed.nodeVersion, "20");
    assert.equal(parsed.pulumiVersion, "3.276.0");
    assert.deepEqual(parsed.targets.staging.checkPaths, ["/health", "/api/v1/health"]);
    assert.equal(parsed.ruleset.enforcement, "active");
  });
  test("direct commits under an active ruleset are refused, with the key path", () => {
    assert.deepEqual(problems({ commit: { mode: "direct" } }), [
      'Pulumi.staging.yaml: clicky-delivery:workflows.commit.mode: is "direct" but the active ruleset requires pull requests on the default branch, so every commit after the first would be refused; use "pull-request" (or ruleset.enforcement: disabled)',
    ]);
    assert.deepEqual(
      problems({ commit: { mode: "direct" }, ruleset: { enforcement: "disabled" } }),
      [],
    );
  });
  test("an unknown key is named with the keys allowed there", () => {
    const [line] = problems({ pythonVersoin: "3.12" });
    assert.match(
      line ?? "",
      /clicky-delivery:workflows\.pythonVersoin: unknown key \(expected one of: commit, deployMode,/,
    );
  });
  test("a check path that could break a script is refused", () => {
    const [line] = problems({
      targets: {
        staging: { stack: "staging", environment: "staging", checkPaths: ["/health; rm -rf /"] },
      },
    });
    assert.match(
      line ?? "",
      /clicky-delivery:workflows\.targets\.staging\.checkPaths\[0\]: expected a URL path/,
    );
  });
  test("the Pulumi CLI is pinned to an exact version, 3.256.0 or newer", () => {
    assert.deepEqual(problems({ pulumiVersion: "3.256.0" }), []);
    assert.deepEqual(problems({ pulumiVersion: "3.300.1" }), []);
    assert.deepEqual(problems({ pulumiVersion: DEFAULT_PULUMI_CLI }), []);
    assert.deepEqual(problems({ pulumiVersion: "3.255.9" }), [
      'Pulumi.staging.yaml: clicky-delivery:workflows.pulumiVersion: "3.255.9" is older than 3.256.0: before it, `pulumi deployment run` exits 0 when the deployment fails (pulumi/pulumi#24155), so a failed deploy would pass',
    ]);
    for (const range of ["^3", "3.x", ">=3.256.0", "latest", "v3.276.0"]) {
      const [line] = problems({ pulumiVersion: range });
      assert.match(
        line ?? "",
        /^Pulumi\.staging\.yaml: clicky-delivery:workflows\.pulumiVersion: expected an exact Pulumi CLI version x\.y\.z, at least 3\.256\.0, got ".*": a range or tag could install a CLI older than 3\.256\.0/,
        range,
      );
    }
  });
  test("the image must be a lowercase ghcr.io repository", () => {
    const [line] = problems({ image: "ghcr.io/Clicky/App" });
    assert.match(
      line ?? "",
      /clicky-delivery:workflows\.image: expected a lowercase ghcr\.io repository/,
    );
  });
});

describe("pipeline settings", () => {
  test("a Pulumi Cloud stack is deployed through Pulumi Deployments, by qualified name", () => {
    const s = pipelineSettings(stackConfig("staging"));
    assert.equal(s.deployMode, "pulumi-deployments");
    assert.equal(s.production.stack, "clicky-foundation/clicky-delivery/production");
    assert.equal(s.image, "ghcr.io/clicky-foundation/clicky-foundation/backend");
    assert.deepEqual(s.pullRequestBranches, ["main", "develop"]);
  });
  test("a self-managed stack is deployed by pulumi up, by plain name", () => {
    const s = pipelineSettings(
      stackConfig("staging", { deployments: { backend: "self-managed" } }),
    );
    assert.equal(s.deployMode, "pulumi-up");
    assert.equal(s.staging.stack, "staging");
  });
  test("a program in another repository is checked out beside the app", () => {
    const s = pipelineSettings(
      stackConfig("staging", {
        deployments: {
          backend: "cloud",
          organization: "clicky-foundation",
          source: { repository: "clicky-foundation/delivery", directory: "infra" },
        },
      }),
    );
    assert.deepEqual(s.program, {
      repository: "clicky-foundation/delivery",
      ref: "main",
      checkoutPath: "delivery-program",
      directory: "delivery-program/infra",
      location: {
        repository: "clicky-foundation/delivery",
        directory: "infra",
        stackFile: "Pulumi.staging.yaml",
      },
    });
  });
  test("jobs that run the program use the Node.js its Pulumi SDK declares; mobile jobs the app's", () => {
    const s = pipelineSettings(stackConfig("staging"));
    const declared = (pulumiSdkPackage as { engines: { node: string } }).engines.node;
    assert.equal(s.programNodeVersion, minimumNodeMajor(declared));
    assert.equal(s.programNodeVersion, PROGRAM_NODE_VERSION);
    assert.equal(s.nodeVersion, "20");
  });
});

describe("the minimum Node.js major of an engines.node range", () => {
  for (const [range, major] of [
    [">=22", "22"],
    [">= 22.12.0", "22"],
    ["^20.17.0 || >=22.9.0", "20"],
    [">=18 <25", "18"],
    ["22.x", "22"],
    ["~22.3", "22"],
  ] as const) {
    test(`${range} -> ${major}`, () => assert.equal(minimumNodeMajor(range), major));
  }
  test("a range without a lower bound is refused, naming it", () => {
    assert.throws(() => minimumNodeMajor("<24"), /engines\.node "<24": no lower bound/);
    assert.throws(() => minimumNodeMajor("*"), /no lower bound/);
  });
});
