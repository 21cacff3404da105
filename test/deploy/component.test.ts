import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { hostKeyProblems } from "../../src/config/host-keys";
import { buildRelease, contentHash } from "../../src/deploy/compose";
import { buildPrepareScript } from "../../src/deploy/prepare";
import { buildRunCommand, deployRunArgs, deployScriptPath } from "../../src/deploy/run-command";
import { buildDeployScript } from "../../src/deploy/script";
import type { MockRun, RecordedResource } from "../../src/synth/engine";
import { COMMAND_TYPE, COPY_TYPE, dotenvKeys } from "../../src/synth/outputs";
import { isSecret, redact, reveal } from "../../src/synth/wire";
import { parseDeploy } from "../support/deploy-config";
import { ED25519 } from "../support/keys";
import { runProgram } from "../support/program";
import { TEST_SECRETS } from "../support/render";
import { assertNoSecret, STORE_SECRETS } from "../support/secrets";

const deploy = {
  appDir: "/srv/clicky",
  hosts: [{ name: "web-1", host: "web-1.example.org", port: 2201, user: "ops", hostKey: ED25519 }],
  image: { repository: "ghcr.io/o/r/backend", tag: "v7" },
};

function named(run: MockRun<unknown>, type: string, name: string): RecordedResource {
  const found = run.resources.find((r) => r.type === type && r.name === name);
  assert.ok(found, `${type} ${name} was registered`);
  return found;
}

/**
 * The deploy section as the program deploys it: the tag names no digest, so the program looks
 * it up in the registry (under mocks the lookup answers with a marker naming the reference).
 */
function resolvedDeploy() {
  const parsed = parseDeploy(deploy);
  const { repository, tag } = parsed.image;
  return { ...parsed, image: { repository, tag, digest: `lookup:digest/${repository}:${tag}` } };
}

