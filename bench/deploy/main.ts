/**
 * `npm run bench:deploy`: our deploy against the spec's procedure, on the e2e harness (real
 * OpenSSH, Docker engine, registry, PostgreSQL), under a steady HTTP load, with a database of
 * at least 1 GiB. Per run: the spec's procedure (baseline) from v1 to v2; our deploy from v1
 * to v2 with a migration; our deploy of a version that never gets healthy (v3); our rollback
 * to v1. It prints the table of medians, writes the run's record (bench/results/<UTC time>.json:
 * settings, machine, software, every measurement and every request) and renders
 * docs/benchmarks.md and its chart from that record (publish.ts), as `npm run bench:report`
 * does from any record.
 *
 * Needs what the e2e needs (root, Docker; test/harness/provision.sh sets it up), installs
 * nothing. Options: `npm run bench:deploy -- --help`.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { downgradeCommands } from "../../src/deploy/runbooks";
import { E2E_COMPOSE_COMMAND, e2eDeployConfig, e2eSecrets } from "../../test/support/e2e-config";
import { type RenderedHost, renderStack } from "../../test/support/render";
import {
  type CommandResult,
  cleanupProject,
  composeContainers,
  copyOverSsh,
  ensureHarness,
  freePort,
  type Harness,
  harnessAvailability,
  type LoadSample,
  prepareAndCopy,
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
import { BENCH_USAGE, type BenchOptions, parseBenchArgs, UsageError } from "./options";
import { measureProbe } from "./probe";
import { recordName, writeReport } from "./publish";
import {
  type BenchRecord,
  type Measurement,
  parseRecord,
  RECORD_KIND,
  recordFileName,
  type Samples,
  type ScenarioId,
  serializeRecord,
} from "./record";
import { median, resultsTable, SCENARIOS, summarizeScenarios, targets } from "./report";

/** Every other request on a reused keep-alive connection, as mobile apps and HTTP libraries send them. */
const LOAD_KEEP_ALIVE = "mixed";
const PRE_ROLL_MS = 2000;
const POST_ROLL_MS = 2000;
/** Previews measured with and without the host probe. */
const PROBE_RUNS = 15;

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

/** Our stack's `deploy` section for the bench's host: defaults, except where the harness differs. */
function oursDeploySection(b: Bench, tag: string, extra: Record<string, unknown> = {}) {
  const harnessConfig = e2eDeployConfig(b.h, b.oursPort, { tag });
  return {
    deploy: {
      appDir: OURS_DIR,
      composeProject: OURS_PROJECT,
      hosts: [{ ...(harnessConfig.hosts as Record<string, unknown>[])[0], name: "bench" }],
      image: harnessConfig.image,
      images: harnessConfig.images,
      proxy: harnessConfig.proxy,
      app: { env: { APP_ENV: "bench" } },
      ...extra,
    },
  };
}

