/**
 * The latency-over-time chart of the bench, as a Vega-Lite spec rendered to SVG: one panel per
 * deploy procedure, the same axes for all, every request a dot (answered: at its latency on a
 * log scale; failed: a red tick in the strip above the plot), the deploy's start and end and
 * its milestones as dashed rules with their labels stacked so that none overlap.
 */
import type { TopLevelSpec } from "vega-lite";
import type { Samples, Trace } from "./record";

/** A view of a vertical concatenation, as Vega-Lite's public type of a top-level spec has it. */
type ConcatView = Extract<TopLevelSpec, { vconcat: unknown }>["vconcat"][number];
/** A layer of a layered view. */
type LayerView = Extract<ConcatView, { layer: unknown }>["layer"][number];

export interface LatencyPanel {
  readonly title: string;
  /** A CSS color for the panel's answered requests and its title. */
  readonly color: string;
  readonly trace: Trace;
}

/** Text the chart shows; tests look for it in the SVG. */
export const CHART_TEXT = {
  xAxis: "Seconds since the deploy started",
  yAxis: "Latency",
  failed: "Failed",
  started: "Deploy started",
  done: "Done",
} as const;

/** Width of every plot, px. */
export const PLOT_WIDTH = 900;
const PLOT_HEIGHT = 220;
const STRIP_HEIGHT = 18;
const LABEL_FONT_SIZE = 11;
const LANE_HEIGHT = 14;
const RED = "#d62728";
const ORANGE = "#f08c00";
const INK = "#333333";
const MUTED = "#777777";
/** The lowest latency on the axis, ms; faster answers are drawn on it. */
const Y_FLOOR_MS = 0.1;

/** A milestone or the deploy's start or end, with where its label goes. */
export interface RuleLabel {
  readonly t: number;
  readonly label: string;
  readonly kind: "deploy" | "milestone";
  /** Label on the left of the rule when it would run past the plot's right edge. */
  readonly side: "right" | "left";
  /** Row of the label, 0 at the top (milestones) or at the bottom (the deploy's start, end). */
  readonly lane: number;
}

/**
 * A label's width in pixels with a few pixels of room, estimated (about 0.62 em a character):
 * the SVG is laid out without the viewer's fonts.
 */
export function labelWidth(text: string): number {
  return text.length * LABEL_FONT_SIZE * 0.62 + 8;
}

/**
 * Assigns each label the first row where it overlaps no label already placed, going through
 * the labels from left to right; `x` is the pixel of its rule, `side` the side it extends to.
 */
export function assignLanes(
  labels: readonly { readonly x: number; readonly text: string; readonly side: "right" | "left" }[],
): number[] {
  const extent = (l: (typeof labels)[number]): [number, number] => {
    const width = labelWidth(l.text);
    return l.side === "right" ? [l.x, l.x + width] : [l.x - width, l.x];
  };
  const placed = labels
    .map((label, index) => ({ index, extent: extent(label) }))
    .sort((a, b) => a.extent[0] - b.extent[0]);
  const laneEnds: number[] = [];
  const lanes = new Array<number>(labels.length).fill(0);
  for (const {
    index,
    extent: [left, right],
  } of placed) {
    let lane = laneEnds.findIndex((end) => end <= left);
    if (lane < 0) lane = laneEnds.length;
    laneEnds[lane] = right;
    lanes[index] = lane;
  }
  return lanes;
}

/**
 * The answered requests of a trace as dots, in seconds since the deploy started. Dots that
 * would land in the same 2 px square of the plot (a dot's size) are drawn once: the picture is
 * the same, the SVG a fraction of the size.
 */
export function latencyDots(
  trace: Trace,
  xDomain: readonly [number, number],
  yTop: number,
): { t: number; latencyMs: number; answer: "2xx" | "other" }[] {
  const xPx = PLOT_WIDTH / (xDomain[1] - xDomain[0]);
  const yPx = PLOT_HEIGHT / (Math.log10(yTop) - Math.log10(Y_FLOOR_MS));
  const seen = new Set<string>();
  const dots: { t: number; latencyMs: number; answer: "2xx" | "other" }[] = [];
  forEachSample(trace.samples, (atMs, latencyMs, status) => {
    if (status === 0) return;
    const t = (atMs - trace.startMs) / 1000;
    const y = Math.max(latencyMs, Y_FLOOR_MS);
    const answer = status >= 200 && status < 300 ? "2xx" : "other";
    const cell = `${Math.round((t * xPx) / 2)}:${Math.round((Math.log10(y) * yPx) / 2)}:${answer}`;
    if (seen.has(cell)) return;
    seen.add(cell);
    dots.push({ t: round(t, 3), latencyMs: round(y, 2), answer });
  });
  return dots;
}

