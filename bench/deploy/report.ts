/**
 * The bench's numbers: medians over runs, the side-by-side table (ours against the spec's
 * procedure) and the targets, all from measurements only.
 */
import type { Measurement, ScenarioId } from "./record";

export const SCENARIOS: readonly { readonly id: ScenarioId; readonly title: string }[] = [
  { id: "baseline", title: "spec procedure (baseline)" },
  { id: "deploy", title: "ours: deploy v1 to v2 (migration)" },
  { id: "failedHealth", title: "ours: failed-health deploy (v3)" },
  { id: "rollback", title: "ours: rollback v2 to v1" },
];

/** The median; for an even count the mean of the two middle values. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] ?? Number.NaN;
  const lo = sorted[mid - 1] ?? hi;
  return sorted.length % 2 === 1 ? hi : (lo + hi) / 2;
}

/** The run of a scenario whose wall time is closest to the median: the one the chart shows. */
export function medianWallRun(
  ms: readonly Measurement[],
  scenario: ScenarioId,
): Measurement | undefined {
  const runs = ms.filter((m) => m.scenario === scenario);
  const mid = median(runs.map((m) => m.wallSeconds));
  let best: Measurement | undefined;
  for (const m of runs) {
    if (!best || Math.abs(m.wallSeconds - mid) < Math.abs(best.wallSeconds - mid)) best = m;
  }
  return best;
}

/** Medians of one scenario's runs. */
export interface Summary {
  readonly runs: number;
  readonly sent: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly wallSeconds: number;
  readonly backupSeconds: number;
  readonly backupBytes: number;
  /** Failed requests (non-2xx + errors) summed over all runs, not a median. */
  readonly failedTotal: number;
}

export function summarize(ms: readonly Measurement[]): Summary {
  const m = (f: (x: Measurement) => number | null) =>
    median(ms.map(f).filter((x): x is number => x !== null));
  return {
    runs: ms.length,
    sent: m((x) => x.sent),
    non2xx: m((x) => x.non2xx),
    errors: m((x) => x.errors),
    p50Ms: m((x) => x.p50Ms),
    p99Ms: m((x) => x.p99Ms),
    maxMs: m((x) => x.maxMs),
    wallSeconds: m((x) => x.wallSeconds),
    backupSeconds: m((x) => x.backupSeconds),
    backupBytes: m((x) => x.backupBytes),
    failedTotal: ms.reduce((n, x) => n + x.non2xx + x.errors, 0),
  };
}

/** The summary of every scenario, in the table's order. */
export function summarizeScenarios(ms: readonly Measurement[]): Record<ScenarioId, Summary> {
  return Object.fromEntries(
    SCENARIOS.map(({ id }) => [id, summarize(ms.filter((m) => m.scenario === id))]),
  ) as Record<ScenarioId, Summary>;
}

function ratio(ours: number, base: number): string {
  if (!Number.isFinite(ours) || !Number.isFinite(base)) return "";
  if (base === 0) return ours === 0 ? "" : " (baseline 0)";
  return ` (${(ours / base).toFixed(2)}×)`;
}

const fmt = {
  count: (n: number) => (Number.isFinite(n) ? String(Math.round(n)) : "–"),
  ms: (n: number) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(1) : Math.round(n)} ms` : "–"),
  s: (n: number) => (Number.isFinite(n) ? `${n.toFixed(1)} s` : "–"),
  mb: (n: number) => (Number.isFinite(n) ? `${(n / 1e6).toFixed(0)} MB` : "–"),
};

/**
 * The side-by-side table: one row per metric, one column per procedure, each of ours with
 * its ratio to the baseline's median.
 */
export function resultsTable(summaries: Readonly<Record<ScenarioId, Summary>>): string {
  const rows: [string, (s: Summary) => number, (n: number) => string][] = [
    ["requests sent", (s) => s.sent, fmt.count],
    ["non-2xx responses", (s) => s.non2xx, fmt.count],
    ["connection errors", (s) => s.errors, fmt.count],
    ["latency p50", (s) => s.p50Ms, fmt.ms],
    ["latency p99", (s) => s.p99Ms, fmt.ms],
    ["latency max", (s) => s.maxMs, fmt.ms],
    ["wall time, start to done", (s) => s.wallSeconds, fmt.s],
    ["backup time", (s) => s.backupSeconds, fmt.s],
    ["backup size", (s) => s.backupBytes, fmt.mb],
  ];
  const base = summaries.baseline;
  const header = `| median of ${base.runs} runs | ${SCENARIOS.map((s) => s.title).join(" | ")} |`;
  const lines = [header, `| --- |${SCENARIOS.map(() => " ---: |").join("")}`];
  for (const [name, get, show] of rows) {
    const cells = SCENARIOS.map(({ id }) => {
      const value = get(summaries[id]);
      return id === "baseline" ? show(value) : `${show(value)}${ratio(value, get(base))}`;
    });
    lines.push(`| ${name} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** Every run, as measured. */
