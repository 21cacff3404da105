/**
 * `npm run bench:dump`: what the dump's CPU weight (`deploy.backup.cpuShares`) and its
 * compression level (`deploy.backup.compressionLevel`) do for the serving version and for the
 * dump's own time while a backup runs, on the e2e harness (real OpenSSH, Docker engine,
 * PostgreSQL), under reads and acknowledged writes.
 *
 * Our project is deployed once (v1, then v2 with its migration), its database grown to the
 * size asked; then, per run, per number of contenders, per weight and per level, one deploy
 * that swaps v1 and v2 (no migration: the dump runs beside the serving version for its whole
 * length) is measured: wall time, the dump's time, failed reads and writes, acknowledged writes
 * missing afterwards, and whether the deploy failed (its reason is kept; the bench goes on).
 * Contenders are containers that spin on the CPU at Docker's default weight (other work on the
 * host); they start before the deploy and go after it. The cases alternate their order from run
 * to run.
 *
 * After each run's deploys, under the same load and contenders, the floors of any backup of that
 * database: the server reading every row of its table (`COPY ... TO '/dev/null'`, what any
 * logical dump reads before it writes a byte) and a physical copy of the cluster
 * (`pg_basebackup -c fast -Ft`, what a backup that copies files instead of rows costs).
 *
 * Prints the table and writes the run's numbers to bench/results/dump-<UTC time>.json.
 * Options: `npm run bench:dump -- --help`. Needs what the e2e needs (root, Docker;
 * test/harness/provision.sh sets it up), installs nothing.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  type CommandResult,
  cleanupProject,
  ensureHarness,
  freePort,
  type Harness,
  harnessAvailability,
  prepareAndCopy,
  REPO_ROOT,
  runLocal,
  runOverSsh,
} from "../../test/harness";
import { e2eDeployConfig, e2eSecrets } from "../../test/support/e2e-config";
import { type RenderedHost, renderStack } from "../../test/support/render";
import { median } from "../deploy/cost";
import { dumpSize, fillDatabase, mustPostgres, postgresOf } from "../deploy/database";
import { type LoadedDeploy, type OnOutput, scriptSteps, underLoad } from "../deploy/load";
import { DUMP_USAGE, type DumpOptions, parseDumpArgs, UsageError } from "../deploy/options";
import type { Measurement } from "../deploy/record";

const DIR = "/home/deploy/clicky-bench-dump";
const PROJECT = "clickybenchdump";
const CONTENDER_PREFIX = `${PROJECT}-contender-`;

function say(text: string): void {
  process.stderr.write(`[bench:dump ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

async function must(what: string, r: Promise<CommandResult>): Promise<string> {
  const done = await r;
  if (done.code !== 0) {
    throw new Error(`${what} failed (exit ${done.code}):\n${done.stdout}\n${done.stderr}`);
  }
  return done.stdout;
}

async function render(
  h: Harness,
  port: number,
  tag: string,
  deploy: Record<string, unknown>,
): Promise<RenderedHost> {
  const config = e2eDeployConfig(h, port, { tag });
  const rendered = await renderStack({
    deploy: {
      ...config,
      appDir: DIR,
      composeProject: PROJECT,
      hosts: [{ ...(config.hosts as Record<string, unknown>[])[0], name: "bench" }],
      health: { timeoutSeconds: 20 },
      app: { env: { APP_ENV: "bench" } },
      ...deploy,
    },
    secrets: e2eSecrets(h),
  });
  if (rendered.run.error) throw new Error(String(rendered.run.error));
  const host = rendered.hosts[0];
  if (!host) throw new Error("the program registered no deploy");
  return host;
}

async function deploy(h: Harness, host: RenderedHost, onOutput?: OnOutput) {
  await prepareAndCopy(h, host);
  return runOverSsh(h, host.script, {
    stdin: host.stdin,
    timeoutMs: 15 * 60_000,
    ...(onOutput ? { onOutput } : {}),
  });
}

async function startContenders(h: Harness, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    await must(
      `contender ${i}`,
      runLocal("docker", [
        "run",
        "-d",
        "--rm",
        "--name",
        `${CONTENDER_PREFIX}${i}`,
        "--entrypoint",
        "sh",
        h.images.postgres,
        "-c",
        "while :; do :; done",
      ]),
    );
  }
}

async function stopContenders(): Promise<void> {
  const r = await runLocal("docker", ["ps", "-aq", "--filter", `name=${CONTENDER_PREFIX}`]);
  const ids = r.stdout.split("\n").filter(Boolean);
  if (ids.length > 0) await runLocal("docker", ["rm", "-f", ...ids]);
}

/** What the clients saw while a case ran: reads and acknowledged writes sent and failed. */
interface ClientSide {
  readonly sent: number;
  readonly failedReads: number;
  readonly writesSent: number;
  readonly failedWrites: number;
  readonly missingWrites: number | null;
  readonly p99AllMs: number | null;
}

