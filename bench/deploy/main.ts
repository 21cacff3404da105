/**
 * `npm run bench:deploy`: our deploy against the spec's procedure, on the e2e harness (real
 * OpenSSH, Docker engine, registry, PostgreSQL), under a steady HTTP load, with a database of
 * at least 1 GiB. Per run: the spec's procedure (baseline) from v1 to v2; our deploy from v1
 * to v2 with a migration; our deploy of a version that never gets healthy (v3); our rollback
 * to v1. It prints the table of medians and writes docs/benchmarks.md and the latency plot
 * docs/deploy-latency.png from the same measurements (raw data: out/bench/deploy.json).
 *
 * Needs what the e2e needs (root, Docker; test/harness/provision.sh sets it up), installs
 * nothing. Options: --runs N (3), --rate R (200 requests/s), --db-gib G (1), --no-docs.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { downgradeCommands } from "../../src/deploy/runbooks";
import { e2eDeployConfig, e2eSecrets } from "../../test/deploy/support/e2e-config";
import { type RenderedHost, renderStack } from "../../test/deploy/support/render";
import {
  type CommandResult,
  cleanupProject,
  composeContainers,
  copyOverSsh,
  prepareAndCopy,
  ensureHarness,
  freePort,
  type Harness,
  harnessAvailability,
  type LoadSample,
  psqlInContainer,
  REPO_ROOT,
  runLocal,
  runOverSsh,
  startLoad,
  waitForHttp,
} from "../../test/harness";
import {
  type BaselineProject,
  baselineComposeFile,
  baselineEnv,
  baselineLogin,
  baselineProcedure,
  baselineSetVersion,
  baselineUp,
} from "./baseline";
import { type PlotPanel, plotLatency } from "./plot";
import {
  failureKinds,
  type Measurement,
  median,
  resultsTable,
  runsTable,
  SCENARIOS,
  type ScenarioId,
  type Summary,
  stepsTable,
  summarize,
  targets,
} from "./report";

const args = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} needs a positive number`);
  return value;
}
const RUNS = option("runs", 3);
const RATE = option("rate", 200);
const DB_GIB = option("db-gib", 1);
const WRITE_DOCS = !args.includes("--no-docs");
const PRE_ROLL_MS = 2000;
const POST_ROLL_MS = 2000;

const OURS_DIR = "/home/deploy/clicky-bench-ours";
const OURS_PROJECT = "clickybenchours";
const BASE_DIR = "/home/deploy/clicky-bench-baseline";
const BASE_PROJECT = "clickybenchbase";

function say(text: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function must(what: string, r: Promise<CommandResult>): Promise<string> {
  const done = await r;
  if (done.code !== 0) {
    throw new Error(`${what} failed (exit ${done.code}):\n${done.stdout}\n${done.stderr}`);
  }
  return done.stdout;
}

interface Bench {
  readonly h: Harness;
  readonly oursPort: number;
  readonly baseline: BaselineProject;
}

/** Our program's registrations for one deploy: defaults, except where the harness differs. */
async function renderOurs(b: Bench, tag: string, extra: Record<string, unknown> = {}) {
  const harnessConfig = e2eDeployConfig(b.h, b.oursPort, { tag });
  const deploy = {
    appDir: OURS_DIR,
    composeProject: OURS_PROJECT,
    hosts: [{ ...(harnessConfig.hosts as Record<string, unknown>[])[0], name: "bench" }],
    image: harnessConfig.image,
    images: harnessConfig.images,
    proxy: harnessConfig.proxy,
    app: { env: { APP_ENV: "bench" } },
    ...extra,
  };
  const rendered = await renderStack({ deploy, secrets: e2eSecrets(b.h) });
  if (rendered.run.error) throw new Error(String(rendered.run.error));
  const host = rendered.hosts[0];
  if (!host) throw new Error("the program registered no deploy");
  return host;
}