export function runsTable(ms: readonly Measurement[]): string {
  const lines = [
    "| procedure | run | exit | wall | backup | backup size | sent | non-2xx | errors | p50 | p99 | max | ≥ 1 s | SYNs resent | answered by |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const { id, title } of SCENARIOS) {
    for (const m of ms.filter((x) => x.scenario === id)) {
      lines.push(
        `| ${title} | ${m.run} | ${m.exitCode ?? "signal"}${m.expectedExit ? "" : " (unexpected)"} | ${fmt.s(m.wallSeconds)} | ${m.backupSeconds === null ? "–" : fmt.s(m.backupSeconds)} | ${m.backupBytes === null ? "–" : fmt.mb(m.backupBytes)} | ${m.sent} | ${m.non2xx} | ${m.errors} | ${fmt.ms(m.p50Ms)} | ${fmt.ms(m.p99Ms)} | ${fmt.ms(m.maxMs)} | ${m.overOneSecond} | ${m.synRetransmits} | ${Object.entries(
          m.versions,
        )
          .map(([v, n]) => `${v}: ${n}`)
          .join(", ")} |`,
      );
    }
  }
  return lines.join("\n");
}

/** What went wrong for the clients, by kind, summed over the runs of one procedure. */
export function failureKinds(ms: readonly Measurement[]): string[] {
  const kinds = new Map<string, number>();
  for (const m of ms) {
    for (const [status, n] of Object.entries(m.non2xxByStatus))
      kinds.set(`HTTP ${status}`, (kinds.get(`HTTP ${status}`) ?? 0) + n);
    for (const [kind, n] of Object.entries(m.errorsByKind))
      kinds.set(kind, (kinds.get(kind) ?? 0) + n);
  }
  return [...kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} (${n})`);
}

/** Median seconds of each of our script's steps, in the order the script runs them. */
export function stepsTable(ms: readonly Measurement[]): string {
  const order: string[] = [];
  for (const m of ms)
    for (const step of Object.keys(m.steps)) if (!order.includes(step)) order.push(step);
  if (order.length === 0) return "";
  return [
    `| step | ${order.join(" | ")} |`,
    `| --- |${order.map(() => " ---: |").join("")}`,
    `| median seconds | ${order.map((step) => median(ms.flatMap((m) => (step in m.steps ? [m.steps[step] ?? 0] : []))).toFixed(1)).join(" | ")} |`,
  ].join("\n");
}

export interface Target {
  readonly name: string;
  readonly met: boolean;
  readonly detail: string;
}

/** The issue's targets, each from the measurements. */
export function targets(
  ms: readonly Measurement[],
  summaries: Readonly<Record<ScenarioId, Summary>>,
  databaseBytes: number,
  rate: number,
): Target[] {
  const out: Target[] = [];
  for (const id of ["deploy", "failedHealth", "rollback"] as const) {
    const runs = ms.filter((m) => m.scenario === id);
    const failed = runs.reduce((n, m) => n + m.non2xx + m.errors, 0);
    const exits = runs.every((m) => m.expectedExit);
    out.push({
      name: `zero failed requests at ${rate} req/s: ${SCENARIOS.find((s) => s.id === id)?.title}`,
      met: failed === 0 && exits && runs.length > 0,
      detail: `${failed} failed of ${runs.reduce((n, m) => n + m.sent, 0)} requests over ${runs.length} runs${exits ? "" : "; an exit code was not the expected one"}`,
    });
  }
  const ours = summaries.deploy;
  const base = summaries.baseline;
  out.push({
    name: "our deploy's wall time no longer than the baseline's",
    met: ours.wallSeconds <= base.wallSeconds,
    detail: `median ${ours.wallSeconds.toFixed(1)} s against ${base.wallSeconds.toFixed(1)} s`,
  });
  out.push({
    name: "backup (custom format) smaller than the baseline's plain SQL",
    met: ours.backupBytes < base.backupBytes,
    detail: `median ${(ours.backupBytes / 1e6).toFixed(0)} MB against ${(base.backupBytes / 1e6).toFixed(0)} MB`,
  });
  out.push({
    name: "backup no slower than the baseline's, on a database of at least 1 GiB",
    met: ours.backupSeconds <= base.backupSeconds && databaseBytes >= 2 ** 30,
    detail: `median ${ours.backupSeconds.toFixed(1)} s against ${base.backupSeconds.toFixed(1)} s; database ${(databaseBytes / 2 ** 30).toFixed(2)} GiB`,
  });
  return out;
}