function clientSide(m: Measurement): ClientSide {
  return {
    sent: m.sent,
    failedReads: m.non2xx + m.errors,
    writesSent: m.writes.sent,
    failedWrites: m.writes.failed,
    missingWrites: m.writes.missing,
    p99AllMs: m.all.p99Ms,
  };
}

interface DumpRun extends ClientSide {
  readonly run: number;
  readonly contenders: number;
  readonly cpuShares: number;
  readonly compressionLevel: number;
  readonly tag: string;
  readonly wallSeconds: number;
  readonly backupSeconds: number | null;
  /** The kept dump's size once its background compression ended (raw at level 0). */
  readonly backupKib: number | null;
  readonly backupWaitSeconds: number | null;
  readonly maxAllMs: number | null;
  /** The deploy's own "deploy FAILED ..." line when it failed; null when it succeeded. */
  readonly failedDeploy: string | null;
}

/** One command (a deploy, a floor) under the bench's load and writes, as every case runs. */
function measured(
  run: number,
  options: DumpOptions,
  port: number,
  command: LoadedDeploy["deploy"],
  steps: LoadedDeploy["steps"],
) {
  return underLoad({
    scenario: "deploy",
    run,
    databaseGib: options.databaseGib,
    imageMb: 0,
    port,
    ratePerSecond: options.ratePerSecond,
    writesPerSecond: options.writesPerSecond,
    postgres: () => postgresOf(PROJECT),
    deploy: command,
    expectExit: (code) => code === 0,
    milestones: [],
    steps,
  });
}

/** A floor of any backup of the database, timed under the same load as the deploys. */
interface Floor {
  readonly id: "read" | "physical";
  readonly label: string;
  /** Runs in the project's PostgreSQL container as `sh -c`, with its POSTGRES_USER and POSTGRES_DB. */
  readonly script: string;
}

const FLOORS: readonly Floor[] = [
  {
    id: "read",
    label: "read every row in the server (COPY bench_payload TO '/dev/null')",
    script: `psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v ON_ERROR_STOP=1 -qc "COPY bench_payload TO '/dev/null'"`,
  },
  {
    id: "physical",
    label: "physical copy of the cluster (pg_basebackup -c fast -Ft -X fetch)",
    script:
      'd=/tmp/clicky-bench-floor; rm -rf "$d" && pg_basebackup -U "$POSTGRES_USER" -c fast -Ft -X fetch -D "$d" && du -sk "$d" | cut -f 1 && rm -rf "$d"',
  },
];

interface FloorRun extends ClientSide {
  readonly run: number;
  readonly contenders: number;
  readonly floor: Floor["id"];
  readonly seconds: number;
  /** What the physical copy wrote; null for the read. */
  readonly kib: number | null;
  /** Its error when the command failed; null when it succeeded. */
  readonly failed: string | null;
}

async function measureFloor(
  floor: Floor,
  run: number,
  contenders: number,
  options: DumpOptions,
  port: number,
  postgres: string,
): Promise<FloorRun> {
  const { measurement: m, output } = await measured(
    run,
    options,
    port,
    () => runLocal("docker", ["exec", postgres, "sh", "-c", floor.script]),
    () => ({}),
  );
  const kib = floor.id === "physical" ? Number(output.stdout.trim()) : Number.NaN;
  return {
    run,
    contenders,
    floor: floor.id,
    seconds: m.wallSeconds,
    kib: Number.isFinite(kib) ? kib : null,
    ...clientSide(m),
    failed:
      output.code === 0
        ? null
        : `exit ${output.code}: ${output.stderr.trim().split("\n").pop() ?? ""}`,
  };
}

