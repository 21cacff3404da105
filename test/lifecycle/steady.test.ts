import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { secretKeySpecs } from "../../src/config/schema";
import { EMPTY_STATE, lifecycleRuns } from "../support/lifecycle";
import { committedValues } from "../workflows/support";
import { deployWith, describeSteps, registryAnswers, SECRETS, tagged } from "./support";

/** Every secret but the stored Pulumi tokens, which OIDC login does without. */
const OIDC_SECRETS = Object.fromEntries(
  Object.entries(SECRETS).filter(([k]) => !["pulumiAccessToken", "pulumiDriftToken"].includes(k)),
);

for (const stack of ["staging", "production"]) {
  for (const auth of ["tokens", "oidc"] as const) {
    describe(`${stack} (${auth} login): a deploy, then a run with nothing changed`, async () => {
      const login = {
        deployments: { ...(committedValues(stack).deployments as object), auth },
      };
      const secrets = auth === "oidc" ? OIDC_SECRETS : SECRETS;
      const [first, second] = await lifecycleRuns(EMPTY_STATE, [
        {
          stack,
          mode: "up",
          operation: "up",
          secrets,
          overrides: { ...tagged(stack, "v1"), ...login },
          world: { callResult: registryAnswers },
        },
        {
          stack,
          mode: "up",
          operation: "preview",
          secrets,
          overrides: { ...deployWith(stack, (d) => d), ...login },
        },
      ]);

      test("the first run creates everything without error", () => {
        assert.deepEqual(first.errors, []);
        assert.ok(first.changes.length > 0);
      });

      test("the next run, without a tag, plans nothing (environments, logins, copies, deploy)", () => {
        assert.deepEqual(second.errors, []);
        assert.equal(describeSteps(second.changes), "");
      });
    });
  }
}

test("the secrets fixture covers every required secret key", () => {
  for (const spec of secretKeySpecs.filter((s) => !s.key.startsWith("registry"))) {
    assert.ok(SECRETS[spec.key], spec.key);
  }
});
