import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { StackConfigError } from "../../src/config/load";
import { secretKeySpecs } from "../../src/config/schema";
import type { RecordedResource } from "../../src/synth/engine";
import { buildOutputs } from "../../src/synth/outputs";
import { RESOURCE_TYPES } from "../../src/synth/resource-types";
import { isSecret, reveal } from "../../src/synth/wire";
import { byName, committedDeploy, ofType, runProgram } from "../support/program";

const {
  environment: ENV,
  deploymentPolicy: POLICY,
  environmentSecret: ENV_SECRET,
  environmentVariable: ENV_VARIABLE,
  repositorySecret: REPO_SECRET,
} = RESOURCE_TYPES;

/** Distinctive values for every secret key, so a leak anywhere is easy to find. */
const SECRETS: Record<string, string> = Object.fromEntries(
  secretKeySpecs
    .filter((spec) => !spec.names)
    .map((spec) => [spec.key, `${spec.key}-7f3a9c1e-leak-canary`]),
);

function inputs(r: RecordedResource): Record<string, unknown> {
  return r.inputs;
}

describe("production's environment", async () => {
  const run = await runProgram({
    stack: "production",
    mode: "up",
    secrets: SECRETS,
    overrides: committedDeploy("production"),
  });

  test("the program ran without error", () => assert.equal(run.error, undefined));

  test("requires its reviewers, resolved through getUser and getTeam", () => {
    const env = inputs(byName(run, ENV, "production"));
    assert.equal(env.environment, "production");
    assert.deepEqual(env.reviewers, [
      { users: ["lookup:user/clicky-release-lead"], teams: ["lookup:team/release-managers"] },
    ]);
    assert.deepEqual(
      run.calls.map((c) => [c.token, c.args.username ?? c.args.slug]),
      [
        ["github:index/getUser:getUser", "clicky-release-lead"],
        ["github:index/getTeam:getTeam", "release-managers"],
      ],
    );
  });

  test("prevents self-review, lets no admin bypass, and has no wait timer", () => {
    const env = inputs(byName(run, ENV, "production"));
    assert.equal(env.preventSelfReview, true);
    assert.equal(env.canAdminsBypass, false);
    assert.equal(env.waitTimer, 0);
  });

  test("deploys only from main and v*.*.* tags, through custom policies", () => {
    const env = inputs(byName(run, ENV, "production"));
    assert.deepEqual(env.deploymentBranchPolicy, {
      protectedBranches: false,
      customBranchPolicies: true,
    });
    const policies = ofType(run, POLICY).map((p) => ({
      branch: p.inputs.branchPattern,
      tag: p.inputs.tagPattern,
      env: p.inputs.environment,
      parent: p.parent,
    }));
    assert.deepEqual(
      policies.filter((p) => p.env === "production"),
      [
        { branch: "main", tag: undefined, env: "production", parent: "production" },
        { branch: undefined, tag: "v*.*.*", env: "production", parent: "production" },
      ],
    );
  });

  test("holds its Pulumi token, the Expo token and the store keys as environment secrets, kept secret", () => {
    const secrets = ofType(run, ENV_SECRET).filter((s) => s.inputs.environment === "production");
    const expected: [string, keyof typeof SECRETS][] = [
      ["EXPO_TOKEN", "expoToken"],
      ["ASC_API_KEY_P8", "ascApiKeyP8"],
      ["ASC_API_KEY_ID", "ascApiKeyId"],
      ["ASC_API_KEY_ISSUER_ID", "ascApiKeyIssuerId"],
      ["GOOGLE_SERVICE_ACCOUNT_KEY", "googleServiceAccountKey"],
      ["PULUMI_ACCESS_TOKEN", "pulumiAccessToken"],
    ];
    assert.deepEqual(
      secrets.map((s) => s.inputs.secretName),
      expected.map(([name]) => name),
    );
    for (const [i, secret] of secrets.entries()) {
      assert.ok(isSecret(secret.inputs.value), "the value must travel as a secret");
      assert.equal(secret.inputs.plaintextValue, undefined, "the deprecated input is not used");
      const key = expected[i]?.[1] as keyof typeof SECRETS;
      assert.ok(SECRETS[key], key);
      assert.equal(reveal(secret.inputs.value), SECRETS[key]);
    }
  });

  test("manages the drift environment: default branch only, no reviewers, the drift token its one secret", () => {
    const drift = inputs(byName(run, ENV, "drift"));
    assert.deepEqual(drift.reviewers, []);
    assert.deepEqual(drift.deploymentBranchPolicy, {
      protectedBranches: false,
      customBranchPolicies: true,
    });
    assert.deepEqual(
      ofType(run, POLICY)
        .filter((p) => p.inputs.environment === "drift")
        .map((p) => [p.inputs.branchPattern, p.inputs.tagPattern]),
      [["main", undefined]],
    );
    const secrets = ofType(run, ENV_SECRET).filter((s) => s.inputs.environment === "drift");
    assert.deepEqual(
      secrets.map((s) => s.inputs.secretName),
      ["PULUMI_DRIFT_TOKEN"],
    );
    assert.equal(reveal(secrets[0]?.inputs.value), SECRETS.pulumiDriftToken);
  });

  test("has no variables: the URL lives in the stack config, where the jobs read it", () => {
    assert.deepEqual(ofType(run, ENV_VARIABLE), []);
  });

  test("creates no repository-wide secret: staging owns those", () => {
    assert.deepEqual(ofType(run, REPO_SECRET), []);
  });

  test("no secret value appears in anything synth would write", () => {
    const outputs = buildOutputs(run.resources);
    for (const [path, content] of outputs.files) {
      for (const value of Object.values(SECRETS)) {
        assert.ok(!content.includes(value), `${path} contains a secret value`);
      }
    }
  });
});