describe("the deploy of a stack with one host", () => {
  let run: MockRun<unknown>;
  const options = (name: string) => run.resources.find((r) => r.name === name && r.custom)?.options;
  before(async () => {
    run = await runProgram({
      stack: "staging",
      overrides: { deploy },
      secrets: TEST_SECRETS,
      mode: "synth",
    });
    assert.equal(run.error, undefined);
  });

  test("registers per host a component with prepare, four copies and the run command", () => {
    for (const host of ["web-1"]) {
      const name = `deploy-${host}`;
      named(run, "clicky:deploy:RemoteDeploy", name);
      const children = run.resources
        .filter((r) => r.parent === name)
        .map((r) => `${r.type} ${r.name}`);
      assert.deepEqual(children, [
        `${COMMAND_TYPE} ${name}-prepare`,
        `${COPY_TYPE} ${name}-docker-compose-yml`,
        `${COPY_TYPE} ${name}-site-conf`,
        `${COPY_TYPE} ${name}-routing-js`,
        `${COPY_TYPE} ${name}-deploy-script`,
        `${COMMAND_TYPE} ${name}-run`,
      ]);
    }
  });

  test("connects with the configured host, port, user and pinned host key; the connection is secret", () => {
    const wire = named(run, COMMAND_TYPE, "deploy-web-1-run").inputs.connection;
    assert.ok(isSecret(wire), "the command SDK keeps the whole connection secret");
    const connection = reveal(wire) as Record<string, unknown>;
    assert.equal(connection.host, "web-1.example.org");
    assert.equal(connection.port, 2201);
    assert.equal(connection.user, "ops");
    assert.equal(connection.hostKey, ED25519);
    assert.equal(connection.privateKey, TEST_SECRETS.sshPrivateKey);
  });

  test("uses port 22 and user deploy by default, and no host key when none is configured", async () => {
    const defaults = await runProgram({
      stack: "staging",
      overrides: { deploy: { ...deploy, hosts: [{ name: "web-2", host: "10.1.2.3" }] } },
      secrets: TEST_SECRETS,
      mode: "synth",
    });
    assert.equal(defaults.error, undefined);
    const connection = reveal(
      named(defaults, COMMAND_TYPE, "deploy-web-2-prepare").inputs.connection,
    ) as Record<string, unknown>;
    assert.equal(connection.port, 22);
    assert.equal(connection.user, "deploy");
    assert.equal(connection.hostKey, undefined);
  });

  test("every command and copy of a host shares one connection", () => {
    const connections = run.resources
      .filter((r) => r.parent === "deploy-web-1")
      .map((r) => JSON.stringify(reveal(r.inputs.connection)));
    assert.equal(new Set(connections).size, 1);
  });

  /** The release and the deploy script the program builds for the first host. */
  function firstHostScript() {
    const parsed = resolvedDeploy();
    const host = parsed.hosts[0];
    assert.ok(host);
    const release = buildRelease("staging", parsed);
    const script = buildDeployScript({
      stack: "staging",
      host,
      deploy: parsed,
      release,
    });
    return { parsed, release, script };
  }

  test("copies the deploy script into the release directory, named by its content", () => {
    const { release, script } = firstHostScript();
    const copy = named(run, COPY_TYPE, "deploy-web-1-deploy-script");
    assert.deepEqual(redact(copy.inputs.source), { asset: "string", text: script });
    assert.equal(copy.inputs.remotePath, deployScriptPath(release.dir, script));
    assert.match(
      String(copy.inputs.remotePath),
      /^\/srv\/clicky\/releases\/[0-9a-f]{12}\/deploy-[0-9a-f]{16}\.sh$/,
    );
    assert.deepEqual(copy.inputs.triggers, [contentHash([script]).slice(0, 16)]);
  });

  test("the run command's create is one line that runs the copied script with this run's image", () => {
    const { parsed, release, script } = firstHostScript();
    const create = String(named(run, COMMAND_TYPE, "deploy-web-1-run").inputs.create);
    assert.equal(
      create,
      buildRunCommand(deployScriptPath(release.dir, script), deployRunArgs(parsed)),
    );
    assert.equal(
      create,
      `exec bash ${deployScriptPath(release.dir, script)} image=ghcr.io/o/r/backend@lookup:digest/ghcr.io/o/r/backend:v7 tag=v7 registry=ghcr.io migrate=1`,
    );
    assert.equal(
      named(run, COMMAND_TYPE, "deploy-web-1-prepare").inputs.create,
      buildPrepareScript("/srv/clicky", release.dir),
    );
  });

  test("every command's create is short and holds no secret; no copy holds one either", () => {
    const commands = run.resources.filter((r) => r.type === COMMAND_TYPE);
    assert.equal(commands.length, 2);
    const secrets = [TEST_SECRETS.postgresPassword, TEST_SECRETS.jwtSecretKey, "not-a-real-key"];
    for (const r of commands) {
      const create = String(r.inputs.create);
      assert.ok(!isSecret(r.inputs.create), `${r.name}: create is a plain string`);
      // The provider quotes `create` in its error; the prepare script is a dozen short lines.
      const limit = r.name.endsWith("-run") ? 300 : 1200;
      assert.ok(create.length < limit, `${r.name}: create is ${create.length} characters`);
      if (r.name.endsWith("-run")) assert.doesNotMatch(create, /\n/, `${r.name}: one line`);
      assertNoSecret(
        create,
        secrets.map((value, i) => ({ name: `test secret ${i}`, value })),
        `${r.name}'s create`,
      );
    }
    for (const r of run.resources.filter((x) => x.type === COPY_TYPE)) {
      assertNoSecret(
        JSON.stringify(redact(r.inputs.source) ?? ""),
        secrets.map((value, i) => ({ name: `test secret ${i}`, value })),
        `${r.name}'s file`,
      );
    }
  });

  test("copies the release files into the release directory as plain text assets", () => {
    const release = buildRelease("staging", resolvedDeploy());
    const copy = named(run, COPY_TYPE, "deploy-web-1-docker-compose-yml");
    assert.equal(copy.inputs.remotePath, `${release.dir}/docker-compose.yml`);
    assert.deepEqual(redact(copy.inputs.source), {
      asset: "string",
      text: release.files.get("docker-compose.yml"),
    });
  });

  test("sends the secrets on stdin as dotenv lines, the stdin itself secret", () => {
    const stdin = named(run, COMMAND_TYPE, "deploy-web-1-run").inputs.stdin;
    assert.ok(isSecret(stdin));
    const text = String(reveal(stdin));
    assert.deepEqual(dotenvKeys(text), ["POSTGRES_PASSWORD", "DATABASE_URL", "JWT_SECRET_KEY"]);
    assert.ok(text.includes(`JWT_SECRET_KEY=${TEST_SECRETS.jwtSecretKey}\n`));
  });

  test("reruns on a change of image, release, script or env; the env's hash stays secret", () => {
    const runCommand = named(run, COMMAND_TYPE, "deploy-web-1-run");
    const triggers = runCommand.inputs.triggers as unknown[];
    assert.equal(triggers.length, 4);
    assert.equal(triggers[0], "ghcr.io/o/r/backend@lookup:digest/ghcr.io/o/r/backend:v7");
    const release = buildRelease("staging", resolvedDeploy());
    assert.equal(triggers[1], `release:${release.id}`);
    const script = redact(named(run, COPY_TYPE, "deploy-web-1-deploy-script").inputs.source) as {
      text: string;
    };
    assert.equal(triggers[2], `script:${contentHash([script.text]).slice(0, 16)}`);
    assert.ok(isSecret(triggers[3]));
    assert.match(String(reveal(triggers[3])), /^env:[0-9a-f]{16}$/);
  });

  test("has no delete command, so replacing or destroying it never stops the app", () => {
    for (const r of run.resources.filter((x) => x.type === COMMAND_TYPE)) {
      assert.equal(r.inputs.delete, undefined, r.name);
      assert.equal(r.inputs.update, undefined, r.name);
      assert.equal(options(r.name)?.deleteBeforeReplace, false, r.name);
    }
  });

  test("marks the run command's stdout and stderr secret", () => {
    const secretOutputs = options("deploy-web-1-run")?.additionalSecretOutputs ?? [];
    assert.ok(
      secretOutputs.includes("stdout") && secretOutputs.includes("stderr"),
      String(secretOutputs),
    );
  });

  test("copies after prepare, runs after the copies", () => {
    assert.deepEqual(options("deploy-web-1-prepare")?.dependsOn, []);
    assert.deepEqual(options("deploy-web-1-docker-compose-yml")?.dependsOn, [
      "deploy-web-1-prepare",
    ]);
    assert.deepEqual(options("deploy-web-1-site-conf")?.dependsOn, ["deploy-web-1-prepare"]);
    assert.deepEqual(options("deploy-web-1-routing-js")?.dependsOn, ["deploy-web-1-prepare"]);
    assert.deepEqual(options("deploy-web-1-deploy-script")?.dependsOn, ["deploy-web-1-prepare"]);
    assert.deepEqual([...(options("deploy-web-1-run")?.dependsOn ?? [])].sort(), [
      "deploy-web-1-deploy-script",
      "deploy-web-1-docker-compose-yml",
      "deploy-web-1-routing-js",
      "deploy-web-1-site-conf",
    ]);
  });
});

