import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { StackConfigError } from "../../src/config/load";
import { secretKeySpecs } from "../../src/config/schema";
import { reveal } from "../../src/synth/wire";
import {
  committedDeploy,
  ofType,
  runProgram,
  STORED_PULUMI_TOKEN_KEYS,
  withLogin,
  withoutStoredTokens,
} from "../support/program";

const OIDC_SECRETS = withoutStoredTokens(
  Object.fromEntries(secretKeySpecs.filter((s) => !s.names).map((s) => [s.key, `${s.key}-value`])),
);

function oidc(stack: string) {
  return { ...committedDeploy(stack), ...withLogin(stack, "oidc") };
}

const ISSUER = "pulumiservice:index:OidcIssuer";
const TEAM = "pulumiservice:index:Team";
const PERMISSION = "pulumiservice:index:TeamStackPermission";

describe("OIDC login, production (the approval-gated stack)", async () => {
  const run = await runProgram({
    stack: "production",
    mode: "up",
    secrets: OIDC_SECRETS,
    overrides: oidc("production"),
  });

  test("needs no stored Pulumi token", () => assert.equal(run.error, undefined, String(run.error)));

  test("registers GitHub Actions as an OIDC issuer of the organization", () => {
    const [issuer, ...rest] = ofType(run, ISSUER);
    assert.equal(rest.length, 0);
    assert.equal(issuer?.inputs.url, "https://token.actions.githubusercontent.com");
    assert.equal(issuer?.inputs.organization, "clicky-foundation");
  });

  test("allows each team's token only to jobs of that team's environment in this repository", () => {
    const policies = reveal(ofType(run, ISSUER)[0]?.inputs.policies) as {
      decision: string;
      tokenType: string;
      teamName: string;
      rules: Record<string, string>;
    }[];
    assert.deepEqual(
      policies.map((p) => [p.decision, p.tokenType, p.teamName, p.rules.sub, p.rules.aud]),
      [
        [
          "allow",
          "team",
          "clicky-delivery-staging",
          "repo:clicky-foundation/clicky-foundation:environment:staging",
          "urn:pulumi:org:clicky-foundation",
        ],
        [
          "allow",
          "team",
          "clicky-delivery-production",
          "repo:clicky-foundation/clicky-foundation:environment:production",
          "urn:pulumi:org:clicky-foundation",
        ],
        [
          "allow",
          "team",
          "clicky-delivery-drift",
          "repo:clicky-foundation/clicky-foundation:environment:drift",
          "urn:pulumi:org:clicky-foundation",
        ],
      ],
    );
  });

  test("gives each team the least stack permission: deployers edit their own stack, drift reads both", () => {
    assert.deepEqual(
      ofType(run, TEAM).map((t) => t.inputs.name),
      ["clicky-delivery-staging", "clicky-delivery-production", "clicky-delivery-drift"],
    );
    assert.deepEqual(
      ofType(run, PERMISSION).map((p) => [p.inputs.team, p.inputs.stack, p.inputs.permission]),
      [
        ["clicky-delivery-staging", "staging", 102],
        ["clicky-delivery-production", "production", 102],
        ["clicky-delivery-drift", "staging", 101],
        ["clicky-delivery-drift", "production", 101],
      ],
    );
  });

  test("stores no Pulumi token in GitHub, and keeps the drift environment for the drift job", () => {
    const secrets = ofType(run, "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret");
    assert.deepEqual(
      secrets.map((s) => `${s.inputs.environment}:${s.inputs.secretName}`),
      [
        "production:EXPO_TOKEN",
        "production:ASC_API_KEY_P8",
        "production:ASC_API_KEY_ID",
        "production:ASC_API_KEY_ISSUER_ID",
        "production:GOOGLE_SERVICE_ACCOUNT_KEY",
      ],
    );
    assert.ok(
      ofType(run, "github:index/repositoryEnvironment:RepositoryEnvironment").some(
        (e) => e.inputs.environment === "drift",
      ),
    );
  });
});

describe("OIDC login, staging", async () => {
  const run = await runProgram({
    stack: "staging",
    mode: "up",
    secrets: OIDC_SECRETS,
    overrides: oidc("staging"),
  });
  test("manages no issuer or team: who may update production is not staging's to change", () => {
    assert.equal(run.error, undefined, String(run.error));
    assert.deepEqual(
      [...ofType(run, ISSUER), ...ofType(run, TEAM), ...ofType(run, PERMISSION)],
      [],
    );
  });
});

test("OIDC login does without exactly the stored Pulumi tokens", () => {
  assert.deepEqual(STORED_PULUMI_TOKEN_KEYS, ["pulumiAccessToken", "pulumiDriftToken"]);
});

describe("stored tokens (the default)", async () => {
  const run = await runProgram({
    stack: "production",
    mode: "up",
    secrets: OIDC_SECRETS,
    overrides: committedDeploy("production"),
  });
  test("still need the tokens, and register no issuer", () => {
    assert.ok(run.error instanceof StackConfigError, String(run.error));
    assert.match(run.error.message, /pulumiAccessToken/);
    assert.match(run.error.message, /pulumiDriftToken/);
  });
});
