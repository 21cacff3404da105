/**
 * The command lines of `npm run bench:deploy` and `npm run bench:report`: strict `parseArgs`
 * of node:util, one table per command that gives both the parser's options and the --help
 * text, and errors that name the option at fault.
 */
import { parseArgs } from "node:util";

/** A command line the command cannot run with; the message names the option at fault. */
export class UsageError extends Error {
  override name = "UsageError";
}

interface OptionDoc {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** The value's placeholder in the help, e.g. `N`. */
  readonly value?: string;
  readonly description: string;
}

const BENCH_OPTIONS = {
  runs: { type: "string", value: "N", description: "runs of each procedure (default 3)" },
  rate: {
    type: "string",
    value: "R",
    description: "requests per second of the load during each deploy (default 200)",
  },
  writes: {
    type: "string",
    value: "W",
    description: "acknowledged writes per second during each deploy (default 20)",
  },
  "db-gib": {
    type: "string",
    value: "G,G",
    description:
      "database sizes, GiB: each database is grown to each in turn, smallest first (default 0.1,1,4)",
  },
  "image-mb": {
    type: "string",
    value: "M,M",
    description:
      "image sizes: MB of incompressible layer added to v2, measured on the smallest database (default 0,300)",
  },
  "no-peer": {
    type: "boolean",
    description: "leave out the peer (docker-rollout)",
  },
  "no-docs": {
    type: "boolean",
    description: "write the run's record only, not docs/benchmarks.md and its chart",
  },
  help: { type: "boolean", short: "h", description: "show this help and exit" },
} as const satisfies Record<string, OptionDoc>;

const REPORT_OPTIONS = {
  "docs-dir": {
    type: "string",
    value: "DIR",
    description: "where to write benchmarks.md and its chart (default docs)",
  },
  help: { type: "boolean", short: "h", description: "show this help and exit" },
} as const satisfies Record<string, OptionDoc>;

const DUMP_OPTIONS = {
  runs: { type: "string", value: "N", description: "runs of each case (default 3)" },
  "db-gib": {
    type: "string",
    value: "G",
    description: "database size, GiB (default 1, at most 64)",
  },
  shares: {
    type: "string",
    value: "S,S",
    description:
      "backup.cpuShares values to compare; 0 is Docker's default, else 2 to 262144 (default 0,128)",
  },
  levels: {
    type: "string",
    value: "L,L",
    description: "backup.compressionLevel values to compare, 0 (none) to 9 (default 1)",
  },
  contenders: {
    type: "string",
    value: "C,C",
    description:
      "numbers of containers spinning on the CPU beside each deploy, up to 16 (default 0,2)",
  },
  rate: {
    type: "string",
    value: "R",
    description: "requests per second of the load during each deploy (default 200, at most 2000)",
  },
  writes: {
    type: "string",
    value: "W",
    description: "acknowledged writes per second during each deploy (default 20, at most 500)",
  },
  help: { type: "boolean", short: "h", description: "show this help and exit" },
} as const satisfies Record<string, OptionDoc>;

export const BENCH_USAGE = usage(
  "npm run bench:deploy -- [options]",
  "Runs the deploy benchmark on the e2e harness, writes the run's record to bench/results/\nand renders docs/benchmarks.md and its chart from it.",
  BENCH_OPTIONS,
);

export const REPORT_USAGE = usage(
  "npm run bench:report -- [options] <record.json>",
  "Renders docs/benchmarks.md and its chart from the record of a bench run; runs nothing.",
  REPORT_OPTIONS,
);

export const DUMP_USAGE = usage(
  "npm run bench:dump -- [options]",
  "Measures failed requests and the dump's time during deploys whose backup runs at each CPU\nweight (deploy.backup.cpuShares) and compression level (deploy.backup.compressionLevel), with\nand without other work spinning on the host's CPU; then, under the same load, the floors of any\nbackup of that database (the server reading every row; a physical copy of the cluster).",
  DUMP_OPTIONS,
);

export interface BenchOptions {
  readonly runs: number;
  readonly ratePerSecond: number;
  readonly writesPerSecond: number;
  /** Ascending, no duplicates. */
  readonly databaseGib: readonly number[];
  /** Ascending, no duplicates; 0 (the plain v2 image) always first. */
  readonly imageMb: readonly number[];
  readonly peer: boolean;
  readonly writeDocs: boolean;
}

export interface DumpOptions {
  readonly runs: number;
  readonly databaseGib: number;
  /** backup.cpuShares values, ascending, no duplicates; 0 is Docker's default. */
  readonly cpuShares: readonly number[];
  /** backup.compressionLevel values, 0 to 9. */
  readonly compressionLevels: readonly number[];
  /** Numbers of CPU-spinning containers, ascending, no duplicates. */
  readonly contenders: readonly number[];
  readonly ratePerSecond: number;
  readonly writesPerSecond: number;
}

export interface ReportOptions {
  readonly record: string;
  readonly docsDir: string;
}

/** What a command line asks for: the help, or a run with these options. */
export type Parsed<T> = { readonly help: true } | ({ readonly help: false } & T);

/**
 * The options of `bench:deploy`, e.g. `["--runs", "5", "--no-docs"]` gives
 * `{ help: false, runs: 5, ratePerSecond: 200, writesPerSecond: 20, databaseGib: [0.1, 1, 4],
 * imageMb: [0, 300], peer: true, writeDocs: false }`.
 */
