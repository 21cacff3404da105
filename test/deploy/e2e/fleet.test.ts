/**
 * A fleet end to end (docs/scaling.md): three machines on this one, each a network and mount
 * namespace with its own sshd and Docker engine (test/harness/hosts.ts): two app hosts and an
 * accessories host running PostgreSQL and Redis. A front load balancer (nginx, on the test side)
 * spreads the load over the two app hosts' proxies, as a cloud load balancer would.
 *
 * Every rollout runs what the program registers (rendered under Pulumi's mocks): each host's
 * prepare command and copies over SSH, then the rollout command itself, `node --import tsx
 * src/deploy/fleet/cli.ts` from the project directory with the plan in its environment and the
 * secrets on stdin, as Pulumi's local command runs it.
 *
 * Scenarios, in order: (0) an app host that still runs a single host's PostgreSQL refuses to
 * switch (its data would be left behind), and the host before it goes back; (1) first rollout; (2) upgrade with a migration under 200 requests/s and
 * acknowledged writes: zero failed requests, every write kept, the migration ran once; (3) the
 * second app host's new version dies in its health gate: the rollout stops, the first host goes
 * back, zero failed requests; (4) the second app host drops off the network mid-switch and comes
 * back 20 s later: the rollout fails, both hosts serve the old version, zero failed requests;
 * (5) a rollout while another one holds the stack's lock changes nothing; (6) the same stack with
 * an external database (db1's PostgreSQL and Redis, given as URLs): the dump and the migration
 * run from the first app host, under load and writes, zero failed requests.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import {
  dockerOnHost,
  e2eSkip,
  ensureHarness,
  ensureHosts,
  type FleetHost,
  type FrontBalancer,
  type Harness,
  harnessAvailability,
  hostHolderPid,
  psqlInContainer,
  registryForHosts,
  resetHosts,
  runOnHost,
  setHostReachable,
  startFrontBalancer,
  startLoad,
  startWriter,
  stopHosts,
} from "../../harness";
import { databaseUrl } from "../../../src/deploy/stdin";
import {
  FLEET_APP_DIR,
  FLEET_PROJECT,
  FLEET_PROXY_PORT,
  type FleetRolloutRun,
  fleetDeployConfig,
  runFleetRollout,
} from "../../support/fleet";
import { TEST_SECRETS } from "../../support/render";

const availability = harnessAvailability();
const skip = e2eSkip("fleet e2e");

/** The fleet's hosts: names in the stack config and in the harness are the same. */
const APP_HOSTS = ["app1", "app2"] as const;
const DB_HOST = "db1";
/** Host indexes 21..23 (10.231.0.31-33): apart from other suites' hosts. */
const FIRST_INDEX = 21;
const APP_DIR = FLEET_APP_DIR;
const PROJECT = FLEET_PROJECT;
const PROXY_PORT = FLEET_PROXY_PORT;

