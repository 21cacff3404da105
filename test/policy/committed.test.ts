import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { gatedHostKeyPinned, policies } from "../../policy/policies";
import { TYPES } from "../../policy/resources";
import { productionSynth, productionUp, runPolicies, stagingSynth } from "../support/policy";

describe("the policy pack on the committed stacks", async () => {
  const staging = await stagingSynth();
  const production = await productionUp();
  const productionFromSynth = await productionSynth();

  test("staging (synth, with every workflow file) breaks no policy", async () => {
    assert.deepEqual(await runPolicies(staging), []);
  });

  test("production (as pulumi up registers it, hosts pinned) breaks no policy", async () => {
    assert.deepEqual(await runPolicies(production), []);
  });

  test("production from synth breaks only the host key policy, on the placeholder key", async () => {
    const others = policies.filter((p) => p !== gatedHostKeyPinned);
    assert.deepEqual(await runPolicies(productionFromSynth, { only: others }), []);
    const hostKeys = await runPolicies(productionFromSynth, { only: [gatedHostKeyPinned] });
    const remote = productionFromSynth.filter(
      (r) => r.type === TYPES.remoteCommand || r.type === TYPES.copyToRemote,
    );
    assert.equal(hostKeys.length, remote.length);
    for (const v of hostKeys) {
      assert.match(v.message, /api\.clicky-foundation\.example:22 with no host key/);
      assert.match(v.message, /deploy\.hosts\[\]\.hostKey .* in Pulumi\.production\.yaml/);
    }
  });

  test("stack outputs that record an unset pattern as an empty string read as unset", async () => {
    const outputs = production.map((r) =>
      r.type === TYPES.deploymentPolicy
        ? { ...r, props: { branchPattern: "", tagPattern: "", ...r.props } }
        : r,
    );
    assert.deepEqual(await runPolicies(outputs), []);
  });

  test("the checks see what they check: secrets, environments, workflows, hosts, settings", () => {
    const types = new Set([...staging, ...production].map((r) => r.type));
    for (const type of Object.values(TYPES)) assert.ok(types.has(type), `no ${type} registered`);
    const secrets = [...staging, ...production]
      .filter((r) => r.type === TYPES.environmentSecret || r.type === TYPES.repositorySecret)
      .map(
        (r) =>
          `${r.type === TYPES.repositorySecret ? "repository" : r.props.environment}:${r.props.secretName}`,
      )
      .sort();
    assert.deepEqual(secrets, [
      "drift:PULUMI_DRIFT_TOKEN",
      "production:ASC_API_KEY_ID",
      "production:ASC_API_KEY_ISSUER_ID",
      "production:ASC_API_KEY_P8",
      "production:EXPO_TOKEN",
      "production:GOOGLE_SERVICE_ACCOUNT_KEY",
      "production:PULUMI_ACCESS_TOKEN",
      "repository:CODECOV_TOKEN",
      "staging:PULUMI_ACCESS_TOKEN",
    ]);
  });
});