/** Times of the failed requests (no answer, or not 2xx), seconds since the deploy started. */
export function failureTimes(trace: Trace): number[] {
  const seen = new Set<number>();
  forEachSample(trace.samples, (atMs, _latencyMs, status) => {
    if (status < 200 || status >= 300) {
      seen.add(round((atMs - trace.startMs) / 1000, 2));
    }
  });
  return [...seen];
}

/** The number of requests of a trace, and how many failed. */
export function requestCounts(trace: Trace): { sent: number; failed: number } {
  let failed = 0;
  forEachSample(trace.samples, (_atMs, _latencyMs, status) => {
    if (status < 200 || status >= 300) failed++;
  });
  return { sent: trace.samples.status.length, failed };
}

const VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** The type and axes every chart of the page shares. */
const CHART_CONFIG = {
  font: "Helvetica, Arial, sans-serif",
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal", titleColor: INK },
} as const;

/** A chart's title and subtitle, set as every chart of the page sets them. */
function chartTitle(text: string, subtitle: string | string[]) {
  return {
    text,
    subtitle,
    anchor: "start" as const,
    fontSize: 16,
    subtitleFontSize: 12,
    subtitleColor: MUTED,
    offset: 12,
  };
}

/**
 * The chart's Vega-Lite spec: a title, then per panel its title, the failure strip and the
 * latency plot. Both axes have explicit domains, the same in every panel, so the panels
 * compare at a glance.
 */
export function latencyChartSpec(title: string, panels: readonly LatencyPanel[]): TopLevelSpec {
  const xDomain = timeDomain(panels.map((p) => p.trace));
  const yTop = latencyTop(panels.map((p) => p.trace));
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: chartTitle(title, [
      "One dot per request, at its latency (log scale); orange: answered, but not 2xx.",
      "Red ticks above a plot: failed requests (no answer, or not 2xx).",
    ]),
    config: {
      ...CHART_CONFIG,
      // Equal y-axis widths keep the plots of every panel aligned with their failure strips.
      axisY: { minExtent: 48, maxExtent: 48 },
      concat: { spacing: 28 },
    },
    vconcat: panels.map((panel) => panelSpec(panel, xDomain, yTop)),
  };
}