/** Prepare, copies and the deploy script, in Pulumi's order, over SSH. */
async function runOurs(
  b: Bench,
  host: RenderedHost,
  onOutput?: (chunk: string, stream: "stdout" | "stderr") => void,
): Promise<CommandResult> {
  await prepareAndCopy(b.h, host);
  return runOverSsh(b.h, host.script, {
    stdin: host.stdin,
    timeoutMs: 10 * 60_000,
    ...(onOutput ? { onOutput } : {}),
  });
}

async function postgresOf(project: string): Promise<string> {
  const [name] = await composeContainers(project, "postgres");
  if (!name) throw new Error(`${project} has no postgres container`);
  return name;
}

/** psql in a container, with room for the bench's long statements (filling 1 GiB). */
function psql(container: string, sql: string): Promise<string> {
  return psqlInContainer(container, sql, { timeoutMs: 30 * 60_000 });
}

/**
 * Fills a table with pseudo-random text (md5 hex, which compresses about as well as real
 * application data; no repeated strings that would flatter compression) until the database is
 * at least `gib` GiB, and returns its size in bytes.
 */
async function fillDatabase(container: string, gib: number): Promise<number> {
  await psql(
    container,
    "CREATE TABLE IF NOT EXISTS bench_payload (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, owner text NOT NULL, payload text NOT NULL)",
  );
  const size = async () =>
    Number(await psql(container, "SELECT pg_database_size(current_database())"));
  let bytes = await size();
  while (bytes < gib * 2 ** 30) {
    await psql(
      container,
      `INSERT INTO bench_payload SELECT g, now() - g * interval '1 second', 'user-' || (g % 100000), md5(g::text) || md5((g + 1)::text) || md5((g * 3)::text) || md5((g * 7)::text) || md5((g * 11)::text) || md5((g * 13)::text) FROM generate_series(coalesce((SELECT max(id) FROM bench_payload), 0) + 1, coalesce((SELECT max(id) FROM bench_payload), 0) + 500000) g`,
    );
    bytes = await size();
  }
  await psql(container, "VACUUM ANALYZE bench_payload");
  return size();
}

/** The spec-shaped project, on v1, its images in the registry like the backend's. */
async function setUpBaseline(b: Bench): Promise<void> {
  const { h, baseline } = b;
  await cleanupProject(h, baseline.dir, baseline.project);
  await must("baseline dir", runOverSsh(h, `mkdir -p -m 750 ${baseline.dir}`));
  await copyOverSsh(h, [
    { remotePath: `${baseline.dir}/docker-compose.yml`, content: baselineComposeFile(baseline) },
    { remotePath: `${baseline.dir}/.env`, content: baselineEnv(baseline, "v1"), mode: 0o600 },
  ]);
  await must(
    "baseline registry login",
    runOverSsh(h, baselineLogin(baseline, h.registry.address, h.registry.user), {
      stdin: h.registry.password,
    }),
  );
  await must("baseline first up", runOverSsh(h, baselineUp(baseline), { timeoutMs: 10 * 60_000 }));
  await waitForHttp(`http://127.0.0.1:${baseline.port}/health`, { timeoutMs: 120_000 });
}

/**
 * The infrastructure images, pushed to the harness registry under the bench's own names, so
 * that the spec's `docker compose pull` pulls every service of the project, as on a real host.
 */
async function pushInfraImages(h: Harness): Promise<{ postgres: string; redis: string }> {
  const env = { ...process.env, DOCKER_CONFIG: path.join(h.stateDir, "docker-client") };
  const out = { postgres: "", redis: "" };
  for (const [name, local] of [
    ["postgres", h.images.postgres],
    ["redis", h.images.redis],
  ] as const) {
    const ref = `${h.registry.address}/clicky-bench/${name}:${local.split(":")[1] ?? "latest"}`;
    await must(`docker tag ${ref}`, runLocal("docker", ["tag", local, ref], { env }));
    await must(
      `docker push ${ref}`,
      runLocal("docker", ["push", ref], { env, timeoutMs: 10 * 60_000 }),
    );
    out[name] = ref;
  }
  return out;
}

