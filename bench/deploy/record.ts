/**
 * The record of one bench run: what was measured, with which settings, on which machine. The
 * bench writes it (`bench/results/<UTC time>.json`) and the report is rendered from it alone,
 * so a page can be rendered again, or differently, without running anything. The schema is the
 * one definition of the record: the TypeScript types are inferred from it, and a record is
 * checked against it when it is read.
 *
 * Version 2 measures every procedure against the floor of the same run (a pull, a start until
 * healthy, a proxy switch), at several database sizes and image sizes, under reads and
 * acknowledged writes. Version 1 records (one database size, reads only) are refused, saying so.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";

/** What `kind` says in every record, so that another JSON file is not mistaken for one. */
export const RECORD_KIND = "clicky-delivery/deploy-bench";

const count = z.number().int().nonnegative();
const nonNegative = z.number().nonnegative();

/** The record's format; a change that old readers would misread gets a new number. */
export const RECORD_VERSION = 2;

export const scenarioIdSchema = z.enum([
  "baseline",
  "baselineNoSleep",
  "deploy",
  "failedHealth",
  "rollback",
  "peer",
  "peerFailed",
]);
export type ScenarioId = z.infer<typeof scenarioIdSchema>;

/**
 * Every request of a run's load, as three columns of the same length (a record holds tens of
 * thousands of requests; columns keep it small and still name each value).
 */
const samplesSchema = z
  .strictObject({
    /** ms since the load started, when the request was sent */
    atMs: z.array(nonNegative),
    /** ms until the answer or the error */
    latencyMs: z.array(nonNegative),
    /** the HTTP status, or 0 for a connection error or timeout */
    status: z.array(count),
  })
  .refine((s) => s.atMs.length === s.latencyMs.length && s.atMs.length === s.status.length, {
    message: "atMs, latencyMs and status must have the same length",
  });
export type Samples = z.infer<typeof samplesSchema>;

/** The load of one run over time: the deploy's window, its milestones and every request. */
const traceSchema = z.strictObject({
  /** When the deploy started and ended, ms since the load started. */
  startMs: nonNegative,
  endMs: nonNegative,
  /** Milestones of the deploy's output, ms since the load started. */
  marks: z.array(z.strictObject({ atMs: nonNegative, label: z.string().min(1) })),
  samples: samplesSchema,
});
export type Trace = z.infer<typeof traceSchema>;

/** Latency percentiles, ms. */
const latencySchema = z.strictObject({
  p50Ms: nonNegative,
  p99Ms: nonNegative,
  maxMs: nonNegative,
});

/** The acknowledged writes of one run (`POST /items`, acknowledged on 201), checked afterwards. */
const writesSchema = z.strictObject({
  sent: count,
  /** Answered 201. */
  acknowledged: count,
  /** Answered otherwise, or not at all. */
  failed: count,
  /** Acknowledged but not in the database afterwards; null when the database was not reachable to check. */
  missing: count.nullable(),
  /**
   * Why writes failed: their status and answer, or their error, the write's name left out; at
   * most 20 a run. Absent from records made before the bench kept them.
   */
  failures: z.array(z.string()).optional(),
  /**
   * When each of those writes was sent, ms since the load started (the trace's clock; the
   * writer starts with the load), in the same order. Absent from records made before the bench
   * kept them.
   */
  failuresAtMs: z.array(nonNegative).optional(),
});
export type Writes = z.infer<typeof writesSchema>;

