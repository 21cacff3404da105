/**
 * The bench's tables, from a record's measurements only: every procedure against the floor of
 * the same run, per database size; the cost curve; the steps; every run as measured.
 */
import {
  costCurve,
  costPerGib,
  floorCurve,
  floorRatio,
  floorsAt,
  median,
  medianFloor,
  runsAt,
} from "./cost";
import type { BenchRecord, Floor, Measurement, ScenarioId } from "./record";

export { median } from "./cost";

export const SCENARIOS: readonly { readonly id: ScenarioId; readonly title: string }[] = [
  { id: "deploy", title: "ours: upgrade v1 to v2 (migration)" },
  { id: "failedHealth", title: "ours: failed-health deploy (v3)" },
  { id: "rollback", title: "ours: rollback v2 to v1" },
  { id: "baseline", title: "spec procedure (sleep 10)" },
  { id: "baselineNoSleep", title: "spec procedure, health polled (fair variant)" },
  { id: "peer", title: "peer (docker-rollout): upgrade v1 to v2" },
  { id: "peerFailed", title: "peer (docker-rollout): failed-health deploy (v3)" },
];

/** The upgrades v1 to v2, the ones compared with the floor and each other. */
export const UPGRADES: readonly ScenarioId[] = ["deploy", "baseline", "baselineNoSleep", "peer"];

export function scenarioTitle(id: ScenarioId): string {
  return SCENARIOS.find((s) => s.id === id)?.title ?? id;
}

/** The run of a scenario whose wall time is closest to the median: the one the chart shows. */
export function medianWallRun(
  ms: readonly Measurement[],
  scenario: ScenarioId,
  where: (m: Measurement) => boolean = () => true,
): Measurement | undefined {
  const runs = ms.filter((m) => m.scenario === scenario && where(m));
  const mid = median(runs.map((m) => m.wallSeconds));
  let best: Measurement | undefined;
  for (const m of runs) {
    if (!best || Math.abs(m.wallSeconds - mid) < Math.abs(best.wallSeconds - mid)) best = m;
  }
  return best;
}

/** Medians of one scenario's runs (at one size), and the totals that must be zero. */
export interface Summary {
  readonly runs: number;
  readonly sent: number;
  readonly errors: number;
  readonly skipped: number;
  readonly overOneSecond: number;
  /** Every request, a failed one at the request timeout. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Answered requests only. */
  readonly answeredP99Ms: number;
  readonly wallSeconds: number;
  readonly backupSeconds: number;
  readonly backupBytes: number;
  readonly writesAcknowledged: number;
  /** Failed requests (non-2xx + errors), summed over the runs, not a median. */
  readonly failedTotal: number;
  /** Failed writes, summed over the runs. */
  readonly writesFailedTotal: number;
  /** Acknowledged writes missing from the database, summed; null when a run could not check. */
  readonly writesMissingTotal: number | null;
}

export function summarize(ms: readonly Measurement[]): Summary {
  const m = (f: (x: Measurement) => number | null) =>
    median(ms.map(f).filter((x): x is number => x !== null));
  const sum = (f: (x: Measurement) => number) => ms.reduce((n, x) => n + f(x), 0);
  return {
    runs: ms.length,
    sent: m((x) => x.sent),
    errors: m((x) => x.errors),
    skipped: m((x) => x.skipped),
    overOneSecond: m((x) => x.overOneSecond),
    p50Ms: m((x) => x.all.p50Ms),
    p99Ms: m((x) => x.all.p99Ms),
    maxMs: m((x) => x.all.maxMs),
    answeredP99Ms: m((x) => x.p99Ms),
    wallSeconds: m((x) => x.wallSeconds),
    backupSeconds: m((x) => x.backupSeconds),
    backupBytes: m((x) => x.backupBytes),
    writesAcknowledged: m((x) => x.writes.acknowledged),
    failedTotal: sum((x) => x.non2xx + x.errors),
    writesFailedTotal: sum((x) => x.writes.failed),
    writesMissingTotal: ms.some((x) => x.writes.missing === null)
      ? null
      : sum((x) => x.writes.missing ?? 0),
  };
}

