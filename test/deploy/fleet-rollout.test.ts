import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type LockTaker,
  type PhaseOutcome,
  type PhaseRunner,
  type RolloutPlan,
  rollout,
} from "../../src/deploy/fleet/rollout";
import { LOCK_BUSY_EXIT } from "../../src/deploy/script";

const host = (name: string) => ({ name, host: `${name}.example`, port: 22, user: "deploy" });

const PLAN: RolloutPlan = {
  stack: "staging",
  args: { image: "reg/o/backend:v2", tag: "v2", registry: "reg", migrate: true },
  database: { host: host("db"), scriptPath: "/opt/app/releases/d/deploy-d.sh" },
  apps: ["app-1", "app-2", "app-3"].map((n) => ({
    host: host(n),
    scriptPath: "/opt/app/releases/a/deploy-a.sh",
  })),
  lockPath: "/opt/app/state/fleet.lock",
  revertWaitSeconds: 0,
};
const SECRETS = { privateKey: "KEY", stdin: { database: "DB=1\n", app: "APP=1\n" } };

/** A fleet whose hosts answer each phase as `answer` says; records every call in order. */
function fakeFleet(answer: (host: string, phase: string, attempt: number) => PhaseOutcome) {
  const calls: string[] = [];
  const stdins: Record<string, string> = {};
  const attempts = new Map<string, number>();
  let locked = 0;
  let released = 0;
  const run: PhaseRunner = async (h, command, stdin, onLine) => {
    const phase = /phase=(\w+)$/.exec(command)?.[1] ?? "?";
    const key = `${h.name} ${phase}`;
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    calls.push(key);
    stdins[h.name] = stdin;
    onLine(`${phase} output`, "stdout");
    return answer(h.name, phase, attempt);
  };
  const lock: LockTaker = async (h, path) => {
    calls.push(`${h.name} lock ${path}`);
    locked++;
    return {
      release: async () => {
        released++;
        calls.push(`${h.name} unlock`);
      },
    };
  };
  return { run, lock, calls, stdins, held: () => locked - released };
}

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