function floorTable(floors: readonly FloorRun[], options: DumpOptions): string {
  const lines = [
    "| contenders | floor | time (median) | written (median) | failed reads (sum) | failed writes (sum) | p99, every request (median) | failed |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const contenders of options.contenders) {
    for (const floor of FLOORS) {
      const rs = floors.filter((r) => r.contenders === contenders && r.floor === floor.id);
      if (rs.length === 0) continue;
      const ok = rs.filter((r) => r.failed === null);
      const med = (f: (r: FloorRun) => number | null) => {
        const xs = ok.map(f).filter((x): x is number => x !== null);
        return xs.length ? median(xs) : Number.NaN;
      };
      const sum = (f: (r: FloorRun) => number) => rs.reduce((a, r) => a + f(r), 0);
      const kib = med((r) => r.kib);
      lines.push(
        `| ${contenders} | ${floor.label} | ${med((r) => r.seconds).toFixed(1)} s | ${Number.isNaN(kib) ? "–" : `${(kib / 1024).toFixed(0)} MiB`} | ${sum((r) => r.failedReads)} of ${sum((r) => r.sent)} | ${sum((r) => r.failedWrites)} of ${sum((r) => r.writesSent)} | ${med((r) => r.p99AllMs).toFixed(0)} ms | ${rs.length - ok.length} of ${rs.length} |`,
      );
    }
  }
  return lines.join("\n");
}

function table(runs: readonly DumpRun[], options: DumpOptions): string {
  const lines = [
    "| contenders | backup.cpuShares | backup.compressionLevel | deploy (median) | dump (median) | dump size (median) | failed reads (sum) | failed writes (sum) | writes missing | p99, every request (median) | failed deploys |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const contenders of options.contenders) {
    for (const { cpuShares: shares, compressionLevel: level } of cases(options)) {
      const rs = runs.filter(
        (r) =>
          r.contenders === contenders && r.cpuShares === shares && r.compressionLevel === level,
      );
      if (rs.length === 0) continue;
      const med = (f: (r: DumpRun) => number | null) => {
        const xs = rs.map(f).filter((x): x is number => x !== null);
        return xs.length ? median(xs) : Number.NaN;
      };
      const sum = (f: (r: DumpRun) => number) => rs.reduce((a, r) => a + f(r), 0);
      lines.push(
        `| ${contenders} | ${shares === 0 ? "0 (Docker's default, 1024)" : shares} | ${level} | ${med((r) => r.wallSeconds).toFixed(1)} s | ${med((r) => r.backupSeconds).toFixed(1)} s | ${(med((r) => r.backupKib) / 1024).toFixed(0)} MiB | ${sum((r) => r.failedReads)} of ${sum((r) => r.sent)} | ${sum((r) => r.failedWrites)} of ${sum((r) => r.writesSent)} | ${sum((r) => r.missingWrites ?? 0)} | ${med((r) => r.p99AllMs).toFixed(0)} ms | ${rs.filter((r) => r.failedDeploy).length} of ${rs.length} |`,
      );
    }
  }
  return lines.join("\n");
}

/** Every weight with every level, in the options' order. */
function cases(options: DumpOptions): { cpuShares: number; compressionLevel: number }[] {
  return options.cpuShares.flatMap((cpuShares) =>
    options.compressionLevels.map((compressionLevel) => ({ cpuShares, compressionLevel })),
  );
}