export const fmt = {
  count: (n: number) => (Number.isFinite(n) ? String(Math.round(n)) : "–"),
  ms: (n: number) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(1) : Math.round(n)} ms` : "–"),
  s: (n: number) => (Number.isFinite(n) ? `${n.toFixed(1)} s` : "–"),
  mb: (n: number) => (Number.isFinite(n) ? `${(n / 1e6).toFixed(0)} MB` : "–"),
  gib: (n: number) => (Number.isFinite(n) ? `${n < 0.1 ? n.toFixed(3) : n.toFixed(2)} GiB` : "–"),
  ratio: (n: number) => (Number.isFinite(n) ? `${n.toFixed(1)}×` : "–"),
  image: (mb: number) => (mb === 0 ? "v2" : `v2 + ${mb} MB`),
};

/** A size step's label: what our database measured there. */
function sizeLabel(record: BenchRecord, databaseGib: number): string {
  const size = record.sizes.find((s) => s.databaseGib === databaseGib);
  return size ? fmt.gib(size.bytes.ours / 2 ** 30) : fmt.gib(databaseGib);
}

/**
 * The main table: per database size (plain image), the floor and every procedure, each with
 * its median wall time, its ratio to the floor, and what its clients saw over every request.
 */
export function floorTable(record: BenchRecord): string {
  const lines = [
    "| database | procedure | wall (median) | × floor | failed requests (all runs) | connection errors (median) | ≥ 1 s (median) | skipped ticks (median) | p50 | p99 | max | writes acknowledged (median) | writes failed (all runs) | writes missing (all runs) |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const size of record.sizes) {
    const label = sizeLabel(record, size.databaseGib);
    const floor = medianFloor(floorsAt(record.floors, size.databaseGib, 0));
    const floorSeconds = floor?.totalSeconds ?? Number.NaN;
    lines.push(
      `| ${label} | **floor**: pull ${fmt.s(floor?.pullSeconds ?? Number.NaN)} + start until healthy ${fmt.s(floor?.healthySeconds ?? Number.NaN)} + switch ${fmt.s(floor?.switchSeconds ?? Number.NaN)} | ${fmt.s(floorSeconds)} | 1.0× | | | | | | | | | | |`,
    );
    for (const { id, title } of SCENARIOS) {
      const runs = runsAt(record.measurements, id, size.databaseGib, 0);
      if (runs.length === 0) continue;
      const s = summarize(runs);
      lines.push(
        `| ${label} | ${title} | ${fmt.s(s.wallSeconds)} | ${fmt.ratio(floorRatio(s.wallSeconds, floorSeconds))} | ${s.failedTotal} | ${fmt.count(s.errors)} | ${fmt.count(s.overOneSecond)} | ${fmt.count(s.skipped)} | ${fmt.ms(s.p50Ms)} | ${fmt.ms(s.p99Ms)} | ${fmt.ms(s.maxMs)} | ${fmt.count(s.writesAcknowledged)} | ${s.writesFailedTotal} | ${s.writesMissingTotal ?? "not checked"} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The (size, image) pairs measured, smallest database first, the plain image first. */
export function costSteps(record: BenchRecord): { databaseGib: number; imageMb: number }[] {
  const out: { databaseGib: number; imageMb: number }[] = [];
  for (const size of record.sizes) {
    for (const imageMb of record.settings.imageMb) {
      const measured =
        record.measurements.some(
          (m) => m.databaseGib === size.databaseGib && m.imageMb === imageMb,
        ) || floorsAt(record.floors, size.databaseGib, imageMb).length > 0;
      if (measured) out.push({ databaseGib: size.databaseGib, imageMb });
    }
  }
  return out;
}

/**
 * The cost curve as a table: per database size and image size, the floor and the median wall
 * time of each upgrade with its ratio to that floor; then each upgrade's cost per added GiB.
 */
export function costTable(record: BenchRecord): string {
  const upgrades = UPGRADES.filter((id) => record.measurements.some((m) => m.scenario === id));
  const lines = [
    `| database | new image | floor | ${upgrades.map((id) => scenarioTitle(id)).join(" | ")} |`,
    `| ---: | --- | ---: |${upgrades.map(() => " ---: |").join("")}`,
  ];
  for (const { databaseGib, imageMb } of costSteps(record)) {
    const floor = medianFloor(floorsAt(record.floors, databaseGib, imageMb));
    const floorSeconds = floor?.totalSeconds ?? Number.NaN;
    const cells = upgrades.map((id) => {
      const runs = runsAt(record.measurements, id, databaseGib, imageMb);
      if (runs.length === 0) return "–";
      const wall = median(runs.map((m) => m.wallSeconds));
      return `${fmt.s(wall)} (${fmt.ratio(floorRatio(wall, floorSeconds))})`;
    });
    lines.push(
      `| ${sizeLabel(record, databaseGib)} | ${fmt.image(imageMb)} | ${fmt.s(floorSeconds)} | ${cells.join(" | ")} |`,
    );
  }
  const slope = (points: ReturnType<typeof costCurve>) => {
    const s = costPerGib(points);
    return s === null ? "–" : `${s.toFixed(1)} s`;
  };
  lines.push(
    `| **per added GiB** (least squares, ${fmt.image(0)}) | | ${slope(floorCurve(record))} | ${upgrades.map((id) => slope(costCurve(record, id))).join(" | ")} |`,
  );
  return lines.join("\n");
}

/**
 * Median seconds of each step of one scenario, per database size and image size, in the
 * order the procedure runs them; empty when the scenario reports no steps. `image` names the
 * new image when it is not the upgrade's (v2).
 */
