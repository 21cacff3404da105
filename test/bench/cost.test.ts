import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  costCurve,
  costPerGib,
  floorRatio,
  leastSquares,
  median,
  medianFloor,
} from "../../bench/deploy/cost";
import { summarizeEveryRequest } from "../harness/load";
import { fixtureRecord } from "../support/bench";

describe("the ratio to the floor", () => {
  const cases: [number, number, number][] = [
    [12, 4, 3],
    [4, 4, 1],
    [1, 4, 0.25],
  ];
  for (const [seconds, floor, ratio] of cases) {
    test(`${seconds} s against a floor of ${floor} s is ${ratio}×`, () => {
      assert.equal(floorRatio(seconds, floor), ratio);
    });
  }

  test("is unknown without a floor, or with a floor of 0", () => {
    assert.ok(Number.isNaN(floorRatio(12, Number.NaN)));
    assert.ok(Number.isNaN(floorRatio(12, 0)));
    assert.ok(Number.isNaN(floorRatio(Number.NaN, 4)));
  });

  test("of each part of the floor, takes the median over the runs", () => {
    const floor = (totalSeconds: number) => ({
      run: 1,
      databaseGib: 1,
      imageMb: 0,
      pullSeconds: 0.1,
      healthySeconds: totalSeconds - 0.3,
      switchSeconds: 0.2,
      totalSeconds,
    });
    assert.deepEqual(medianFloor([floor(2), floor(5), floor(3)]), {
      pullSeconds: 0.1,
      healthySeconds: 2.7,
      switchSeconds: 0.2,
      totalSeconds: 3,
    });
    assert.equal(medianFloor([]), null);
  });
});

describe("the least-squares line", () => {
  test("through points on a line is that line", () => {
    assert.deepEqual(
      leastSquares([
        { x: 0, y: 10 },
        { x: 1, y: 12 },
        { x: 4, y: 18 },
      ]),
      { slope: 2, intercept: 10 },
    );
  });

  test("through scattered points has the slope that minimises the squared errors", () => {
    const line = leastSquares([
      { x: 0.1, y: 30 },
      { x: 1, y: 31 },
      { x: 4, y: 42 },
    ]);
    assert.ok(line);
    assert.ok(Math.abs(line.slope - 3.2254) < 1e-3, String(line.slope));
  });

  test("has no slope with fewer than two distinct sizes", () => {
    assert.equal(leastSquares([]), null);
    assert.equal(leastSquares([{ x: 1, y: 2 }]), null);
    assert.equal(
      leastSquares([
        { x: 1, y: 2 },
        { x: 1, y: 3 },
      ]),
      null,
    );
  });
});

describe("the cost curve of the fixture record", () => {
  test("is each size's median wall time against the database's measured size", () => {
    const curve = costCurve(fixtureRecord(), "deploy");
    assert.deepEqual(
      curve.map((p) => [p.databaseGib, Number(p.wallSeconds.toFixed(3))]),
      [
        [0.01, 4.1],
        [0.02, 4.12],
      ],
    );
    assert.equal(costCurve(fixtureRecord(), "deploy")[0]?.measuredGib, 11_000_000 / 2 ** 30);
  });

  test("falls back to the size step where a database was not measured", () => {
    assert.equal(costCurve(fixtureRecord(), "peer")[1]?.measuredGib, 0.02);
  });

  test("costs about 2 s per added GiB for ours", () => {
    const slope = costPerGib(costCurve(fixtureRecord(), "deploy"));
    assert.ok(slope !== null && Math.abs(slope - 1.952) < 0.01, String(slope));
  });
});

describe("percentiles over every request sent", () => {
  const ok = (latencyMs: number) => ({ latencyMs, ok: true });
  const failed = (latencyMs: number) => ({ latencyMs, ok: false });

  test("count a failed request at the timeout, however fast it failed", () => {
    const requests = [...Array.from({ length: 98 }, () => ok(2)), failed(1), failed(40)];
    const all = summarizeEveryRequest(requests, 5000);
    assert.equal(all.count, 100);
    assert.equal(all.p50, 2);
    assert.equal(all.p99, 5000);
    assert.equal(all.max, 5000);
  });

  test("are those of the answers when none failed", () => {
    const all = summarizeEveryRequest([ok(1), ok(3), ok(2)], 5000);
    assert.deepEqual([all.min, all.p50, all.max], [1, 2, 3]);
  });

  test("are zero for no request", () => {
    assert.equal(summarizeEveryRequest([], 5000).max, 0);
  });

  test("and the median of an even count is the mean of the middle two", () => {
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });
});
