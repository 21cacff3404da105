// biome-ignore-all lint/suspicious/noTemplateCurlyInString: compose interpolation (${VAR}) in expected YAML values
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import {
  PEER_SCRIPT,
  type PeerProject,
  peerComposeFile,
  peerDeployCommand,
  peerNginxConf,
  peerSteps,
} from "../../bench/deploy/peer";

const README = path.join(path.dirname(PEER_SCRIPT), "README.md");
const LICENSE = path.join(path.dirname(PEER_SCRIPT), "LICENSE");

const project: PeerProject = {
  dir: "/home/deploy/clicky-bench-peer",
  project: "clickybenchpeer",
  port: 41234,
  images: {
    backend: "127.0.0.1:5000/clicky/backend",
    postgres: "127.0.0.1:5000/clicky-bench/postgres:16",
    redis: "127.0.0.1:5000/clicky-bench/redis:7",
    proxy: "clicky-e2e/proxy:1",
  },
  healthTimeoutSeconds: 20,
};

describe("the bench's peer (docker-rollout)", () => {
  test("is vendored unmodified: its sha256 is the one its README records, and it runs", () => {
    const sha = createHash("sha256").update(readFileSync(PEER_SCRIPT)).digest("hex");
    assert.match(
      readFileSync(README, "utf8"),
      new RegExp(`sha256 of \`docker-rollout\`: \`${sha}\``),
    );
    assert.equal(statSync(PEER_SCRIPT).mode & 0o111, 0o111, "executable");
    const version = execFileSync("sh", [PEER_SCRIPT, "rollout", "--version"], { encoding: "utf8" });
    assert.match(version, /^docker-rollout version v0\.13$/m);
  });

  test("comes with its MIT licence", () => {
    const text = readFileSync(LICENSE, "utf8");
    assert.match(text, /Copyright \(c\) 2023 Karol Musur/);
    assert.match(text, /Permission is hereby granted, free of charge/);
    assert.match(readFileSync(README, "utf8"), /MIT licence/);
  });

  test("its project meets docker-rollout's requirements: the app unpublished and unnamed, a proxy in front", () => {
    const doc = parse(peerComposeFile(project)) as {
      services: Record<string, Record<string, unknown>>;
    };
    assert.deepEqual(Object.keys(doc.services).sort(), ["fastapi", "postgres", "proxy", "redis"]);
    const app = doc.services.fastapi ?? {};
    assert.equal(app.ports, undefined);
    assert.equal(app.container_name, undefined);
    assert.equal(app.image, "127.0.0.1:5000/clicky/backend:${CLICKY_VERSION:?}");
    assert.deepEqual(doc.services.proxy?.ports, ["127.0.0.1:41234:80"]);
    assert.match(peerNginxConf(), /resolver 127\.0\.0\.11 valid=1s/);
    assert.match(peerNginxConf(), /proxy_pass \$app;/);
  });

  test("its deploy is the README's: pull, then docker rollout with the stack's health timeout", () => {
    const script = peerDeployCommand(project, "v2");
    assert.match(script, /sed -i 's\/\^CLICKY_VERSION=\.\*\/CLICKY_VERSION=v2\/' \.env/);
    assert.ok(script.indexOf("compose pull --quiet fastapi") < script.indexOf("docker rollout"));
    assert.match(script, /^docker rollout --timeout 20 fastapi$/m);
    execFileSync("bash", ["-n"], { input: script });
    execFileSync("shellcheck", ["-s", "bash", "-"], { input: script });
  });

  test("its steps come from its marks: the pull, then docker-rollout to its exit", () => {
    assert.deepEqual(
      peerSteps(
        "bench-mark start 100.0\n==> Scaling\nbench-mark pull 100.5\nbench-mark finished 112.5\n",
      ),
      { pull: 0.5, rollout: 12 },
    );
    assert.deepEqual(peerSteps("bench-mark start 100.0\nbench-mark pull 100.5\n"), { pull: 0.5 });
  });
});