export function stepsTable(record: BenchRecord, scenario: ScenarioId, image?: string): string {
  const ms = record.measurements.filter((m) => m.scenario === scenario);
  const order: string[] = [];
  for (const m of ms)
    for (const step of Object.keys(m.steps)) if (!order.includes(step)) order.push(step);
  if (order.length === 0) return "";
  const lines = [
    `| database | new image | wall | ${order.join(" | ")} |`,
    `| ---: | --- | ---: |${order.map(() => " ---: |").join("")}`,
  ];
  for (const { databaseGib, imageMb } of costSteps(record)) {
    const runs = runsAt(ms, scenario, databaseGib, imageMb);
    if (runs.length === 0) continue;
    const cells = order.map((step) =>
      median(runs.flatMap((m) => (step in m.steps ? [m.steps[step] ?? 0] : []))).toFixed(1),
    );
    lines.push(
      `| ${sizeLabel(record, databaseGib)} | ${image ?? fmt.image(imageMb)} | ${fmt.s(median(runs.map((m) => m.wallSeconds)))} | ${cells.join(" | ")} |`,
    );
  }
  return lines.join("\n");
}

/** Every run, as measured. */
export function runsTable(record: BenchRecord): string {
  const lines = [
    "| procedure | database | new image | run | exit | wall | backup | backup size | sent | non-2xx | errors | skipped | p50 | p99 | max | p99 answered | ≥ 1 s | writes ack / failed / missing | answered by |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const { id, title } of SCENARIOS) {
    for (const m of record.measurements.filter((x) => x.scenario === id)) {
      const w = m.writes;
      lines.push(
        `| ${title} | ${sizeLabel(record, m.databaseGib)} | ${fmt.image(m.imageMb)} | ${m.run} | ${m.exitCode ?? "signal"}${m.expectedExit ? "" : " (unexpected)"} | ${fmt.s(m.wallSeconds)} | ${m.backupSeconds === null ? "–" : fmt.s(m.backupSeconds)} | ${m.backupBytes === null ? "–" : fmt.mb(m.backupBytes)} | ${m.sent} | ${m.non2xx} | ${m.errors} | ${m.skipped} | ${fmt.ms(m.all.p50Ms)} | ${fmt.ms(m.all.p99Ms)} | ${fmt.ms(m.all.maxMs)} | ${fmt.ms(m.p99Ms)} | ${m.overOneSecond} | ${w.acknowledged} / ${w.failed} / ${w.missing ?? "–"} | ${Object.entries(
          m.versions,
        )
          .map(([v, n]) => `${v}: ${n}`)
          .join(", ")} |`,
      );
    }
  }
  return lines.join("\n");
}

/** Every floor measurement, as measured. */
export function floorRunsTable(record: BenchRecord): string {
  const lines = [
    "| database | new image | run | pull | start until healthy | switch | total |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const f of record.floors as readonly Floor[]) {
    lines.push(
      `| ${sizeLabel(record, f.databaseGib)} | ${fmt.image(f.imageMb)} | ${f.run} | ${fmt.s(f.pullSeconds)} | ${fmt.s(f.healthySeconds)} | ${fmt.s(f.switchSeconds)} | ${fmt.s(f.totalSeconds)} |`,
    );
  }
  return lines.join("\n");
}

/** What went wrong for the clients, by kind, summed over the runs given. */
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

/**
 * Why writes failed, by reason, summed over the runs given; runs whose record kept no reasons
 * are counted apart.
 */
export function writeFailureKinds(ms: readonly Measurement[]): string[] {
  const kinds = new Map<string, number>();
  let unexplained = 0;
  for (const m of ms) {
    const reasons = m.writes.failures;
    if (!reasons) {
      unexplained += m.writes.failed;
      continue;
    }
    for (const reason of reasons) kinds.set(reason, (kinds.get(reason) ?? 0) + 1);
    unexplained += m.writes.failed - reasons.length;
  }
  const out = [...kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `write ${k} (${n})`);
  if (unexplained > 0)
    out.push(`failed writes whose reason the record does not keep (${unexplained})`);
  return out;
}

/** The short line the bench prints after each run. */
export function runLine(m: Measurement): string {
  return `${m.scenario}: exit ${m.exitCode}, ${m.wallSeconds.toFixed(1)} s, ${m.sent} requests (${m.skipped} ticks skipped), ${m.non2xx} non-2xx, ${m.errors} errors, p50/p99/max ${m.all.p50Ms}/${m.all.p99Ms}/${m.all.maxMs} ms over every request; writes ${m.writes.acknowledged} acknowledged, ${m.writes.failed} failed, ${m.writes.missing ?? "unchecked"} missing${failedWritesWhen(m)}`;
}

/**
 * When the kept failed writes were sent: seconds into the deploy and the last milestone before
 * each, e.g. ` (failed writes sent at 131.2 s, after Migrate; 171.0 s, after Watched)`; empty
 * when none failed or the record does not keep their times.
 */
export function failedWritesWhen(m: Measurement): string {
  const times = m.writes.failuresAtMs ?? [];
  if (times.length === 0) return "";
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const at = times.map((t) => {
    if (t < m.trace.startMs) return `${seconds(m.trace.startMs - t)} before the deploy`;
    if (t > m.trace.endMs) return `${seconds(t - m.trace.endMs)} after the deploy ended`;
    const before = m.trace.marks.filter((mark) => mark.atMs <= t).at(-1);
    const into = seconds(t - m.trace.startMs);
    return before ? `${into}, after ${before.label}` : into;
  });
  return ` (failed writes sent at ${at.join("; ")})`;
}