describe("a fleet rollout", () => {
  test("holds the stack's lock, runs the database side once, switches each app host in turn, then commits each", async () => {
    const fleet = fakeFleet(() => ({ code: 0 }));
    const o = io();
    const result = await rollout(PLAN, SECRETS, o.io, fleet);
    assert.equal(result.ok, true);
    assert.deepEqual(fleet.calls, [
      "db lock /opt/app/state/fleet.lock",
      "db database",
      "app-1 switch",
      "app-2 switch",
      "app-3 switch",
      "app-1 commit",
      "app-2 commit",
      "app-3 commit",
      "db unlock",
    ]);
    assert.equal(fleet.held(), 0);
    assert.deepEqual(fleet.stdins, {
      db: "DB=1\n",
      "app-1": "APP=1\n",
      "app-2": "APP=1\n",
      "app-3": "APP=1\n",
    });
    assert.ok(o.out.includes("[app-2] switch output"), "each host's lines carry its name");
    assert.match(o.out.join("\n"), /rollout of v2 done on app-1, app-2, app-3/);
  });

  test("a failed database side changes no app host", async () => {
    const fleet = fakeFleet((h) => ({ code: h === "db" ? 1 : 0 }));
    const o = io();
    const result = await rollout(PLAN, SECRETS, o.io, fleet);
    assert.equal(result.ok, false);
    assert.deepEqual(fleet.calls, [
      "db lock /opt/app/state/fleet.lock",
      "db database",
      "db unlock",
    ]);
    assert.match(o.err.join("\n"), /no app host was changed/);
  });

  test("a host that fails its gate stops the rollout; the hosts that switched go back, newest first", async () => {
    const fleet = fakeFleet((h, phase) => ({ code: h === "app-3" && phase === "switch" ? 1 : 0 }));
    const o = io();
    const result = await rollout(PLAN, SECRETS, o.io, fleet);
    assert.equal(result.ok, false);
    assert.deepEqual(fleet.calls.slice(1, -1), [
      "db database",
      "app-1 switch",
      "app-2 switch",
      "app-3 switch",
      "app-2 revert",
      "app-1 revert",
    ]);
    assert.equal(fleet.held(), 0, "the lock is released");
    assert.deepEqual(result.summary, [
      "app-2: previous version",
      "app-1: previous version",
      "app-3: previous version (its deploy undid itself)",
    ]);
  });

  test("a host lost mid-switch is reverted too (its detached deploy may have switched), after the others' order", async () => {
    const fleet = fakeFleet((h, phase) =>
      h === "app-2" && phase === "switch"
        ? { code: null, sshError: "ssh deploy@app-2.example:22: Keepalive timeout" }
        : { code: 0 },
    );
    const result = await rollout(PLAN, SECRETS, io().io, fleet);
    assert.equal(result.ok, false);
    assert.deepEqual(fleet.calls.slice(2, -1), [
      "app-1 switch",
      "app-2 switch",
      "app-2 revert",
      "app-1 revert",
    ]);
    assert.ok(!fleet.calls.includes("app-3 switch"), "the rollout stops at the lost host");
  });

  test("a revert that finds the host's deploy still running (lock busy) asks again until it gets through", async () => {
    const plan = { ...PLAN, revertWaitSeconds: 30 };
    const fleet = fakeFleet((h, phase, attempt) => {
      if (h === "app-2" && phase === "switch") return { code: null, sshError: "connection lost" };
      if (h === "app-2" && phase === "revert" && attempt === 1) return { code: LOCK_BUSY_EXIT };
      return { code: 0 };
    });
    const result = await rollout(plan, SECRETS, io().io, fleet);
    assert.equal(result.ok, false);
    assert.equal(fleet.calls.filter((c) => c === "app-2 revert").length, 2);
    assert.ok(result.summary.includes("app-2: previous version"));
  });

  test("a revert that cannot reach the host says what may serve there and that the next deploy settles it", async () => {
    const fleet = fakeFleet((h, phase) =>
      h === "app-2"
        ? { code: null, sshError: "ssh: connect ETIMEDOUT" }
        : { code: phase === "x" ? 1 : 0 },
    );
    const o = io();
    const result = await rollout(PLAN, SECRETS, o.io, fleet);
    assert.equal(result.ok, false);
    assert.ok(result.summary.includes("app-2: unknown (revert failed)"));
    assert.match(
      o.err.join("\n"),
      /app-2\] revert FAILED .*next deploy of this stack puts it back first/,
    );
  });

  test("another rollout holding the lock: nothing runs", async () => {
    const calls: string[] = [];
    const o = io();
    const result = await rollout(PLAN, SECRETS, o.io, {
      run: async (h) => {
        calls.push(h.name);
        return { code: 0 };
      },
      lock: async () => {
        throw new Error("another rollout of this stack holds /opt/app/state/fleet.lock on db");
      },
    });
    assert.equal(result.ok, false);
    assert.deepEqual(calls, []);
    assert.match(o.err.join("\n"), /rollout FAILED: another rollout/);
  });

  test("a failed commit is reported; the other hosts still commit", async () => {
    const fleet = fakeFleet((h, phase) => ({ code: h === "app-1" && phase === "commit" ? 1 : 0 }));
    const result = await rollout(PLAN, SECRETS, io().io, fleet);
    assert.equal(result.ok, false);
    assert.ok(fleet.calls.includes("app-3 commit"));
    assert.ok(!fleet.calls.some((c) => c.endsWith("revert")), "nothing goes back after the switch");
  });

  test("each phase runs the copied script with this run's arguments and the phase", async () => {
    const commands: string[] = [];
    await rollout(PLAN, SECRETS, io().io, {
      run: async (_h, command) => {
        commands.push(command);
        return { code: 0 };
      },
      lock: async () => ({ release: async () => undefined }),
    });
    assert.equal(
      commands[0],
      "exec bash /opt/app/releases/d/deploy-d.sh image=reg/o/backend:v2 tag=v2 registry=reg migrate=1 phase=database",
    );
    assert.ok(commands[1]?.endsWith("migrate=1 phase=switch"));
  });
});