function panelSpec(panel: LatencyPanel, xDomain: [number, number], yTop: number): ConcatView {
  const { sent, failed } = requestCounts(panel.trace);
  const rules = ruleLabels(panel.trace, xDomain);
  const xScale = { domain: xDomain, nice: false, zero: false };
  const xBare = { field: "t", type: "quantitative", scale: xScale, axis: null } as const;
  // Every layer of the plot names the same axis: one layer without it would remove it.
  const xAxis = {
    ...xBare,
    axis: { title: CHART_TEXT.xAxis, grid: false, values: timeTicks(xDomain) },
  } as const;
  const yTicks: number[] = [];
  for (let v = Y_FLOOR_MS; v <= yTop * 1.001; v *= 10) yTicks.push(Number(v.toPrecision(1)));
  const labelLayer = (side: "right" | "left"): LayerView => ({
    data: { values: rules.filter((r) => r.side === side) },
    transform: [
      {
        calculate: `datum.kind === 'deploy' ? ${PLOT_HEIGHT - LANE_HEIGHT - 2} - datum.lane * ${LANE_HEIGHT} : 3 + datum.lane * ${LANE_HEIGHT}`,
        as: "labelY",
      },
    ],
    mark: {
      type: "text",
      align: side === "right" ? "left" : "right",
      dx: side === "right" ? 3 : -3,
      baseline: "top",
      fontSize: LABEL_FONT_SIZE,
    },
    encoding: {
      x: xAxis,
      // Pixels from the top of the plot (scale null), not a latency.
      y: { field: "labelY", type: "quantitative", scale: null },
      text: { field: "label" },
      color: {
        field: "kind",
        type: "nominal",
        scale: { domain: ["deploy", "milestone"], range: [INK, MUTED] },
        legend: null,
      },
    },
  });
  return {
    title: {
      text: panel.title,
      subtitle: `${sent} requests, ${failed === 0 ? "none failed" : `${failed} failed`}`,
      anchor: "start",
      color: panel.color,
      fontSize: 13,
      subtitleColor: failed === 0 ? INK : RED,
    },
    spacing: 4,
    vconcat: [
      {
        width: PLOT_WIDTH,
        height: STRIP_HEIGHT,
        data: { values: failureTimes(panel.trace).map((t) => ({ t, row: CHART_TEXT.failed })) },
        mark: { type: "tick", color: RED, thickness: 1, opacity: 0.8 },
        encoding: {
          x: xBare,
          y: {
            field: "row",
            type: "nominal",
            scale: { domain: [CHART_TEXT.failed] },
            axis: { title: null, domain: false, ticks: false, labelColor: RED, labelFontSize: 11 },
          },
        },
      },
      {
        width: PLOT_WIDTH,
        height: PLOT_HEIGHT,
        layer: [
          {
            data: { values: rules },
            mark: { type: "rule", strokeDash: [4, 3], strokeWidth: 1 },
            encoding: {
              x: xAxis,
              color: {
                field: "kind",
                type: "nominal",
                scale: { domain: ["deploy", "milestone"], range: [INK, "#aaaaaa"] },
                legend: null,
              },
            },
          },
          {
            data: { values: latencyDots(panel.trace, xDomain, yTop) },
            // 2 px squares, like the grid of latencyDots; no ARIA label per dot (thousands).
            mark: { type: "rect", width: 2, height: 2, opacity: 0.8, aria: false },
            encoding: {
              x: xAxis,
              y: {
                field: "latencyMs",
                type: "quantitative",
                scale: { type: "log", domain: [Y_FLOOR_MS, yTop], nice: false },
                axis: {
                  title: CHART_TEXT.yAxis,
                  values: yTicks,
                  labelExpr:
                    "datum.value >= 1000 ? datum.value / 1000 + ' s' : datum.value + ' ms'",
                  gridDash: [2, 3],
                  gridColor: "#dddddd",
                },
              },
              color: {
                field: "answer",
                type: "nominal",
                scale: { domain: ["2xx", "other"], range: [panel.color, ORANGE] },
                legend: null,
              },
            },
          },
          labelLayer("right"),
          labelLayer("left"),
        ],
        resolve: { scale: { color: "independent" } },
      },
    ],
  };
}

/**
 * The deploy's start and end and its milestones, each with its side and row: a label goes
 * left of its rule where it would run past the right edge of the plot.
 */
export function ruleLabels(trace: Trace, xDomain: readonly [number, number]): RuleLabel[] {
  const pxPerSecond = PLOT_WIDTH / (xDomain[1] - xDomain[0]);
  const rules = [
    { atMs: trace.startMs, label: CHART_TEXT.started, kind: "deploy" as const },
    { atMs: trace.endMs, label: CHART_TEXT.done, kind: "deploy" as const },
    ...trace.marks.map((m) => ({ ...m, kind: "milestone" as const })),
  ].map((r) => {
    const t = round((r.atMs - trace.startMs) / 1000, 3);
    const x = (t - xDomain[0]) * pxPerSecond;
    const side = x + labelWidth(r.label) > PLOT_WIDTH ? ("left" as const) : ("right" as const);
    return { ...r, t, x, side };
  });
  const out: RuleLabel[] = [];
  for (const kind of ["deploy", "milestone"] as const) {
    const ofKind = rules.filter((r) => r.kind === kind);
    const lanes = assignLanes(ofKind.map((r) => ({ x: r.x, text: r.label, side: r.side })));
    out.push(
      ...ofKind.map((r, i) => ({
        t: r.t,
        label: r.label,
        kind,
        side: r.side,
        lane: lanes[i] ?? 0,
      })),
    );
  }
  return out;
}

