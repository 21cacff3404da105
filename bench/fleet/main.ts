/**
 * `npm run bench:fleet`: what a fleet costs and carries (docs/scaling.md), on three harness hosts
 * (test/harness/hosts.ts: two app hosts and an accessories host, each with its own sshd and
 * Docker engine) behind a front nginx on the test side.
 *
 * 1. Capacity of one app host: open-loop GETs of `/version` through the front nginx to one app
 *    host's proxy, at rising rates, 8 s each: requests/s, failures, p50 and p99 latency. The
 *    load generator, the front nginx and the three hosts share this machine's cores.
 * 2. Rollout cost per app host: rollouts alternating v2 and v1 (no migration) to one app host,
 *    then to two, each under a steady load through the front nginx over the hosts rolled; wall
 *    time, failed requests, and when each phase started. The cost of an added host is the
 *    difference of the medians, measured in the same run.
 *
 * Prints the tables and writes the run's numbers to bench/results/fleet-<UTC time>.json.
 * Options: `--runs N` (default 3), `--rate R` (requests/s during rollouts, default 100).
 * Needs what the e2e needs (root, Docker; test/harness/provision.sh).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  ensureHarness,
  ensureHosts,
  type FleetHost,
  harnessAvailability,
  REPO_ROOT,
  resetHosts,
  startFrontBalancer,
  startLoad,
  stopHosts,
} from "../../test/harness";
import { FLEET_PROXY_PORT, fleetDeployConfig, runFleetRollout } from "../../test/support/fleet";

const CAPACITY_RATES = [100, 200, 400, 800, 1200, 1600];
const CAPACITY_SECONDS = 8;
/** The p99 a host must stay under to carry a rate. */
const P99_LIMIT_MS = 100;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { runs: { type: "string" }, rate: { type: "string" } },
    strict: true,
  });
  const runs = Number(values.runs ?? 3);
  const rate = Number(values.rate ?? 100);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs: expected a whole number ≥ 1, got ${values.runs}`);
  if (!(rate > 0 && rate <= 2000)) throw new Error(`--rate: expected 1..2000, got ${values.rate}`);
  const availability = harnessAvailability();
  if (!availability.ok) throw new Error(`the bench cannot run here: ${availability.reason}`);

  const h = await ensureHarness();
  const hosts = await ensureHosts(["bapp1", "bapp2", "bdb1"], { firstIndex: 31, harness: h });
  const [app1, app2, db] = hosts as [FleetHost, FleetHost, FleetHost];
  await resetHosts(hosts, { images: true });
  const upstream = (x: FleetHost) => `${x.address}:${FLEET_PROXY_PORT}`;
  const result: Record<string, unknown> = {
    kind: "clicky-delivery fleet bench",
    at: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
    },
    runs,
    rate,
  };
  try {
    const setup = await runFleetRollout(
      h,
      hosts,
      fleetDeployConfig(h, { apps: [app1, app2], db }, "v1"),
    );
    if (setup.code !== 0) throw new Error(`the first rollout failed:\n${setup.stderr}`);

    // 1. One app host's capacity through the front nginx and its own proxy.
    const one = await startFrontBalancer({ upstreams: [upstream(app1)] });
    const capacity: Record<string, number>[] = [];
    try {
      for (const r of CAPACITY_RATES) {
        const load = startLoad({
          url: `${one.url}/version`,
          ratePerSecond: r,
          keepAlive: true,
          durationMs: CAPACITY_SECONDS * 1000,
        });
        const c = await load.done;
        const row = {
          rate: r,
          sent: c.sent,
          failed: c.errorsTotal + c.non2xxTotal,
          skipped: c.skipped,
          p50: c.latencyMs.p50,
          p99: c.latencyMs.p99,
        };
        capacity.push(row);
        console.log(`capacity ${r}/s: ${JSON.stringify(row)}`);
      }
    } finally {
      await one.stop();
    }
    result.capacity = capacity;
    const carried = capacity.filter(
      (c) => (c.p99 ?? Infinity) < P99_LIMIT_MS && c.failed === 0 && c.skipped === 0,
    );
    result.carriesPerSecond = carried.length ? Math.max(...carried.map((c) => c.rate ?? 0)) : 0;

    // 2. Rollouts to one app host, then to two; tags alternate so each rollout changes the image.
    const rollouts: Record<string, unknown>[] = [];
    let tag = "v2";
    for (const apps of [[app1], [app1, app2]]) {
      const front = await startFrontBalancer({ upstreams: apps.map(upstream) });
      try {
        for (let i = 0; i < runs; i++) {
          const load = startLoad({
            url: `${front.url}/version`,
            ratePerSecond: rate,
            keepAlive: "mixed",
            durationMs: 5 * 60_000,
          });
          const run = await runFleetRollout(
            h,
            hosts,
            fleetDeployConfig(h, { apps, db }, tag, { migrate: false }),
          );
          const c = await load.stop();
          const row = {
            appHosts: apps.length,
            tag,
            ok: run.code === 0,
            seconds: run.seconds,
            sent: c.sent,
            failed: c.errorsTotal + c.non2xxTotal,
            p99: c.latencyMs.p99,
            phases: run.phases,
          };
          rollouts.push(row);
          console.log(
            `rollout to ${apps.length} app host(s), ${tag}: ${run.seconds.toFixed(1)} s, ${row.failed} failed of ${c.sent}, phases ${JSON.stringify(run.phases)}`,
          );
          if (run.code !== 0) throw new Error(`rollout failed:\n${run.stdout}\n${run.stderr}`);
          tag = tag === "v2" ? "v1" : "v2";
        }
      } finally {
        await front.stop();
      }
    }
    result.rollouts = rollouts;
    const secondsOf = (n: number) =>
      median(rollouts.filter((r) => r.appHosts === n).map((r) => r.seconds as number));
    result.medianSeconds = { oneAppHost: secondsOf(1), twoAppHosts: secondsOf(2) };
    result.perAddedHostSeconds = secondsOf(2) - secondsOf(1);
  } finally {
    await stopHosts(hosts).catch(() => undefined);
  }

  const cap = result.capacity as Record<string, number>[];
  console.log(
    "\n| rate (requests/s) | sent | failed | skipped | p50 (ms) | p99 (ms) |\n| --- | --- | --- | --- | --- | --- |",
  );
  for (const c of cap)
    console.log(
      `| ${c.rate} | ${c.sent} | ${c.failed} | ${c.skipped} | ${c.p50?.toFixed(1)} | ${c.p99?.toFixed(1)} |`,
    );
  console.log(
    `\none app host carries ${result.carriesPerSecond} requests/s with p99 < ${P99_LIMIT_MS} ms and no failure`,
  );
  const med = result.medianSeconds as { oneAppHost: number; twoAppHosts: number };
  const rows = result.rollouts as { appHosts: number; failed: number; sent: number }[];
  const failed = rows.reduce((n, r) => n + r.failed, 0);
  const sent = rows.reduce((n, r) => n + r.sent, 0);
  console.log(
    `\n| app hosts | median rollout (s) |\n| --- | --- |\n| 1 | ${med.oneAppHost.toFixed(1)} |\n| 2 | ${med.twoAppHosts.toFixed(1)} |`,
  );
  console.log(
    `\nper added app host: ${(result.perAddedHostSeconds as number).toFixed(1)} s; failed requests during the rollouts: ${failed} of ${sent}`,
  );
  const dir = path.join(REPO_ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(
    dir,
    `fleet-${(result.at as string).replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}.json`,
  );
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(REPO_ROOT, file)}`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`bench:fleet: ${(e as Error).message}`);
    process.exit(1);
  },
);