interface Timed {
  readonly measurement: Measurement;
  readonly samples: LoadSample[];
  readonly startMs: number;
  readonly endMs: number;
  readonly marks: { atMs: number; label: string }[];
}

/**
 * Runs one deploy under the load: the load starts, runs alone for a moment, the deploy runs,
 * the load goes on for a moment and stops. Every request of that window is counted.
 */
async function underLoad(
  url: string,
  scenario: ScenarioId,
  run: number,
  deploy: (
    onOutput: (chunk: string, stream: "stdout" | "stderr") => void,
  ) => Promise<CommandResult>,
  expectExit: number,
  milestones: readonly [RegExp, string][],
): Promise<Timed & { readonly output: CommandResult }> {
  const synBefore = synRetransmits();
  const loadStart = performance.now();
  const load = startLoad({
    url,
    ratePerSecond: RATE,
    durationMs: 10 * 60_000,
    recordSamples: true,
    maxInFlight: 1024,
  });
  await sleep(PRE_ROLL_MS);
  const marks: { atMs: number; label: string }[] = [];
  let pending = "";
  const onOutput = (chunk: string, stream: "stdout" | "stderr") => {
    if (stream !== "stdout") return;
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      for (const [re, label] of milestones) {
        if (re.test(line) && !marks.some((m) => m.label === label)) {
          marks.push({ atMs: performance.now() - loadStart, label });
        }
      }
    }
  };
  const startMs = performance.now() - loadStart;
  const output = await deploy(onOutput);
  const endMs = performance.now() - loadStart;
  await sleep(POST_ROLL_MS);
  const r = await load.stop();
  const synAfter = synRetransmits();
  const steps: Record<string, number> = {};
  const timings = /timings: (.*)$/m.exec(output.stdout)?.[1] ?? "";
  for (const part of timings.split(", ")) {
    const m = /^([a-z_]+) ([\d.]+) s$/.exec(part);
    if (m?.[1] && m[2]) steps[m[1]] = Number(m[2]);
  }
  return {
    output,
    samples: r.samples,
    startMs,
    endMs,
    marks,
    measurement: {
      scenario,
      run,
      exitCode: output.code,
      expectedExit: output.code === expectExit,
      wallSeconds: (endMs - startMs) / 1000,
      backupSeconds: null,
      backupBytes: null,
      sent: r.sent,
      ok2xx: r.ok2xx,
      non2xx: r.non2xxTotal,
      errors: r.errorsTotal,
      non2xxByStatus: r.non2xx,
      errorsByKind: r.errors,
      p50Ms: r.latencyMs.p50,
      p99Ms: r.latencyMs.p99,
      maxMs: r.latencyMs.max,
      versions: r.versions,
      steps,
      overOneSecond: r.samples.filter((x) => x.latencyMs >= 1000).length,
      synRetransmits: synAfter - synBefore,
    },
  };
}

/** The host's count of TCP SYNs sent again (a connection attempt unanswered for 1 s). */
function synRetransmits(): number {
  const lines = readFileSync("/proc/net/netstat", "utf8")
    .split("\n")
    .filter((l) => l.startsWith("TcpExt:"));
  const keys = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  return Number(values[keys.indexOf("TCPSynRetrans")] ?? 0);
}

async function fileSize(h: Harness, file: string): Promise<number> {
  return Number((await must(`stat ${file}`, runOverSsh(h, `stat -c %s ${file}`))).trim());
}

