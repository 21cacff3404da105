// biome-ignore-all lint/suspicious/noTemplateCurlyInString: compose interpolation (${VAR}) in expected YAML values
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import {
  cleanupPeer,
  PEER_HEALTH_TIMEOUT_SECONDS,
  PEER_SCRIPT,
  type PeerProject,
  peerComposeFile,
  peerDeployCommand,
  peerEnv,
  peerNginxConf,
  peerSteps,
  setUpPeer,
} from "../../bench/deploy/peer";
import {
  composeContainers,
  ensureHarness,
  freePort,
  type Harness,
  harnessAvailability,
  harnessInstance,
  httpGet,
  runOverSsh,
} from "../harness";

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
    const script = peerDeployCommand({ ...project, healthTimeoutSeconds: 7 }, "v2");
    assert.match(script, /sed -i 's\/\^CLICKY_VERSION=\.\*\/CLICKY_VERSION=v2\/' \.env/);
    assert.ok(script.indexOf("compose pull --quiet fastapi") < script.indexOf("docker rollout"));
    assert.match(script, /^docker rollout --timeout 7 fastapi \|\| code=\$\?$/m);
    assert.ok(script.endsWith('mark finished\nexit "$code"\n'), "exits with docker-rollout's code");
    execFileSync("bash", ["-n"], { input: script });
    execFileSync("shellcheck", ["-s", "bash", "-"], { input: script });
  });

  test("its health timeout is our stack's unless the project names one", () => {
    assert.equal(PEER_HEALTH_TIMEOUT_SECONDS, 20);
    assert.match(peerDeployCommand(project, "v3"), /^docker rollout --timeout 20 fastapi /m);
  });

  test("refuses a version that is not an image tag, quoting it", () => {
    for (const bad of ["", "v2; rm -rf ~", "v2/x", "-v2", "v 2"]) {
      assert.throws(
        () => peerDeployCommand(project, bad),
        (err: Error) => err.message.startsWith(`Invalid version "${bad}"`),
      );
    }
    assert.throws(() => peerEnv(project, "v2\nJWT_SECRET_KEY=x"), /Invalid version/);
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

/**
 * What answered `url` while a deploy ran: one GET after the other (each up to 2 s, 100 ms
 * apart), counted by `<status> <X-App-Version>`, or by the error of a request that got none.
 */
function sampleAnswers(url: string): { stop(): Promise<Record<string, number>> } {
  const seen: Record<string, number> = {};
  let running = true;
  const loop = (async () => {
    while (running) {
      let key: string;
      try {
        const a = await httpGet(url, 2000);
        key = `${a.status} ${a.headers["x-app-version"] ?? "-"}`;
      } catch (err) {
        key = `error ${(err as Error).message}`;
      }
      seen[key] = (seen[key] ?? 0) + 1;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return seen;
    },
  };
}

const live = process.env.CLICKY_BENCH_PEER === "1";

describe("the bench's peer on the harness: docker-rollout deploys for real (CLICKY_BENCH_PEER=1)", {
  skip: live ? false : "set CLICKY_BENCH_PEER=1 to run docker-rollout on the e2e harness",
}, () => {
  let h: Harness | undefined;
  let p: PeerProject;
  const url = (route: string) => `http://127.0.0.1:${p.port}${route}`;
  const notes: string[] = [];

  async function deploy(version: string) {
    const sampler = sampleAnswers(url("/version"));
    const started = Date.now();
    const at = () => ((Date.now() - started) / 1000).toFixed(1);
    // docker-rollout's progress lines, with when they arrived: its steps' durations.
    const progress: string[] = [];
    const r = await runOverSsh(h as Harness, peerDeployCommand(p, version), {
      timeoutMs: 5 * 60_000,
      onOutput: (chunk) => {
        for (const line of chunk.split("\n").filter((l) => l.startsWith("==> "))) {
          progress.push(`${at()} s ${line.slice(4)}`);
        }
      },
    });
    const seconds = at();
    const answers = await sampler.stop();
    notes.push(
      `${version}: exit ${r.code} after ${seconds} s, steps ${JSON.stringify(peerSteps(r.stdout))}, /version answers ${JSON.stringify(answers)}`,
      ...progress.map((line) => `  ${line}`),
    );
    return { ...r, answers };
  }

  before(
    async () => {
      const availability = harnessAvailability();
      if (!availability.ok) {
        throw new Error(
          `CLICKY_BENCH_PEER=1 but the harness cannot run here: ${availability.reason}`,
        );
      }
      h = await ensureHarness();
      p = {
        dir: `/home/deploy/clicky-peer-test-${harnessInstance()}`,
        project: `clickypeertest${harnessInstance()}`,
        port: await freePort(),
        images: {
          backend: h.images.backend.repository,
          postgres: h.images.postgres,
          redis: h.images.redis,
          proxy: h.images.proxy,
        },
      };
      await setUpPeer(h, p, "v1");
      const health = await httpGet(url("/health"));
      assert.equal(health.headers["x-app-version"], "v1");
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    console.log(`# the peer on the harness:\n${notes.map((n) => `#   ${n}`).join("\n")}`);
    if (h && p) await cleanupPeer(h, p);
  });

  test("deploys v2: exits 0, v2 answers through the proxy, one new app container left", async () => {
    const old = await composeContainers(p.project, "fastapi");
    const r = await deploy("v2");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const health = await httpGet(url("/health"));
    assert.equal(health.status, 200);
    assert.equal(health.headers["x-app-version"], "v2");
    const now = await composeContainers(p.project, "fastapi");
    assert.equal(now.length, 1, now.join(" "));
    assert.ok(!old.includes(now[0] ?? ""), `${now[0]} is a new container`);
  });

  test("deploys v3, never healthy: exits 1 after its timeout, removes the new container, v2 still serves", async () => {
    const old = await composeContainers(p.project, "fastapi");
    const r = await deploy("v3");
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /New containers are not healthy\. Rolling back\./);
    assert.deepEqual(await composeContainers(p.project, "fastapi"), old);
    const health = await httpGet(url("/health"));
    assert.equal(health.status, 200);
    assert.equal(health.headers["x-app-version"], "v2");
  });
});