/**
 * Renders a Vega-Lite spec to SVG headless: compiled to Vega, then laid out and drawn by a
 * Vega view with no renderer of its own. Both packages are ES modules only, hence the dynamic
 * imports (this project compiles to CommonJS).
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const vegaLite = await import("vega-lite");
  const vega = await import("vega");
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Seconds since the deploy started, from the earliest request to the latest answer of all. */
function timeDomain(traces: readonly Trace[]): [number, number] {
  let before = 0;
  let after = 0;
  for (const trace of traces) {
    let first = trace.startMs;
    let last = trace.endMs;
    forEachSample(trace.samples, (atMs, latencyMs) => {
      first = Math.min(first, atMs);
      last = Math.max(last, atMs + latencyMs);
    });
    before = Math.max(before, trace.startMs - first);
    after = Math.max(after, last - trace.startMs);
  }
  return [-Math.ceil(before / 1000), Math.ceil(after / 1000)];
}

/** Every 5 s (1 s on a span of up to 10 s, 10 s on one of more than a minute), 0 included. */
function timeTicks([from, to]: readonly [number, number]): number[] {
  const span = to - from;
  const step = span <= 10 ? 1 : span <= 60 ? 5 : 10;
  const ticks: number[] = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) ticks.push(t);
  return ticks;
}

/** The top of the latency axis: the power of ten at or above every answer, at least 1 s. */
function latencyTop(traces: readonly Trace[]): number {
  let max = 1000;
  for (const trace of traces) {
    forEachSample(trace.samples, (_atMs, latencyMs, status) => {
      if (status !== 0) max = Math.max(max, latencyMs);
    });
  }
  return 10 ** Math.ceil(Math.log10(max));
}

function forEachSample(
  samples: Samples,
  visit: (atMs: number, latencyMs: number, status: number) => void,
): void {
  for (let i = 0; i < samples.status.length; i++) {
    visit(samples.atMs[i] ?? 0, samples.latencyMs[i] ?? 0, samples.status[i] ?? 0);
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** One line of the cost chart: a procedure's median wall time per database size. */
export interface CostSeries {
  readonly name: string;
  /** A CSS color for its line and points. */
  readonly color: string;
  /** Dashed, for the floor. */
  readonly dashed?: boolean;
  readonly points: readonly { readonly gib: number; readonly seconds: number }[];
}

/** Text the cost chart shows; tests look for it in the SVG. */
export const COST_CHART_TEXT = {
  xAxis: "Database size (GiB)",
  yAxis: "Wall time, start to done (s)",
} as const;

/**
 * The cost chart's Vega-Lite spec: wall time against the database's size, a line with points
 * per procedure, the floor dashed; the legend names each line.
 */
export function costChartSpec(title: string, series: readonly CostSeries[]): TopLevelSpec {
  const values = series.flatMap((s) =>
    s.points.map((p) => ({
      procedure: s.name,
      dashed: s.dashed ?? false,
      gib: round(p.gib, 3),
      seconds: round(p.seconds, 2),
    })),
  );
  const color = {
    field: "procedure",
    type: "nominal",
    scale: { domain: series.map((s) => s.name), range: series.map((s) => s.color) },
    legend: { title: null, orient: "bottom", columns: 2, labelFontSize: 11, labelLimit: 400 },
  } as const;
  const x = {
    field: "gib",
    type: "quantitative",
    title: COST_CHART_TEXT.xAxis,
    scale: { zero: true },
  } as const;
  const y = {
    field: "seconds",
    type: "quantitative" as const,
    title: COST_CHART_TEXT.yAxis,
    scale: { zero: true },
    axis: { gridDash: [2, 3], gridColor: "#dddddd" },
  };
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: chartTitle(
      title,
      "Median wall time per database size; the floor dashed. Points alone: a larger image.",
    ),
    config: CHART_CONFIG,
    width: PLOT_WIDTH * 0.75,
    height: 320,
    data: { values },
    layer: [
      {
        transform: [{ filter: "!datum.dashed" }],
        mark: { type: "line", strokeWidth: 2 },
        encoding: { x, y, color },
      },
      {
        transform: [{ filter: "datum.dashed" }],
        mark: { type: "line", strokeWidth: 2, strokeDash: [6, 4] },
        encoding: { x, y, color },
      },
      { mark: { type: "point", filled: true, size: 50 }, encoding: { x, y, color } },
    ],
  };
}
