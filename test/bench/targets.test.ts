import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { BenchRecord, Measurement } from "../../bench/deploy/record";
import { targetLine, targets } from "../../bench/deploy/targets";
import { fixtureRecord } from "../support/bench";

/** The fixture with every measurement of a scenario changed. */
function withRuns(
  record: BenchRecord,
  scenario: Measurement["scenario"],
  change: (m: Measurement) => Partial<Measurement>,
): BenchRecord {
  return {
    ...record,
    measurements: record.measurements.map((m) =>
      m.scenario === scenario ? { ...m, ...change(m) } : m,
    ),
  };
}

/** A fixture whose deploys of ours lost no request. */
function clean(record: BenchRecord): BenchRecord {
  let out = record;
  for (const id of ["deploy", "failedHealth", "rollback"] as const) {
    out = withRuns(out, id, (m) => ({ non2xx: 0, errors: 0, sent: m.ok2xx }));
  }
  return out;
}

const statusOf = (record: BenchRecord, name: RegExp) => {
  const t = targets(record).find((x) => name.test(x.name));
  assert.ok(t, `no target ${name}`);
  return t;
};

describe("the targets of the fixture record", () => {
  test("are five, in the issue's order", () => {
    assert.deepEqual(
      targets(fixtureRecord()).map((t) => t.status),
      ["met", "not measured", "met", "met", "missed"],
    );
  });

  test("judge the smallest database's upgrade against 3× its floor", () => {
    const met = statusOf(fixtureRecord(), /smallest database/);
    assert.equal(met.detail, "median 4.1 s against a floor of 1.5 s: 2.7×");
    const slow = withRuns(fixtureRecord(), "deploy", () => ({ wallSeconds: 4.6 }));
    assert.equal(statusOf(slow, /smallest database/).status, "missed");
  });

  test("judge a 1 GiB upgrade against 6× its floor, when the run has that size", () => {
    const record = fixtureRecord();
    const oneGib: BenchRecord = {
      ...record,
      sizes: record.sizes.map((s, i) => (i === 1 ? { ...s, databaseGib: 1 } : s)),
      floors: record.floors.map((f) => (f.databaseGib === 0.02 ? { ...f, databaseGib: 1 } : f)),
      measurements: record.measurements.map((m) =>
        m.databaseGib === 0.02 ? { ...m, databaseGib: 1 } : m,
      ),
    };
    const t = statusOf(oneGib, /on a 1 GiB/);
    assert.equal(t.status, "met");
    assert.match(t.detail, /: 2\.6×$/);
  });

  test("judge the cost per added GiB by the slope, and report the others'", () => {
    const t = statusOf(fixtureRecord(), /per added GiB/);
    assert.equal(t.status, "met");
    assert.match(t.detail, /2\.0 s per GiB \(spec procedure \(sleep 10\) 9\.8 s/);
    const steep = withRuns(fixtureRecord(), "deploy", (m) => ({
      wallSeconds: m.databaseGib === 0.02 ? 4.2 : 4.1,
    }));
    assert.equal(statusOf(steep, /per added GiB/).status, "missed");
  });

  test("say a single size measures no slope", () => {
    const record = fixtureRecord();
    const one = { ...record, sizes: record.sizes.slice(0, 1) };
    assert.equal(statusOf(one, /per added GiB/).status, "not measured");
  });

  test("want a failed-health deploy back within the health timeout + 5 s, every run", () => {
    assert.equal(statusOf(fixtureRecord(), /failed-health/).status, "met");
    const slow = withRuns(fixtureRecord(), "failedHealth", (m) => ({
      wallSeconds: m.run === 2 ? 25.5 : m.wallSeconds,
    }));
    const t = statusOf(slow, /failed-health/);
    assert.equal(t.status, "missed");
    // The steps of that run from the new version's start: start 1 + health 20.1 + undo 0.4.
    assert.match(
      t.detail,
      /^slowest of 4 runs 25\.5 s against 25 s; from the new version's start to the end of the undo, 21\.5 s$/,
    );
    const noSteps = withRuns(slow, "failedHealth", () => ({ steps: {} }));
    assert.match(
      statusOf(noSteps, /failed-health/).detail,
      /^slowest of 4 runs 25\.5 s against 25 s$/,
    );
  });

  test("want zero failed requests and zero missing writes in every deploy of ours", () => {
    assert.equal(statusOf(fixtureRecord(), /zero failed/).status, "missed");
    assert.equal(statusOf(clean(fixtureRecord()), /zero failed/).status, "met");
    const lost = withRuns(clean(fixtureRecord()), "rollback", (m) => ({
      writes: { ...m.writes, missing: 1 },
    }));
    assert.equal(statusOf(lost, /zero failed/).status, "missed");
    const unchecked = withRuns(clean(fixtureRecord()), "deploy", (m) => ({
      writes: { ...m.writes, missing: null },
    }));
    assert.match(statusOf(unchecked, /zero failed/).detail, /6 runs' writes not checked/);
    assert.equal(statusOf(unchecked, /zero failed/).status, "missed");
  });

  test("print as MET, MISSED or NOT MEASURED", () => {
    assert.deepEqual(
      targets(fixtureRecord()).map((t) => targetLine(t).split(" ")[0]),
      ["MET", "NOT", "MET", "MET", "MISSED"],
    );
  });
});