describe("what makes a deploy run again", () => {
  async function triggersOf(patch: { deploy?: unknown; secrets?: Record<string, string> }) {
    const run = await runProgram({
      stack: "staging",
      overrides: { deploy: patch.deploy ?? deploy },
      secrets: { ...TEST_SECRETS, ...patch.secrets },
      mode: "synth",
    });
    const r = named(run, COMMAND_TYPE, "deploy-web-1-run");
    const copy = named(run, COPY_TYPE, "deploy-web-1-deploy-script");
    return {
      triggers: (r.inputs.triggers as unknown[]).map((t) => String(reveal(t))),
      create: r.inputs.create,
      /** What the engine compares for the script's copy. */
      scriptCopy: { remotePath: copy.inputs.remotePath, source: redact(copy.inputs.source) },
    };
  }

  test("nothing, when nothing changed: same triggers and the same script", async () => {
    const a = await triggersOf({});
    const b = await triggersOf({});
    assert.deepEqual(a, b);
  });

  test("a new image tag", async () => {
    const a = await triggersOf({});
    const b = await triggersOf({ deploy: { ...deploy, image: { ...deploy.image, tag: "v8" } } });
    assert.notEqual(a.triggers[0], b.triggers[0]);
    assert.equal(a.triggers[1], b.triggers[1], "the compose files did not change");
    assert.notEqual(a.create, b.create);
  });

  test("a new image changes the run's line only: the copied script stays, so a failed deploy's copy is no change later", async () => {
    const a = await triggersOf({});
    const b = await triggersOf({
      deploy: {
        ...deploy,
        image: { ...deploy.image, tag: "v8", digest: `sha256:${"8".repeat(64)}` },
        migrate: false,
      },
    });
    assert.deepEqual(a.scriptCopy, b.scriptCopy);
    assert.equal(a.triggers[2], b.triggers[2]);
    assert.match(String(b.create), / migrate=0$/);
  });

  test("a rotated secret, without showing it", async () => {
    const a = await triggersOf({});
    const b = await triggersOf({ secrets: { jwtSecretKey: "rotated" } });
    assert.deepEqual(a.triggers.slice(0, 3), b.triggers.slice(0, 3));
    assert.notEqual(a.triggers[3], b.triggers[3]);
    assert.ok(!b.triggers[3]?.includes("rotated"));
  });

  test("a compose setting", async () => {
    const a = await triggersOf({});
    const b = await triggersOf({ deploy: { ...deploy, stopTimeoutSeconds: 45 } });
    assert.notEqual(a.triggers[1], b.triggers[1]);
  });
});

