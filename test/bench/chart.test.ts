import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  assignLanes,
  CHART_TEXT,
  COST_CHART_TEXT,
  failureTimes,
  labelWidth,
  latencyDots,
  PLOT_WIDTH,
  requestCounts,
  ruleLabels,
} from "../../bench/deploy/chart";
import { costChartSpecOf, renderReport, reportChartSpec } from "../../bench/deploy/publish";
import type { Trace } from "../../bench/deploy/record";
import { fixtureRecord } from "../support/bench";

/** A trace of the given requests ([atMs, latencyMs, status]), the deploy from 1 s to 3 s. */
function traceOf(requests: [number, number, number][], marks: Trace["marks"] = []): Trace {
  return {
    startMs: 1000,
    endMs: 3000,
    marks,
    samples: {
      atMs: requests.map((r) => r[0]),
      latencyMs: requests.map((r) => r[1]),
      status: requests.map((r) => r[2]),
    },
  };
}

describe("the latency chart's data", () => {
  test("draws answered requests as dots at seconds since the deploy started", () => {
    const dots = latencyDots(
      traceOf([
        [0, 1.5, 200],
        [2500, 40, 502],
        [2600, 5000, 0],
      ]),
      [-1, 3],
      10_000,
    );
    assert.deepEqual(dots, [
      { t: -1, latencyMs: 1.5, answer: "2xx" },
      { t: 1.5, latencyMs: 40, answer: "other" },
    ]);
  });

  test("draws dots that would land on the same spot once", () => {
    const dots = latencyDots(
      traceOf([
        [1000, 1.5, 200],
        [1001, 1.51, 200],
        [1000, 1.5, 503],
        [1000, 150, 200],
      ]),
      [-1, 3],
      10_000,
    );
    assert.equal(dots.length, 3);
  });

  test("puts faster answers than the axis shows on its floor", () => {
    const [dot] = latencyDots(traceOf([[1000, 0.01, 200]]), [-1, 3], 10_000);
    assert.equal(dot?.latencyMs, 0.1);
  });

  test("marks failed requests (no answer, or not 2xx) on the failure strip", () => {
    const trace = traceOf([
      [500, 1, 200],
      [1500, 5000, 0],
      [2000, 3, 502],
    ]);
    assert.deepEqual(failureTimes(trace), [0.5, 1]);
    assert.deepEqual(requestCounts(trace), { sent: 3, failed: 2 });
  });
});

describe("the labels of the deploy's milestones", () => {
  test("share a row when they are far apart", () => {
    assert.deepEqual(
      assignLanes([
        { x: 0, text: "Backup done", side: "right" },
        { x: 400, text: "Healthy", side: "right" },
      ]),
      [0, 0],
    );
  });

  test("stack in rows when they would overlap, whatever their order", () => {
    assert.deepEqual(
      assignLanes([
        { x: 300, text: "Switched", side: "right" },
        { x: 100, text: "Backup done", side: "right" },
        { x: 100, text: "Migrate", side: "right" },
        { x: 150, text: "Healthy", side: "right" },
      ]),
      [0, 0, 1, 2],
    );
  });

  test("no two labels of a row overlap, on the fixture's busiest panel", () => {
    const record = fixtureRecord();
    const trace = record.measurements.find((m) => m.scenario === "deploy")?.trace;
    assert.ok(trace);
    const labels = ruleLabels(trace, [-1, 5]);
    const pxPerSecond = PLOT_WIDTH / 6;
    const extent = (l: (typeof labels)[number]) => {
      const x = (l.t + 1) * pxPerSecond;
      return l.side === "right" ? [x, x + labelWidth(l.label)] : [x - labelWidth(l.label), x];
    };
    for (const a of labels) {
      for (const b of labels) {
        if (a === b || a.kind !== b.kind || a.lane !== b.lane) continue;
        const [a0, a1] = extent(a);
        const [b0, b1] = extent(b);
        assert.ok((a1 ?? 0) <= (b0 ?? 0) || (b1 ?? 0) <= (a0 ?? 0), `${a.label} / ${b.label}`);
      }
    }
    assert.ok(
      labels.some((l) => l.lane > 0),
      "the fixture has labels that must stack",
    );
  });

  test("go left of their rule near the right edge", () => {
    const labels = ruleLabels(traceOf([], [{ atMs: 4900, label: "Old stopped" }]), [-1, 4]);
    assert.equal(labels.find((l) => l.label === "Old stopped")?.side, "left");
    assert.equal(labels.find((l) => l.label === CHART_TEXT.started)?.side, "right");
  });
});