describe("staging's environment", async () => {
  const run = await runProgram({ stack: "staging", mode: "up", secrets: SECRETS });

  test("has no reviewers and looks nobody up", () => {
    assert.deepEqual(inputs(byName(run, ENV, "staging")).reviewers, []);
    assert.deepEqual(
      run.calls.filter((c) => /getUser|getTeam/.test(c.token)),
      [],
    );
  });

  test("deploys from main only", () => {
    assert.deepEqual(
      ofType(run, POLICY).map((p) => [p.inputs.branchPattern, p.inputs.tagPattern]),
      [["main", undefined]],
    );
  });

  test("owns the repository secrets, each kept secret", () => {
    const secrets = ofType(run, REPO_SECRET);
    assert.deepEqual(
      secrets.map((s) => s.inputs.secretName).sort(),
      ["CODECOV_TOKEN"],
      "only what reaches no deploy: every branch's workflows can read a repository secret",
    );
    for (const s of secrets) {
      assert.ok(isSecret(s.inputs.value), `${String(s.inputs.secretName)} must be secret`);
      assert.equal(s.parent, "repository");
    }
    const codecov = secrets.find((s) => s.inputs.secretName === "CODECOV_TOKEN");
    assert.equal(reveal(codecov?.inputs.value), SECRETS.codecovToken);
  });
});

describe("a missing secret outside synth", async () => {
  const run = await runProgram({
    stack: "production",
    mode: "up",
    secrets: {},
  });

  test("stops the program before any resource is registered", () => {
    assert.ok(run.error instanceof StackConfigError, String(run.error));
    assert.deepEqual(run.resources, []);
  });

  test("says the exact command that sets it", () => {
    const message = (run.error as Error).message;
    assert.match(
      message,
      /^Pulumi\.production\.yaml: 10 required secrets are not set; nothing was changed/,
    );
    for (const key of [
      "expoToken",
      "ascApiKeyP8",
      "ascApiKeyId",
      "ascApiKeyIssuerId",
      "googleServiceAccountKey",
      "pulumiAccessToken",
      "pulumiDriftToken",
      "sshPrivateKey",
      "postgresPassword",
      "jwtSecretKey",
    ]) {
      assert.match(
        message,
        new RegExp(`^  pulumi config set --secret ${key} --stack production {3}# `, "m"),
      );
    }
  });
});

describe("a missing secret under synth", async () => {
  const run = await runProgram({ stack: "staging", mode: "synth" });

  test("becomes a placeholder, still secret, and the program goes on", () => {
    assert.equal(run.error, undefined);
    const token = ofType(run, ENV_SECRET)[0];
    assert.ok(token && isSecret(token.inputs.value));
    assert.equal(reveal(token.inputs.value), "unset:pulumiAccessToken");
  });
});

describe("what a refresh compares (drift)", async () => {
  const run = await runProgram({ stack: "staging", mode: "up", secrets: SECRETS });
  const githubResources = run.resources.filter((r) => r.type.startsWith("github:index/"));

  test("no GitHub resource ignores changes, so drift in any input shows in a preview", () => {
    assert.ok(githubResources.length >= 5);
    for (const r of githubResources) assert.deepEqual(r.options.ignoreChanges, [], r.name);
  });

  test("secrets use the value input, whose drift GitHub's provider detects", () => {
    for (const r of [...ofType(run, REPO_SECRET), ...ofType(run, ENV_SECRET)]) {
      assert.ok(isSecret(r.inputs.value), r.name);
      for (const deprecated of ["plaintextValue", "encryptedValue", "destroyOnDrift"]) {
        assert.equal(r.inputs[deprecated], undefined, `${r.name} uses ${deprecated}`);
      }
    }
  });

  test("every GitHub resource goes through the explicit provider with the configured owner", () => {
    for (const r of githubResources) assert.equal(r.options.provider, "github", r.name);
    const provider = run.resources.find((r) => r.type === "pulumi:providers:github");
    assert.equal(provider?.inputs.owner, "clicky-foundation");
  });

  test("policies, secrets and variables wait for their environment", () => {
    const children = [
      ...ofType(run, POLICY),
      ...ofType(run, ENV_SECRET),
      ...ofType(run, ENV_VARIABLE),
    ];
    for (const r of children) assert.ok(r.options.dependsOn.includes("staging"), r.name);
  });
});

describe("a JSON key file as a secret (the Google service account key)", async () => {
  const key = {
    type: "service_account",
    project_id: "clicky",
    private_key: "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
    client_email: "uploader@clicky.iam.gserviceaccount.com",
  };
  // Set with `pulumi config set --secret googleServiceAccountKey < key.json`, it reaches the
  // program as JSON text, which reads like an object set with --path.
  const run = await runProgram({
    stack: "production",
    mode: "up",
    secrets: { ...SECRETS, googleServiceAccountKey: JSON.stringify(key, null, 2) },
    overrides: committedDeploy("production"),
  });

  test("is accepted, and GitHub gets the same document as JSON text, kept secret", () => {
    assert.equal(run.error, undefined, String(run.error));
    const secret = ofType(run, ENV_SECRET).find(
      (s) => s.inputs.secretName === "GOOGLE_SERVICE_ACCOUNT_KEY",
    );
    assert.ok(secret && isSecret(secret.inputs.value));
    assert.deepEqual(JSON.parse(String(reveal(secret.inputs.value))), key);
  });
});
