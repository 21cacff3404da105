/**
 * The bench's targets (issue 14), each judged from a record alone, as ratios to the floor of
 * the same run where a time is concerned. A target the run did not measure (no 1 GiB size, a
 * single size) says so instead of passing.
 */
import { costCurve, costPerGib, floorRatio, floorsAt, median, medianFloor, runsAt } from "./cost";
import type { BenchRecord, ScenarioId } from "./record";
import { scenarioTitle } from "./report";

/** The limits, in one place: the page and the bench print them from here. */
export const TARGET_LIMITS = {
  /** Our upgrade at the smallest database size, as a multiple of the floor. */
  tinyUpgradeFloorRatio: 3,
  /** Our upgrade at 1 GiB, as a multiple of the floor. */
  oneGibUpgradeFloorRatio: 6,
  /** Our upgrade's wall time per added GiB of database, seconds. */
  secondsPerGib: 3,
  /** A failed-health deploy is back within the health timeout plus this, seconds. */
  failedHealthMarginSeconds: 5,
} as const;

export type TargetStatus = "met" | "missed" | "not measured";

export interface Target {
  readonly name: string;
  readonly status: TargetStatus;
  readonly detail: string;
}

const OURS: readonly ScenarioId[] = ["deploy", "failedHealth", "rollback"];

/** Our upgrade's median wall time against the floor at one size step (plain image). */
function upgradeAgainstFloor(
  record: BenchRecord,
  databaseGib: number,
  limit: number,
  name: string,
): Target {
  const runs = runsAt(record.measurements, "deploy", databaseGib, 0);
  const floor = medianFloor(floorsAt(record.floors, databaseGib, 0));
  if (runs.length === 0 || !floor) {
    return { name, status: "not measured", detail: `no upgrade and floor at ${databaseGib} GiB` };
  }
  const wall = median(runs.map((m) => m.wallSeconds));
  const ratio = floorRatio(wall, floor.totalSeconds);
  return {
    name,
    status: ratio <= limit ? "met" : "missed",
    detail: `median ${wall.toFixed(1)} s against a floor of ${floor.totalSeconds.toFixed(1)} s: ${ratio.toFixed(1)}×`,
  };
}

/** The targets, in the order the issue lists them. */
export function targets(record: BenchRecord): Target[] {
  const out: Target[] = [];
  const smallest = record.sizes[0]?.databaseGib ?? Number.NaN;
  out.push(
    upgradeAgainstFloor(
      record,
      smallest,
      TARGET_LIMITS.tinyUpgradeFloorRatio,
      `our upgrade on the smallest database (${smallest} GiB) within ${TARGET_LIMITS.tinyUpgradeFloorRatio}× the floor`,
    ),
  );
  const oneGib = record.sizes.find((s) => s.databaseGib === 1);
  const oneGibName = `our upgrade on a 1 GiB database within ${TARGET_LIMITS.oneGibUpgradeFloorRatio}× the floor`;
  out.push(
    oneGib
      ? upgradeAgainstFloor(record, 1, TARGET_LIMITS.oneGibUpgradeFloorRatio, oneGibName)
      : { name: oneGibName, status: "not measured", detail: "the run has no 1 GiB size step" },
  );

  const perGibName = `our upgrade's cost per added GiB of database at most ${TARGET_LIMITS.secondsPerGib} s`;
  const slope = costPerGib(costCurve(record, "deploy"));
  const others = (["baseline", "baselineNoSleep", "peer"] as const)
    .map((id) => [id, costPerGib(costCurve(record, id))] as const)
    .filter(([, s]) => s !== null)
    .map(([id, s]) => `${scenarioTitle(id)} ${s?.toFixed(1)} s`);
  out.push(
    slope === null
      ? { name: perGibName, status: "not measured", detail: "one database size: no slope" }
      : {
          name: perGibName,
          status: slope <= TARGET_LIMITS.secondsPerGib ? "met" : "missed",
          detail: `least-squares slope of the median wall time over ${record.sizes.length} sizes: ${slope.toFixed(1)} s per GiB${others.length ? ` (${others.join(", ")})` : ""}`,
        },
  );

  const limit = record.settings.healthTimeoutSeconds + TARGET_LIMITS.failedHealthMarginSeconds;
  const failed = record.measurements.filter((m) => m.scenario === "failedHealth");
  const slowest = failed.reduce((max, m) => Math.max(max, m.wallSeconds), 0);
  // The part of the slowest run that the gate and its undo own: from the new version's start
  // to the end of the undo. The steps before it (preflight, the migration check, the backup's
  // start) are any deploy's; the verdict counts them all the same.
  const worst = failed.find((m) => m.wallSeconds === slowest);
  const gateSteps = ["start", "health", "undo"] as const;
  const gate =
    worst && gateSteps.every((k) => typeof worst.steps[k] === "number")
      ? gateSteps.reduce((n, k) => n + (worst.steps[k] ?? 0), 0)
      : null;
  out.push({
    name: `a failed-health deploy back within the health timeout (${record.settings.healthTimeoutSeconds} s) + ${TARGET_LIMITS.failedHealthMarginSeconds} s, start to exit`,
    status:
      failed.length === 0
        ? "not measured"
        : slowest <= limit && failed.every((m) => m.expectedExit)
          ? "met"
          : "missed",
    detail: `slowest of ${failed.length} runs ${slowest.toFixed(1)} s against ${limit} s${gate === null ? "" : `; from the new version's start to the end of the undo, ${gate.toFixed(1)} s`}${failed.every((m) => m.expectedExit) ? "" : "; an exit code was not the expected one"}`,
  });

  const ours = record.measurements.filter((m) => OURS.includes(m.scenario));
  const failedRequests = ours.reduce((n, m) => n + m.non2xx + m.errors, 0);
  const failedWrites = ours.reduce((n, m) => n + m.writes.failed, 0);
  const unchecked = ours.filter((m) => m.writes.missing === null).length;
  const missing = ours.reduce((n, m) => n + (m.writes.missing ?? 0), 0);
  const exits = ours.every((m) => m.expectedExit);
  out.push({
    name: "zero failed requests and zero missing acknowledged writes in every deploy of ours",
    status:
      ours.length === 0
        ? "not measured"
        : failedRequests === 0 && failedWrites === 0 && missing === 0 && unchecked === 0 && exits
          ? "met"
          : "missed",
    detail: `${failedRequests} failed of ${ours.reduce((n, m) => n + m.sent, 0)} requests, ${failedWrites} failed and ${missing} missing of ${ours.reduce((n, m) => n + m.writes.acknowledged, 0)} acknowledged writes over ${ours.length} runs${unchecked ? `; ${unchecked} runs' writes not checked` : ""}${exits ? "" : "; an exit code was not the expected one"}`,
  });
  return out;
}

/** `MET    name: detail`, as the bench prints a target. */
export function targetLine(t: Target): string {
  const label = { met: "MET    ", missed: "MISSED ", "not measured": "NOT MEASURED " }[t.status];
  return `${label}${t.name}: ${t.detail}`;
}
