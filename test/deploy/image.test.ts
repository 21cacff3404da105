import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { deployConfigSchema } from "../../src/config/deploy";
import { StackConfigError } from "../../src/config/load";
import { type DeployedImage, type ImageSources, resolveImage } from "../../src/deploy/image";
import { ED25519 as HOST_KEY } from "../support/keys";
import { settle } from "../support/lifecycle";
import { committedDeploy, ofType, runProgram } from "../support/program";
import { STORE_SECRETS } from "../support/secrets";

const REPOSITORY = "ghcr.io/clicky-foundation/clicky-foundation/backend";
const DIGEST_A = `sha256:${"a".repeat(64)}`;
const DIGEST_B = `sha256:${"b".repeat(64)}`;
const ctx = { stack: "production", file: "Pulumi.production.yaml" };

function deploy(image: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return deployConfigSchema.parse({
    hosts: [{ name: "web-1", host: "web-1.example.org" }],
    image: { repository: REPOSITORY, ...image },
    ...extra,
  });
}

/** Sources that record what was asked. */
function sources(last: DeployedImage | undefined) {
  const asked: string[] = [];
  const s: ImageSources = {
    lastDeployed: async () => {
      asked.push("last-deployed");
      return last;
    },
    digestOf: async (repository, tag) => {
      asked.push(`digest ${repository}:${tag}`);
      return DIGEST_B;
    },
  };
  return { s, asked };
}

describe("the image of a run", () => {
  test("a tag in config is resolved to its registry digest, and the stack's history is not read", async () => {
    const { s, asked } = sources({ repository: REPOSITORY, tag: "old", digest: DIGEST_A });
    const resolved = await resolveImage(deploy({ tag: "3f2a1bc" }), s, ctx);
    assert.deepEqual(resolved.image, { repository: REPOSITORY, tag: "3f2a1bc", digest: DIGEST_B });
    assert.equal(resolved.tagFrom, "config");
    assert.equal(resolved.digestFrom, "registry");
    assert.deepEqual(asked, [`digest ${REPOSITORY}:3f2a1bc`]);
  });

  test("a digest given with the tag is used as is, nothing is looked up", async () => {
    const { s, asked } = sources(undefined);
    const resolved = await resolveImage(deploy({ tag: "v1.4.0", digest: DIGEST_A }), s, ctx);
    assert.equal(resolved.image.digest, DIGEST_A);
    assert.equal(resolved.digestFrom, "config");
    assert.deepEqual(asked, []);
  });

  test("without a tag, the run keeps the image (and migration choice) the stack last deployed", async () => {
    const { s } = sources({
      repository: REPOSITORY,
      tag: "v1.3.9",
      digest: DIGEST_A,
      migrate: false,
    });
    const resolved = await resolveImage(deploy({}), s, ctx);
    assert.deepEqual(resolved.image, { repository: REPOSITORY, tag: "v1.3.9", digest: DIGEST_A });
    assert.equal(resolved.migrate, false);
    assert.equal(resolved.tagFrom, "last-deploy");
  });

  test("without a tag on a stack that never deployed, it stops and says how to name one", async () => {
    const { s } = sources(undefined);
    await assert.rejects(resolveImage(deploy({}), s, ctx), (err: unknown) => {
      assert.ok(err instanceof StackConfigError);
      assert.match(
        err.message,
        /^Pulumi\.production\.yaml: clicky-delivery:deploy\.image\.tag: is not set, and stack production has never deployed an image\. .*`pulumi config set --path deploy\.image\.tag <tag> --stack production`/,
      );
      return true;
    });
  });

  test("without a tag after the repository changed, it refuses to guess", async () => {
    const { s } = sources({ repository: "ghcr.io/old/backend", tag: "v1", digest: DIGEST_A });
    await assert.rejects(
      resolveImage(deploy({}), s, ctx),
      /repository changed from ghcr\.io\/old\/backend/,
    );
  });

  test("a digest without its tag is refused", async () => {
    const { s } = sources(undefined);
    await assert.rejects(
      resolveImage(deploy({ digest: DIGEST_A }), s, ctx),
      /deploy\.image\.digest: is set without clicky-delivery:deploy\.image\.tag/,
    );
  });
});

describe("the program, as pulumi up runs it", () => {
  const secrets = {
    pulumiAccessToken: "t",
    pulumiDriftToken: "d",
    expoToken: "e",
    ...STORE_SECRETS,
    sshPrivateKey: "k",
    postgresPassword: "p",
    jwtSecretKey: "j",
  };

  test("reads the stack's own last deployedImage output when no tag is set, and records it again", async () => {
    const last = { repository: REPOSITORY, tag: "v1.3.9", digest: DIGEST_A, migrate: true };
    const run = await runProgram({
      stack: "production",
      mode: "up",
      secrets,
      overrides: committedDeploy("production"),
      stackOutputs: { "organization/clicky-delivery/production": { deployedImage: last } },
    });
    assert.equal(run.error, undefined, String(run.error));
    const refs = ofType(run, "pulumi:pulumi:StackReference");
    assert.deepEqual(
      refs.map((r) => r.inputs.name),
      ["organization/clicky-delivery/production"],
    );
    assert.deepEqual((await settle(run.result)).deployedImage, last);
    const script = String(
      ofType(run, "command:remote:Command").find((c) => c.name.endsWith("-run"))?.inputs.create,
    );
    assert.ok(script.includes(`${REPOSITORY}@${DIGEST_A}`), "the host pulls by digest");
    assert.deepEqual(run.calls, [
      { token: "github:index/getUser:getUser", args: { username: "clicky-release-lead" } },
      {
        token: "github:index/getTeam:getTeam",
        args: { slug: "release-managers", summaryOnly: true },
      },
    ]);
  });

  test("looks up the digest of a tag set for the run, and deploys by that digest", async () => {
    const run = await runProgram({
      stack: "production",
      mode: "up",
      secrets,
      overrides: {
        deploy: {
          hosts: [{ name: "prod-1", host: "api.example.org", hostKey: HOST_KEY }],
          image: { repository: REPOSITORY, tag: "3f2a1bc" },
        },
      },
    });
    assert.equal(run.error, undefined, String(run.error));
    const lookup = run.calls.find(
      (c) => c.token === "docker:index/getRegistryImage:getRegistryImage",
    );
    assert.deepEqual(lookup?.args, { name: `${REPOSITORY}:3f2a1bc` });
    // The stack's own outputs are still read, for the secrets' record (github/secret-drift.ts),
    // but the image comes from the tag.
    const recorded = (await settle(run.result)).deployedImage as { tag: string; digest: string };
    assert.equal(recorded?.tag, "3f2a1bc");
    assert.equal(recorded?.digest, `lookup:digest/${REPOSITORY}:3f2a1bc`);
  });

  test("stops before deploying anything on a stack that never deployed and names no tag", async () => {
    const run = await runProgram({
      stack: "production",
      mode: "up",
      secrets,
      overrides: committedDeploy("production"),
      stackOutputs: {},
    });
    assert.ok(run.error instanceof StackConfigError, String(run.error));
    assert.deepEqual(
      run.resources.map((r) => r.type),
      ["pulumi:pulumi:StackReference"],
      "only the read of its own outputs; no managed resource",
    );
  });
});