describe("host keys", () => {
  /** What `pulumi up` of production needs set besides the deploy's secrets. */
  const UP_SECRETS = {
    ...TEST_SECRETS,
    pulumiAccessToken: "t",
    pulumiDriftToken: "d",
    expoToken: "e",
    ...STORE_SECRETS,
  };

  test("production refuses a host without a pinned key, naming the key path and how to get it", async () => {
    const run = await runProgram({
      stack: "production",
      overrides: { deploy: { ...deploy, hosts: [{ name: "prod-1", host: "api.example.org" }] } },
      secrets: UP_SECRETS,
      mode: "up",
    });
    assert.equal(
      (run.error as Error | undefined)?.message,
      "Pulumi.production.yaml: clicky-delivery:deploy.hosts[0].hostKey: required in production (pin it: ssh-keyscan -p 22 -t ed25519 api.example.org, checked against the host's console)",
    );
    assert.deepEqual(run.resources, [], "nothing was registered");
  });

  test("production's committed stack file holds the placeholder, which is never pinned", async () => {
    const run = await runProgram({ stack: "production", secrets: TEST_SECRETS, mode: "synth" });
    const commands = run.resources.filter((r) => r.type === COMMAND_TYPE || r.type === COPY_TYPE);
    assert.ok(commands.length > 0);
    for (const r of commands) {
      const hostKey = (reveal(r.inputs.connection) as Record<string, unknown>).hostKey;
      assert.equal(hostKey, undefined, r.name);
    }
  });

  test("pulumi up of production refuses the placeholder host key before registering anything", async () => {
    const run = await runProgram({ stack: "production", secrets: UP_SECRETS, mode: "up" });
    assert.match(
      String((run.error as Error | undefined)?.message),
      /^Pulumi\.production\.yaml: clicky-delivery:deploy\.hosts\[0\]\.hostKey: required in production, and the line there is the all-zero placeholder/,
    );
    assert.deepEqual(
      run.resources.filter((r) => r.type !== "pulumi:pulumi:StackReference"),
      [],
    );
  });

  test("a pinned production host key is pinned on every command", async () => {
    const run = await runProgram({
      stack: "production",
      secrets: UP_SECRETS,
      mode: "up",
      overrides: { deploy: { ...deploy, hosts: [{ ...deploy.hosts[0], hostKey: ED25519 }] } },
    });
    assert.equal(run.error, undefined, String(run.error));
    const commands = run.resources.filter((r) => r.type === COMMAND_TYPE || r.type === COPY_TYPE);
    for (const r of commands) {
      assert.equal((reveal(r.inputs.connection) as Record<string, unknown>).hostKey, ED25519);
    }
  });

  test("staging warns about an unpinned host and does not fail", () => {
    const policy = hostKeyProblems("staging", [
      { name: "s", host: "staging.example.org", port: 22 },
    ]);
    assert.deepEqual(policy.errors, []);
    assert.deepEqual(policy.warnings, [
      "Pulumi.staging.yaml: clicky-delivery:deploy.hosts[0].hostKey: not set, so the deploy to staging.example.org trusts any server that answers; pin it: ssh-keyscan -p 22 -t ed25519 staging.example.org, checked against the host's console",
    ]);
  });
});

describe("registry credentials", () => {
  test("go to stdin as a pair", async () => {
    const run = await runProgram({
      stack: "staging",
      overrides: { deploy },
      secrets: { ...TEST_SECRETS, registryUsername: "bot", registryToken: "ghp_token" },
      mode: "synth",
    });
    const stdin = String(reveal(named(run, COMMAND_TYPE, "deploy-web-1-run").inputs.stdin));
    assert.deepEqual(dotenvKeys(stdin).slice(-2), ["REGISTRY_USERNAME", "REGISTRY_TOKEN"]);
  });

  test("half a pair stops the program before it registers anything", async () => {
    const run = await runProgram({
      stack: "staging",
      overrides: { deploy },
      secrets: { ...TEST_SECRETS, registryToken: "ghp_token" },
      mode: "synth",
    });
    assert.equal(
      (run.error as Error | undefined)?.message,
      "Pulumi.staging.yaml: clicky-delivery:registryUsername: is not set, but registryToken is; set both or neither",
    );
    assert.deepEqual(run.resources, []);
  });
});
