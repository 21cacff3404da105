import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, mock, test } from "node:test";
import {
  buildProbeScript,
  type HostObservation,
  type HostProber,
  hostDifferences,
  hostToken,
  type ProbeExpectation,
  parseObservation,
  probeOutcome,
  sha256,
} from "../../src/deploy/host-probe";
import { HOST_PROBE_OUTPUT } from "../../src/deploy/stack";
import { RESOURCE_TYPES } from "../../src/synth/resource-types";
import { EMPTY_STATE, type LifecycleRun, lifecycleRuns, type World } from "../support/lifecycle";
import { deployWith, describeSteps, registryAnswers, SECRETS, tagged } from "../support/stacks";

const FILES = new Map([
  ["docker-compose.yml", sha256("services: {}\n")],
  ["site.conf", sha256("server {}\n")],
  ["routing.js", sha256("export default {};\n")],
  ["deploy-0123456789abcdef.sh", sha256("#!/bin/bash\n")],
]);

const EXPECT: ProbeExpectation = {
  appDir: "/opt/clicky",
  project: "clicky",
  release: "0123456789ab",
  releaseDir: "/opt/clicky/releases/0123456789ab",
  files: FILES,
  image: "ghcr.io/o/backend@sha256:aa",
  stackChanges: false,
  deployedBefore: true,
};

/** What the probe prints on a host that is as the stack left it (blue serving). */
function cleanAnswer(): string[] {
  return [
    "probe 1",
    "record slot=blue",
    `record image=${EXPECT.image}`,
    "record release=0123456789ab",
    "record fingerprint=ff",
    ...[...FILES].map(([name, hash]) => `file ${name} ${hash}`),
    `site site.conf ${FILES.get("site.conf")}`,
    `site routing.js ${FILES.get("routing.js")}`,
    "routing blue",
    "container backend-blue|running|Up 3 minutes (healthy)",
    "container proxy|running|Up 3 days",
    "container postgres|running|Up 3 days (healthy)",
    "container redis|running|Up 3 days (healthy)",
    "end",
  ];
}

const observe = (lines: string[]): HostObservation => parseObservation(`${lines.join("\n")}\n`);
const edit = (lines: string[], from: RegExp, to?: string) =>
  lines.flatMap((l) => (from.test(l) ? (to === undefined ? [] : [to]) : [l]));

describe("the host probe's answer", () => {
  test("reads the record, the files, the routing and the containers", () => {
    const o = observe(cleanAnswer());
    assert.equal(o.record?.slot, "blue");
    assert.equal(o.record?.image, EXPECT.image);
    assert.equal(o.files.get("docker-compose.yml"), FILES.get("docker-compose.yml"));
    assert.equal(o.routing, "blue");
    assert.deepEqual(o.containers.get("backend-blue"), {
      state: "running",
      status: "Up 3 minutes (healthy)",
    });
  });

  test("is refused when cut off before its last line", () => {
    assert.throws(() => parseObservation(cleanAnswer().slice(0, -1).join("\n")), /incomplete/);
    assert.throws(() => parseObservation("Welcome to the host!\n"), /incomplete/);
  });
});

