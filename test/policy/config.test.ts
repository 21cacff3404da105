import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_PACK_CONFIG, packConfigSchema, readPackConfig } from "../../policy/config";
import { gatedEnvironmentApproval, policies } from "../../policy/policies";
import { TYPES } from "../../policy/resources";
import { DRIFT_ENVIRONMENT } from "../../src/config/catalog";
import { PRODUCTION_STACK } from "../../src/config/schema";
import { runPolicies, stagingSynth } from "../support/policy";

describe("the pack config", () => {
  test("defaults to this repository's names", () => {
    assert.deepEqual(DEFAULT_PACK_CONFIG, {
      gatedEnvironments: ["production"],
      gatedStacks: [PRODUCTION_STACK],
      driftEnvironment: DRIFT_ENVIRONMENT,
      defaultBranch: "main",
    });
  });

  test("every policy declares every key, mandatory, with the defaults", () => {
    for (const p of policies) {
      assert.equal(p.enforcementLevel, "mandatory", p.name);
      assert.deepEqual(p.configSchema, packConfigSchema(), p.name);
    }
    const defaults = Object.fromEntries(
      Object.entries(packConfigSchema().properties).map(([k, v]) => [
        k,
        typeof v === "object" ? v.default : undefined,
      ]),
    );
    assert.deepEqual(defaults, DEFAULT_PACK_CONFIG);
  });

  test("given values replace the defaults", () => {
    assert.deepEqual(readPackConfig("p", { gatedEnvironments: ["prod"], defaultBranch: "trunk" }), {
      ...DEFAULT_PACK_CONFIG,
      gatedEnvironments: ["prod"],
      defaultBranch: "trunk",
    });
  });

  const wrong: readonly [string, Record<string, unknown>, RegExp][] = [
    ["a typo", { gatedEnvironment: ["x"] }, /unknown key "gatedEnvironment" \(expected one of/],
    [
      "an empty list",
      { gatedStacks: [] },
      /gatedStacks must be a non-empty list of names, got \[\]/,
    ],
    [
      "a string for a list",
      { gatedEnvironments: "production" },
      /gatedEnvironments must be a non-empty list/,
    ],
    [
      "an empty name",
      { driftEnvironment: "" },
      /driftEnvironment must be a non-empty string, got ""/,
    ],
  ];
  for (const [name, given, message] of wrong) {
    test(`refuses ${name}, naming the policy`, () => {
      assert.throws(
        () => readPackConfig("gated-environment-approval", given),
        (err: Error) =>
          err.message.startsWith('policy pack config of "gated-environment-approval": ') &&
          message.test(err.message),
      );
    });
  }

  test("a wrong config fails the policy run instead of passing quietly", async () => {
    await assert.rejects(
      runPolicies(await stagingSynth(), {
        only: [gatedEnvironmentApproval],
        config: { [gatedEnvironmentApproval.name]: { gatedEnvironment: ["staging"] } },
      }),
      /policy gated-environment-approval: policy pack config of "gated-environment-approval": unknown key "gatedEnvironment"/,
    );
  });

  test("staging counted as gated fails on its environment, which requires no reviewer", async () => {
    const violations = await runPolicies(await stagingSynth(), {
      only: [gatedEnvironmentApproval],
      config: { [gatedEnvironmentApproval.name]: { gatedEnvironments: ["production", "staging"] } },
    });
    assert.deepEqual(
      violations.map((v) => v.message.split(": ")[0]),
      [`${TYPES.environment} "staging"`, `${TYPES.environment} "staging"`],
    );
  });
});
