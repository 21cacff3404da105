/**
 * Proves the e2e harness works for real before any deploy test relies on it: provisioning,
 * SSH with a pinned host key (and refusal of a wrong one), SFTP, registry auth and pull as the
 * deploy user, a throwaway compose project (PostgreSQL + the v1 app) driven over SSH, the real
 * migrations of every app version, graceful shutdown, and the load generator's counts.
 * Skips with a plain reason where e2e cannot run, except under CI=true, where that fails.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { utils } from "ssh2";
import {
  type CommandResult,
  cleanupProject,
  composeContainers,
  copyOverSsh,
  e2eSkip,
  ensureHarness,
  freePort,
  type Harness,
  harnessAvailability,
  httpGet,
  psqlInContainer,
  runLocal,
  runOverSsh,
  startLoad,
  waitForHttp,
} from ".";

const availability = harnessAvailability();
const skip = e2eSkip("e2e harness");

const PROJECT = `harness-selftest-${process.pid}`;
const APP_DIR = `/home/deploy/${PROJECT}`;

/** Fails with the command's output when it did not exit 0. */
function ok(r: CommandResult, what: string): CommandResult {
  assert.equal(
    r.code,
    0,
    `${what} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
  );
  return r;
}

/** Shell prelude of the remote scripts: a private docker client config, the compose variant. */
const PRELUDE = `set -euo pipefail
cd ${APP_DIR}
export DOCKER_CONFIG=${APP_DIR}/.docker
if docker compose version >/dev/null 2>&1; then compose() { docker compose "$@"; }
else compose() { docker-compose "$@"; }; fi
`;

describe("e2e harness", { skip }, () => {
  let h: Harness;
  let port = 0;

  before(
    async () => {
      if (!availability.ok) {
        throw new Error(`CI=true but e2e cannot run here: ${availability.reason}`);
      }
      h = await ensureHarness();
      port = await freePort();
      await cleanupProject(h, APP_DIR, PROJECT);
    },
    { timeout: 40 * 60_000 },
  );

  after(async () => {
    if (h) await cleanupProject(h, APP_DIR, PROJECT);
  });

  test("runs a script over SSH as deploy, with stdin, exit code and split output", async (t) => {
    const r = await runOverSsh(
      h,
      'set -e; id -un; id -nG; read -r line; echo "got:$line"; echo to-stderr >&2; exit 3',
      { stdin: "from-stdin\n" },
    );
    assert.equal(r.code, 3);
    const [user, groups, got] = r.stdout.trim().split("\n");
    assert.equal(user, "deploy");
    assert.ok(groups?.split(" ").includes("docker"), `groups: ${groups}`);
    assert.equal(got, "got:from-stdin");
    assert.equal(r.stderr.trim(), "to-stderr");
    // With no stdin, stdin is closed at once: `cat` must not hang.
    const r2 = await runOverSsh(h, "cat; echo done", { timeoutMs: 20_000 });
    assert.equal(r2.code, 0);
    assert.equal(r2.stdout, "done\n");
    const tools = await runOverSsh(
      h,
      "docker version --format '{{.Client.Version}}/{{.Server.Version}}'; docker compose version 2>&1 | head -n1; docker-compose version --short 2>&1 | head -n1",
    );
    t.diagnostic(
      `as deploy: docker client/server, compose v2, compose v1:\n${tools.stdout.trim()}`,
    );
    t.diagnostic(
      `state: compose v2 ${h.docker.composeV2 ?? "absent"}, compose v1 ${h.docker.composeV1 ?? "absent"}, storage driver ${h.docker.storageDriver}`,
    );
  });

  test("refuses a server whose host key is not the pinned one", async () => {
    const other = ed25519KeyPair();
    await assert.rejects(
      runOverSsh(h, "true", { hostPublicKey: other.public, readyTimeoutMs: 10_000 }),
      /host key mismatch/,
    );
    // And key-only auth: a key that is not in authorized_keys gets nowhere.
    const stranger = ed25519KeyPair();
    await assert.rejects(
      runOverSsh(h, "true", { privateKey: stranger.private, readyTimeoutMs: 10_000 }),
      /authentication/i,
    );
  });

  test("copies files over SFTP like CopyToRemote", async () => {
    ok(await runOverSsh(h, `mkdir -p ${APP_DIR}`), "mkdir");
    await copyOverSsh(h, [
      { remotePath: `${APP_DIR}/plain.txt`, content: "hello\n" },
      { remotePath: `${APP_DIR}/secret.env`, content: "A=1\n", mode: 0o600 },
    ]);
    const r = ok(
      await runOverSsh(h, `cd ${APP_DIR}; stat -c '%n %a %U' plain.txt secret.env; cat plain.txt`),
      "stat",
    );
    assert.equal(r.stdout, "plain.txt 644 deploy\nsecret.env 600 deploy\nhello\n");
    await assert.rejects(
      copyOverSsh(h, [{ remotePath: `${APP_DIR}/missing-dir/x`, content: "x" }]),
      /cannot create/,
    );
  });

  test("registry needs a login, then deploy pulls v1 by tag and by digest", async () => {
    const v1 = h.images.backend.tags.v1;
    assert.ok(v1, "v1 in state");
    const r = await runOverSsh(
      h,
      `${PRELUDE}
mkdir -p "$DOCKER_CONFIG"
if docker pull ${v1.ref} >/dev/null 2>&1; then echo "pull-without-login: ok"; else echo "pull-without-login: refused"; fi
IFS= read -r password
printf '%s' "$password" | docker login -u ${h.registry.user} --password-stdin ${h.registry.address} >/dev/null
docker pull -q ${v1.ref}
docker pull -q ${v1.pinned}
docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' ${v1.ref}
`,
      { stdin: `${h.registry.password}\n` },
    );
    ok(r, "registry script");
    assert.match(r.stdout, /pull-without-login: refused/);
    assert.ok(
      r.stdout.includes(v1.pinned),
      `RepoDigests should include ${v1.pinned}:\n${r.stdout}`,
    );
  });

  test("compose project over SSH: PostgreSQL + v1 app, real migration, HTTP, load", async (t) => {
    const v1 = h.images.backend.tags.v1;
    assert.ok(v1);
    const dbPassword = "s3cret p@ss/word";
    const dbUrl = `postgresql+asyncpg://clicky:${encodeURIComponent(dbPassword)}@postgres:5432/clicky_db`;
    await copyOverSsh(h, [
      {
        remotePath: `${APP_DIR}/docker-compose.yml`,
        content: `services:
  postgres:
    image: ${h.images.postgres}
    environment:
      POSTGRES_USER: clicky
      POSTGRES_PASSWORD: \${POSTGRES_PASSWORD}
      POSTGRES_DB: clicky_db
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U clicky -d clicky_db"]
      interval: 1s
      timeout: 3s
      retries: 60
  fastapi:
    image: ${v1.ref}
    env_file: .env
    depends_on:
      - postgres
    ports:
      - "127.0.0.1:${port}:8000"
volumes:
  pgdata: {}
`,
      },
      {
        remotePath: `${APP_DIR}/.env`,
        content: `POSTGRES_PASSWORD=${dbPassword}\nDATABASE_URL=${dbUrl}\nJWT_SECRET_KEY=selftest\nAPP_ENV=staging\nREDIS_URL=redis://redis:6379/0\n`,
        mode: 0o600,
      },
    ]);
    const up = await runOverSsh(
      h,
      `${PRELUDE}
echo "compose: $(docker compose version 2>/dev/null | head -n1 || true) | $(docker-compose version --short 2>/dev/null || true)"
compose -p ${PROJECT} up -d postgres
pg="$(compose -p ${PROJECT} ps -q postgres)"
for _ in $(seq 1 120); do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$pg")" = healthy ] && break
  sleep 0.5
done
[ "$(docker inspect -f '{{.State.Health.Status}}' "$pg")" = healthy ]
compose -p ${PROJECT} run --rm -T fastapi alembic upgrade head
compose -p ${PROJECT} run --rm -T fastapi alembic current
compose -p ${PROJECT} up -d fastapi
`,
      { timeoutMs: 5 * 60_000 },
    );
    ok(up, "compose up");
    t.diagnostic(up.stdout.split("\n")[0] ?? "");
    assert.match(up.stdout, /^001 \(head\)$/m);
    assert.match(up.stderr, /Running upgrade {2}-> 001, create items/);

    const base = `http://127.0.0.1:${port}`;
    const health = await waitForHttp(`${base}/health`, { timeoutMs: 60_000 });
    assert.deepEqual(JSON.parse(health.body), { status: "ok", version: "v1", db: "ok" });
    assert.deepEqual(JSON.parse((await httpGet(`${base}/version`)).body), { version: "v1" });
    const items = JSON.parse((await httpGet(`${base}/items`)).body) as { name: string }[];
    assert.deepEqual(
      items.map((i) => i.name),
      ["alpha", "beta", "gamma"],
    );
    const config = JSON.parse((await httpGet(`${base}/config`)).body) as Record<string, unknown>;
    assert.equal(config.app_env, "staging");

    const [pg] = await composeContainers(PROJECT, "postgres");
    assert.ok(pg, "postgres container found by compose labels");
    assert.equal(await psqlInContainer(pg, "SELECT version_num FROM alembic_version"), "001");
    assert.equal(await psqlInContainer(pg, "SELECT count(*) FROM items"), "3");
    assert.equal((await composeContainers(PROJECT)).length, 2);

    // Load: every request is counted, with and without keep-alive.
    for (const keepAlive of [false, true]) {
      const load = await startLoad({
        url: `${base}/health`,
        ratePerSecond: 40,
        durationMs: 2500,
        keepAlive,
      }).done;
      t.diagnostic(
        `load keepAlive=${keepAlive}: ${JSON.stringify({ ...load, failures: load.failures.length })}`,
      );
      assert.ok(load.sent >= 90 && load.sent <= 110, `sent ${load.sent}`);
      assert.equal(load.ok2xx, load.sent);
      assert.equal(load.errorsTotal, 0);
      assert.equal(load.non2xxTotal, 0);
      assert.equal(load.versions.v1, load.sent);
      assert.ok(load.latencyMs.count === load.sent && load.latencyMs.p50 > 0);
    }
    const notFound = await startLoad({ url: `${base}/nope`, ratePerSecond: 20, durationMs: 1000 })
      .done;
    assert.equal(notFound.non2xx["404"], notFound.sent);
    assert.equal(notFound.failures[0]?.detail, "404");
    const closed = await freePort();
    const refused = await startLoad({
      url: `http://127.0.0.1:${closed}/health`,
      ratePerSecond: 20,
      durationMs: 1000,
    }).done;
    assert.equal(refused.errorsTotal, refused.sent);
    assert.ok(Object.keys(refused.errors).every((m) => m.startsWith("ECONNREFUSED")));
    const early = startLoad({ url: `${base}/health`, ratePerSecond: 20, durationMs: 60_000 });
    await new Promise((r) => setTimeout(r, 500));
    const stopped = await early.stop();
    assert.ok(stopped.durationMs < 2000 && stopped.inFlight === 0);
    assert.equal(stopped.ok2xx, stopped.sent);
    assert.throws(() => startLoad({ url: "http://10.0.0.1/", ratePerSecond: 1 }), /loopback/);

    // SIGTERM: a request in flight is answered, then the app exits 0.
    const [app] = await composeContainers(PROJECT, "fastapi");
    assert.ok(app);
    const slow = httpGet(`${base}/slow?ms=1500`, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    const stop = await runOverSsh(h, `docker stop -t 20 ${app}`);
    ok(stop, "docker stop");
    const answer = await slow;
    assert.equal(answer.status, 200);
    const exit = ok(
      await runLocal("docker", ["inspect", "-f", "{{.State.ExitCode}}", app]),
      "inspect",
    );
    assert.equal(exit.stdout.trim(), "0");
  });

  test("app versions: v2 migrates, v4's migration rolls back, v3 never healthy, downgrade -1", async () => {
    const tags = h.images.backend.tags;
    const [v2, v3, v4] = [tags.v2, tags.v3, tags.v4];
    assert.ok(v2 && v3 && v4);
    const v3Port = await freePort();
    const run = (image: string, cmd: string) =>
      `docker run --rm --network ${PROJECT}_default --env-file .env ${image} ${cmd}`;
    const r = await runOverSsh(
      h,
      `${PRELUDE}
docker pull -q ${v2.ref} >/dev/null; docker pull -q ${v3.ref} >/dev/null; docker pull -q ${v4.ref} >/dev/null
${run(v2.ref, "alembic upgrade head")}
echo "after-v2: $(${run(v2.ref, "alembic current")})"
if ${run(v4.ref, "alembic upgrade head")}; then echo "v4: migrated"; else echo "v4: failed $?"; fi
echo "after-v4: $(${run(v4.ref, "alembic current")})"
docker run -d --name ${PROJECT}-v3 --label com.docker.compose.project=${PROJECT} --network ${PROJECT}_default --env-file .env -p 127.0.0.1:${v3Port}:8000 ${v3.ref} >/dev/null
`,
      { timeoutMs: 5 * 60_000 },
    );
    ok(r, "versions script");
    assert.match(r.stdout, /^after-v2: 002 \(head\)$/m);
    assert.match(r.stdout, /^v4: failed 1$/m);
    assert.match(r.stdout, /^after-v4: 002$/m);
    assert.match(r.stderr, /FAILED: migration 003 failed and was rolled back/);
    const [pg] = await composeContainers(PROJECT, "postgres");
    assert.ok(pg);
    assert.equal(await psqlInContainer(pg, "SELECT version_num FROM alembic_version"), "002");
    assert.equal(await psqlInContainer(pg, "SELECT to_regclass('audit_log') IS NULL"), "t");
    assert.equal(
      await psqlInContainer(
        pg,
        "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'items'",
      ),
      "id,name,price_cents",
    );

    await waitForHttp(`http://127.0.0.1:${v3Port}/version`, { timeoutMs: 30_000 });
    for (const p of ["/health", "/api/v1/health", "/health/db"]) {
      assert.equal((await httpGet(`http://127.0.0.1:${v3Port}${p}`)).status, 503, p);
    }

    const down = await runOverSsh(
      h,
      `${PRELUDE}
${run(v2.ref, "alembic downgrade -1")}
echo "after-downgrade: $(${run(v2.ref, "alembic current")})"
`,
    );
    ok(down, "downgrade");
    assert.match(down.stdout, /^after-downgrade: 001$/m);
    assert.equal(
      await psqlInContainer(
        pg,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'price_cents'",
      ),
      "0",
    );
  });
});

/**
 * A fresh ed25519 key pair that ssh2 can read back. ssh2's own generator writes a key whose
 * public half starts with a zero byte as 31 bytes, which its parser then rejects as malformed
 * (about 1 key in 256: 76 of 20,000 drawn), so a key is drawn again until both halves parse.
 */
function ed25519KeyPair(): { private: string; public: string } {
  for (;;) {
    const k = utils.generateKeyPairSync("ed25519");
    if (
      !(utils.parseKey(k.private) instanceof Error) &&
      !(utils.parseKey(k.public) instanceof Error)
    ) {
      return k;
    }
  }
}