describe("the chart's SVG, rendered from the fixture record", async () => {
  const { chart } = await renderReport(fixtureRecord(), "test/fixtures/bench/record.json");

  test("is an SVG document", () => {
    assert.match(chart, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.ok(chart.trimEnd().endsWith("</svg>"));
  });

  test("has both axis titles in mixed case", () => {
    assert.ok(chart.includes(`>${CHART_TEXT.xAxis}</text>`), CHART_TEXT.xAxis);
    assert.ok(chart.includes(`>${CHART_TEXT.yAxis}</text>`), CHART_TEXT.yAxis);
  });

  test("has mixed-case titles, units and milestones", () => {
    for (const text of [
      "Latency of every read at 20 req/s (and 5 writes/s) during an upgrade (0.020 GiB database)",
      "Spec procedure: pg_dump, pull, up -d, sleep 10, curl (run 1)",
      "Spec procedure, health polled: pg_dump, pull, up -d, curl every 0.2 s (run 1)",
      "Ours: upgrade v1 to v2 with a migration (run 1)",
      "Peer (docker-rollout): upgrade v1 to v2 (run 1)",
      ">1 ms<",
      ">10 s<",
      ">Backup done<",
      ">Old stopped<",
      ">Deploy started<",
    ]) {
      assert.ok(chart.includes(text), text);
    }
  });

  test("has a dot for each dot of the spec's data", () => {
    const dots = chart.match(/<path d="M[\d.-]+,[\d.-]+h2v2h-2Z"/g) ?? [];
    assert.equal(dots.length, dotsInSpec(reportChartSpec(fixtureRecord())));
    assert.ok(dots.length > 50, `${dots.length} dots`);
  });

  test("uses one x domain for every panel", () => {
    const spec = JSON.stringify(reportChartSpec(fixtureRecord()));
    const domains = new Set(spec.match(/"domain":\[-?\d+,\d+\]/g));
    assert.equal(domains.size, 1, [...domains].join(" "));
  });
});

/** The data rows of the spec's dot layers (2 px rects), wherever they are nested. */
function dotsInSpec(node: unknown): number {
  if (Array.isArray(node)) return node.reduce((n: number, child) => n + dotsInSpec(child), 0);
  if (node === null || typeof node !== "object") return 0;
  const view = node as { mark?: { type?: string }; data?: { values?: unknown[] } };
  if (view.mark?.type === "rect") return view.data?.values?.length ?? 0;
  return Object.values(node).reduce((n: number, child) => n + dotsInSpec(child), 0);
}

describe("the cost chart's SVG, rendered from the fixture record", async () => {
  const { costChart } = await renderReport(fixtureRecord(), "test/fixtures/bench/record.json");

  test("is an SVG document with both axis titles", () => {
    assert.match(costChart, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.ok(costChart.includes(`>${COST_CHART_TEXT.xAxis}</text>`), COST_CHART_TEXT.xAxis);
    assert.ok(costChart.includes(`>${COST_CHART_TEXT.yAxis}</text>`), COST_CHART_TEXT.yAxis);
  });

  test("names the floor, each upgrade and each larger image in its legend", () => {
    for (const text of [
      "floor (pull + start + switch)",
      "ours",
      "spec procedure (sleep 10)",
      "spec procedure, health polled",
      "peer (docker-rollout)",
      "ours, v2 + 50 MB",
      "floor, v2 + 50 MB",
    ]) {
      assert.ok(costChart.includes(`>${text}</text>`), text);
    }
  });

  test("draws the floor and the upgrades against each database's measured size", () => {
    const spec = JSON.stringify(costChartSpecOf(fixtureRecord()));
    assert.match(
      spec,
      /"procedure":"floor \(pull \+ start \+ switch\)","dashed":true,"gib":0\.01,"seconds":1\.5/,
    );
    assert.match(spec, /"procedure":"ours","dashed":false,"gib":0\.02,"seconds":4\.12/);
  });
});
