/**
 * The report of a bench record: docs/benchmarks.md and its two charts, rendered from the record
 * alone and written side by side. The bench calls it after a run; `npm run bench:report`
 * calls it on a record to render the report again without running anything.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { TopLevelSpec } from "vega-lite";
import {
  type CostSeries,
  costChartSpec,
  type LatencyPanel,
  latencyChartSpec,
  renderSvg,
} from "./chart";
import { costCurve, floorCurve, floorsAt, median, medianFloor, runsAt } from "./cost";
import { renderBenchmarkPage } from "./page";
import type { BenchRecord, ScenarioId } from "./record";
import { fmt, medianWallRun, UPGRADES } from "./report";

const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** The page's file name in the docs directory. */
export const PAGE_FILE = "benchmarks.md";
/** The latency chart's file name, next to the page (GitHub shows an SVG in markdown). */
export const CHART_FILE = "deploy-latency.svg";
/** The cost chart's file name, next to the page. */
export const COST_CHART_FILE = "deploy-cost.svg";

/** The panels of the latency chart: the run of median wall time of each upgrade. */
const CHART_PANELS: readonly { scenario: ScenarioId; title: string; color: string }[] = [
  {
    scenario: "baseline",
    title: "Spec procedure: pg_dump, pull, up -d, sleep 10, curl",
    color: "#6e6e6e",
  },
  {
    scenario: "baselineNoSleep",
    title: "Spec procedure, health polled: pg_dump, pull, up -d, curl every 0.2 s",
    color: "#8c6d31",
  },
  { scenario: "deploy", title: "Ours: upgrade v1 to v2 with a migration", color: "#145ac8" },
  { scenario: "peer", title: "Peer (docker-rollout): upgrade v1 to v2", color: "#2ca02c" },
];

/** The cost chart's names of the upgrades (short: a legend truncates long ones). */
const COST_NAMES: Readonly<Partial<Record<ScenarioId, string>>> = {
  deploy: "ours",
  baseline: "spec procedure (sleep 10)",
  baselineNoSleep: "spec procedure, health polled",
  peer: "peer (docker-rollout)",
};

/** The colors of the cost chart's lines. */
const COST_COLORS: Readonly<Record<ScenarioId | "floor", string>> = {
  floor: "#333333",
  deploy: "#145ac8",
  failedHealth: "#145ac8",
  rollback: "#145ac8",
  baseline: "#6e6e6e",
  baselineNoSleep: "#8c6d31",
  peer: "#2ca02c",
  peerFailed: "#2ca02c",
};

/**
 * How the page names a record file: its path in the repository with forward slashes, e.g.
 * `bench/results/2026-11-26T13-31-05Z.json`, or only its file name when it is elsewhere.
 */
export function recordName(file: string, repoRoot = REPO_ROOT): string {
  const relative = path.relative(repoRoot, path.resolve(file));
  if (relative.startsWith("..") || path.isAbsolute(relative)) return path.basename(file);
  return relative.split(path.sep).join("/");
}

/**
 * The latency chart's Vega-Lite spec for a record: each upgrade's run of median wall time on
 * the largest database, with the plain image (an upgrade the record lacks has no panel).
 */
export function reportChartSpec(record: BenchRecord): TopLevelSpec {
  const largest = record.sizes.at(-1);
  if (!largest) throw new Error("the record has no database size");
  const panels: LatencyPanel[] = [];
  for (const { scenario, title, color } of CHART_PANELS) {
    const run = medianWallRun(
      record.measurements,
      scenario,
      (m) => m.databaseGib === largest.databaseGib && m.imageMb === 0,
    );
    if (!run) continue;
    panels.push({ title: `${title} (run ${run.run})`, color, trace: run.trace });
  }
  if (panels.length === 0) throw new Error("the record has no upgrade to chart");
  const { ratePerSecond, writesPerSecond } = record.settings;
  return latencyChartSpec(
    `Latency of every read at ${ratePerSecond} req/s (and ${writesPerSecond} writes/s) during an upgrade (${fmt.gib(largest.bytes.ours / 2 ** 30)} database)`,
    panels,
  );
}

/**
 * The cost chart's Vega-Lite spec: the floor and each upgrade's median wall time against its
 * database's measured size, and, as points alone, the upgrades with each larger image.
 */
export function costChartSpecOf(record: BenchRecord): TopLevelSpec {
  const series: CostSeries[] = [
    {
      name: "floor (pull + start + switch)",
      color: COST_COLORS.floor,
      dashed: true,
      points: floorCurve(record).map((p) => ({ gib: p.measuredGib, seconds: p.wallSeconds })),
    },
  ];
  for (const id of UPGRADES) {
    const points = costCurve(record, id);
    if (points.length === 0) continue;
    series.push({
      name: COST_NAMES[id] ?? id,
      color: COST_COLORS[id],
      points: points.map((p) => ({ gib: p.measuredGib, seconds: p.wallSeconds })),
    });
  }
  const smallest = record.sizes[0];
  for (const imageMb of record.settings.imageMb.filter((mb) => mb > 0)) {
    if (!smallest) break;
    const gib = smallest.bytes.ours / 2 ** 30;
    const floor = medianFloor(floorsAt(record.floors, smallest.databaseGib, imageMb));
    if (floor) {
      series.push({
        name: `floor, ${fmt.image(imageMb)}`,
        color: COST_COLORS.floor,
        points: [{ gib, seconds: floor.totalSeconds }],
      });
    }
    for (const id of UPGRADES) {
      const runs = runsAt(record.measurements, id, smallest.databaseGib, imageMb);
      if (runs.length === 0) continue;
      series.push({
        name: `${COST_NAMES[id] ?? id}, ${fmt.image(imageMb)}`,
        color: COST_COLORS[id],
        points: [{ gib, seconds: median(runs.map((m) => m.wallSeconds)) }],
      });
    }
  }
  return costChartSpec(
    `The cost curve: wall time of an upgrade against the database's size (${record.settings.ratePerSecond} req/s)`,
    series,
  );
}

/**
 * The page and the chart of a record. `recordFile` is how the page names the record, e.g.
 * `bench/results/2026-11-26T13-31-05Z.json`.
 */
export async function renderReport(
  record: BenchRecord,
  recordFile: string,
): Promise<{ readonly page: string; readonly chart: string; readonly costChart: string }> {
  return {
    page: renderBenchmarkPage(record, {
      record: recordFile,
      chart: CHART_FILE,
      costChart: COST_CHART_FILE,
    }),
    chart: await renderSvg(reportChartSpec(record)),
    costChart: await renderSvg(costChartSpecOf(record)),
  };
}

/** Renders the report of a record into `docsDir` and returns the paths it wrote. */
export async function writeReport(
  record: BenchRecord,
  recordFile: string,
  docsDir: string,
): Promise<string[]> {
  const { page, chart, costChart } = await renderReport(record, recordFile);
  mkdirSync(docsDir, { recursive: true });
  const pageFile = path.join(docsDir, PAGE_FILE);
  const chartFile = path.join(docsDir, CHART_FILE);
  const costChartFile = path.join(docsDir, COST_CHART_FILE);
  writeFileSync(pageFile, page);
  writeFileSync(chartFile, chart);
  writeFileSync(costChartFile, costChart);
  return [pageFile, chartFile, costChartFile];
}
