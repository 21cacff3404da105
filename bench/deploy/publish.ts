/**
 * The report of a bench record: docs/benchmarks.md and its chart, rendered from the record
 * alone and written side by side. The bench calls it after a run; `npm run bench:report`
 * calls it on a record to render the report again without running anything.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { TopLevelSpec } from "vega-lite";
import { type LatencyPanel, latencyChartSpec, renderSvg } from "./chart";
import { renderBenchmarkPage } from "./page";
import type { BenchRecord, ScenarioId } from "./record";
import { medianWallRun } from "./report";

const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** The page's file name in the docs directory. */
export const PAGE_FILE = "benchmarks.md";
/** The chart's file name, next to the page (GitHub shows an SVG in markdown). */
export const CHART_FILE = "deploy-latency.svg";

/** The panels of the chart: the run of median wall time of the baseline and of our deploy. */
const CHART_PANELS: readonly { scenario: ScenarioId; title: string; color: string }[] = [
  {
    scenario: "baseline",
    title: "Spec procedure: pg_dump, pull, up -d, sleep 10, curl",
    color: "#6e6e6e",
  },
  { scenario: "deploy", title: "Ours: deploy v1 to v2 with a migration", color: "#145ac8" },
];

/**
 * How the page names a record file: its path in the repository with forward slashes, e.g.
 * `bench/results/2026-11-26T13-31-05Z.json`, or only its file name when it is elsewhere.
 */
export function recordName(file: string, repoRoot = REPO_ROOT): string {
  const relative = path.relative(repoRoot, path.resolve(file));
  if (relative.startsWith("..") || path.isAbsolute(relative)) return path.basename(file);
  return relative.split(path.sep).join("/");
}

/** The chart's Vega-Lite spec for a record. */
export function reportChartSpec(record: BenchRecord): TopLevelSpec {
  const panels: LatencyPanel[] = [];
  for (const { scenario, title, color } of CHART_PANELS) {
    const run = medianWallRun(record.measurements, scenario);
    if (!run) throw new Error(`the record has no run of the scenario "${scenario}" to chart`);
    panels.push({ title: `${title} (run ${run.run})`, color, trace: run.trace });
  }
  const { ratePerSecond, databaseGib } = record.settings;
  return latencyChartSpec(
    `Latency of every request at ${ratePerSecond} req/s during a deploy (${databaseGib} GiB database)`,
    panels,
  );
}

/**
 * The page and the chart of a record. `recordFile` is how the page names the record, e.g.
 * `bench/results/2026-11-26T13-31-05Z.json`.
 */
export async function renderReport(
  record: BenchRecord,
  recordFile: string,
): Promise<{ readonly page: string; readonly chart: string }> {
  return {
    page: renderBenchmarkPage(record, { record: recordFile, chart: CHART_FILE }),
    chart: await renderSvg(reportChartSpec(record)),
  };
}

/** Renders the report of a record into `docsDir` and returns the paths it wrote. */
export async function writeReport(
  record: BenchRecord,
  recordFile: string,
  docsDir: string,
): Promise<string[]> {
  const { page, chart } = await renderReport(record, recordFile);
  mkdirSync(docsDir, { recursive: true });
  const pageFile = path.join(docsDir, PAGE_FILE);
  const chartFile = path.join(docsDir, CHART_FILE);
  writeFileSync(pageFile, page);
  writeFileSync(chartFile, chart);
  return [pageFile, chartFile];
}