async function main(): Promise<void> {
  const availability = harnessAvailability();
  if (!availability.ok) {
    console.error(`bench:deploy cannot run here: ${availability.reason}`);
    process.exit(2);
  }
  const load1 = os.loadavg()[0] ?? 0;
  say(
    `load average ${load1.toFixed(2)} on ${os.cpus().length} cores${load1 > 0.5 ? " (not quiet: results will be noisier)" : ""}`,
  );
  const h = await ensureHarness({ progress: process.stderr });
  const b: Bench = {
    h,
    oursPort: await freePort(),
    baseline: {
      dir: BASE_DIR,
      project: BASE_PROJECT,
      port: await freePort(),
      images: { backend: h.images.backend.repository, postgres: "", redis: "" },
    },
  };
  const started = new Date();
  say("pushing the infrastructure images to the registry for the baseline's `compose pull`");
  const infra = await pushInfraImages(h);
  Object.assign(b.baseline, { images: { ...b.baseline.images, ...infra } });

  say(`setting up the baseline project ${BASE_PROJECT} (port ${b.baseline.port})`);
  await setUpBaseline(b);
  say(`setting up our project ${OURS_PROJECT} (port ${b.oursPort}): first deploy of v1`);
  await cleanupProject(h, OURS_DIR, OURS_PROJECT);
  const first = await runOurs(b, await renderOurs(b, "v1"));
  if (first.code !== 0)
    throw new Error(`our first deploy failed:\n${first.stdout}\n${first.stderr}`);

  say(`filling both databases to at least ${DB_GIB} GiB`);
  const baseDbBytes = await fillDatabase(await postgresOf(BASE_PROJECT), DB_GIB);
  const oursDbBytes = await fillDatabase(await postgresOf(OURS_PROJECT), DB_GIB);
  say(
    `database sizes: baseline ${(baseDbBytes / 2 ** 30).toFixed(2)} GiB, ours ${(oursDbBytes / 2 ** 30).toFixed(2)} GiB`,
  );
  const postgresVersion = await psql(await postgresOf(OURS_PROJECT), "SHOW server_version");
  const [proxyName] = await composeContainers(OURS_PROJECT, "proxy");
  const nginxVersion = (await runLocal("docker", ["exec", proxyName ?? "", "nginx", "-v"])).stderr
    .trim()
    .replace(/^nginx version: /, "");

  const ctx = {
    appDir: OURS_DIR,
    project: OURS_PROJECT,
    database: { name: "clicky_db", user: "clicky", urlScheme: "postgresql+asyncpg" },
    compose: h.docker.composeV2 ? "docker compose" : "docker-compose",
  };
  const results: Timed[] = [];
  for (let run = 1; run <= RUNS; run++) {
    // Baseline: v1 to v2 with the spec's procedure.
    await must("baseline to v2", runOverSsh(h, baselineSetVersion(b.baseline, "v2")));
    say(`run ${run}: baseline (spec procedure) v1 -> v2`);
    const base = await underLoad(
      `http://127.0.0.1:${b.baseline.port}/health`,
      "baseline",
      run,
      (onOutput) =>
        runOverSsh(h, baselineProcedure(b.baseline, "v2"), { timeoutMs: 10 * 60_000, onOutput }),
      0,
      [
        [/^bench-mark backup /, "BACKUP DONE"],
        [/^bench-mark pull /, "PULLED"],
        [/^bench-mark up /, "UP -D DONE"],
        [/^bench-mark sleep /, "SLEPT 10 S"],
      ],
    );
    const marks = Object.fromEntries(
      [...base.output.stdout.matchAll(/^bench-mark (\w+) ([\d.]+)$/gm)].map((m) => [
        m[1],
        Number(m[2]),
      ]),
    );
    const dump = /^bench-backup (\S+)$/m.exec(base.output.stdout)?.[1];
    results.push({
      ...base,
      measurement: {
        ...base.measurement,
        backupSeconds: marks.backup && marks.start ? marks.backup - marks.start : null,
        backupBytes: dump ? await fileSize(h, `${BASE_DIR}/${dump}`) : null,
      },
    });
    report(base.measurement.scenario, results.at(-1)?.measurement);
    // Back to v1 for the next run (not measured).
    await must("baseline to v1", runOverSsh(h, baselineSetVersion(b.baseline, "v1")));
    await must("baseline up v1", runOverSsh(h, baselineUp(b.baseline), { timeoutMs: 10 * 60_000 }));
    await waitForHttp(`http://127.0.0.1:${b.baseline.port}/health`, { timeoutMs: 120_000 });

    // Ours: v1 to v2 with its migration, a v3 that never gets healthy, a rollback to v1.
    const ourUrl = `http://127.0.0.1:${b.oursPort}/health`;
    const milestones: [RegExp, string][] = [
      [/backup: database saved/, "BACKUP DONE"],
      [/migrate: /, "MIGRATE"],
      [/health: backend-\w+ is healthy/, "HEALTHY"],
      [/switch: the proxy sends traffic/, "SWITCHED"],
      [/watch: backend-\w+ stayed up/, "WATCHED"],
      [/drain: stopped/, "OLD STOPPED"],
    ];
    for (const [scenario, tag, extra, expectExit] of [
      ["deploy", "v2", {}, 0],
      ["failedHealth", "v3", {}, 1],
      ["rollback", "v1", { migrate: false }, 0],
    ] as const) {
      const host = await renderOurs(b, tag, extra);
      say(`run ${run}: ${SCENARIOS.find((s) => s.id === scenario)?.title}`);
      const ours = await underLoad(
        ourUrl,
        scenario,
        run,
        (onOutput) => runOurs(b, host, onOutput),
        expectExit,
        milestones,
      );
      const saved = /database saved to (\S+) \(\d+ KiB in ([\d.]+) s/.exec(ours.output.stdout);
      results.push({
        ...ours,
        measurement: {
          ...ours.measurement,
          backupSeconds: saved?.[2] ? Number(saved[2]) : null,
          backupBytes: saved?.[1] ? await fileSize(h, saved[1]) : null,
        },
      });
      report(scenario, results.at(-1)?.measurement);
      if (!ours.measurement.expectedExit) {
        console.log(ours.output.stdout.split("\n").slice(-15).join("\n"));
        console.log(ours.output.stderr.split("\n").slice(-15).join("\n"));
      }
    }
    // Back to schema 001 for the next run's migration (the downgrade runbook; not measured).
    await must(
      "downgrade runbook",
      runOverSsh(h, `set -euo pipefail\n${downgradeCommands(ctx).join("\n")}`),
    );
  }
  const baselineDir = await must(
    "baseline dir size",
    runOverSsh(
      h,
      `du -sb ${BASE_DIR} | cut -f 1; ls -1 ${BASE_DIR} | grep -c '^backup_.*\\.sql$' || true`,
    ),
  );
  const oursBackups = await must(
    "our backups",
    runOverSsh(
      h,
      `du -sb ${OURS_DIR}/backups | cut -f 1; ls -1 ${OURS_DIR}/backups | grep -c '\\.dump$' || true`,
    ),
  );

  // What nginx logged about Docker's DNS over the whole bench (its error log is the container's).
  const proxyLog = await runLocal("docker", ["logs", proxyName ?? ""]);
  const dnsTimeouts = (proxyLog.stdout + proxyLog.stderr)
    .split("\n")
    .filter((line) => /could not be resolved \(110: Operation timed out\)/.test(line)).length;
  const measurements = results.map((r) => r.measurement);
  const summaries = Object.fromEntries(
    SCENARIOS.map(({ id }) => [id, summarize(measurements.filter((m) => m.scenario === id))]),
  ) as Record<ScenarioId, Summary>;
  const table = resultsTable(summaries);
  const goals = targets(measurements, summaries, Math.min(baseDbBytes, oursDbBytes), RATE);
  console.log(`\n${table}\n`);
  for (const t of goals) console.log(`${t.met ? "MET    " : "MISSED "} ${t.name}: ${t.detail}`);

  const outDir = path.join(REPO_ROOT, "out", "bench");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    path.join(outDir, "deploy.json"),
    `${JSON.stringify({ started, runs: RUNS, rate: RATE, baseDbBytes, oursDbBytes, measurements, samples: results.map((r) => ({ scenario: r.measurement.scenario, run: r.measurement.run, startMs: r.startMs, endMs: r.endMs, marks: r.marks, samples: r.samples })) })}\n`,
  );
  if (WRITE_DOCS) {
    const pick = (id: ScenarioId) => {
      const runs = results.filter((r) => r.measurement.scenario === id);
      const mid = median(runs.map((r) => r.measurement.wallSeconds));
      return runs.reduce((best, r) =>
        Math.abs(r.measurement.wallSeconds - mid) < Math.abs(best.measurement.wallSeconds - mid)
          ? r
          : best,
      );
    };
    const panels: PlotPanel[] = [
      {
        title: `SPEC PROCEDURE: PG_DUMP, PULL, UP -D, SLEEP 10, CURL (RUN ${pick("baseline").measurement.run})`,
        ...pick("baseline"),
        color: [110, 110, 110],
      },
      {
        title: `OURS: DEPLOY V1 TO V2 WITH A MIGRATION (RUN ${pick("deploy").measurement.run})`,
        ...pick("deploy"),
        color: [20, 90, 200],
      },
    ];
    const png = plotLatency(
      `LATENCY OF EVERY REQUEST AT ${RATE} REQ/S DURING A DEPLOY (1 GIB DATABASE)`,
      panels,
    );
    mkdirSync(path.join(REPO_ROOT, "docs"), { recursive: true });
    writeFileSync(path.join(REPO_ROOT, "docs", "deploy-latency.png"), png);
    writeFileSync(
      path.join(REPO_ROOT, "docs", "benchmarks.md"),
      markdown({
        started,
        finished: new Date(),
        load1,
        h,
        table,
        goals,
        measurements,
        baseDbBytes,
        oursDbBytes,
        baselineDir,
        oursBackups,
        postgresVersion,
        nginxVersion,
        dnsTimeouts,
        slowest: results
          .filter((r) => r.measurement.scenario !== "baseline")
          .flatMap((r) => r.samples.map((x) => x.latencyMs)),
      }),
    );
    say("wrote docs/benchmarks.md and docs/deploy-latency.png");
  }
  await cleanupProject(h, OURS_DIR, OURS_PROJECT);
  await cleanupProject(h, BASE_DIR, BASE_PROJECT);
  say(`done in ${((Date.now() - started.getTime()) / 60_000).toFixed(1)} min`);
}