export function parseBenchArgs(args: readonly string[]): Parsed<BenchOptions> {
  const { values } = parse(args, BENCH_OPTIONS, false);
  if (values.help) return { help: true };
  return {
    help: false,
    runs: positive("runs", values.runs, 3, { integer: true }),
    ratePerSecond: positive("rate", values.rate, 200),
    writesPerSecond: positive("writes", values.writes, 20),
    databaseGib: list("db-gib", values["db-gib"], [0.1, 1, 4], { zero: false }),
    imageMb: [...new Set([0, ...list("image-mb", values["image-mb"], [0, 300], { zero: true })])],
    peer: !values["no-peer"],
    writeDocs: !values["no-docs"],
  };
}

/** The options of `bench:dump`, e.g. `[]` gives 3 runs on 1 GiB, weights 0 and 128, 0 and 2 contenders. */
export function parseDumpArgs(args: readonly string[]): Parsed<DumpOptions> {
  const { values } = parse(args, DUMP_OPTIONS, false);
  if (values.help) return { help: true };
  const cpuShares = list("shares", values.shares, [0, 128], { zero: true });
  const contenders = list("contenders", values.contenders, [0, 2], { zero: true });
  const compressionLevels = list("levels", values.levels, [1], { zero: true });
  for (const n of compressionLevels) {
    if (n > 9) {
      throw new UsageError(`--levels: expected 0 to 9, got "${n}" in "${values.levels}"`);
    }
  }
  for (const n of cpuShares) {
    if (n === 1 || n > 262_144) {
      throw new UsageError(
        `--shares: expected 0 (Docker's default) or 2 to 262144, got "${n}" in "${values.shares}"`,
      );
    }
  }
  return {
    help: false,
    runs: positive("runs", values.runs, 3, { integer: true }),
    databaseGib: atMost("db-gib", positive("db-gib", values["db-gib"], 1), 64),
    cpuShares,
    compressionLevels,
    contenders: contenders.map((n) => atMost("contenders", n, 16)),
    ratePerSecond: atMost("rate", positive("rate", values.rate, 200), 2000),
    writesPerSecond: atMost("writes", positive("writes", values.writes, 20), 500),
  };
}

/** The options of `bench:report`: one record file, and where the docs go. */
export function parseReportArgs(args: readonly string[]): Parsed<ReportOptions> {
  const { values, positionals } = parse(args, REPORT_OPTIONS, true);
  if (values.help) return { help: true };
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? "missing the record to render, e.g. bench/results/<time>.json"
        : `expected one record, got ${positionals.length}: ${positionals.join(", ")}`,
    );
  }
  const docsDir = values["docs-dir"] ?? "docs";
  if (docsDir === "") throw new UsageError("--docs-dir: expected a directory, got nothing");
  return { help: false, record: positionals[0] ?? "", docsDir };
}

function parse<O extends Record<string, OptionDoc>>(
  args: readonly string[],
  options: O,
  allowPositionals: boolean,
) {
  const config = Object.fromEntries(
    Object.entries(options).map(([name, o]) => [
      name,
      o.short ? { type: o.type, short: o.short } : { type: o.type },
    ]),
  ) as { [K in keyof O]: { type: O[K]["type"]; short?: string } };
  try {
    return parseArgs({ args: [...args], options: config, strict: true, allowPositionals });
  } catch (err) {
    // parseArgs's own messages name the option: "Unknown option '--rnus'".
    if (err instanceof Error && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS")) {
      throw new UsageError(err.message);
    }
    throw err;
  }
}

function positive(
  name: string,
  value: string | undefined,
  fallback: number,
  { integer = false } = {},
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  const ok =
    value.trim() !== "" && Number.isFinite(n) && n > 0 && (!integer || Number.isInteger(n));
  if (!ok) {
    throw new UsageError(
      `--${name}: expected a positive ${integer ? "whole number" : "number"}, got "${value}"`,
    );
  }
  return n;
}

function atMost(name: string, n: number, max: number): number {
  if (n > max) throw new UsageError(`--${name}: at most ${max}, got "${n}"`);
  return n;
}

/**
 * A comma-separated list of numbers, sorted ascending, without duplicates, e.g. `"1,0.1,4"`
 * gives `[0.1, 1, 4]`; image sizes are whole MB and may be 0, database sizes are positive.
 */
function list(
  name: string,
  value: string | undefined,
  fallback: number[],
  { zero }: { zero: boolean },
): number[] {
  if (value === undefined) return fallback;
  const numbers = value.split(",").map((part) => {
    const n = Number(part);
    const ok =
      part.trim() !== "" && Number.isFinite(n) && (zero ? n >= 0 && Number.isInteger(n) : n > 0);
    if (!ok) {
      throw new UsageError(
        `--${name}: expected a comma-separated list of ${zero ? "whole numbers (0 or more)" : "positive numbers"}, got "${part}" in "${value}"`,
      );
    }
    return n;
  });
  return [...new Set(numbers)].sort((a, b) => a - b);
}

function usage(command: string, summary: string, options: Record<string, OptionDoc>): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const flags = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.value ? ` ${o.value}` : ""}`;
    return [flags, o.description] as const;
  });
  const width = Math.max(...rows.map(([flags]) => flags.length));
  return [
    `Usage: ${command}`,
    "",
    summary,
    "",
    "Options:",
    ...rows.map(([flags, text]) => `  ${flags.padEnd(width)}  ${text}`),
  ].join("\n");
}