/** One measured deploy under load. */
export const measurementSchema = z.strictObject({
  scenario: scenarioIdSchema,
  run: z.number().int().positive(),
  /** The database size step this run belongs to (`--db-gib`), GiB. */
  databaseGib: z.number().positive(),
  /** MB of incompressible layer added to the new version's image (`--image-mb`); 0 for the plain image. */
  imageMb: count,
  /** null when the deploy was ended by a signal. */
  exitCode: z.number().int().nullable(),
  /** Whether the exit code is the one this scenario should end with. */
  expectedExit: z.boolean(),
  wallSeconds: nonNegative,
  backupSeconds: nonNegative.nullable(),
  backupBytes: count.nullable(),
  sent: count,
  ok2xx: count,
  non2xx: count,
  errors: count,
  /** Ticks of the load not sent because too many requests were in flight. */
  skipped: count,
  non2xxByStatus: z.record(z.string(), count),
  errorsByKind: z.record(z.string(), count),
  /** Latency of the answered requests only. */
  p50Ms: nonNegative,
  p99Ms: nonNegative,
  maxMs: nonNegative,
  /** Latency of every request sent, a failed one (error or non-2xx) counted at the request timeout. */
  all: latencySchema,
  /** Answers by the app's version header. */
  versions: z.record(z.string(), count),
  /** The procedure's own step timings (ours: its `timings:` line; the baselines: their marks), seconds by step. */
  steps: z.record(z.string(), nonNegative),
  /** Requests that took 1 s or more until their answer or their error. */
  overOneSecond: count,
  writes: writesSchema,
  trace: traceSchema,
});
export type Measurement = z.infer<typeof measurementSchema>;

const leftBackupsSchema = z.strictObject({ bytes: count, dumps: count });

/**
 * The floor of an upgrade on the bench's host, measured on our project (bench/deploy/floor.ts):
 * what no deploy of a new version can skip. Seconds.
 */
export const floorSchema = z.strictObject({
  run: z.number().int().positive(),
  databaseGib: z.number().positive(),
  imageMb: count,
  /** `docker pull` of the new image (already present when `imageMb` is 0, else removed first). */
  pullSeconds: nonNegative,
  /** `docker run` of the new image on the project's network until its first passing health probe. */
  healthySeconds: nonNegative,
  /** The routing file written, until the proxy's first answer from the new container. */
  switchSeconds: nonNegative,
  totalSeconds: nonNegative,
});
export type Floor = z.infer<typeof floorSchema>;

/** A database size step: the size asked for and what each project's database measured. */
const sizeSchema = z.strictObject({
  databaseGib: z.number().positive(),
  /** `pg_database_size` after filling; null for the peer when it did not run or has no database we can reach. */
  bytes: z.strictObject({ ours: count, baseline: count, peer: count.nullable() }),
});
export type SizeStep = z.infer<typeof sizeSchema>;

export const benchRecordSchema = z.strictObject({
  kind: z.literal(RECORD_KIND),
  version: z.literal(RECORD_VERSION),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  settings: z.strictObject({
    runs: z.number().int().positive(),
    ratePerSecond: z.number().positive(),
    /** Acknowledged writes per second during every measured deploy. */
    writesPerSecond: z.number().positive(),
    /** The database size steps, smallest first. */
    databaseGib: z.array(z.number().positive()).min(1),
    /** The image sizes of the new version (MB added), measured at the smallest database size. */
    imageMb: z.array(count).min(1),
    /** The load runs alone this long before each deploy and after it. */
    preRollMs: count,
    postRollMs: count,
    /** Every other request on a reused keep-alive connection ("mixed"), or each on a new one ("off"). */
    keepAlive: z.enum(["off", "mixed"]),
    /** A request (read or write) with no answer after this long fails; failed requests count at it. */
    requestTimeoutMs: z.number().int().positive(),
    /** Our stack's `deploy.health.timeoutSeconds`. */
    healthTimeoutSeconds: z.number().int().positive(),
    /** Whether the peer (docker-rollout) ran. */
    peer: z.boolean(),
  }),
  machine: z.strictObject({
    cpuModel: z.string(),
    cores: z.number().int().positive(),
    memoryBytes: count,
    /** `os.type()` and `os.release()`, e.g. `Linux 6.1.0-18-amd64`. */
    kernel: z.string(),
    /** One-minute load average when the bench started. */
    loadAverage: nonNegative,
    node: z.string(),
  }),
  software: z.strictObject({
    docker: z.string(),
    /** `docker-compose version --short`, null when absent. */
    composeV1: z.string().nullable(),
    /** `docker compose version --short`, null when absent. */
    composeV2: z.string().nullable(),
    /** The compose command the procedures ran: `docker compose` or `docker-compose`. */
    composeCommand: z.string(),
    postgres: z.string(),
    postgresImage: z.string(),
    nginx: z.string(),
    proxyImage: z.string(),
  }),
  sizes: z.array(sizeSchema).min(1),
  /** The backups each procedure left on the host after the last run. */
  backupsLeft: z.strictObject({ baseline: leftBackupsSchema, ours: leftBackupsSchema }),
  /** Lookups of a slot's name that Docker's DNS did not answer in time, from nginx's log. */
  dnsTimeouts: count,
  floors: z.array(floorSchema).min(1),
  measurements: z.array(measurementSchema).min(1),
  /** What the host probe adds to a preview (bench/deploy/probe.ts), milliseconds per run. */
  probe: z
    .strictObject({
      previewWithoutProbeMs: z.array(nonNegative).min(1),
      previewWithProbeMs: z.array(nonNegative).min(1),
      sshFloorMs: z.array(nonNegative).min(1),
    })
    .optional(),
});
export type BenchRecord = z.infer<typeof benchRecordSchema>;

