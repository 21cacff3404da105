import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { buildRunCommand, deployRunArgs, deployScriptPath } from "../../src/deploy/run-command";
import { RUN_ARGUMENTS } from "../../src/deploy/script";
import { parseDeploy } from "../support/deploy-config";

const digest = `sha256:${"a".repeat(64)}`;

function args(patch: Record<string, unknown> = {}) {
  return deployRunArgs(
    parseDeploy({
      hosts: [{ name: "web-1", host: "web-1.example.org" }],
      image: { repository: "ghcr.io/o/r/backend", tag: "v1.2.3" },
      ...patch,
    }),
  );
}

describe("the run's arguments", () => {
  test("name the image by tag when no digest is known", () => {
    assert.deepEqual(args(), {
      image: "ghcr.io/o/r/backend:v1.2.3",
      tag: "v1.2.3",
      registry: "ghcr.io",
      migrate: true,
    });
  });

  test("a digest pins the image; the tag stays as its name", () => {
    const pinned = args({ image: { repository: "ghcr.io/o/r/backend", tag: "v2", digest } });
    assert.equal(pinned.image, `ghcr.io/o/r/backend@${digest}`);
    assert.equal(pinned.tag, "v2");
  });

  test("the registry is the configured one, else the image's", () => {
    assert.equal(
      args({ registry: "registry.example.org:5000" }).registry,
      "registry.example.org:5000",
    );
    assert.equal(args({ image: { repository: "library/nginx", tag: "1" } }).registry, "docker.io");
  });

  test("migrate: false switches the migration off", () => {
    assert.equal(args({ migrate: false }).migrate, false);
  });
});

describe("the run command's line", () => {
  const path = "/opt/clicky-foundation/releases/0123456789ab/deploy-0123456789abcdef.sh";

  test("runs the copied script with bash and one name=value word per argument", () => {
    assert.equal(
      buildRunCommand(path, {
        image: `ghcr.io/o/r/backend@${digest}`,
        tag: "v2",
        registry: "ghcr.io",
        migrate: false,
      }),
      `exec bash ${path} image=ghcr.io/o/r/backend@${digest} tag=v2 registry=ghcr.io migrate=0`,
    );
  });

  test("passes the arguments in the order and with the names the script reads", () => {
    const line = buildRunCommand(path, args());
    assert.deepEqual(
      line
        .split(" ")
        .slice(3)
        .map((word) => word.slice(0, word.indexOf("="))),
      [...RUN_ARGUMENTS],
    );
  });

  test("quotes what a shell would split, so any app directory works", () => {
    const odd = "/srv/my app/releases/r/deploy-h.sh";
    const line = buildRunCommand(odd, args());
    const seen = spawnSync("bash", ["-c", line.replace(/^exec bash /, "printf '%s\\n' ")], {
      encoding: "utf8",
    });
    assert.deepEqual(seen.stdout.trimEnd().split("\n"), [
      odd,
      "image=ghcr.io/o/r/backend:v1.2.3",
      "tag=v1.2.3",
      "registry=ghcr.io",
      "migrate=1",
    ]);
  });

  test("is short: the provider quotes it in every error", () => {
    const line = buildRunCommand(
      path,
      args({ image: { repository: "ghcr.io/o/r/backend", tag: "v2", digest } }),
    );
    assert.ok(line.length < 250, `${line.length} characters`);
  });
});

describe("where the script goes", () => {
  test("into the release directory, named by its content", () => {
    const a = deployScriptPath("/opt/app/releases/r1", "echo a\n");
    assert.match(a, /^\/opt\/app\/releases\/r1\/deploy-[0-9a-f]{16}\.sh$/);
    assert.equal(deployScriptPath("/opt/app/releases/r1", "echo a\n"), a);
    assert.notEqual(deployScriptPath("/opt/app/releases/r1", "echo b\n"), a);
  });
});
