/**
 * The latency-over-time plot of the bench: one panel per deploy procedure, the same axes for
 * all, every request a dot (answered: by latency on a log scale; failed: a red mark in the
 * band at the top), the deploy's start and end and its milestones as dashed lines.
 */
import type { LoadSample } from "../../test/harness";
import { Canvas, type Rgb } from "./png";

export interface PlotPanel {
  readonly title: string;
  readonly samples: readonly LoadSample[];
  /** When the deploy started and ended, ms since the load started. */
  readonly startMs: number;
  readonly endMs: number;
  /** Milestones, ms since the load started. */
  readonly marks: readonly { readonly atMs: number; readonly label: string }[];
  readonly color: Rgb;
}

const WIDTH = 1400;
const PANEL_HEIGHT = 360;
const LEFT = 96;
const RIGHT = 24;
const TOP = 56;
const BOTTOM = 64;
const FAIL_BAND = 34;
const GREY: Rgb = [200, 200, 200];
const DARK: Rgb = [40, 40, 40];
const RED: Rgb = [220, 30, 30];
const ORANGE: Rgb = [240, 140, 0];

/** Draws the panels one above the other and returns the PNG. */
export function plotLatency(title: string, panels: readonly PlotPanel[]): Buffer {
  const height = 64 + panels.length * PANEL_HEIGHT;
  const canvas = new Canvas(WIDTH, height);
  canvas.text(LEFT, 10, title, DARK, 3);
  const legend =
    "ONE DOT PER REQUEST, AT ITS LATENCY; RED AT THE TOP: FAILED (NO ANSWER, OR NOT 2XX)";
  canvas.text(LEFT, 40, legend, [90, 90, 90], 2);

  // One x-axis for every panel: seconds since the deploy started.
  const before = Math.max(...panels.map((p) => p.startMs - minAt(p)));
  const after = Math.max(...panels.map((p) => maxAt(p) - p.startMs));
  const xMin = -Math.ceil(before / 1000);
  const xMax = Math.ceil(after / 1000);
  const answered = panels.flatMap((p) => p.samples.filter((s) => s.status > 0));
  const yMaxMs = answered.reduce((m, s) => Math.max(m, s.latencyMs), 1000);
  const yTop = 10 ** Math.ceil(Math.log10(yMaxMs));
  const yBottom = 0.1;

  panels.forEach((panel, index) => {
    const y0 = 64 + index * PANEL_HEIGHT;
    const plotTop = y0 + TOP;
    const plotBottom = y0 + PANEL_HEIGHT - BOTTOM;
    const plotLeft = LEFT;
    const plotRight = WIDTH - RIGHT;
    const latencyTop = plotTop + FAIL_BAND;
    const xOf = (ms: number) =>
      plotLeft + ((ms - panel.startMs) / 1000 - xMin) * ((plotRight - plotLeft) / (xMax - xMin));
    const yOf = (latency: number) => {
      const l = Math.log10(Math.max(yBottom, latency));
      const f = (l - Math.log10(yBottom)) / (Math.log10(yTop) - Math.log10(yBottom));
      return plotBottom - f * (plotBottom - latencyTop);
    };

    const failed = panel.samples.filter((s) => s.status === 0 || s.status >= 300);
    canvas.text(plotLeft, y0 + 22, panel.title, panel.color, 2);
    const summary = `${panel.samples.length} REQUESTS, ${failed.length} FAILED`;
    canvas.text(
      plotRight - Canvas.textWidth(summary),
      y0 + 22,
      summary,
      failed.length ? RED : DARK,
      2,
    );

    // Axes and grid.
    canvas.line(plotLeft, plotTop, plotLeft, plotBottom, DARK);
    canvas.line(plotLeft, plotBottom, plotRight, plotBottom, DARK);
    canvas.line(plotLeft, latencyTop - 2, plotRight, latencyTop - 2, GREY);
    canvas.text(plotLeft - Canvas.textWidth("FAILED") - 8, plotTop + 10, "FAILED", RED, 2);
    for (let decade = yBottom; decade <= yTop; decade *= 10) {
      const y = yOf(decade);
      canvas.line(plotLeft + 1, y, plotRight, y, GREY, 4);
      const label =
        decade >= 1000 ? `${decade / 1000}S` : decade >= 1 ? `${decade}MS` : `${decade}MS`;
      canvas.text(plotLeft - Canvas.textWidth(label) - 8, y - 7, label, DARK, 2);
    }
    const step = xMax - xMin > 60 ? 10 : 5;
    for (let s = Math.ceil(xMin / step) * step; s <= xMax; s += step) {
      const x = xOf(panel.startMs + s * 1000);
      canvas.line(x, plotBottom, x, plotBottom + 6, DARK);
      const label = `${s}`;
      canvas.text(x - Canvas.textWidth(label) / 2, plotBottom + 12, label, DARK, 2);
    }
    const axis = "SECONDS SINCE THE DEPLOY STARTED";
    canvas.text(
      (plotLeft + plotRight - Canvas.textWidth(axis)) / 2,
      plotBottom + 38,
      axis,
      DARK,
      2,
    );

    // Deploy window and milestones.
    const label = (x: number, y: number, text: string, color: Rgb) => {
      const w = Canvas.textWidth(text);
      canvas.text(x + 4 + w > plotRight ? x - 4 - w : x + 4, y, text, color, 2);
    };
    for (const [atMs, text] of [
      [panel.startMs, "START"],
      [panel.endMs, "DONE"],
    ] as const) {
      const x = xOf(atMs);
      canvas.line(x, plotTop, x, plotBottom, DARK, 6);
      label(x, plotBottom - 20, text, DARK);
    }
    panel.marks.forEach((mark, i) => {
      const x = xOf(mark.atMs);
      canvas.line(x, latencyTop, x, plotBottom, [150, 150, 150], 3);
      label(x, latencyTop + 4 + (i % 4) * 18, mark.label, [110, 110, 110]);
    });

    // The requests: answered ones by latency, failed ones in the band at the top.
    for (const s of panel.samples) {
      const x = xOf(s.atMs);
      if (s.status === 0) {
        canvas.rect(x - 1, plotTop + 4 + ((s.atMs * 7) % (FAIL_BAND - 12)), 3, 3, RED);
      } else {
        const color = s.status >= 200 && s.status < 300 ? panel.color : ORANGE;
        canvas.rect(x - 1, yOf(s.latencyMs) - 1, 2, 2, color);
        if (color === ORANGE)
          canvas.rect(x - 1, plotTop + 4 + ((s.atMs * 7) % (FAIL_BAND - 12)), 3, 3, RED);
      }
    }
  });
  return canvas.png();
}

function minAt(p: PlotPanel): number {
  return p.samples.reduce((m, s) => Math.min(m, s.atMs), p.startMs);
}

function maxAt(p: PlotPanel): number {
  return p.samples.reduce((m, s) => Math.max(m, s.atMs + s.latencyMs), p.endMs);
}