describe("how a host differs from the stack", () => {
  test("a host as the stack left it does not differ", () => {
    assert.deepEqual(hostDifferences(observe(cleanAnswer()), EXPECT), []);
  });

  const cases: [string, string[], RegExp][] = [
    [
      "the serving container removed",
      edit(cleanAnswer(), /backend-blue/),
      /^backend-blue \(serving\) has no container$/,
    ],
    [
      "the serving container stopped",
      edit(
        cleanAnswer(),
        /backend-blue/,
        "container backend-blue|exited|Exited (137) 2 minutes ago",
      ),
      /^backend-blue \(serving\) is exited/,
    ],
    [
      "the serving container unhealthy",
      edit(
        cleanAnswer(),
        /backend-blue/,
        "container backend-blue|running|Up 9 minutes (unhealthy)",
      ),
      /^backend-blue \(serving\) is unhealthy$/,
    ],
    [
      "the proxy removed",
      edit(cleanAnswer(), /container proxy/),
      /^proxy \(always on\) has no container$/,
    ],
    [
      "the database stopped",
      edit(
        cleanAnswer(),
        /container postgres/,
        "container postgres|exited|Exited (0) 1 minute ago",
      ),
      /^postgres \(always on\) is exited/,
    ],
    [
      "the compose file edited",
      edit(cleanAnswer(), /^file docker-compose/, "file docker-compose.yml 00"),
      /releases\/0123456789ab\/docker-compose.yml differs from the stack's \(changed on the host\)$/,
    ],
    [
      "the deploy script removed",
      edit(cleanAnswer(), /^file deploy-/, "file deploy-0123456789abcdef.sh missing"),
      /deploy-0123456789abcdef.sh is missing$/,
    ],
    [
      "the proxy's live site edited",
      edit(cleanAnswer(), /^site site.conf/, "site site.conf 00"),
      /^\/opt\/clicky\/proxy\/site.conf \(the proxy's live copy\) differs from the release's/,
    ],
    [
      "the routing file pointing elsewhere",
      edit(cleanAnswer(), /^routing/, "routing green"),
      /^the proxy routes to green, the deploy record says blue$/,
    ],
    [
      "another image served (rolled back by hand)",
      edit(cleanAnswer(), /^record image=/, "record image=ghcr.io/o/backend@sha256:00"),
      /^it serves ghcr.io\/o\/backend@sha256:00 \(release 0123456789ab\) but the stack last deployed/,
    ],
    [
      "the host wiped",
      [
        "probe 1",
        "record-missing",
        ...[...FILES.keys()].map((f) => `file ${f} missing`),
        "routing none",
        "end",
      ],
      /^no deploy record \(\/opt\/clicky\/state\/current\): the host was wiped or rebuilt/,
    ],
    [
      "Docker gone",
      [
        ...edit(cleanAnswer(), /^container /).slice(0, -1),
        "docker-error Cannot connect to the Docker daemon",
        "end",
      ],
      /^Docker did not answer: Cannot connect to the Docker daemon$/,
    ],
  ];
  for (const [what, lines, expected] of cases) {
    test(`${what}: named`, () => {
      const differences = hostDifferences(observe(lines), EXPECT);
      assert.ok(
        differences.some((d) => expected.test(d)),
        `expected ${expected} in ${JSON.stringify(differences)}`,
      );
    });
  }

  test("a run that deploys a new version anyway does not call the old one drift", () => {
    const lines = edit(cleanAnswer(), /^record image=/, "record image=ghcr.io/o/backend@sha256:00");
    assert.deepEqual(hostDifferences(observe(lines), { ...EXPECT, stackChanges: true }), []);
  });

  test("a new release's files, not copied yet, are not drift", () => {
    const newRelease = { ...EXPECT, release: "ffffffffffff", stackChanges: true };
    const lines = cleanAnswer().map((l) =>
      l.startsWith("file ") ? `${l.split(" ").slice(0, 2).join(" ")} missing` : l,
    );
    assert.deepEqual(hostDifferences(observe(lines), newRelease), []);
  });

  test("a host the stack never deployed is not drift, but a wiped one is", () => {
    const wiped = ["probe 1", "record-missing", "routing none", "end"];
    assert.deepEqual(
      hostDifferences(observe(wiped), { ...EXPECT, stackChanges: true, deployedBefore: false }),
      [],
    );
    assert.notDeepEqual(hostDifferences(observe(wiped), { ...EXPECT, stackChanges: true }), []);
  });

  test("services of the compose project still count when the stack deploys anyway", () => {
    const lines = edit(cleanAnswer(), /backend-blue/);
    assert.deepEqual(hostDifferences(observe(lines), { ...EXPECT, stackChanges: true }), [
      "backend-blue (serving) has no container",
    ]);
  });
});

describe("the host's token", () => {
  test("stays while the host does not differ, and is new when it does", () => {
    assert.equal(hostToken(undefined, []), "0");
    assert.equal(hostToken("abc", []), "abc");
    const drifted = hostToken("abc", ["proxy (always on) has no container"]);
    assert.match(drifted, /^[0-9a-f]{16}$/);
    assert.notEqual(drifted, "abc");
    assert.equal(hostToken(drifted, []), drifted, "put right, the host keeps the new token");
    assert.notEqual(
      hostToken(drifted, ["proxy (always on) has no container"]),
      drifted,
      "the same drift again after a repair is a new token",
    );
  });

  test("an unreadable host keeps its token and says why", async () => {
    const failing: HostProber = async () => {
      throw new Error("ssh deploy@h:22: connect ECONNREFUSED");
    };
    const target = {
      host: { name: "h", host: "h", port: 22, user: "deploy" },
      privateKey: "k",
      script: "",
    };
    const outcome = await probeOutcome(failing, target, EXPECT, "abc");
    assert.equal(outcome.token, "abc");
    assert.match(outcome.unreadable ?? "", /ECONNREFUSED/);
  });
});

describe("the probe script, run for real on a directory laid out as a host", () => {
  test("reports the files, the routing and Docker's answer, and changes nothing", () => {
    const root = mkdtempSync(join(tmpdir(), "probe-"));
    try {
      const appDir = join(root, "app");
      const releaseDir = join(appDir, "releases", "0123456789ab");
      mkdirSync(releaseDir, { recursive: true });
      mkdirSync(join(appDir, "state"), { recursive: true });
      mkdirSync(join(appDir, "proxy"), { recursive: true });
      writeFileSync(join(releaseDir, "docker-compose.yml"), "services: {}\n");
      writeFileSync(
        join(appDir, "state", "current"),
        "slot=green\nimage=i\nrelease=0123456789ab\n",
      );
      writeFileSync(
        join(appDir, "proxy", "routing"),
        "# comment\ngreen backend-green:8000 10.0.0.2:8000\n",
      );
      writeFileSync(join(appDir, "proxy", "site.conf"), "server {}\n");
      // A docker that fails, as on a host whose engine is down.
      const bin = join(root, "bin");
      mkdirSync(bin);
      writeFileSync(
        join(bin, "docker"),
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n",
        { mode: 0o755 },
      );
      const script = buildProbeScript({ ...EXPECT, appDir, releaseDir });
      const before = spawnSync("find", [root, "-printf", "%p %s %T@\n"], {
        encoding: "utf8",
      }).stdout;
      const r = spawnSync("sh", ["-c", script], {
        encoding: "utf8",
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      });
      assert.equal(r.status, 0, r.stderr);
      const o = parseObservation(r.stdout);
      assert.equal(o.record?.slot, "green");
      assert.equal(o.files.get("docker-compose.yml"), sha256("services: {}\n"));
      assert.equal(o.files.get("site.conf"), "missing");
      assert.equal(o.site.get("site.conf"), sha256("server {}\n"));
      assert.equal(o.site.get("routing.js"), "missing");
      assert.equal(o.routing, "green");
      assert.equal(o.dockerError, "Cannot connect to the Docker daemon");
      const after = spawnSync("find", [root, "-printf", "%p %s %T@\n"], {
        encoding: "utf8",
      }).stdout;
      assert.equal(after, before, "the probe wrote nothing");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

/**
 * Successive runs of the real program under mocks with the engine's rules between them
 * (test/support/lifecycle.ts), the probe answering as a host would. The e2e suite runs the same
 * probe over SSH against a real host (test/deploy/e2e/drift.test.ts).
 */
describe("host drift across successive runs", async () => {
  const STACK = "staging";
  let answer: (script: string) => string = () => "";
  const prober: HostProber = async (target) => answer(target.script);
  /** A host that is as the stack left it: every file as the script expects, blue serving. */
  const hostAsLeft = (image: string, release: string) => (script: string) => {
    const files = /^FILES=(.*)$/m.exec(script)?.[1]?.replace(/^'|'$/g, "").split(" ") ?? [];
    return [
      "probe 1",
      "record slot=blue",
      `record image=${image}`,
      `record release=${release}`,
      ...files.map((f) => `file ${f} ${expectedHashes.get(f)}`),
      `site site.conf ${expectedHashes.get("site.conf")}`,
      `site routing.js ${expectedHashes.get("routing.js")}`,
      "routing blue",
      "container backend-blue|running|Up 1 minute (healthy)",
      "container proxy|running|Up 1 minute",
      "container postgres|running|Up 1 minute (healthy)",
      "container redis|running|Up 1 minute (healthy)",
      "end",
    ].join("\n");
  };
  const expectedHashes = new Map<string, string>();
  const warnings: string[] = [];
  const base = {
    stack: STACK,
    mode: "up" as const,
    secrets: SECRETS,
    overrides: tagged(STACK, "v1"),
    hostProber: prober,
    world: { callResult: registryAnswers },
  };
  const runs: LifecycleRun[] = [];
  let state = EMPTY_STATE;
  const run = async (operation: "up" | "preview", setup: () => void, world: World = base.world) => {
    setup();
    const warn = mock.method(console, "warn", (...args: unknown[]) => {
      warnings.push(args.map(String).join(" "));
    });
    try {
      const [r] = await lifecycleRuns(state, [{ ...base, operation, world }]);
      if (operation === "up") state = r.state;
      runs.push(r);
      return r;
    } finally {
      warn.mock.restore();
    }
  };

  // First deploy: the host has nothing yet, and the stack never deployed.
  const first = await run("up", () => {
    answer = () => "probe 1\nrecord-missing\nrouting none\nend\n";
  });
  const deployOutput = first.state.outputs.deploy as { image: string; release: string };
  // The file hashes the stack expects, read back from the copies it registered.
  for (const r of first.run.resources) {
    if (r.type === RESOURCE_TYPES.copyToRemote) {
      const path = String(r.inputs.remotePath);
      const text = (r.inputs.source as { text?: string }).text ?? "";
      expectedHashes.set(path.slice(path.lastIndexOf("/") + 1), sha256(text));
    }
  }
  const healthy = () => {
    answer = hostAsLeft(deployOutput.image, deployOutput.release);
  };
  const steady = await run("preview", healthy);
  const warningsBeforeDrift = warnings.length;
  const removed = () => {
    answer = (s) =>
      hostAsLeft(
        deployOutput.image,
        deployOutput.release,
      )(s).replace(/container backend-blue.*\n/, "");
  };
  const driftPreview = await run("preview", removed);
  const driftWarnings = warnings.slice(warningsBeforeDrift);
  const failedRepair = await run("up", removed, {
    ...base.world,
    create: (r) => (r.name.endsWith("-run") ? "the host is still down" : undefined),
  });
  const repaired = await run("up", removed);
  const afterRepair = await run("preview", healthy);
  const again = await run("preview", removed);

  test("the first deploy records a token for the host", () => {
    assert.deepEqual(first.errors, []);
    const tokens = first.state.outputs[HOST_PROBE_OUTPUT] as Record<string, string>;
    assert.deepEqual(Object.keys(tokens), ["staging-1"]);
  });

  test("a host as the stack left it plans nothing and warns of nothing", () => {
    assert.deepEqual(steady.errors, []);
    assert.equal(describeSteps(steady.changes), "");
    assert.equal(warningsBeforeDrift, 0, warnings.join("\n"));
  });

  test("a removed serving container shows in preview as a replace of the host's commands, named in a warning", () => {
    const replaced = driftPreview.changes.filter((s) => s.op === "replace").map((s) => s.name);
    assert.ok(replaced.includes("deploy-staging-1-run"), describeSteps(driftPreview.changes));
    assert.ok(replaced.includes("deploy-staging-1-prepare"), describeSteps(driftPreview.changes));
    assert.ok(
      replaced.some((n) => n.endsWith("docker-compose-yml")),
      describeSteps(driftPreview.changes),
    );
    for (const s of driftPreview.changes) assert.deepEqual(s.keys, ["replacementTrigger"]);
    assert.equal(driftWarnings.length, 1, driftWarnings.join("\n"));
    assert.match(
      driftWarnings[0] ?? "",
      /drift: host staging-1 \(deploy@[^)]+\) differs from the stack: backend-blue \(serving\) has no container; `pulumi up` runs prepare, the release copies and the deploy on it again/,
    );
  });

  test("a repair that fails keeps the old token, so the next run tries again", () => {
    assert.equal(failedRepair.failed, true);
    assert.deepEqual(
      failedRepair.state.outputs[HOST_PROBE_OUTPUT],
      first.state.outputs[HOST_PROBE_OUTPUT],
    );
    assert.ok(
      repaired.changes.some((s) => s.op === "replace" && s.name === "deploy-staging-1-run"),
    );
    assert.deepEqual(repaired.errors, []);
  });

  test("once put right, the next preview plans nothing (the token does not flip back)", () => {
    assert.equal(describeSteps(afterRepair.changes), "");
  });

  test("the same drift again is planned again", () => {
    assert.ok(again.changes.some((s) => s.op === "replace" && s.name === "deploy-staging-1-run"));
  });

  test("a run that changes the config and leaves the host as it was still deploys (the usual path)", async () => {
    const changed = await lifecycleRuns(state, [
      {
        ...base,
        operation: "preview",
        overrides: deployWith(STACK, (d) => ({ ...d, watchSeconds: 7 })),
      },
    ]);
    assert.ok(changed[0]?.changes.some((s) => s.name === "deploy-staging-1-run"));
  });
});
