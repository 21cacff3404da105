import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type BaselineProject,
  baselineProcedure,
  baselineSteps,
} from "../../bench/deploy/baseline";
import { FLOOR_SLOT, floorScript, parseFloorOutput } from "../../bench/deploy/floor";
import { scriptSteps } from "../../bench/deploy/load";

const BASELINE: BaselineProject = {
  dir: "/home/deploy/b",
  project: "b",
  port: 8123,
  images: { backend: "r/backend", postgres: "r/pg", redis: "r/redis" },
};

describe("the spec's procedure", () => {
  test("sleeps 10 s and checks once, as the spec writes it", () => {
    const script = baselineProcedure(BASELINE, "v2");
    assert.match(
      script,
      /^sleep 10\nmark sleep\ncurl -f http:\/\/localhost:8123\/health \|\| exit 1\nmark done$/m,
    );
  });

  test("in its fair variant, polls the health path every 0.2 s for up to 60 s instead", () => {
    const script = baselineProcedure(BASELINE, "v2", "poll");
    assert.doesNotMatch(script, /sleep 10/);
    assert.match(script, /for _ in \$\(seq 1 300\); do/);
    assert.match(script, /curl -fsS -o \/dev\/null --max-time 1 http:\/\/localhost:8123\/health/);
    assert.match(script, /sleep 0\.2\n/);
    assert.match(script, /\(\(healthy\)\) \|\| exit 1\nmark done$/m);
  });

  test("times its steps from its marks", () => {
    const out = [0, 2, 3, 5, 15.1].map(
      (t, i) => `bench-mark ${["start", "backup", "pull", "up", "done"][i]} ${1000 + t}`,
    );
    assert.deepEqual(baselineSteps(`noise\n${out.join("\n")}\n`), {
      backup: 2,
      pull: 1,
      up: 2,
      health: 10.1,
    });
    assert.deepEqual(baselineSteps("bench-mark start 1\n"), {});
  });
});

describe("our script's steps", () => {
  test("come from its timings line", () => {
    assert.deepEqual(
      scriptSteps("deploy: done\ntimings: lock 0.0 s, backup 1.5 s, switch 0.2 s\n"),
      {
        lock: 0,
        backup: 1.5,
        switch: 0.2,
      },
    );
  });
});

describe("the floor", () => {
  const script = floorScript({
    appDir: "/home/deploy/ours",
    project: "ours",
    proxyPort: 8080,
    appPort: 8000,
    image: "r/backend@sha256:abc",
    registry: { address: "127.0.0.1:5000", user: "bench" },
  });

  test("pulls the pinned image, starts it on the project's network with the serving slot's env", () => {
    assert.match(script, /^docker pull --quiet r\/backend@sha256:abc >\/dev\/null$/m);
    assert.match(
      script,
      /^docker run -d --name ours-bench-floor --network ours_default --network-alias backend-floor --env-file "env\/\$slot\.env" r\/backend@sha256:abc/m,
    );
  });

  test("probes the new container every 0.1 s, then switches with one rename and waits for its answer", () => {
    assert.match(
      script,
      /curl -fsS -o \/dev\/null --max-time 1 "http:\/\/\$addr:8000\/health".*sleep 0\.1; done/,
    );
    assert.match(script, /^mv -f proxy\/routing\.floor proxy\/routing$/m);
    assert.match(script, new RegExp(`until \\[\\[ "\\$\\(answered_by\\)" == ${FLOOR_SLOT} \\]\\]`));
    assert.doesNotMatch(script, /nginx -s reload/);
  });

  test("puts the routing file back and removes its container, whatever happens", () => {
    assert.match(script, /^trap cleanup EXIT$/m);
    assert.match(script, /mv -f proxy\/routing\.restore proxy\/routing/);
    assert.match(script, /docker rm -f ours-bench-floor/);
  });

  test("reads its parts from the marks", () => {
    const out =
      "floor-mark start 10.0\nfloor-mark pull 10.2\nfloor-mark healthy 11.5\nfloor-mark switched 11.6\n";
    assert.deepEqual(parseFloorOutput(out), {
      pullSeconds: 0.2,
      healthySeconds: 1.3,
      switchSeconds: 0.1,
      totalSeconds: 1.6,
    });
  });

  test("names a missing mark", () => {
    assert.throws(() => parseFloorOutput("floor-mark start 1\n"), /no "pull" mark/);
  });
});