/** Our program's registrations for one deploy. */
async function renderOurs(b: Bench, tag: string, extra: Record<string, unknown> = {}) {
  const { deploy } = oursDeploySection(b, tag, extra);
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

/**
 * Runs one deploy under the load: the load starts, runs alone for a moment, the deploy runs,
 * the load goes on for a moment and stops. Every request of that window is counted.
 */
async function underLoad(
  url: string,
  ratePerSecond: number,
  scenario: ScenarioId,
  run: number,
  deploy: (
    onOutput: (chunk: string, stream: "stdout" | "stderr") => void,
  ) => Promise<CommandResult>,
  expectExit: number,
  milestones: readonly [RegExp, string][],
): Promise<{ readonly measurement: Measurement; readonly output: CommandResult }> {
  const synBefore = synRetransmits();
  const loadStart = performance.now();
  const load = startLoad({
    url,
    ratePerSecond,
    durationMs: 10 * 60_000,
    recordSamples: true,
    maxInFlight: 1024,
    keepAlive: LOAD_KEEP_ALIVE,
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
      trace: {
        startMs: tenth(startMs),
        endMs: tenth(endMs),
        marks: marks.map((m) => ({ atMs: tenth(m.atMs), label: m.label })),
        samples: sampleColumns(r.samples),
      },
    },
  };
}

/** The load's samples as the record keeps them: one column per value. */
function sampleColumns(samples: readonly LoadSample[]): Samples {
  return {
    atMs: samples.map((s) => s.atMs),
    latencyMs: samples.map((s) => s.latencyMs),
    status: samples.map((s) => s.status),
  };
}

const tenth = (ms: number) => Math.round(ms * 10) / 10;

/** `du -sb DIR | cut -f 1` and a count of files, one a line, as the record keeps them. */
function sizeAndCount(stdout: string): { bytes: number; dumps: number } {
  const [bytes, dumps] = stdout.trim().split("\n");
  return { bytes: Number(bytes ?? 0), dumps: Number(dumps ?? 0) };
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

/** The command line's options; prints the help, or what is wrong with it, and exits. */
function commandLine(): BenchOptions {
  try {
    const parsed = parseBenchArgs(process.argv.slice(2));
    if (parsed.help) {
      console.log(BENCH_USAGE);
      process.exit(0);
    }
    return parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`bench:deploy: ${err.message}\nRun with --help for the options.`);
    process.exit(2);
  }
}

async function main(options: BenchOptions): Promise<void> {
  const availability = harnessAvailability();
  if (!availability.ok) {
    console.error(`bench:deploy cannot run here: ${availability.reason}`);
    process.exit(2);
  }
  const load1 = os.loadavg()[0] ?? 0;
  const machine: BenchRecord["machine"] = {
    cpuModel: os.cpus()[0]?.model.trim() ?? "unknown CPU",
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    kernel: `${os.type()} ${os.release()}`,
    loadAverage: load1,
    node: process.version,
  };
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

  // The host probe on a deployed host, before the load and the big database (it reads files
  // and `docker ps`, neither of which the database's size changes).
  say(`the host probe: ${PROBE_RUNS} previews without it and with it, interleaved`);
  const probe = await measureProbe(h, oursDeploySection(b, "v1").deploy, e2eSecrets(h), PROBE_RUNS);
  say(
    `preview median ${median(probe.previewWithoutProbeMs).toFixed(0)} ms without the probe, ${median(probe.previewWithProbeMs).toFixed(0)} ms with it; SSH floor ${median(probe.sshFloorMs).toFixed(0)} ms`,
  );

  say(`filling both databases to at least ${options.databaseGib} GiB`);
  const baseDbBytes = await fillDatabase(await postgresOf(BASE_PROJECT), options.databaseGib);
  const oursDbBytes = await fillDatabase(await postgresOf(OURS_PROJECT), options.databaseGib);
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
  const measurements: Measurement[] = [];
  for (let run = 1; run <= options.runs; run++) {
    // Baseline: v1 to v2 with the spec's procedure.
    await must("baseline to v2", runOverSsh(h, baselineSetVersion(b.baseline, "v2")));
    say(`run ${run}: baseline (spec procedure) v1 -> v2`);
    const base = await underLoad(
      `http://127.0.0.1:${b.baseline.port}/health`,
      options.ratePerSecond,
      "baseline",
      run,
      (onOutput) =>
        runOverSsh(h, baselineProcedure(b.baseline, "v2"), { timeoutMs: 10 * 60_000, onOutput }),
      0,
      [
        [/^bench-mark backup /, "Backup done"],
        [/^bench-mark pull /, "Pulled"],
        [/^bench-mark up /, "Up -d done"],
        [/^bench-mark sleep /, "Slept 10 s"],
      ],
    );
    const marks = Object.fromEntries(
      [...base.output.stdout.matchAll(/^bench-mark (\w+) ([\d.]+)$/gm)].map((m) => [
        m[1],
        Number(m[2]),
      ]),
    );
    const dump = /^bench-backup (\S+)$/m.exec(base.output.stdout)?.[1];
    measurements.push({
      ...base.measurement,
      backupSeconds: marks.backup && marks.start ? marks.backup - marks.start : null,
      backupBytes: dump ? await fileSize(h, `${BASE_DIR}/${dump}`) : null,
    });
    report(base.measurement.scenario, measurements.at(-1));
    // Back to v1 for the next run (not measured).
    await must("baseline to v1", runOverSsh(h, baselineSetVersion(b.baseline, "v1")));
    await must("baseline up v1", runOverSsh(h, baselineUp(b.baseline), { timeoutMs: 10 * 60_000 }));
    await waitForHttp(`http://127.0.0.1:${b.baseline.port}/health`, { timeoutMs: 120_000 });

    // Ours: v1 to v2 with its migration, a v3 that never gets healthy, a rollback to v1.
    const ourUrl = `http://127.0.0.1:${b.oursPort}/health`;
    const milestones: [RegExp, string][] = [
      [/backup: database saved/, "Backup done"],
      [/migrate: /, "Migrate"],
      [/health: backend-\w+ is healthy/, "Healthy"],
      [/switch: the proxy sends traffic/, "Switched"],
      [/watch: backend-\w+ stayed up/, "Watched"],
      [/drain: stopped/, "Old stopped"],
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
        options.ratePerSecond,
        scenario,
        run,
        (onOutput) => runOurs(b, host, onOutput),
        expectExit,
        milestones,
      );
      const saved = /database saved to (\S+) \(\d+ KiB in ([\d.]+) s/.exec(ours.output.stdout);
      measurements.push({
        ...ours.measurement,
        backupSeconds: saved?.[2] ? Number(saved[2]) : null,
        backupBytes: saved?.[1] ? await fileSize(h, saved[1]) : null,
      });
      report(scenario, measurements.at(-1));
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
  const summaries = summarizeScenarios(measurements);
  console.log(`\n${resultsTable(summaries)}\n`);
  const databaseBytes = Math.min(baseDbBytes, oursDbBytes);
  for (const t of targets(measurements, summaries, databaseBytes, options.ratePerSecond)) {
    console.log(`${t.met ? "MET    " : "MISSED "} ${t.name}: ${t.detail}`);
  }

  const measured = {
    kind: RECORD_KIND,
    version: 1,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    settings: {
      runs: options.runs,
      ratePerSecond: options.ratePerSecond,
      databaseGib: options.databaseGib,
      preRollMs: PRE_ROLL_MS,
      postRollMs: POST_ROLL_MS,
      keepAlive: LOAD_KEEP_ALIVE,
    },
    machine,
    software: {
      docker: h.docker.serverVersion,
      composeV1: h.docker.composeV1,
      composeV2: h.docker.composeV2,
      composeCommand: E2E_COMPOSE_COMMAND,
      postgres: postgresVersion.trim(),
      postgresImage: h.images.postgres,
      nginx: nginxVersion,
      proxyImage: h.images.proxy,
    },
    databaseBytes: { baseline: baseDbBytes, ours: oursDbBytes },
    backupsLeft: { baseline: sizeAndCount(baselineDir), ours: sizeAndCount(oursBackups) },
    dnsTimeouts,
    measurements,
    probe,
  } satisfies BenchRecord;
  const recordFile = path.join(REPO_ROOT, "bench", "results", recordFileName(started));
  mkdirSync(path.dirname(recordFile), { recursive: true });
  writeFileSync(recordFile, serializeRecord(measured));
  say(`wrote ${recordName(recordFile)}`);
  // Written first, checked second: a value the schema refuses (a NaN, say) fails the bench
  // naming the field, and the run's measurements are still on disk.
  const record = parseRecord(measured, recordName(recordFile));
  if (options.writeDocs) {
    const written = await writeReport(record, recordName(recordFile), path.join(REPO_ROOT, "docs"));
    say(`wrote ${written.map((file) => path.relative(REPO_ROOT, file)).join(" and ")}`);
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

main(commandLine()).catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
