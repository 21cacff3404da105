/**
 * The fault matrix: faults that real deploys meet, each against the real harness (OpenSSH,
 * Docker engine, registry, PostgreSQL, nginx) with the exact commands the program registers,
 * under continuous requests through the proxy. Each scenario asserts that the version that
 * served before kept serving (no request through the proxy failed) and that no row was lost.
 *
 * On one host, in order: (1) a release whose nginx site is invalid (never applied), (2) no
 * disk room for the backup (stops before any migration), (3) the registry unreachable, (4) the
 * SSH connection cut mid-deploy (the deploy finishes detached, the lock is released, the next
 * run converges), (5) a new version that crash-loops right after the switch (the watch window
 * moves traffic back), (6) a power cut between two deploys (every container killed at once:
 * the stack comes back by its restart policy with the recorded version, and the next deploy
 * works), (7) a migration that waits for a lock a long transaction holds (cancelled after
 * migrationLockWaitSeconds and tried again; the serving version's acknowledged writes through
 * the proxy all succeed and are all in the database; the deploy fails naming the holder, or
 * succeeds once it is gone), (8) a release whose health path answers while its API answers 500
 * (stopped by the check inside its container before the switch), (9) and (10) a database
 * password rotation, undone by a failing health gate, then completed, while the serving version
 * opens new connections with its old password. Same skip rules as deploy.test.ts: skipped with a reason where the harness cannot
 * run, a failure under CI=true.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { LOCK_BUSY_EXIT } from "../../../src/deploy/script";
import {
  type CommandResult,
  cleanupProject,
  composeContainers,
  connectAsApp,
  containerAddress,
  e2eSkip,
  ensureHarness,
  freePort,
  type Harness,
  harnessAvailability,
  httpGet,
  httpPost,
  type LoadHandle,
  type LoadResult,
  migrationContainers,
  passwordAccepted as passwordAcceptedIn,
  prepareAndCopy,
  psqlInContainer,
  runLocal,
  runOverSsh,
  startLoad,
  startWriter,
} from "../../harness";
import { E2E_COMPOSE, e2eDeployConfig, e2eSecrets } from "../../support/e2e-config";
import { type RenderedHost, renderStack, TEST_SECRETS } from "../../support/render";
import { assertNoSecret } from "../../support/secrets";

const availability = harnessAvailability();
const skip = e2eSkip("fault e2e");

/** Unique per run: the Docker engine and the deploy user's home are shared with other tests. */
const PROJECT = `clickyfaults${E2E_COMPOSE}${process.pid}`;
const APP_DIR = `/home/deploy/clicky-faults-${process.pid}`;

/** The database password the rotation scenarios change to: quotes, `$`, a backslash, a space. */
const ROTATED_PASSWORD = `r0tated 'pass' "$HOME" \\ ü`;

interface Run {
  readonly result: CommandResult;
  readonly seconds: number;
}

/**
 * Scenarios whose every compose command is one that the others run too: under compose v1 they
 * are left to the compose v2 suite, since nothing in them depends on which compose runs.
 */
const V2_ONLY =
  E2E_COMPOSE === "v1"
    ? {
        skip: "runs no compose command that the other scenarios do not; the compose v2 suite runs it",
      }
    : {};

