/**
 * Crash consistency, end to end: a deploy whose own process dies on the host (the OOM killer, a
 * reboot of the deploy's session, `kill -9`) at each of its steps in turn, then the next deploy.
 * The whole deploy process group is killed with SIGKILL (no trap runs, no undo) as soon as the
 * step's first progress line appears; the host must keep serving meanwhile, and the next run of
 * the same deploy must recognise what was left, finish, and serve the new version, while
 * reads (half on reused keep-alive connections) and acknowledged writes go through the proxy
 * the whole time: zero failed requests, every acknowledged write in the database.
 *
 * Every case deploys a new env (APP_ENV), so each one is a full blue/green: backup, migrate,
 * start, health, switch, verify, watch, drain, record.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  cleanupProject,
  composeContainers,
  connectAsApp,
  e2eSkip,
  ensureHarness,
  freePort,
  type Harness,
  harnessAvailability,
  harnessInstance,
  httpGet,
  type LoadResult,
  migrationContainers,
  prepareAndCopy,
  psqlInContainer,
  runLocal,
  runOverSsh,
  startLoad,
  startWriter,
} from "../../harness";
import { e2eDeployConfig, e2eSecrets } from "../../support/e2e-config";
import { type RenderedHost, renderStack } from "../../support/render";

const availability = harnessAvailability();
const skip = e2eSkip("crash e2e");
const APP_DIR = `/home/deploy/clicky-crash-${harnessInstance()}`;
const PROJECT = `clickycrash${harnessInstance()}`;

/**
 * Where each kill lands: at the step's first progress line, or, for a step that prints nothing
 * when it has nothing to do (infra, with PostgreSQL and Redis up), at the last line before it.
 * The record step (one `docker image inspect` and a few renames) ends before any kill from
 * outside can land; its case is the state such a kill leaves, made by hand (see below).
 */
const KILLED_AT: readonly (readonly [string, RegExp])[] = [
  ["preflight", /\] preflight: /],
  ["infra", /\] preflight: nginx accepts the site/],
  ["backup", /\] backup: /],
  ["pull", /\] pull: /],
  // Nothing is pending in these deploys: killed during the migration check's one-off run.
  ["migrate", /\] migrate: checking whether a migration is pending/],
  ["start", /\] start: /],
  ["health", /\] health: /],
  ["switch", /\] switch: /],
  ["verify", /\] verify: /],
  ["watch", /\] watch: /],
  ["drain", /\] drain: /],
];