function report(scenario: ScenarioId, m: Measurement | undefined): void {
  if (!m) return;
  say(
    `  ${scenario}: exit ${m.exitCode}, ${m.wallSeconds.toFixed(1)} s, backup ${m.backupSeconds?.toFixed(1) ?? "-"} s / ${m.backupBytes === null ? "-" : `${(m.backupBytes / 1e6).toFixed(0)} MB`}, ${m.sent} requests, ${m.non2xx} non-2xx, ${m.errors} errors, p50 ${m.p50Ms} ms, p99 ${m.p99Ms} ms, max ${m.maxMs} ms`,
  );
}

function markdown(r: {
  started: Date;
  finished: Date;
  load1: number;
  h: Harness;
  table: string;
  goals: ReturnType<typeof targets>;
  measurements: Measurement[];
  baseDbBytes: number;
  oursDbBytes: number;
  baselineDir: string;
  oursBackups: string;
  postgresVersion: string;
  nginxVersion: string;
  dnsTimeouts: number;
  /** Latencies of every request of our runs. */
  slowest: number[];
}): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const [baseBytes, baseDumps] = r.baselineDir.trim().split("\n");
  const [ourBytes, ourDumps] = r.oursBackups.trim().split("\n");
  const of = (id: ScenarioId) => r.measurements.filter((m) => m.scenario === id);
  const baselineFailures = failureKinds(of("baseline"));
  const ours = r.measurements.filter((m) => m.scenario !== "baseline");
  const sum = (ms: Measurement[], f: (m: Measurement) => number) =>
    ms.reduce((n, m) => n + f(m), 0);
  return `# Deploy benchmark: our deploy against the spec's procedure

Generated by \`npm run bench:deploy\` (\`bench/deploy/main.ts\`) from its own measurements; do not
edit by hand, run it again. Raw data of this run: \`out/bench/deploy.json\` (not committed).

- **Command:** \`npm run bench:deploy\` (${RUNS} runs of each procedure, ${RATE} requests/s)
- **Date:** ${r.started.toISOString().slice(0, 16).replace("T", " ")} to ${r.finished.toISOString().slice(11, 16)} UTC
- **Machine:** ${os.cpus().length} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB memory, Linux ${os.release()}; load average ${r.load1.toFixed(2)} at the start
- **Software:** Docker Engine ${r.h.docker.serverVersion}, docker-compose ${r.h.docker.composeV1 ?? "absent"} (compose v2 ${r.h.docker.composeV2 ?? "absent"}), PostgreSQL ${r.postgresVersion} (\`${r.h.images.postgres}\`), ${r.nginxVersion} (\`${r.h.images.proxy}\`), Node ${process.version}
- **Database:** ${(r.baseDbBytes / 2 ** 30).toFixed(2)} GiB (baseline) and ${(r.oursDbBytes / 2 ** 30).toFixed(2)} GiB (ours), \`pg_database_size\`, generated by the bench: a table of ${"`bench_payload`"} rows with 192 characters of md5 hex each, plus the app's \`items\`

## Results

Medians of ${RUNS} runs; in brackets, ours divided by the baseline's median.

${r.table}

![Latency of every request during a deploy: the spec's procedure above, ours below](deploy-latency.png)

Each dot is one request (log scale; red marks at the top: failed requests, a non-2xx answer or
no answer). The run shown of each is the one with the median wall time.

## Targets

${r.goals.map((t) => `- ${t.met ? "**met**" : "**missed**"}: ${t.name} (${t.detail})`).join("\n")}

Requests of 1 s or more: ${sum(of("baseline"), (m) => m.overOneSecond)} in the baseline's runs, ${ours.reduce((n, m) => n + m.overOneSecond, 0)} of ${ours.reduce((n, m) => n + m.sent, 0)} in ours (at most ${Math.round(r.slowest.reduce((a, b) => Math.max(a, b), 0))} ms).
Meanwhile the host resent ${sum(of("baseline"), (m) => m.synRetransmits)} (baseline) and ${ours.reduce((n, m) => n + m.synRetransmits, 0)} (ours) TCP connection
attempts (\`TcpExt: TCPSynRetrans\`): a connection attempt left unanswered is sent again after 1 s,
on this busy 2-core host. nginx logged ${r.dnsTimeouts} lookups of a slot's name that Docker's DNS did
not answer within its 1 s \`resolver_timeout\`; such a request goes through the fallback group
(the slot by address) instead of failing with a 502.

## What the baseline's clients saw

${baselineFailures.length ? `Over its ${RUNS} runs the spec's procedure failed these requests: ${baselineFailures.join(", ")}.` : "No request of the baseline failed in these runs."}
Its \`docker compose up -d\` stops the old \`fastapi\` container and starts the new one in its
place, so for the seconds in between nothing listens on the port. Its backups stay in the working
directory, never pruned: after this bench it holds ${baseDumps ?? "?"} plain dumps, ${(Number(baseBytes) / 1e9).toFixed(1)} GB in all
(ours keeps the newest \`backup.keep\`: ${ourDumps ?? "?"} dumps, ${(Number(ourBytes) / 1e9).toFixed(1)} GB).

## Our deploy, step by step (median seconds, the deploy from v1 to v2)

${stepsTable(of("deploy"))}

\`pull\` runs in the background during \`backup\`; its column is the time left to wait for it
afterwards.

## Every run

${runsTable(r.measurements)}

## What the benchmark changed in the design

The first runs of this bench missed two targets, and the design changed, not the targets:

- **Wall time.** Our deploy was slower than the spec's procedure: a 10 s watch window, a health
  gate that waited for Docker's next probe (every 5 s), a fixed 10 s drain, and a dozen starts of
  docker-compose v1 (a Python program, most of a second each). Now the script probes the new
  version itself every half second, stops the old one as soon as no nginx worker can still send it
  a request (\`drainSeconds\` is only the limit), pulls while the backup runs, asks Docker directly
  for what it used to ask compose, and watches for \`watchSeconds\` = 5 by default.
- **Zero failed requests.** One run had requests fail with 502 after exactly nginx's
  \`resolver_timeout\` (then 2 s; a connect timeout answers 504), during the backup: a lookup of
  the slot's name in Docker's embedded DNS had stalled on the busy host. The proxy now sends a
  request its DNS path cannot serve once more (methods safe to repeat) through a fallback group
  that names the slot by address, no DNS involved, and waits 1 s for DNS, not 2.
- **Backup time** (measured by hand on the same harness before the bench existed). A
  custom-format dump at pg_dump's default compression took more than twice the plain dump's
  time; copying a dump through \`docker exec\`'s output stream costs about as much as
  compressing it. Now pg_dump runs in a throwaway container of the PostgreSQL image, writes
  straight into the backup directory, at gzip level 1 (\`backup.compressionLevel\`).

## How it is measured, and why the comparison is fair

- **Same harness, same images, same load.** Both procedures run over the same OpenSSH server as
  the same \`deploy\` user against the same Docker engine, with the same backend images
  (the harness registry's \`clicky/backend\`, stand-in app v1/v2/v3), the same PostgreSQL and Redis
  images and a database of the same size. One load generator (\`startLoad\` of the e2e harness,
  an open loop: a new connection per request at a fixed rate, whatever the answers, 5 s timeout)
  sends \`GET /health\` from ${PRE_ROLL_MS / 1000} s before each deploy starts to ${POST_ROLL_MS / 1000} s after it ends; every request counts.
- **The baseline is the spec's procedure, for real** (\`bench/deploy/baseline.ts\`): in the project's
  working directory, \`docker compose exec -T postgres pg_dump -U clicky clicky_db > backup_<time>.sql\`,
  \`docker compose pull\`, \`docker compose up -d --remove-orphans\`, \`sleep 10\`, \`curl -f\` once, on a
  compose project shaped like the spec's: one \`fastapi\` service published on the host (the spec
  checks \`localhost:8000\`), PostgreSQL, Redis, every image pulled from the registry. The load goes
  straight to that port, as the spec's clients would: no proxy of ours in front of it, so nothing of
  our design (nginx, its DNS cache) adds to or hides its failures. Our latencies include the nginx
  hop the baseline does not have. The spec's migration line (\`exec fastapi alembic upgrade head\`,
  in the old container) is left out, as the issue lists the procedure; that makes the baseline
  faster, not slower. "docker compose" is what the host has: here docker-compose v1 for both.
- **Ours is the exact commands the program registers** (rendered by running the program under
  Pulumi's mocks), in Pulumi's order: prepare, the copies, the deploy script with the secrets on
  stdin. Its wall time covers all three. Its config is the defaults, except for what the harness
  dictates (host, directories, image names, the proxy's address).
- **Backup time** is the baseline's \`pg_dump\` line from start to end, and our \`backup\` step as the
  script reports it (dump in PostgreSQL's custom format, gzip level \`backup.compressionLevel\`,
  straight into the backup directory, and \`pg_restore --list\` reading it back). **Backup size** is
  the file on disk.
- Between runs (not measured): the baseline goes back to v1 with \`docker compose up -d\`; ours
  goes back to schema 001 with the README's \`alembic downgrade\` runbook, so every run of our
  deploy runs the migration.
- Numbers vary from machine to machine and run to run; ratios hold better than absolute values.
  Run it on a quiet machine: the deploys, the load generator and the databases share its cores.
`;
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
