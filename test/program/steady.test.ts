import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { secretKeySpecs } from "../../src/config/schema";
import { EMPTY_STATE, lifecycleRuns } from "../support/lifecycle";
import { withLogin, withoutStoredTokens } from "../support/program";
import { deployWith, describeSteps, registryAnswers, SECRETS, tagged } from "../support/stacks";

const OIDC_SECRETS = withoutStoredTokens(SECRETS);

for (const stack of ["staging", "production"]) {
  for (const auth of ["tokens", "oidc"] as const) {
    describe(`${stack} (${auth} login): a deploy, then a run with nothing changed`, async () => {
      const login = withLogin(stack, auth);
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
  for (const spec of secretKeySpecs.filter((s) => !s.key.startsWith("registry") && !s.names)) {
    assert.ok(SECRETS[spec.key], spec.key);
  }
});
