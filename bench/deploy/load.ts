/**
 * One measured deploy under the bench's load: `GET /health` at a fixed rate and acknowledged
 * writes (`POST /items`, acknowledged on 201) from a moment before the deploy starts to a
 * moment after it ends; afterwards every acknowledged write is looked up in the project's
 * database. Every request of that window counts.
 */
import { performance } from "node:perf_hooks";
import {
  type CommandResult,
  type LoadSample,
  psqlInContainer,
  startLoad,
  startWriter,
} from "../../test/harness";
import type { Measurement, Samples, ScenarioId, Writes } from "./record";

/** Every other request on a reused keep-alive connection, as mobile apps and HTTP libraries send them. */
export const LOAD_KEEP_ALIVE = "mixed";
export const PRE_ROLL_MS = 2000;
export const POST_ROLL_MS = 2000;
/** A read or a write with no answer after this long fails; the all-request percentiles count a failure at it. */
export const REQUEST_TIMEOUT_MS = 5000;

export type OnOutput = (chunk: string, stream: "stdout" | "stderr") => void;

export interface LoadedDeploy {
  readonly scenario: ScenarioId;
  readonly run: number;
  readonly databaseGib: number;
  readonly imageMb: number;
  /** The app as clients reach it: our proxy, or the baseline's or the peer's published port. */
  readonly port: number;
  readonly ratePerSecond: number;
  readonly writesPerSecond: number;
  /** The PostgreSQL container that must hold the acknowledged writes; null when there is none to check. */
  readonly postgres: () => Promise<string | null>;
  readonly deploy: (onOutput: OnOutput) => Promise<CommandResult>;
  /** Whether the exit code is the one this scenario should end with. */
  readonly expectExit: (code: number | null) => boolean;
  /** Lines of the deploy's output that mark a milestone on the chart, and its label. */
  readonly milestones: readonly (readonly [RegExp, string])[];
  /** The procedure's steps from its output (ours: its `timings:` line; the baselines: their marks). */
  readonly steps: (stdout: string) => Record<string, number>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tenth = (ms: number) => Math.round(ms * 10) / 10;

/** Runs one deploy under the load and the writes; the measurement lacks only its backup. */
export async function underLoad(d: LoadedDeploy): Promise<{
  readonly measurement: Measurement;
  readonly output: CommandResult;
}> {
  const loadStart = performance.now();
  const base = `http://127.0.0.1:${d.port}`;
  const load = startLoad({
    url: `${base}/health`,
    ratePerSecond: d.ratePerSecond,
    durationMs: 10 * 60_000,
    recordSamples: true,
    maxInFlight: 1024,
    keepAlive: LOAD_KEEP_ALIVE,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  const writerOffsetMs = tenth(performance.now() - loadStart);
  const writer = startWriter({
    url: `${base}/items`,
    ratePerSecond: d.writesPerSecond,
    prefix: `bench-${d.scenario}-${d.run}-${Date.now().toString(36)}`,
    durationMs: 10 * 60_000,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  await sleep(PRE_ROLL_MS);
  const marks: { atMs: number; label: string }[] = [];
  let pending = "";
  const onOutput: OnOutput = (chunk, stream) => {
    if (stream !== "stdout") return;
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      for (const [re, label] of d.milestones) {
        if (re.test(line) && !marks.some((m) => m.label === label)) {
          marks.push({ atMs: performance.now() - loadStart, label });
        }
      }
    }
  };
  const startMs = performance.now() - loadStart;
  const output = await d.deploy(onOutput);
  const endMs = performance.now() - loadStart;
  await sleep(POST_ROLL_MS);
  const [r, w] = await Promise.all([load.stop(), writer.stop()]);
  const writes: Writes = {
    sent: w.sent,
    acknowledged: w.acknowledged.length,
    failed: w.failures.length,
    missing: await missingWrites(await d.postgres(), w.acknowledged),
    failures: w.failures.slice(0, 20).map((f) => writeFailureReason(f.detail)),
    failuresAtMs: w.failures.slice(0, 20).map((f) => f.atMs + writerOffsetMs),
  };
  return {
    output,
    measurement: {
      scenario: d.scenario,
      run: d.run,
      databaseGib: d.databaseGib,
      imageMb: d.imageMb,
      exitCode: output.code,
      expectedExit: d.expectExit(output.code),
      wallSeconds: (endMs - startMs) / 1000,
      backupSeconds: null,
      backupBytes: null,
      sent: r.sent,
      ok2xx: r.ok2xx,
      non2xx: r.non2xxTotal,
      errors: r.errorsTotal,
      skipped: r.skipped,
      non2xxByStatus: r.non2xx,
      errorsByKind: r.errors,
      p50Ms: r.latencyMs.p50,
      p99Ms: r.latencyMs.p99,
      maxMs: r.latencyMs.max,
      all: { p50Ms: r.latencyAllMs.p50, p99Ms: r.latencyAllMs.p99, maxMs: r.latencyAllMs.max },
      versions: r.versions,
      steps: d.steps(output.stdout),
      overOneSecond: r.samples.filter((x) => x.latencyMs >= 1000).length,
      writes,
      trace: {
        startMs: tenth(startMs),
        endMs: tenth(endMs),
        marks: marks.map((m) => ({ atMs: tenth(m.atMs), label: m.label })),
        samples: sampleColumns(r.samples),
      },
    },
  };
}

/**
 * How many acknowledged writes are not in the database's `items`; null without a database
 * to ask. Names are the writer's own (`bench-<scenario>-<run>-<id>-<n>`), safe to quote.
 */
async function missingWrites(
  postgres: string | null,
  acknowledged: readonly string[],
): Promise<number | null> {
  if (postgres === null) return null;
  if (acknowledged.length === 0) return 0;
  const names = acknowledged.map((n) => `'${n.replaceAll("'", "''")}'`).join(",");
  const found = Number(
    await psqlInContainer(
      postgres,
      `SELECT count(DISTINCT name) FROM items WHERE name IN (${names})`,
      { timeoutMs: 5 * 60_000 },
    ),
  );
  return acknowledged.length - found;
}

/** Our script's step timings from its `timings: backup 1.2 s, pull 0.0 s, ...` line. */
export function scriptSteps(stdout: string): Record<string, number> {
  const steps: Record<string, number> = {};
  const timings = /timings: (.*)$/m.exec(stdout)?.[1] ?? "";
  for (const part of timings.split(", ")) {
    const m = /^([a-z_]+) ([\d.]+) s$/.exec(part);
    if (m?.[1] && m[2]) steps[m[1]] = Number(m[2]);
  }
  return steps;
}

/** The load's samples as the record keeps them: one column per value. */
function sampleColumns(samples: readonly LoadSample[]): Samples {
  return {
    atMs: samples.map((s) => s.atMs),
    latencyMs: samples.map((s) => s.latencyMs),
    status: samples.map((s) => s.status),
  };
}

/**
 * Why a write failed, without the write's name: `bench-deploy-1-x-7: status 500: {...}` gives
 * `status 500: {...}`, cut to 200 characters.
 */
export function writeFailureReason(detail: string): string {
  return detail.replace(/^[^:\s]+: /, "").slice(0, 200);
}