async function main(options: DumpOptions): Promise<void> {
  const availability = harnessAvailability();
  if (!availability.ok) {
    console.error(`bench:dump cannot run here: ${availability.reason}`);
    process.exit(2);
  }
  const started = new Date();
  const load1 = os.loadavg()[0] ?? 0;
  say(`load average ${load1.toFixed(2)} on ${os.cpus().length} cores`);
  const h = await ensureHarness({ progress: process.stderr });
  const port = await freePort();
  await stopContenders();
  await cleanupProject(h, DIR, PROJECT);
  say(`our project ${PROJECT} (port ${port}): v1, then v2 with its migration`);
  for (const tag of ["v1", "v2"]) {
    const r = await deploy(h, await render(h, port, tag, {}));
    if (r.code !== 0) throw new Error(`the deploy of ${tag} failed:\n${r.stdout}\n${r.stderr}`);
  }
  const postgres = await mustPostgres(PROJECT);
  say(`growing the database to at least ${options.databaseGib} GiB`);
  const bytes = await fillDatabase("ours", postgres, options.databaseGib, say);

  const runs: DumpRun[] = [];
  const floors: FloorRun[] = [];
  let tag = "v1";
  try {
    for (let run = 1; run <= options.runs; run++) {
      for (const contenders of options.contenders) {
        const order = run % 2 === 1 ? cases(options) : cases(options).reverse();
        for (const { cpuShares, compressionLevel } of order) {
          const host = await render(h, port, tag, {
            migrate: false,
            backup: { cpuShares, compressionLevel },
          });
          say(
            `run ${run}, ${contenders} contenders, backup.cpuShares ${cpuShares}, backup.compressionLevel ${compressionLevel}: to ${tag}`,
          );
          await startContenders(h, contenders);
          let result: Awaited<ReturnType<typeof underLoad>>;
          try {
            result = await measured(
              run,
              options,
              port,
              (onOutput) => deploy(h, host, onOutput),
              scriptSteps,
            );
          } finally {
            await stopContenders();
          }
          const { measurement: m, output } = result;
          // A deploy that failed (safely: the old version serves on) is a result too: its
          // reason is kept, and the next deploy goes to the same version again.
          const failedDeploy =
            output.code === 0
              ? null
              : (/^deploy FAILED .*$/m.exec(output.stdout)?.[0] ?? `exit ${output.code}`);
          const saved = /database saved to (\S+) \(\d+ KiB in ([\d.]+) s/.exec(output.stdout);
          // The size it keeps, once compressed after the deploy (waited for, so that the next
          // case does not share the CPU with gzip).
          const kept = saved?.[1] ? await dumpSize(h, saved[1], compressionLevel > 0) : null;
          const r: DumpRun = {
            run,
            contenders,
            cpuShares,
            compressionLevel,
            tag,
            wallSeconds: m.wallSeconds,
            backupSeconds: saved?.[2] ? Number(saved[2]) : null,
            backupKib: kept === null ? null : Math.round(kept / 1024),
            backupWaitSeconds: m.steps.backup_wait ?? null,
            ...clientSide(m),
            maxAllMs: m.all.maxMs,
            failedDeploy,
          };
          runs.push(r);
          say(
            `  ${r.wallSeconds.toFixed(1)} s, dump ${r.backupSeconds ?? "?"} s; failed ${r.failedReads} of ${r.sent} reads, ${r.failedWrites} of ${r.writesSent} writes; p99 ${r.p99AllMs?.toFixed(0)} ms${failedDeploy ? `; ${failedDeploy}` : ""}`,
          );
          if (failedDeploy === null) tag = tag === "v1" ? "v2" : "v1";
        }
        for (const floor of run % 2 === 1 ? FLOORS : [...FLOORS].reverse()) {
          say(`run ${run}, ${contenders} contenders, floor: ${floor.label}`);
          await startContenders(h, contenders);
          let f: FloorRun;
          try {
            f = await measureFloor(floor, run, contenders, options, port, postgres);
          } finally {
            await stopContenders();
          }
          floors.push(f);
          say(
            `  ${f.seconds.toFixed(1)} s; failed ${f.failedReads} of ${f.sent} reads, ${f.failedWrites} of ${f.writesSent} writes${f.failed ? `; ${f.failed}` : ""}`,
          );
        }
      }
    }
  } finally {
    await stopContenders();
  }
  const record = {
    kind: "clicky-bench-dump",
    startedAt: started.toISOString(),
    machine: {
      cpuModel: os.cpus()[0]?.model.trim() ?? "unknown CPU",
      cores: os.cpus().length,
      memoryBytes: os.totalmem(),
      kernel: `${os.type()} ${os.release()}`,
      loadAverage: load1,
      cgroup: (await runLocal("docker", ["info", "--format", "{{.CgroupVersion}}"])).stdout.trim(),
    },
    options,
    databaseBytes: bytes,
    runs,
    floors,
  };
  const file = path.join(
    REPO_ROOT,
    "bench",
    "results",
    `dump-${started.toISOString().slice(0, 19).replaceAll(":", "-")}Z.json`,
  );
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  say(`wrote ${path.relative(REPO_ROOT, file)}`);
  console.log(table(runs, options));
  console.log(`\nThe floors of any backup of this database, under the same load:\n`);
  console.log(floorTable(floors, options));
  await cleanupProject(h, DIR, PROJECT);
  say(`done in ${((Date.now() - started.getTime()) / 60_000).toFixed(1)} min`);
}

function commandLine(): DumpOptions {
  try {
    const parsed = parseDumpArgs(process.argv.slice(2));
    if (parsed.help) {
      console.log(DUMP_USAGE);
      process.exit(0);
    }
    return parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`bench:dump: ${err.message}\nRun with --help for the options.`);
    process.exit(2);
  }
}

main(commandLine()).catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