describe("a fleet of two app hosts and an accessories host, end to end", { skip }, () => {
  let h: Harness;
  let hosts: FleetHost[] = [];
  let front: FrontBalancer;
  const byName = (name: string) => {
    const host = hosts.find((x) => x.name === name);
    if (!host) throw new Error(`no host ${name}`);
    return host;
  };
  const timings: string[] = [];

  before(
    async () => {
      if (!availability.ok)
        throw new Error(`CI=true but e2e cannot run here: ${availability.reason}`);
      h = await ensureHarness();
      hosts = await ensureHosts([...APP_HOSTS, DB_HOST], { firstIndex: FIRST_INDEX, harness: h });
      await resetHosts(hosts, { images: true });
      front = await startFrontBalancer({
        upstreams: APP_HOSTS.map((n) => `${byName(n).address}:${PROXY_PORT}`),
      });
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    if (timings.length > 0) console.log(`# fleet timings:\n# ${timings.join("\n# ")}`);
    await front?.stop().catch(() => undefined);
    if (hosts.length > 0) await stopHosts(hosts).catch(() => undefined);
  });

  /** The stack's deploy section for a backend tag. */
  function fleetConfig(tag: string, extra: Record<string, unknown> = {}) {
    const fleet = { apps: APP_HOSTS.map(byName), db: byName(DB_HOST) };
    // A 2 s watch per host (the fault suites test the watch itself): CI's time goes to rollouts.
    return fleetDeployConfig(h, fleet, tag, { watchSeconds: 2, ...extra });
  }

  /** One `pulumi up` of the fleet (runFleetRollout); its phases go to the report. */
  async function rolloutOf(
    deploy: Record<string, unknown>,
    during?: (output: () => string) => Promise<void>,
    secrets?: Readonly<Record<string, string>>,
  ): Promise<FleetRolloutRun> {
    const run = await runFleetRollout(h, hosts, deploy, during, secrets);
    for (const [host, phase, at] of run.phases) timings.push(`  ${host} ${phase} at ${at} s`);
    for (const [host, steps] of run.steps) timings.push(`  ${host}: ${steps}`);
    return run;
  }

  /** Waits until the rollout's output matches. */
  async function until(output: () => string, pattern: RegExp, timeoutMs = 120_000) {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(output())) {
      if (Date.now() > deadline)
        throw new Error(`the rollout never printed ${pattern}:\n${output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The image of the backend container that serves on an app host (one runs between rollouts). */
  async function servingImages(name: string): Promise<string[]> {
    const host = byName(name);
    const ps = await dockerOnHost(host, [
      "ps",
      "-q",
      "--filter",
      `label=com.docker.compose.project=${PROJECT}`,
      "--filter",
      "label=org.clicky.slot",
    ]);
    const ids = ps.stdout.split("\n").filter(Boolean);
    if (ids.length === 0) return [];
    const r = await dockerOnHost(host, ["inspect", "-f", "{{.Config.Image}}", ...ids]);
    return r.stdout.split("\n").filter(Boolean).sort();
  }

  /** SQL in the accessories host's PostgreSQL. */
  function sql(query: string): Promise<string> {
    return psqlInContainer(`${PROJECT}-postgres-1`, query, {
      dockerHost: byName(DB_HOST).dockerHost,
    });
  }

  function ref(tag: string): string {
    const digest = h.images.backend.tags[tag]?.digest;
    return `${registryForHosts(h)}/clicky/backend@${digest}`;
  }

  /** Reads through the front balancer (200 requests/s unless told), half on reused connections. */
  function reads(ratePerSecond = 200) {
    return startLoad({
      url: `${front.url}/version`,
      ratePerSecond,
      keepAlive: "mixed",
      durationMs: 5 * 60_000,
    });
  }

  /**
   * A rollout that must succeed, under 200 requests/s of reads and 20 acknowledged writes/s
   * through the front balancer: no request fails, every write is acknowledged and in the
   * database. Returns the rollout and the reads' counts for the scenario's own checks.
   */
  async function successUnderWrites(
    label: string,
    prefix: string,
    rollout: () => Promise<FleetRolloutRun>,
  ) {
    const load = reads();
    const writes = startWriter({
      url: `${front.url}/items`,
      ratePerSecond: 20,
      prefix,
      requestTimeoutMs: 10_000,
    });
    const run = await rollout();
    await new Promise((r) => setTimeout(r, 500));
    const [counted, written] = await Promise.all([load.stop(), writes.stop()]);
    timings.push(
      `${label}: ${run.seconds.toFixed(1)} s; ${counted.sent} requests, p99 ${counted.latencyMs.p99} ms; ${written.acknowledged.length} writes`,
    );
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.equal(
      counted.errorsTotal + counted.non2xxTotal,
      0,
      `failed: ${JSON.stringify(counted.failures.slice(0, 5))}`,
    );
    assert.deepEqual(written.failures, [], "every write was acknowledged");
    assert.ok(written.acknowledged.length > 50, `only ${written.acknowledged.length} writes`);
    const names = written.acknowledged.map((n) => `'${n}'`).join(",");
    assert.equal(
      Number(await sql(`SELECT count(*) FROM items WHERE name IN (${names})`)),
      written.acknowledged.length,
      "every acknowledged write is in the database",
    );
    return { run, counted };
  }

  test("(0) an app host that still runs a single host's own PostgreSQL refuses to switch: its data is not on db1 yet", {
    timeout: 10 * 60_000,
  }, async () => {
    // app2 as a former single host: the project's postgres container still runs there.
    const app2 = byName("app2");
    const name = `${PROJECT}-postgres-1`;
    const labels = [`project=${PROJECT}`, "service=postgres", "oneoff=False"].flatMap((l) => [
      "--label",
      `com.docker.compose.${l}`,
    ]);
    const started = await dockerOnHost(app2, [
      "run",
      "-d",
      "--name",
      name,
      ...labels,
      "--entrypoint",
      "sleep",
      h.images.base,
      "600",
    ]);
    assert.equal(started.code, 0, started.stderr);
    try {
      const run = await rolloutOf(fleetConfig("v1"));
      timings.push(`(0) refused on app2: ${run.seconds.toFixed(1)} s`);
      assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
      assert.match(
        run.stderr,
        /app2 still runs this project's own PostgreSQL \(clickyfleet-postgres-1\), which holds the data of a single-host deploy/,
      );
      assert.match(
        run.stderr,
        /rollout FAILED at app2 .*went back to the previous version on app1/,
      );
      // app1 had served nothing before: it serves nothing again.
      assert.deepEqual(await servingImages("app1"), []);
    } finally {
      await dockerOnHost(app2, ["rm", "-f", name]);
    }
  });

  test("(1) the first rollout: database side on db1, then app1 and app2; both serve through the front balancer", {
    timeout: 10 * 60_000,
  }, async () => {
    const run = await rolloutOf(fleetConfig("v1"));
    timings.push(`(1) first rollout: ${run.seconds.toFixed(1)} s`);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const out = run.stdout;
    const order = [
      "[db1] database: starting",
      "[app1] switch: starting",
      "[app2] switch: starting",
      "[app1] commit: starting",
      "[app2] commit: starting",
    ];
    const at = order.map((line) => out.indexOf(line));
    assert.ok(
      at.every((i, n) => i >= 0 && (n === 0 || i > (at[n - 1] ?? 0))),
      `phases in order:\n${out}`,
    );
    for (const name of APP_HOSTS) assert.deepEqual(await servingImages(name), [ref("v1")], name);
    // No app container on the accessories host, no database on the app hosts.
    assert.deepEqual(await servingImages(DB_HOST), []);
    for (const name of APP_HOSTS) {
      const ps = await dockerOnHost(byName(name), ["ps", "--format", "{{.Names}}"]);
      assert.doesNotMatch(ps.stdout, /postgres|redis/, `${name} runs no database`);
    }
    assert.equal(await sql("SELECT count(*) FROM items"), "3");
    // Both app hosts answer through the front balancer.
    const load = startLoad({ url: `${front.url}/version`, ratePerSecond: 50, durationMs: 2000 });
    const result = await load.done;
    assert.equal(
      result.errorsTotal + result.non2xxTotal,
      0,
      JSON.stringify(result.failures.slice(0, 3)),
    );
  });

  test("(2) an upgrade with a migration under 200 requests/s and writes: zero failed requests, every acknowledged write kept, one migration", {
    timeout: 10 * 60_000,
  }, async () => {
    const { run, counted } = await successUnderWrites(
      "(2) upgrade under load",
      "fleet-upgrade",
      () => rolloutOf(fleetConfig("v2")),
    );
    assert.ok(counted.sent > 1000, `only ${counted.sent} requests`);
    assert.equal(await sql("SELECT version_num FROM alembic_version"), "002");
    assert.equal(
      (run.stdout.match(/running alembic upgrade head/g) ?? []).length,
      1,
      "the migration ran once",
    );
    for (const name of APP_HOSTS) assert.deepEqual(await servingImages(name), [ref("v2")], name);
    assert.ok(
      counted.versions.v1 && counted.versions.v2,
      `both versions answered during the rollout: ${JSON.stringify(counted.versions)}`,
    );
    // A backup was taken on the accessories host before the migration.
    const backups = await runOnHost(byName(DB_HOST), "sh", ["-c", `ls ${APP_DIR}/backups`]);
    assert.match(backups.stdout, /staging-.*-v2\.dump/);
  });

  test("(3) the second app host's new version dies in its health gate: the rollout stops and the first host goes back; zero failed requests", {
    timeout: 10 * 60_000,
  }, async () => {
    const load = reads(100);
    const run = await rolloutOf(fleetConfig("v1", { migrate: false }), async (output) => {
      await until(output, /\[app2\] switch: starting/);
      // The host's kernel kills the new container (as an out-of-memory kill would).
      const app2 = byName("app2");
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const ps = await dockerOnHost(app2, ["ps", "-q", "--filter", `ancestor=${ref("v1")}`]);
        const id = ps.stdout.trim().split("\n")[0];
        if (id) {
          await dockerOnHost(app2, ["kill", id]);
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error("app2 never started the new version");
    });
    await new Promise((r) => setTimeout(r, 500));
    const counted = await load.stop();
    timings.push(`(3) failed on app2: ${run.seconds.toFixed(1)} s; ${counted.sent} requests`);
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stderr, /rollout FAILED at app2 .*went back to the previous version on app1/);
    assert.match(run.stdout, /\[app1\] .*revert: traffic is back on backend-\w+/);
    assert.equal(
      counted.errorsTotal + counted.non2xxTotal,
      0,
      `failed: ${JSON.stringify(counted.failures.slice(0, 5))}`,
    );
    for (const name of APP_HOSTS) assert.deepEqual(await servingImages(name), [ref("v2")], name);
    const pending = await runOnHost(byName("app1"), "sh", [
      "-c",
      `test -e ${APP_DIR}/state/fleet-pending && echo left || echo none`,
    ]);
    assert.equal(pending.stdout.trim(), "none");
  });

  test("(4) the second app host drops off the network mid-switch and is back 20 s later: the rollout fails, both serve the old version; zero failed requests", {
    timeout: 10 * 60_000,
  }, async () => {
    const load = reads(100);
    const app2 = byName("app2");
    const run = await rolloutOf(fleetConfig("v1", { migrate: false }), async (output) => {
      await until(output, /\[app2\] switch: starting/);
      await new Promise((r) => setTimeout(r, 1000));
      await setHostReachable(app2, false);
      await new Promise((r) => setTimeout(r, 20_000));
      await setHostReachable(app2, true);
    });
    await new Promise((r) => setTimeout(r, 500));
    const counted = await load.stop();
    timings.push(
      `(4) app2 cut off for 20 s: ${run.seconds.toFixed(1)} s; ${counted.sent} requests, p99 ${counted.latencyMs.p99} ms`,
    );
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    assert.equal(
      counted.errorsTotal + counted.non2xxTotal,
      0,
      `failed: ${JSON.stringify(counted.failures.slice(0, 5))}`,
    );
    for (const name of APP_HOSTS) assert.deepEqual(await servingImages(name), [ref("v2")], name);
    for (const name of APP_HOSTS) {
      const pending = await runOnHost(byName(name), "sh", [
        "-c",
        `test -e ${APP_DIR}/state/fleet-pending && echo left || echo none`,
      ]);
      assert.equal(pending.stdout.trim(), "none", name);
    }
  });

  test("(5) a rollout while another holds the stack's lock changes nothing", {
    timeout: 5 * 60_000,
  }, async () => {
    const db = byName(DB_HOST);
    const holder = spawn(
      "nsenter",
      [
        "-t",
        String(hostHolderPid(db)),
        "-n",
        "-m",
        "-u",
        "--",
        "su",
        "deploy",
        "-s",
        "/bin/bash",
        "-c",
        `exec 9>>${APP_DIR}/state/fleet.lock; flock 9; echo held; sleep 60`,
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
    try {
      const run = await rolloutOf(fleetConfig("v1", { migrate: false }));
      assert.equal(run.code, 1);
      assert.match(run.stderr, /another rollout of this stack holds .*fleet\.lock on db1/);
      assert.doesNotMatch(run.stdout, /database: starting/);
      for (const name of APP_HOSTS) assert.deepEqual(await servingImages(name), [ref("v2")], name);
    } finally {
      holder.kill();
    }
  });
  test("(6) the same stack with an external database (db1's PostgreSQL and Redis given as URLs): a dump from app1, the migration from app1, both app hosts switched under 200 requests/s and writes; zero failed requests, every write kept", {
    timeout: 10 * 60_000,
  }, async () => {
    const db = byName(DB_HOST);
    const secrets = {
      databaseUrl: databaseUrl(
        { name: "clicky_db", user: "clicky", urlScheme: "postgresql+asyncpg" },
        TEST_SECRETS.postgresPassword,
        `${db.address}:5432`,
      ),
      redisUrl: `redis://${db.address}:6379/0`,
    };
    const deploy = fleetDeployConfig(h, { apps: APP_HOSTS.map(byName) }, "v2", {
      app: { env: { APP_ENV: "e2e-fleet-external" } },
      watchSeconds: 2,
    });
    const { run } = await successUnderWrites("(6) external database", "fleet-external", () =>
      rolloutOf(deploy, undefined, secrets),
    );
    assert.match(run.stdout, /\[app1\] the stack's lock is held/);
    assert.match(run.stdout, /\[app1\] database: starting/);
    assert.match(run.stdout, /\[app1\] .*backup: dumping the external database to /);
    assert.match(
      run.stdout,
      /\[app1\] .*backup: database saved to .*verified with pg_restore --list/,
    );
    assert.match(run.stdout, /\[app1\] .*migrate: the migration finished/);
    for (const name of APP_HOSTS) assert.deepEqual(await servingImages(name), [ref("v2")], name);
    // The dump is kept in app1's backups (the script read it back with pg_restore --list).
    const dumps = await runOnHost(byName("app1"), "sh", ["-c", `ls ${APP_DIR}/backups`]);
    assert.match(dumps.stdout, /staging-.*-v2\.dump/);
    // No secret in what the rollout printed.
    for (const value of [TEST_SECRETS.postgresPassword, secrets.databaseUrl]) {
      assert.ok(!`${run.stdout}${run.stderr}`.includes(value), "no secret in the output");
    }
  });
});