describe("a deploy killed at each step, then the next one (crash consistency)", { skip }, () => {
  let h: Harness;
  let port = 0;
  const timings: string[] = [];

  before(
    async () => {
      if (!availability.ok)
        throw new Error(`CI=true but e2e cannot run here: ${availability.reason}`);
      h = await ensureHarness();
      port = await freePort();
      await cleanupProject(h, APP_DIR, PROJECT);
      const first = await deployOf("crash-0");
      await prepareAndCopy(h, first);
      const r = await runOverSsh(h, first.script, { stdin: first.stdin, timeoutMs: 5 * 60_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
    },
    { timeout: 40 * 60_000 },
  );

  after(async () => {
    console.log(`# crash e2e:\n${timings.map((t) => `#   ${t}`).join("\n")}`);
    if (h) await cleanupProject(h, APP_DIR, PROJECT);
  });

  const url = (path: string) => `http://127.0.0.1:${port}${path}`;

  async function deployOf(
    env: string,
    secrets: Record<string, string> = {},
  ): Promise<RenderedHost> {
    const deploy = e2eDeployConfig(
      h,
      port,
      { tag: "v1" },
      { appDir: APP_DIR, composeProject: PROJECT, watchSeconds: 2, app: { env: { APP_ENV: env } } },
    );
    const rendered = await renderStack({ deploy, secrets: { ...e2eSecrets(h), ...secrets } });
    assert.equal(rendered.run.error, undefined, String(rendered.run.error));
    const host = rendered.hosts[0];
    assert.ok(host);
    return host;
  }

  async function sql(query: string): Promise<string> {
    const [pg] = await composeContainers(PROJECT, "postgres");
    assert.ok(pg, "postgres runs");
    return (await psqlInContainer(pg, query)).trim();
  }

  /** Reads (half on keep-alive connections) and acknowledged writes through the proxy. */
  function traffic(prefix: string) {
    return {
      reads: startLoad({
        url: url("/version"),
        ratePerSecond: 40,
        durationMs: 5 * 60_000,
        keepAlive: "mixed",
      }),
      writes: startWriter({
        url: url("/items"),
        ratePerSecond: 10,
        prefix,
        requestTimeoutMs: 10_000,
      }),
    };
  }

  async function appEnv(): Promise<string> {
    const config = JSON.parse((await httpGet(url("/config"))).body) as Record<string, unknown>;
    return String(config.app_env);
  }

  /** Runs the deploy and kills its process group at the first line that matches `at`. */
  async function killedAt(host: RenderedHost, step: string, at: RegExp): Promise<void> {
    let killed: Promise<string> | undefined;
    let seen = "";
    const started = Date.now();
    const killedRun = await runOverSsh(h, host.script, {
      stdin: host.stdin,
      timeoutMs: 5 * 60_000,
      onOutput: (chunk, stream) => {
        if (stream !== "stdout" || killed) return;
        seen += chunk;
        if (at.test(seen)) {
          killed = runOverSsh(
            h,
            `pid=$(sed -n 's/.*, pid \\([0-9]*\\),.*/\\1/p' ${APP_DIR}/state/deploy.lock.owner); kill -KILL -- "-$pid" && echo "$pid"`,
          ).then((r) => `${r.code} ${r.stdout.trim()} ${r.stderr.trim()}`);
        }
      },
    });
    assert.ok(
      killed,
      `the deploy never printed the line to kill it at ${step}:\n${killedRun.stdout}`,
    );
    const kill = await killed;
    assert.match(kill, /^0 \d+/, `the kill: ${kill}`);
    assert.notEqual(killedRun.code, 0, "the killed deploy did not succeed");
    assert.match(killedRun.stderr, /the deploy ended with exit 137 before it could report/);
    timings.push(`${step}: killed after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  /**
   * A kill between drain and record: the new version serves from the new slot, the old one is
   * stopped, and nothing of the record step was written (state/current, history.log and the
   * `current` link still name the previous deploy). Made by hand from a finished deploy.
   */
  async function killedBeforeRecord(host: RenderedHost): Promise<void> {
    const state = `${APP_DIR}/state`;
    const saved = await runOverSsh(
      h,
      `cp -p ${state}/current ${state}/current.saved && cp -p ${state}/history.log ${state}/history.saved && readlink ${APP_DIR}/current`,
    );
    assert.equal(saved.code, 0, saved.stderr);
    const done = await runOverSsh(h, host.script, { stdin: host.stdin, timeoutMs: 5 * 60_000 });
    assert.equal(done.code, 0, done.stdout + done.stderr);
    const undo = await runOverSsh(
      h,
      `mv -f ${state}/current.saved ${state}/current && mv -f ${state}/history.saved ${state}/history.log && ln -sfn ${saved.stdout.trim()} ${APP_DIR}/current`,
    );
    assert.equal(undo.code, 0, undo.stderr);
    timings.push("record: the state a kill before the record step leaves, put back by hand");
  }

  const cases = [...KILLED_AT, ["record", undefined] as const];
  cases.forEach(([step, at], i) => {
    test(`killed at ${step}: the host keeps serving, the next run finishes`, {
      timeout: 10 * 60_000,
    }, async () => {
      const env = `crash-${i + 1}`;
      const host = await deployOf(env);
      await prepareAndCopy(h, host);
      const { reads, writes } = traffic(`crash ${step}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (at) await killedAt(host, step, at);
      else await killedBeforeRecord(host);
      // The host serves meanwhile (the load below counts every request of this window too).
      await new Promise((resolve) => setTimeout(resolve, 1000));

      const next = await runOverSsh(h, host.script, { stdin: host.stdin, timeoutMs: 5 * 60_000 });
      await new Promise((resolve) => setTimeout(resolve, 500));
      const [r, w] = await Promise.all([reads.stop(), writes.stop()]);
      const line = (l: LoadResult) =>
        `${l.sent} reads, ${l.non2xxTotal} non-2xx, ${l.errorsTotal} errors`;
      timings.push(
        `${step}: next run exit ${next.code}; ${line(r)}; ${w.sent} writes, ${w.failures.length} failed`,
      );
      assert.equal(next.code, 0, `the next run:\n${next.stdout}\n${next.stderr}`);
      assert.equal(await appEnv(), env, "the new env serves");
      assert.deepEqual(
        { non2xx: r.non2xx, errors: r.errors },
        { non2xx: {}, errors: {} },
        `reads failed: ${JSON.stringify(r.failures.slice(0, 5))}\n--- next run:\n${next.stdout}`,
      );
      assert.deepEqual(w.failures, [], "every write was acknowledged");
      const names = w.acknowledged.map((n) => `'${n}'`).join(",");
      assert.equal(
        Number(await sql(`SELECT count(*) FROM items WHERE name IN (${names})`)),
        w.acknowledged.length,
        "every acknowledged write is in the database",
      );
      // Nothing of the killed run is left behind: no one-off container, one container per service.
      assert.deepEqual(
        await migrationContainers(PROJECT),
        [],
        "no migration run or check container is left",
      );
      const watchers = await sql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'clicky-deploy-watch-%'",
      );
      assert.equal(watchers, "0", "no lock watcher of the killed run is left");
    });
  });

  test("killed while it rotates the database password: the old version keeps connecting, the next run finishes the rotation and removes the trust line", {
    timeout: 10 * 60_000,
  }, async () => {
    const password = "crash rotated 'pw' $x";
    const host = await deployOf("crash-rotation", { postgresPassword: password });
    await prepareAndCopy(h, host);
    const [serving] = [
      ...(await composeContainers(PROJECT, "backend-blue")),
      ...(await composeContainers(PROJECT, "backend-green")),
    ];
    assert.ok(serving);
    const { reads, writes } = traffic("crash rotation");
    await new Promise((resolve) => setTimeout(resolve, 500));
    await killedAt(host, "rotation", /\] infra: PostgreSQL refuses the configured password/);
    // Whatever the kill left (the trust line, the old or the new password), the serving
    // version's new connections are accepted.
    assert.equal(await connectAsApp(serving), "ok", "the serving version can connect");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const next = await runOverSsh(h, host.script, { stdin: host.stdin, timeoutMs: 5 * 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const [r, w] = await Promise.all([reads.stop(), writes.stop()]);
    timings.push(
      `rotation: next run exit ${next.code}; ${r.sent} reads, ${r.non2xxTotal} non-2xx, ${r.errorsTotal} errors; ${w.sent} writes, ${w.failures.length} failed`,
    );
    assert.equal(next.code, 0, `the next run:\n${next.stdout}\n${next.stderr}`);
    assert.match(
      next.stdout,
      /infra: pg_hba\.conf holds a password rotation's line that an interrupted deploy left/,
    );
    assert.match(next.stdout, /the password rotation is over: pg_hba\.conf no longer trusts/);
    assert.equal(await appEnv(), "crash-rotation");
    assert.deepEqual(
      { non2xx: r.non2xx, errors: r.errors },
      { non2xx: {}, errors: {} },
      `reads failed: ${JSON.stringify(r.failures.slice(0, 5))}`,
    );
    assert.deepEqual(w.failures, [], "every write was acknowledged");
    const [pg] = await composeContainers(PROJECT, "postgres");
    assert.ok(pg);
    const left = await runLocal("docker", [
      "exec",
      pg,
      "sh",
      "-c",
      'grep -cF "password rotation" "$PGDATA/pg_hba.conf"; ls "$PGDATA" | grep -c clicky || true',
    ]);
    assert.equal(left.stdout.trim().split("\n")[0], "0", "no rotation line is left");
    assert.equal(left.stdout.trim().split("\n")[1], "0", "no temporary file is left");
  });
});
