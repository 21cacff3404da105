/**
 * The cost curve: how a procedure's wall time grows with the database, and each procedure
 * against the floor of the same run. Pure functions of a record's measurements.
 */
import type { BenchRecord, Floor, Measurement, ScenarioId } from "./record";

/** The median; for an even count the mean of the two middle values; NaN for none. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] ?? Number.NaN;
  const lo = sorted[mid - 1] ?? hi;
  return sorted.length % 2 === 1 ? hi : (lo + hi) / 2;
}

/** A straight line `y = intercept + slope * x`. */
export interface Line {
  readonly slope: number;
  readonly intercept: number;
}

/**
 * The least-squares line through points, e.g. (0, 10), (1, 12), (4, 18) gives a slope of 2
 * and an intercept of 10; null with fewer than two distinct x (no slope to speak of).
 */
export function leastSquares(
  points: readonly { readonly x: number; readonly y: number }[],
): Line | null {
  const usable = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  if (new Set(usable.map((p) => p.x)).size < 2) return null;
  const n = usable.length;
  const meanX = usable.reduce((s, p) => s + p.x, 0) / n;
  const meanY = usable.reduce((s, p) => s + p.y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of usable) {
    sxy += (p.x - meanX) * (p.y - meanY);
    sxx += (p.x - meanX) ** 2;
  }
  const slope = sxy / sxx;
  return { slope, intercept: meanY - slope * meanX };
}

/**
 * A procedure's time as a multiple of the floor, e.g. 12 s against a floor of 4 s is 3; NaN
 * when either is unknown or the floor is not positive.
 */
export function floorRatio(seconds: number, floorSeconds: number): number {
  if (!Number.isFinite(seconds) || !Number.isFinite(floorSeconds) || floorSeconds <= 0) {
    return Number.NaN;
  }
  return seconds / floorSeconds;
}

/** Which project's database a scenario's runs used (their size is that database's). */
export function projectOf(scenario: ScenarioId): "ours" | "baseline" | "peer" {
  if (scenario === "baseline" || scenario === "baselineNoSleep") return "baseline";
  if (scenario === "peer" || scenario === "peerFailed") return "peer";
  return "ours";
}

/** The runs of one scenario at one database size step and image size. */
export function runsAt(
  ms: readonly Measurement[],
  scenario: ScenarioId,
  databaseGib: number,
  imageMb: number,
): Measurement[] {
  return ms.filter(
    (m) => m.scenario === scenario && m.databaseGib === databaseGib && m.imageMb === imageMb,
  );
}

/** The floors at one database size step and image size. */
export function floorsAt(floors: readonly Floor[], databaseGib: number, imageMb: number): Floor[] {
  return floors.filter((f) => f.databaseGib === databaseGib && f.imageMb === imageMb);
}

/** The median floor (each part and the total, each a median over the runs), or null when none was measured. */
export function medianFloor(floors: readonly Floor[]): {
  pullSeconds: number;
  healthySeconds: number;
  switchSeconds: number;
  totalSeconds: number;
} | null {
  if (floors.length === 0) return null;
  return {
    pullSeconds: median(floors.map((f) => f.pullSeconds)),
    healthySeconds: median(floors.map((f) => f.healthySeconds)),
    switchSeconds: median(floors.map((f) => f.switchSeconds)),
    totalSeconds: median(floors.map((f) => f.totalSeconds)),
  };
}

/** One point of a cost curve: the database's measured size and the median wall time there. */
export interface CostPoint {
  /** The size step (`--db-gib`). */
  readonly databaseGib: number;
  /** What the scenario's database measured at that step, GiB (the step when unknown). */
  readonly measuredGib: number;
  readonly wallSeconds: number;
}

/**
 * A scenario's cost curve at the plain image: per database size step, its database's measured
 * size and the median wall time of its runs there; steps without runs are left out.
 */
export function costCurve(record: BenchRecord, scenario: ScenarioId): CostPoint[] {
  const project = projectOf(scenario);
  const out: CostPoint[] = [];
  for (const size of record.sizes) {
    const runs = runsAt(record.measurements, scenario, size.databaseGib, 0);
    if (runs.length === 0) continue;
    const bytes = size.bytes[project];
    out.push({
      databaseGib: size.databaseGib,
      measuredGib: bytes === null ? size.databaseGib : bytes / 2 ** 30,
      wallSeconds: median(runs.map((m) => m.wallSeconds)),
    });
  }
  return out;
}

/** The floor's curve at the plain image, against our database's measured size. */
export function floorCurve(record: BenchRecord): CostPoint[] {
  const out: CostPoint[] = [];
  for (const size of record.sizes) {
    const floor = medianFloor(floorsAt(record.floors, size.databaseGib, 0));
    if (!floor) continue;
    out.push({
      databaseGib: size.databaseGib,
      measuredGib: size.bytes.ours / 2 ** 30,
      wallSeconds: floor.totalSeconds,
    });
  }
  return out;
}

/**
 * Seconds of wall time per added GiB of database: the slope of the least-squares line of a
 * cost curve's median wall time against its database's measured GiB; null with one size.
 */
export function costPerGib(curve: readonly CostPoint[]): number | null {
  return leastSquares(curve.map((p) => ({ x: p.measuredGib, y: p.wallSeconds })))?.slope ?? null;
}