/** A record that does not match the schema; the message names each offending field. */
export class RecordError extends Error {
  override name = "RecordError";
}

/**
 * Checks a parsed JSON value against the schema and returns the typed record, or throws a
 * RecordError with one line per problem, quoting a wrong scalar, e.g.
 * `x.json: measurements[3].p99Ms: Invalid input: expected number, received string ("70 ms")`.
 */
export function parseRecord(value: unknown, source: string): BenchRecord {
  const head = value as { kind?: unknown; version?: unknown } | null;
  if (
    typeof head === "object" &&
    head !== null &&
    head.kind === RECORD_KIND &&
    typeof head.version === "number" &&
    head.version !== RECORD_VERSION
  ) {
    throw new RecordError(
      `${source}: a version ${head.version} record; this report reads version ${RECORD_VERSION} records only (the floor, database and image sizes, acknowledged writes): run \`npm run bench:deploy\` again`,
    );
  }
  const parsed = benchRecordSchema.safeParse(value, { reportInput: true });
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map(
    (issue) => `${source}: ${fieldPath(issue.path)}: ${issue.message}${quoted(issue.input)}`,
  );
  throw new RecordError(`not a deploy bench record:\n${lines.join("\n")}`);
}

/** Reads and checks a record file. */
export function readRecord(file: string): BenchRecord {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new RecordError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseRecord(value, file);
}

/**
 * The record as a file: indented JSON, with arrays of numbers or strings on one line each
 * (the sample columns would otherwise take a line per number).
 */
export function serializeRecord(record: BenchRecord): string {
  return `${compactJson(record, "")}\n`;
}

/** The file name of a run's record: its start in UTC, sortable, e.g. `2026-11-26T13-31-05Z.json`. */
export function recordFileName(startedAt: Date): string {
  return `${startedAt.toISOString().slice(0, 19).replaceAll(":", "-")}Z.json`;
}

/** `["measurements", 3, "p99Ms"]` reads `measurements[3].p99Ms`; the root reads `(record)`. */
function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? "(record)" : out;
}

/** ` ("70 ms")` for a short scalar; nothing for objects, arrays and what is missing. */
function quoted(input: unknown): string {
  if (input === undefined || (typeof input === "object" && input !== null)) return "";
  const text = JSON.stringify(input);
  return text.length <= 40 ? ` (${text})` : "";
}

function compactJson(value: unknown, indent: string): string {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) return JSON.stringify(value);
    const inner = `${indent}  `;
    return `[\n${value.map((v) => inner + compactJson(v, inner)).join(",\n")}\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return "{}";
    const inner = `${indent}  `;
    const lines = entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${compactJson(v, inner)}`);
    return `{\n${lines.join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value);
}