describe(`deploy faults, end to end (compose ${E2E_COMPOSE})`, { skip }, () => {
  let h: Harness;
  let port = 0;
  let rows = 0;
  const timings: string[] = [];

  before(
    async () => {
      if (!availability.ok)
        throw new Error(`CI=true but e2e cannot run here: ${availability.reason}`);
      h = await ensureHarness();
      port = await freePort();
      await cleanupProject(h, APP_DIR, PROJECT);
    },
    { timeout: 40 * 60_000 },
  );

  after(async () => {
    console.log(`# fault e2e timings:\n${timings.map((t) => `#   ${t}`).join("\n")}`);
    if (h) {
      await runLocal("umount", [`${APP_DIR}/backups`]);
      await cleanupProject(h, APP_DIR, PROJECT);
    }
  });

  /** The program's registrations for a deploy of `tag` on this test's own project. */
  async function render(
    tag: string,
    extra: Record<string, unknown> = {},
    image?: Record<string, unknown>,
    secrets: Record<string, string> = {},
  ): Promise<RenderedHost> {
    const deploy = e2eDeployConfig(
      h,
      port,
      { tag },
      {
        appDir: APP_DIR,
        composeProject: PROJECT,
        watchSeconds: 2,
        ...extra,
      },
    );
    if (image) deploy.image = { ...(deploy.image as Record<string, unknown>), ...image };
    const rendered = await renderStack({ deploy, secrets: { ...e2eSecrets(h), ...secrets } });
    assert.equal(rendered.run.error, undefined, String(rendered.run.error));
    const host = rendered.hosts[0];
    assert.ok(host, "the program registered a deploy for the e2e host");
    return host;
  }

  async function run(host: RenderedHost, cut?: AbortSignal, onStdout?: (s: string) => void) {
    const started = Date.now();
    const result = await runOverSsh(h, host.script, {
      stdin: host.stdin,
      timeoutMs: 5 * 60_000,
      ...(cut ? { cut } : {}),
      ...(onStdout ? { onOutput: (chunk, stream) => stream === "stdout" && onStdout(chunk) } : {}),
    });
    assertNoSecret(
      result.output ?? "",
      [
        { name: "the database password", value: TEST_SECRETS.postgresPassword },
        { name: "the rotated database password", value: ROTATED_PASSWORD },
        { name: "the JWT key", value: TEST_SECRETS.jwtSecretKey },
        { name: "the registry token", value: h.registry.password },
        { name: "user:token", value: `${h.registry.user}:${h.registry.password}` },
      ],
      "what the deploy printed",
    );
    const seconds = (Date.now() - started) / 1000;
    // A one-line trace of every deploy that did not succeed, printed with the timings at the end
    // (what a CI log keeps when it keeps little): its exit and the reason it gave.
    if (result.code !== 0) {
      const reason =
        /deploy FAILED .*/.exec(result.stderr)?.[0] ?? result.stderr.trim().split("\n").at(-1);
      timings.push(
        `a deploy ended after ${seconds.toFixed(1)} s with ${result.code ?? result.signal}: ${(reason ?? "").slice(0, 300)}`,
      );
    }
    return { result, seconds };
  }

  function output(r: Run): string {
    return `--- stdout\n${r.result.stdout}\n--- stderr\n${r.result.stderr}`;
  }

  const url = (path: string) => `http://127.0.0.1:${port}${path}`;

  async function serving(): Promise<string> {
    const answer = await httpGet(url("/version"));
    assert.equal(answer.status, 200, answer.body);
    return (JSON.parse(answer.body) as { version: string }).version;
  }

  async function onHost(script: string): Promise<string> {
    const r = await runOverSsh(h, `set -euo pipefail\n${script}`);
    assert.equal(r.code, 0, `${script}\n--- stderr\n${r.stderr}`);
    return r.stdout;
  }

  async function container(service: string): Promise<string> {
    const [name] = await composeContainers(PROJECT, service);
    assert.ok(name, `the ${service} container exists`);
    return name;
  }

  async function sql(query: string): Promise<string> {
    return psqlInContainer(await container("postgres"), query);
  }

  /** Writes one more row; `rowsIntact` checks that every row written so far is there. */
  async function writeRow(label: string): Promise<void> {
    await sql(`INSERT INTO items (name) VALUES ('fault ${label}')`);
    rows++;
  }

  async function rowsIntact(): Promise<void> {
    assert.equal(Number(await sql("SELECT count(*) FROM items WHERE name LIKE 'fault %'")), rows);
    assert.equal(Number(await sql("SELECT count(*) FROM items")), rows + 3);
  }

  /**
   * A session that holds an ACCESS EXCLUSIVE lock on a new table `table` (pg_dump waits behind
   * it) until `release` ends the session and drops the table.
   */
  async function blockDumps(table: string): Promise<{ release(): Promise<void> }> {
    await sql(`CREATE TABLE ${table} (id int)`);
    const holder = psqlInContainer(
      await container("postgres"),
      `BEGIN; LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;`,
      { timeoutMs: 150_000 },
    ).catch((err: unknown) => err);
    // Until the session holds the lock (it then runs the pg_sleep).
    const deadline = Date.now() + 30_000;
    while (
      (await sql(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(120)%' AND pid <> pg_backend_pid()",
      )) !== "1"
    ) {
      assert.ok(Date.now() < deadline, `the session locking ${table} did not start`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      async release() {
        // psql sends the holder's statements one by one: its session now runs the pg_sleep.
        const ended = await sql(
          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(120)%' AND pid <> pg_backend_pid()",
        );
        assert.equal(ended, "1", "the session holding the lock was ended");
        await holder;
        await sql(`DROP TABLE ${table}`);
      },
    };
  }

  /**
   * After a deploy that failed with its dump (scenario `label`): it says no backup was taken,
   * no request failed, the version `before` still serves and is recorded, the backups are the
   * `kept` ones (no dump, no partial file), and every row is there.
   */
  async function servesOnWithoutDump(
    r: Run,
    label: string,
    during: string,
    counted: LoadResult,
    { before, kept }: { before: string; kept: string[] },
  ): Promise<void> {
    assert.match(
      r.result.stderr,
      /backup taken before this deploy: none \(the deploy stopped before its backup was complete\)/,
    );
    noRequestFailed(`${label} ${during}`, counted, [before]);
    assert.equal(await currentTag(), before);
    assert.equal(await serving(), before);
    assert.deepEqual(await backups(), kept, "no dump and no partial file was added");
    await writeRow(`after ${label}`);
    await rowsIntact();
  }

  async function revision(): Promise<string> {
    return sql("SELECT version_num FROM alembic_version");
  }

  async function backups(): Promise<string[]> {
    return (await onHost(`ls -1a ${APP_DIR}/backups`))
      .split("\n")
      .filter((f) => f && f !== "." && f !== "..");
  }

  async function currentTag(): Promise<string> {
    return (await onHost(`sed -n 's/^tag=//p' ${APP_DIR}/state/current`)).trim();
  }

  /** The proxy's worker pids: they change exactly when nginx loads a configuration. */
  async function nginxWorkers(): Promise<string> {
    const r = await runLocal("docker", [
      "exec",
      await container("proxy"),
      "sh",
      "-c",
      "pgrep -f 'nginx[:] worker' | sort",
    ]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  }

  /** Requests through the proxy from half a second before the deploy to half a second after. */
  async function load(path = "/health"): Promise<{ stop(): Promise<LoadResult> }> {
    const traffic: LoadHandle = startLoad({
      url: url(path),
      ratePerSecond: 40,
      durationMs: 5 * 60_000,
      // Half the requests on reused connections, as mobile apps and HTTP libraries send them.
      keepAlive: "mixed",
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    return {
      stop: async () => {
        await new Promise((resolve) => setTimeout(resolve, 500));
        return traffic.stop();
      },
    };
  }

  /** When requests failed: what the proxy, the backends and PostgreSQL said, for the report. */
  async function diagnose(label: string, r: LoadResult): Promise<void> {
    if (r.errorsTotal + r.non2xxTotal === 0) return;
    const lines: string[] = [];
    for (const service of ["proxy", "backend-blue", "backend-green"]) {
      for (const name of await composeContainers(PROJECT, service)) {
        const log = await runLocal("docker", ["logs", "--timestamps", "--tail", "300", name]);
        const text = `${log.stdout}\n${log.stderr}`.split("\n");
        const picked =
          service === "proxy"
            ? text.filter((l) => /\[(error|warn)\]/.test(l)).slice(-8)
            : text.filter((l) => !/" 20[01] -$/.test(l)).slice(-8);
        lines.push(`${service}:`, ...picked.map((l) => `  ${l.slice(0, 220)}`));
      }
    }
    lines.push(
      `pg_stat_activity: ${await sql("SELECT string_agg(format('%s/%s/%s', coalesce(application_name, '-'), state, coalesce(wait_event_type, '-')), ' ') FROM pg_stat_activity WHERE datname IS NOT NULL").catch((e) => String(e))}`,
    );
    console.log(`# ${label}, why requests failed:\n${lines.map((l) => `#   ${l}`).join("\n")}`);
  }

  /** Every request through the proxy got a 2xx answer, from the versions expected. */
  function noRequestFailed(label: string, r: LoadResult, versions?: string[]): void {
    timings.push(
      `${label}: ${r.sent} requests, ${r.ok2xx} 2xx, ${r.non2xxTotal} non-2xx, ${r.errorsTotal} errors, versions ${JSON.stringify(r.versions)}`,
    );
    assert.ok(r.sent >= 30, `only ${r.sent} requests were sent`);
    assert.deepEqual(
      { non2xx: r.non2xx, errors: r.errors },
      { non2xx: {}, errors: {} },
      `failures: ${JSON.stringify(r.failures.slice(0, 10))}`,
    );
    assert.equal(r.ok2xx, r.sent);
    if (versions) assert.deepEqual(Object.keys(r.versions).sort(), versions);
  }

  function failedAt(r: Run, step: string, reason: RegExp): void {
    assert.equal(r.result.code, 1, output(r));
    assert.match(
      r.result.stderr,
      new RegExp(`deploy FAILED on e2e \\(stack staging\\) at step ${step}: `),
    );
    assert.match(r.result.stderr, reason);
  }

  test("(0) a first deploy of v1, and rows written", async () => {
    const host = await render("v1");
    await prepareAndCopy(h, host);
    const r = await run(host);
    timings.push(`(0) first deploy v1: ${r.seconds.toFixed(1)} s`);
    assert.equal(r.result.code, 0, output(r));
    assert.equal(await serving(), "v1");
    await writeRow("before everything");
    await rowsIntact();
  });

  test(
    "(1) a release whose nginx site is invalid is refused before anything changes, and never reaches the proxy",
    V2_ONLY,
    async () => {
      const host = await render("v2");
      // The release itself carries the invalid site: the site and the hash the script expects of
      // it are changed together, as if the program had rendered that site (a hand edit on the host
      // is a different fault, refused by the hash check; see the drift suite).
      const site = host.copies.find((c) => c.remotePath.endsWith("/site.conf"));
      assert.ok(site, "the release copies a site");
      const invalid = site.text.replace(
        "server_name _;",
        "server_name _;\n  this_directive_does_not_exist on;",
      );
      assert.notEqual(invalid, site.text);
      const sha = (text: string) => createHash("sha256").update(text).digest("hex");
      assert.ok(
        host.deployScript.text.includes(sha(site.text)),
        "the script expects the site's hash",
      );
      await prepareAndCopy(h, host, (path, text) =>
        path === site.remotePath
          ? invalid
          : path === host.deployScript.remotePath
            ? text.replaceAll(sha(site.text), sha(invalid))
            : text,
      );
      const before = {
        files: await onHost(
          `sha256sum ${APP_DIR}/proxy/site.conf ${APP_DIR}/proxy/routing.js ${APP_DIR}/proxy/routing`,
        ),
        workers: await nginxWorkers(),
        backups: await backups(),
      };
      const traffic = await load();
      const r = await run(host);
      const counted = await traffic.stop();
      timings.push(`(1) invalid nginx site: ${r.seconds.toFixed(1)} s, exit ${r.result.code}`);
      failedAt(
        r,
        "preflight",
        /nginx rejects the site of release [0-9a-f]{12} \(site\.conf, routing\.js;[^)]*\): .*unknown directive "this_directive_does_not_exist".*; nothing was changed/,
      );
      assert.match(r.result.stderr, /backup taken before this deploy: none/);
      assert.deepEqual(
        {
          files: await onHost(
            `sha256sum ${APP_DIR}/proxy/site.conf ${APP_DIR}/proxy/routing.js ${APP_DIR}/proxy/routing`,
          ),
          workers: await nginxWorkers(),
          backups: await backups(),
        },
        before,
        "the live configuration was neither changed nor reloaded",
      );
      assert.deepEqual(await composeContainers(PROJECT, "backend-green"), []);
      noRequestFailed("(1) during the invalid-site deploy", counted, ["v1"]);
      assert.equal(await revision(), "001");
      await writeRow("after (1)");
      await rowsIntact();
    },
  );

  test(
    "(2) with no disk room for the backup, the deploy stops at preflight, before any migration",
    V2_ONLY,
    async () => {
      const host = await render("v2");
      await prepareAndCopy(h, host);
      const backupsDir = `${APP_DIR}/backups`;
      const mounted = await runLocal("mount", [
        "-t",
        "tmpfs",
        "-o",
        "size=4m,mode=700",
        "tmpfs",
        backupsDir,
      ]);
      assert.equal(mounted.code, 0, `a small filesystem for the backups: ${mounted.stderr}`);
      try {
        assert.equal((await runLocal("chown", ["deploy:deploy", backupsDir])).code, 0);
        const traffic = await load();
        const r = await run(host);
        const counted = await traffic.stop();
        timings.push(`(2) no disk room: ${r.seconds.toFixed(1)} s, exit ${r.result.code}`);
        failedAt(
          r,
          "preflight",
          /not enough disk for a backup in \/home\/deploy\/clicky-faults-\d+\/backups: 4 MiB free, \d+ MiB needed \(the database and backup\.minFreeMiB\); nothing was changed/,
        );
        noRequestFailed("(2) during the no-room deploy", counted, ["v1"]);
        assert.deepEqual(await backups(), [], "no partial dump was left");
      } finally {
        assert.equal((await runLocal("umount", [backupsDir])).code, 0);
      }
      assert.equal(await revision(), "001", "no migration ran");
      assert.equal(await serving(), "v1");
      await writeRow("after (2)");
      await rowsIntact();
    },
  );

  test(
    "(3) with the registry unreachable, the deploy stops at the pull, before any migration",
    V2_ONLY,
    async () => {
      const closed = await freePort();
      const host = await render("v2", {}, { repository: `127.0.0.1:${closed}/clicky/backend` });
      await prepareAndCopy(h, host);
      const traffic = await load();
      const r = await run(host);
      const counted = await traffic.stop();
      timings.push(`(3) registry unreachable: ${r.seconds.toFixed(1)} s, exit ${r.result.code}`);
      failedAt(
        r,
        "pull",
        new RegExp(
          `(login to 127\\.0\\.0\\.1:${closed} failed|could not pull 127\\.0\\.0\\.1:${closed}/clicky/backend@sha256:[0-9a-f]{64}): .*connection refused`,
        ),
      );
      assert.match(r.result.stderr, /the previous version keeps serving: .* in backend-blue/);
      noRequestFailed("(3) during the unreachable-registry deploy", counted, ["v1"]);
      assert.equal(await revision(), "001", "no migration ran");
      assert.equal(await serving(), "v1");
      assert.equal(await currentTag(), "v1");
      await writeRow("after (3)");
      await rowsIntact();
    },
  );

  test("(4) the SSH connection cut mid-deploy: the deploy finishes detached, the lock is released, the next run converges", async () => {
    const host = await render("v2");
    await prepareAndCopy(h, host);
    const traffic = await load();
    const cut = new AbortController();
    const r = await run(host, cut.signal, (chunk) => {
      if (/migrate: running/.test(chunk)) cut.abort();
    });
    timings.push(`(4) connection cut after ${r.seconds.toFixed(1)} s`);
    assert.equal(r.result.signal, "connection cut", output(r));
    assert.match(r.result.stdout, /backup: database saved to/);

    // Still running on its own: a second run meets the lock and changes nothing.
    const second = await run(host);
    const busy = second.result.code === LOCK_BUSY_EXIT;
    if (busy) {
      assert.match(
        second.result.stderr,
        /another deploy holds .*deploy\.lock: deploy of .*clicky\/backend@sha256:[0-9a-f]{64} \(stack staging\) by deploy from 127\.0\.0\.1, pid \d+/,
      );
    }
    const lock = `${APP_DIR}/state/deploy.lock`;
    const deadline = Date.now() + 120_000;
    const waitStarted = Date.now();
    while ((await onHost(`flock -n ${lock} true && echo free || echo held`)).trim() !== "free") {
      assert.ok(Date.now() < deadline, "the lock is still held two minutes after the cut");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    timings.push(
      `(4) a rerun right after the cut ${busy ? "found the lock held" : "converged at once"}; the lock was free ${((Date.now() - waitStarted) / 1000).toFixed(1)} s later`,
    );
    assert.equal(await onHost(`test -e ${lock}.owner && echo owned || echo none`), "none\n");

    const again = await run(host);
    const counted = await traffic.stop();
    const logs = await onHost(`tail -n 5 ${APP_DIR}/logs/*`);
    assert.equal(again.result.code, 0, output(again));
    assert.match(
      again.result.stdout,
      /nothing to do: v2 .* already serves/,
      `--- the run after the cut:\n${output(second)}\n--- the host's deploy logs:\n${logs}`,
    );
    noRequestFailed("(4) across the cut, the detached finish and the rerun", counted, ["v1", "v2"]);
    assert.equal(await serving(), "v2");
    assert.equal(await currentTag(), "v2");
    assert.equal(await revision(), "002");
    assert.deepEqual(
      (await backups()).filter((f) => f.endsWith(".partial")),
      [],
      "no partial dump",
    );
    const log = await onHost(`cat "$(ls -1 ${APP_DIR}/logs/*.out | sort | tail -n 3 | head -n 1)"`);
    assert.match(
      log,
      /finished: deployed v2 .*; timings: lock/,
      "the cut run's own log ends with its success",
    );
    await writeRow("after (4)");
    await rowsIntact();
  });

  test("(5) a version that crash-loops right after the switch: the watch window moves traffic back", async () => {
    const host = await render("v5", { watchSeconds: 15 });
    await prepareAndCopy(h, host);
    const traffic = await load();
    const r = await run(host);
    const counted = await traffic.stop();
    timings.push(`(5) v5 crash loop: ${r.seconds.toFixed(1)} s, exit ${r.result.code}`);
    // Whichever the watch sees first of the crash loop's signs: the restart, the stop, or the
    // engine's unhealthy verdict on the restarting container (seen once in CI).
    failedAt(
      r,
      "watch",
      /backend-blue (crashed and was restarted|stopped|turned unhealthy) [\d.]+ s after the switch/,
    );
    assert.match(r.result.stdout, /switch: the proxy sends traffic to backend-blue/);
    assert.match(
      r.result.stdout,
      /undo: traffic is back on backend-green; no request to backend-blue is in flight \(after [\d.]+ s\)/,
    );
    assert.match(
      r.result.stderr,
      /the previous version keeps serving: .*clicky\/backend@sha256:[0-9a-f]{64} in backend-green/,
    );
    noRequestFailed("(5) during the crash-looping v5", counted);
    assert.ok((counted.versions.v2 ?? 0) > 0, JSON.stringify(counted.versions));
    assert.equal(await serving(), "v2");
    assert.equal(await currentTag(), "v2");
    assert.deepEqual(await composeContainers(PROJECT, "backend-blue"), [], "v5 was removed");
    // Routed back to v2's slot, with nothing standing by.
    assert.match(
      await onHost(`cat ${APP_DIR}/proxy/routing`),
      /\ngreen backend-green:8000 [\d.]+:8000\n$/,
    );
    await writeRow("after (5)");
    await rowsIntact();
  });

  test("(6) a power cut between two deploys: the stack comes back with the recorded version, and the next deploy works and removes the one-off containers the cut left", async () => {
    await writeRow("just before the power cut");
    const names = await composeContainers(PROJECT);
    assert.equal(names.length, 4, names.join(" "));
    const pids = await Promise.all(
      names.map(async (name) => {
        const r = await runLocal("docker", ["inspect", "-f", "{{.State.Pid}}", name]);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim();
      }),
    );
    const started = Date.now();
    // Every container's process killed at once, with no warning: what a power cut does. Docker
    // brings them back by their restart policy, the same policy it applies when it boots.
    const killed = await runLocal("kill", ["-KILL", ...pids]);
    assert.equal(killed.code, 0, killed.stderr);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const answer = await httpGet(url("/version"), 2000).catch(() => undefined);
      if (answer?.status === 200) break;
      assert.ok(Date.now() < deadline, "the stack did not come back within two minutes");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    timings.push(`(6) back up ${((Date.now() - started) / 1000).toFixed(1)} s after the power cut`);
    for (const name of names) {
      const r = await runLocal("docker", [
        "inspect",
        "-f",
        "{{.State.Running}} {{.RestartCount}}",
        name,
      ]);
      assert.equal(r.stdout.trim(), "true 1", `${name} was restarted by its policy`);
    }
    assert.equal(await serving(), await currentTag(), "the recorded version serves");
    assert.equal(await serving(), "v2");
    // PostgreSQL replays its WAL after the crash; every committed row is there.
    for (;;) {
      const ready = await sql("SELECT 1").catch(() => "");
      if (ready === "1") break;
      assert.ok(Date.now() < deadline, "PostgreSQL did not come back within two minutes");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await rowsIntact();

    // What the cut killed mid-run: compose v1's `run --rm` leaves its one-off container when its
    // client dies (compose v2 has Docker remove it), named as the deploy names them.
    const left = [`${PROJECT}-migcheck-424242`, `${PROJECT}-migrate-424242-1`];
    for (const name of left) {
      const made = await runLocal("docker", ["create", "--name", name, h.images.postgres, "true"]);
      assert.equal(made.code, 0, made.stderr);
    }
    // And a dump whose compression the cut stopped: the newest kept one, raw again, with the
    // temporary file of a gzip killed midway.
    const raw = (await backups()).filter((f) => f.endsWith(".dump")).at(-1);
    assert.ok(raw, "a kept dump");
    const rawDir = `${APP_DIR}/backups/${raw}`;
    await onHost(
      `set -e; cd ${rawDir}; for f in *.dat.gz; do gunzip "$f"; done; f=$(ls *.dat | grep -vx toc.dat | head -n 1); head -c 10 "$f" > "$f.gz.cut-7"; ls`,
    );
    const host = await render("v1", { migrate: false });
    await prepareAndCopy(h, host);
    const traffic = await load();
    const r = await run(host);
    const counted = await traffic.stop();
    timings.push(`(6) the next deploy (v1, no migration): ${r.seconds.toFixed(1)} s`);
    assert.equal(r.result.code, 0, output(r));
    assert.match(
      r.result.stdout,
      /backup: compressing also 1 earlier backup\(s\) that an earlier compression left raw in part/,
    );
    const deadline2 = Date.now() + 60_000;
    for (;;) {
      const files = (await onHost(`ls -1 ${rawDir}`)).split("\n").filter(Boolean);
      if (!files.some((f) => /^\d+\.dat$|\.gz\./.test(f))) break;
      assert.ok(Date.now() < deadline2, `${raw} still raw after 60 s: ${files.join(" ")}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.match(
      await onHost(`docker run --rm -v ${rawDir}:/d ${h.images.postgres} pg_restore --list /d`),
      /dbname: clicky_db/,
      "the dump compressed afterwards reads back",
    );
    assert.match(
      r.result.stdout,
      new RegExp(`removed ${left[0]}, a migration check that an interrupted deploy left`),
    );
    assert.match(
      r.result.stdout,
      new RegExp(`removed ${left[1]}, a migration run that an interrupted deploy left`),
    );
    assert.deepEqual(
      await migrationContainers(PROJECT),
      [],
      "no migration run or check container is left",
    );
    noRequestFailed("(6) during the deploy after the power cut", counted, ["v1", "v2"]);
    assert.equal(await serving(), "v1");
    assert.equal(await currentTag(), "v1");
    await rowsIntact();
  });

  /**
   * A session that keeps a transaction open on `items` (as a long report or a forgotten
   * `BEGIN` does), until `release()`. It holds ACCESS SHARE, which writes pass but an
   * `ALTER TABLE` waits for, and writes queue behind that waiting `ALTER`.
   */
  async function holdLock(): Promise<{ release(): Promise<void> }> {
    const pg = await container("postgres");
    const holder = runLocal("docker", [
      "exec",
      "-e",
      "PGAPPNAME=clicky-lock-holder",
      pg,
      "psql",
      "-X",
      "-U",
      "clicky",
      "-d",
      "clicky_db",
      "-c",
      "BEGIN; SELECT count(*) FROM items; SELECT pg_sleep(300); COMMIT;",
    ]);
    const deadline = Date.now() + 30_000;
    while (
      (await sql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clicky-lock-holder' AND query LIKE '%pg_sleep%'",
      )) !== "1"
    ) {
      assert.ok(Date.now() < deadline, "the lock holder did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      release: async () => {
        await sql(
          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'clicky-lock-holder'",
        );
        await holder;
      },
    };
  }

  /** Acknowledged writes through the proxy, and requests, during one deploy. */
  async function trafficWithWrites(label: string) {
    // Reads of /version measure the proxy and the app's HTTP path; the writes measure the
    // database path.
    const reads = await load("/version");
    // 10 s: a write may wait out one lock wait of the migration (migrationLockWaitSeconds) and
    // the cancel; most clients wait longer than that. The slowest goes to the report.
    const writes = startWriter({
      url: url("/items"),
      ratePerSecond: 20,
      prefix: `fault ${label}`,
      requestTimeoutMs: 10_000,
    });
    const t0 = Date.now();
    return {
      /** ms since the writes started, to put the deploy's lines beside the writes' times. */
      since: () => Date.now() - t0,
      stop: async () => {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const [counted, written] = await Promise.all([reads.stop(), writes.stop()]);
        rows += written.acknowledged.length;
        timings.push(
          `(${label}) writes: ${written.sent} sent, ${written.acknowledged.length} acknowledged, slowest ${written.maxLatencyMs} ms, failed ${JSON.stringify(written.failures.slice(0, 5))}; slowest sent at (ms): ${JSON.stringify(written.slowest)}`,
        );
        if (written.failures.length > 0) {
          // What the proxy said about them, for whoever reads the failure.
          const log = await runLocal("docker", ["logs", "--tail", "400", await container("proxy")]);
          console.log(
            `# proxy errors:\n${`${log.stdout}\n${log.stderr}`
              .split("\n")
              .filter((l) => /\[(error|warn)\]|" 50[24] /.test(l))
              .slice(-20)
              .join("\n")}`,
          );
        }
        assert.deepEqual(written.failures, [], "every write through the proxy was acknowledged");
        assert.ok(written.acknowledged.length > 50, `only ${written.acknowledged.length} writes`);
        const names = written.acknowledged.map((n) => `'${n}'`).join(",");
        assert.equal(
          Number(await sql(`SELECT count(*) FROM items WHERE name IN (${names})`)),
          written.acknowledged.length,
          "every acknowledged write is in the database",
        );
        return counted;
      },
    };
  }

  test("(7a) a migration that waits for a lock gives up quickly and tries again; writes of the serving version go on; the holder is named when it never frees", async () => {
    // (a) The lock is never released during the deploy: each try is cancelled after 1 s, the
    // deploy fails at migrate naming the session, and nothing changed.
    const lock = await holdLock();
    const traffic = await trafficWithWrites("7a");
    const host = await render("v4", { migrationLockWaitSeconds: 1, migrationAttempts: 2 });
    await prepareAndCopy(h, host);
    const lines: string[] = [];
    const stamp = (chunk: string) => {
      for (const l of chunk.split("\n"))
        if (l.trim()) lines.push(`${traffic.since()} ms ${l.slice(0, 160)}`);
    };
    const r = await run(host, undefined, stamp);
    let counted: LoadResult;
    try {
      counted = await traffic.stop();
    } finally {
      await lock.release();
      timings.push(...lines);
    }
    timings.push(`(7a) lock never freed: ${r.seconds.toFixed(1)} s, exit ${r.result.code}`);
    failedAt(
      r,
      "migrate",
      /the migration waited for a lock 2 times, 1 s each \(deploy\.migrationLockWaitSeconds\), and was cancelled each time; the lock is held by session \d+ \(user clicky, application clicky-lock-holder, from local, active, transaction open \d+ s\); its transaction rolled back and no traffic was moved/,
    );
    assert.match(
      r.result.stdout,
      /migrate: the migration waited 1 s for a lock held by session \d+ .*: cancelled its statement .*; trying again in 2 s/,
    );
    await diagnose("(7a)", counted);
    noRequestFailed("(7a) during the migration that met a lock", counted, ["v1"]);
    assert.equal(await serving(), "v1");
    assert.equal(await revision(), "002", "nothing was migrated");
    assert.equal(await sql("SELECT to_regclass('audit_log') IS NULL"), "t", "003 rolled back");
    assert.deepEqual(await migrationContainers(PROJECT), [], "no migration container is left");
    await rowsIntact();
  });

  test("(7b) a migration whose lock frees after the first try migrates on the second; writes of the serving version go on", async () => {
    const lines: string[] = [];
    const stamp = (chunk: string) => {
      for (const l of chunk.split("\n"))
        if (l.trim()) lines.push(`${traffic.since()} ms ${l.slice(0, 160)}`);
    };
    // (b) The lock frees after the first try gave up: the second try migrates, the deploy
    // succeeds. The database is put back to revision 001 first, so v2's migration (an ALTER
    // TABLE items) has work to do.
    await sql(
      "ALTER TABLE items DROP COLUMN IF EXISTS price_cents; UPDATE alembic_version SET version_num = '001'",
    );
    const lock = await holdLock();
    const traffic = await trafficWithWrites("7b");
    const host = await render("v2", { migrationLockWaitSeconds: 1, migrationAttempts: 3 });
    await prepareAndCopy(h, host);
    // The holder ends as soon as the first try was cancelled: sessions waited for a lock (the
    // migration, and the writes queued behind it), then none does.
    const waits = new Set<string>();
    const released = (async () => {
      let seenWaiting = false;
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        const waiting = await sql(
          "SELECT string_agg(format('%s %s %s blocked by %s: %s', pid, application_name, wait_event, pg_blocking_pids(pid), left(query, 50)), ' | ') FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        ).catch(() => "");
        if (waiting !== "") {
          seenWaiting = true;
          waits.add(
            `${traffic.since()} ms: ${waiting.replace(/fault 7b-\d+/g, "…").slice(0, 300)}`,
          );
        } else if (seenWaiting) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await lock.release();
    })();
    const r = await run(host, undefined, stamp);
    let counted: LoadResult;
    try {
      counted = await traffic.stop();
    } finally {
      await released;
      timings.push(...lines, ...[...waits].slice(0, 30));
    }
    timings.push(`(7b) lock freed after one try: ${r.seconds.toFixed(1)} s, exit ${r.result.code}`);
    assert.equal(r.result.code, 0, output(r));
    assert.match(r.result.stdout, /migrate: running alembic upgrade head again \(attempt 2 of 3\)/);
    assert.match(r.result.stdout, /migrate: the migration finished in [\d.]+ s/);
    await diagnose("(7b)", counted);
    noRequestFailed("(7b) during the migration that waited once", counted, ["v1", "v2"]);
    assert.equal(await serving(), "v2");
    assert.equal(await revision(), "002");
    assert.deepEqual(await migrationContainers(PROJECT), []);
    await rowsIntact();
  });

  test(
    "(8) a release healthy on its health path but broken on its API never takes a request",
    V2_ONLY,
    async () => {
      const before = await currentTag();
      const host = await render("v6");
      await prepareAndCopy(h, host);
      const traffic = await load();
      const r = await run(host);
      const counted = await traffic.stop();
      timings.push(
        `(8) v6, API broken past its health check: ${r.seconds.toFixed(1)} s, exit ${r.result.code}`,
      );
      failedAt(
        r,
        "health",
        /GET \/api\/v1\/health on backend-(blue|green) answered 500 before the switch; no traffic was moved/,
      );
      assert.match(r.result.stdout, /health: backend-(blue|green) is healthy/);
      assert.doesNotMatch(r.result.stdout, /switch:/);
      noRequestFailed("(8) during the v6 deploy", counted, [before]);
      assert.equal(await serving(), before);
      assert.equal(await currentTag(), before);
      assert.equal((await composeContainers(PROJECT)).length, 4, "v6's slot was removed");
      await rowsIntact();
    },
  );

  /** Whether PostgreSQL takes `password` for the app's role, as the app connects. */
  async function passwordAccepted(password: string): Promise<boolean> {
    return passwordAcceptedIn(await container("postgres"), password);
  }

  async function rotationLines(): Promise<string> {
    const pg = await container("postgres");
    const r = await runLocal("docker", [
      "exec",
      pg,
      "sh",
      "-c",
      'grep -F "password rotation" "$(psql -X -At -U clicky -d clicky_db -c "SHOW hba_file")" || true',
    ]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  }

  /**
   * The old version's new connections, with the password it has (the old one), tried every
   * 300 ms (at most 10 times) from the moment the deploy says it changes the password while that
   * version serves, until the watch of the new version ended (then the drain stops the old one:
   * a try that meets it stopping or gone says nothing about the password and is not counted;
   * any other answer counts).
   */
  function reconnectsDuringRotation(name: string) {
    const answers: string[] = [];
    let done: Promise<void> | undefined;
    let closed = false;
    return {
      onStdout(chunk: string) {
        if (/watch: backend-\w+ stayed up for/.test(chunk)) closed = true;
        if (done || !/changing it; meanwhile backend-\w+, which still has the old one/.test(chunk))
          return;
        done = (async () => {
          for (let i = 0; i < 10 && !closed; i++) {
            const answer = await connectAsApp(name);
            if (answer !== "ok" && closed) break;
            answers.push(answer);
            await new Promise((r) => setTimeout(r, 300));
          }
        })();
      },
      async finish(): Promise<string[]> {
        assert.ok(done, "the deploy said it changes the password while the old version serves");
        await done;
        assert.ok(answers.length >= 2, `only ${answers.length} tries before the drain`);
        return answers;
      },
    };
  }

  async function servingBackend(): Promise<{ name: string; address: string }> {
    const names = [
      ...(await composeContainers(PROJECT, "backend-blue")),
      ...(await composeContainers(PROJECT, "backend-green")),
    ];
    assert.equal(names.length, 1, names.join(" "));
    const name = names[0] ?? "";
    const address = await containerAddress(name);
    return { name, address };
  }

  /**
   * A backend opens a new connection with its own DATABASE_URL, then, its sessions ended, its
   * pool reconnects for a write through the proxy.
   */
  async function reconnectsAndWrites(
    backend: { name: string; address: string },
    label: string,
  ): Promise<void> {
    assert.equal(await connectAsApp(backend.name), "ok");
    await sql(
      `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE client_addr = '${backend.address}'`,
    );
    const write = await httpPost(url("/items"), { name: `fault after ${label} through the app` });
    assert.equal(write.status, 201, write.body);
    rows++;
  }

  test(
    "(9) a password rotation whose new version fails its health gate: the role gets its old password back, the old version serves on and reconnects throughout",
    V2_ONLY,
    async () => {
      const before = await currentTag();
      assert.equal(await passwordAccepted(TEST_SECRETS.postgresPassword), true);
      const old = await servingBackend();
      const traffic = await trafficWithWrites("9");
      const reconnects = reconnectsDuringRotation(old.name);
      const host = await render(
        "v3",
        {
          health: {
            intervalSeconds: 1,
            probeTimeoutSeconds: 2,
            retries: 3,
            startPeriodSeconds: 2,
            timeoutSeconds: 8,
          },
        },
        undefined,
        {
          postgresPassword: ROTATED_PASSWORD,
        },
      );
      await prepareAndCopy(h, host);
      const r = await run(host, undefined, (chunk) => reconnects.onStdout(chunk));
      const connects = await reconnects.finish();
      const counted = await traffic.stop();
      timings.push(
        `(9) rotation with v3, undone: ${r.seconds.toFixed(1)} s, exit ${r.result.code}, new connections of the old version during it: ${JSON.stringify(connects)}`,
      );
      failedAt(r, "health", /backend-\w+ was not healthy after 8 s/);
      assert.match(
        r.result.stdout,
        /infra: PostgreSQL refuses the configured password for role clicky: changing it; meanwhile backend-\w+, which still has the old one, is trusted from its address [\d.]+ until it stops/,
      );
      assert.match(r.result.stdout, /infra: role clicky has the configured password/);
      assert.match(r.result.stdout, /undo: role clicky has its old password again/);
      assert.match(
        r.result.stdout,
        /undo: the password rotation is over: pg_hba.conf no longer trusts the address [\d.]+/,
      );
      assert.deepEqual(
        connects,
        Array(10).fill("ok"),
        "the old version's new connections were accepted throughout",
      );
      await diagnose("(9)", counted);
      noRequestFailed("(9) during the undone rotation", counted, [before]);
      assert.equal(await serving(), before);
      assert.equal(
        await passwordAccepted(TEST_SECRETS.postgresPassword),
        true,
        "the old password works again",
      );
      assert.equal(await passwordAccepted(ROTATED_PASSWORD), false, "the new one does not");
      assert.equal(await rotationLines(), "", "pg_hba.conf holds no rotation line");
      // The serving version opens new connections with its (old) password.
      await reconnectsAndWrites(old, "(9)");
      await rowsIntact();
    },
  );

  test("(10) a password rotation under reads and writes: zero failed requests while the old version reconnects with the old password, every write kept; the new version uses the new one", async () => {
    const before = await currentTag();
    const old = await servingBackend();
    const traffic = await trafficWithWrites("10");
    const reconnects = reconnectsDuringRotation(old.name);
    const host = await render(before, {}, undefined, { postgresPassword: ROTATED_PASSWORD });
    await prepareAndCopy(h, host);
    const r = await run(host, undefined, (chunk) => reconnects.onStdout(chunk));
    const connects = await reconnects.finish();
    const counted = await traffic.stop();
    timings.push(
      `(10) rotation: ${r.seconds.toFixed(1)} s, exit ${r.result.code}, new connections of the old version during it: ${JSON.stringify(connects)}`,
    );
    assert.equal(r.result.code, 0, output(r));
    assert.match(
      r.result.stdout,
      /drain: the password rotation is over: pg_hba.conf no longer trusts the address [\d.]+/,
    );
    assert.deepEqual(
      connects,
      Array(connects.length).fill("ok"),
      "the old version's new connections were accepted throughout",
    );
    await diagnose("(10)", counted);
    noRequestFailed("(10) during the rotation", counted, [before]);
    assert.equal(await passwordAccepted(ROTATED_PASSWORD), true, "the new password works");
    assert.equal(
      await passwordAccepted(TEST_SECRETS.postgresPassword),
      false,
      "the old one no longer does",
    );
    assert.equal(await rotationLines(), "", "pg_hba.conf holds no rotation line");
    // The new version reconnects with the new password.
    const now = await servingBackend();
    assert.notEqual(now.name, old.name);
    await reconnectsAndWrites(now, "(10)");
    await rowsIntact();
    // Nothing left to do: the same config again changes nothing.
    const again = await run(host);
    assert.equal(again.result.code, 0, output(again));
    assert.match(again.result.stdout, /nothing to do/);
  });
  test("(11) a dump that fails after the switch (nothing to migrate, so the new version started beside it): traffic goes back, no partial dump is left", async () => {
    const before = await currentTag();
    const kept = await backups();
    // A session holds a lock that pg_dump needs, so the dump is still running when the new
    // version serves; once the watch has begun, the dump's container is killed.
    const holder = await blockDumps("fault_dump_block");
    const host = await render(
      before,
      { app: { env: { APP_ENV: "e2e", FAULT_SCENARIO: "11" } } },
      undefined,
      { postgresPassword: ROTATED_PASSWORD },
    );
    await prepareAndCopy(h, host);
    const traffic = await load();
    let killed: Promise<CommandResult> | undefined;
    const r = await run(host, undefined, (chunk) => {
      if (killed || !/watch: watching backend-/.test(chunk)) return;
      killed = runLocal("docker", ["ps", "-q", "--filter", `name=${PROJECT}-backup-`]).then((ps) =>
        runLocal("docker", ["kill", ...ps.stdout.trim().split("\n")]),
      );
    });
    const kill = await killed;
    const counted = await traffic.stop();
    await holder.release();
    timings.push(
      `(11) dump killed after the switch: ${r.seconds.toFixed(1)} s, exit ${r.result.code}`,
    );
    assert.equal(kill?.code, 0, `the dump's container was killed: ${kill?.stderr}`);
    assert.match(
      r.result.stdout,
      /migrate: nothing to migrate \(alembic current --check-heads exited 0 in [\d.]+ s\)/,
    );
    failedAt(r, "backup", /at step backup: pg_dump of clicky_db failed/);
    assert.match(r.result.stdout, /switch: the proxy sends traffic to backend-/);
    assert.match(r.result.stdout, /undo: traffic is back on backend-/);
    await servesOnWithoutDump(r, "(11)", "during the deploy whose dump failed", counted, {
      before,
      kept,
    });
  });

  test(
    "(12) a dump that never ends: the deploy gives up at backup.timeoutSeconds, the dump's container and partial file go, traffic goes back",
    V2_ONLY,
    async () => {
      const before = await currentTag();
      const kept = await backups();
      // pg_dump waits behind a session's lock for as long as that session lives: a dump that hangs.
      const holder = await blockDumps("fault_dump_hang");
      const host = await render(
        before,
        {
          app: { env: { APP_ENV: "e2e", FAULT_SCENARIO: "12" } },
          backup: { keep: 5, minFreeMiB: 10, timeoutSeconds: 3 },
        },
        undefined,
        { postgresPassword: ROTATED_PASSWORD },
      );
      await prepareAndCopy(h, host);
      const traffic = await load();
      const r = await run(host);
      const counted = await traffic.stop();
      const left = await runLocal("docker", ["ps", "-aq", "--filter", `name=${PROJECT}-backup-`]);
      await holder.release();
      timings.push(`(12) dump past its timeout: ${r.seconds.toFixed(1)} s, exit ${r.result.code}`);
      failedAt(
        r,
        "backup",
        /at step backup: the dump of clicky_db did not finish within 3 s \(backup\.timeoutSeconds\); it was stopped and no partial dump is kept/,
      );
      assert.match(r.result.stdout, /switch: the proxy sends traffic to backend-/);
      assert.match(r.result.stdout, /undo: traffic is back on backend-/);
      assert.equal(left.stdout.trim(), "", "the dump's container was removed");
      await servesOnWithoutDump(r, "(12)", "during the deploy whose dump never ended", counted, {
        before,
        kept,
      });
    },
  );
});
