import { PassThrough, Readable } from "node:stream";
import type { FleetRole } from "../compose";
import { buildRunCommand, type DeployRunArgs } from "../run-command";
import { LOCK_BUSY_EXIT } from "../script";
import { type Credentials, execOnHost, type SshHost } from "../ssh-exec";

/** One host of the rollout and the deploy script copied to it. */
export interface FleetHostPlan {
  readonly host: SshHost;
  readonly scriptPath: string;
}

/**
 * What a rollout does, without secrets: the plan the program hands to the rollout command
 * (`CLICKY_FLEET_PLAN`, shown in previews).
 */
export interface RolloutPlan {
  readonly stack: string;
  readonly args: DeployRunArgs;
  /** The accessories host: the database side runs there, and the stack's lock is held there. */
  readonly database: FleetHostPlan;
  /** The app hosts, in rollout order. */
  readonly apps: readonly FleetHostPlan[];
  /** `<appDir>/state/fleet.lock` on the accessories host. */
  readonly lockPath: string;
  /** How long a revert waits for a switch still running on a host that stopped answering. */
  readonly revertWaitSeconds: number;
}

/** The rollout's secrets: the SSH key, and each role's stdin (dotenv lines). */
export interface RolloutSecrets {
  readonly privateKey: string;
  readonly stdin: Readonly<Record<FleetRole, string>>;
}

/** The outcome of one phase on one host: the script's exit code, or why SSH failed. */
export interface PhaseOutcome {
  readonly code: number | null;
  readonly sshError?: string;
}

/** Runs one command on a host, its output line by line to `onLine`. */
export type PhaseRunner = (
  host: SshHost,
  command: string,
  stdin: string,
  onLine: (line: string, stream: "stdout" | "stderr") => void,
) => Promise<PhaseOutcome>;

/** A held lock: released by `release()`, or by the connection ending. */
export interface HeldLock {
  release(): Promise<void>;
}

/** Takes the stack's lock; rejects with the holder when another rollout has it. */
export type LockTaker = (host: SshHost, lockPath: string, owner: string) => Promise<HeldLock>;

/** Where the rollout's lines go. */
export interface RolloutIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** What the rollout did, host by host. */
export interface RolloutResult {
  readonly ok: boolean;
  /** One line per host: what it serves now, as far as the rollout knows. */
  readonly summary: readonly string[];
}

const SSH_KEEPALIVE = { keepaliveInterval: 5000, keepaliveCountMax: 3 };

/** The runner over SSH (`ssh2`), with keepalives: a host that stops answering fails its phase. */
export function sshRunner(credentials: Credentials): PhaseRunner {
  return async (host, command, stdin, onLine) => {
    const split = lineSplitter(onLine);
    try {
      const result = await execOnHost(host, credentials, command, {
        stdin: Readable.from([stdin]),
        onData: (chunk, stream) => split(chunk, stream),
        connect: SSH_KEEPALIVE,
      });
      split.flush();
      return { code: result.code };
    } catch (e) {
      split.flush();
      return { code: null, sshError: (e as Error).message };
    }
  };
}

/**
 * The stack's lock over SSH: a session on the accessories host holds `flock` on the lock file
 * for as long as its stdin stays open. Closing it releases the lock, and so does a rollout
 * that dies (the connection ends, `cat` reads end of file, the lock's descriptor closes).
 */
export function sshLock(credentials: Credentials): LockTaker {
  return (host, lockPath, owner) =>
    new Promise<HeldLock>((resolve, reject) => {
      const stdin = new PassThrough();
      let said = "";
      let held = false;
      const script = [
        `exec 9>>${shellWord(lockPath)} || exit 1`,
        `if ! flock -n 9; then printf 'busy: %s\\n' "$(head -c 400 ${shellWord(`${lockPath}.owner`)} 2>/dev/null)"; exit ${LOCK_BUSY_EXIT}; fi`,
        `printf '%s\\n' ${shellWord(owner)} >${shellWord(`${lockPath}.owner`)}`,
        "echo locked",
        "exec cat >/dev/null",
      ].join("\n");
      const done = execOnHost(host, credentials, script, {
        stdin,
        connect: SSH_KEEPALIVE,
        onData: (chunk) => {
          said += chunk;
          if (!held && said.includes("locked\n")) {
            held = true;
            resolve({
              release: async () => {
                stdin.end();
                await done.catch(() => undefined);
              },
            });
          }
        },
      });
      done.then(
        (r) => {
          if (held) return;
          const busy = /busy: (.*)/.exec(said)?.[1];
          reject(
            new Error(
              r.code === LOCK_BUSY_EXIT
                ? `another rollout of this stack holds ${lockPath} on ${host.name}: ${busy || "no owner recorded"}; this one changed nothing`
                : `could not take the stack's lock ${lockPath} on ${host.name} (exit ${r.code}): ${(r.stderr || said).trim().split("\n").pop() ?? ""}; nothing was changed`,
            ),
          );
        },
        (e: Error) => {
          if (!held) reject(new Error(`could not take the stack's lock: ${e.message}`));
        },
      );
    });
}

function shellWord(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** Splits chunks into lines per stream; `flush()` hands over what is left. */
function lineSplitter(onLine: (line: string, stream: "stdout" | "stderr") => void) {
  const rest = { stdout: "", stderr: "" };
  const split = (chunk: string, stream: "stdout" | "stderr") => {
    const lines = (rest[stream] + chunk).split("\n");
    rest[stream] = lines.pop() ?? "";
    for (const line of lines) onLine(line, stream);
  };
  split.flush = () => {
    for (const stream of ["stdout", "stderr"] as const) {
      if (rest[stream]) onLine(rest[stream], stream);
      rest[stream] = "";
    }
  };
  return split;
}

/** The command that runs one phase of a host's deploy script. */
export function phaseCommand(plan: RolloutPlan, host: FleetHostPlan, phase: string): string {
  return `${buildRunCommand(host.scriptPath, plan.args)} phase=${phase}`;
}

/**
 * The rollout of one image to a fleet (docs/scaling.md):
 * 1. the stack's lock, on the accessories host, for the whole rollout;
 * 2. the database side, once: infra, backup, migrations (no app host has moved; a failure here
 *    leaves every app host on the old version);
 * 3. each app host in turn: its health-gated switch and watch, the old version standing by;
 *    the first host that fails stops the rollout, and every host that switched (the failed one
 *    included, should its switch have gone through) goes back to the old version;
 * 4. once every app host serves the new version: each drains and stops the old one.
 * So the fleet serves two versions only while the rollout runs.
 */
export async function rollout(
  plan: RolloutPlan,
  secrets: RolloutSecrets,
  io: RolloutIo,
  deps: { run: PhaseRunner; lock: LockTaker; now?: () => number },
): Promise<RolloutResult> {
  const now = deps.now ?? Date.now;
  const t0 = now();
  const elapsed = () => `${((now() - t0) / 1000).toFixed(1)} s`;
  const names = plan.apps.map((a) => a.host.name);
  io.out(
    `rollout of ${plan.args.tag} (${plan.args.image}) to stack ${plan.stack}: database side on ${plan.database.host.name}, then app hosts one at a time: ${names.join(", ")}`,
  );
  const owner = `rollout of ${plan.args.image} (stack ${plan.stack}) since ${new Date(now()).toISOString()}`;
  let lock: HeldLock;
  try {
    lock = await deps.lock(plan.database.host, plan.lockPath, owner);
  } catch (e) {
    io.err(`rollout FAILED: ${(e as Error).message}`);
    return { ok: false, summary: [] };
  }
  io.out(`[${plan.database.host.name}] the stack's lock is held: ${plan.lockPath}`);
  const phase = async (host: FleetHostPlan, name: string, role: FleetRole) => {
    io.out(`[${host.host.name}] ${name}: starting (${elapsed()} into the rollout)`);
    const outcome = await runPhase(deps.run, plan, host, name, secrets.stdin[role], io);
    const ok = outcome.code === 0;
    if (!ok) {
      io.err(
        `[${host.host.name}] ${name} FAILED: ${outcome.sshError ?? `the deploy script exited with ${outcome.code}`}`,
      );
    }
    return { ok, outcome };
  };
  try {
    const db = await phase(plan.database, "database", "database");
    if (!db.ok) {
      io.err(
        `rollout FAILED on ${plan.database.host.name} (database side) after ${elapsed()}: no app host was changed; the previous version keeps serving on ${names.join(", ")}`,
      );
      return { ok: false, summary: names.map((n) => `${n}: previous version`) };
    }
    const switched: FleetHostPlan[] = [];
    for (const app of plan.apps) {
      const result = await phase(app, "switch", "app");
      if (result.ok) {
        switched.push(app);
        continue;
      }
      // The failed host's own script undid its switch, unless the connection was lost while
      // it ran on (detached): then its switch may have gone through, so it is reverted too.
      const back = [...(result.outcome.sshError ? [app] : []), ...[...switched].reverse()];
      const summary = await revertAll(plan, secrets, io, deps.run, back, app);
      io.err(
        `rollout FAILED at ${app.host.name} after ${elapsed()}: ${back.length > 0 ? `went back to the previous version on ${back.map((h) => h.host.name).join(", ")}` : "no app host had switched"}; the database keeps this rollout's migrations (expand-only, as the old version runs on them)`,
      );
      return { ok: false, summary };
    }
    const summary: string[] = [];
    let ok = true;
    for (const app of plan.apps) {
      const result = await phase(app, "commit", "app");
      if (!result.ok) ok = false;
      summary.push(
        result.ok
          ? `${app.host.name}: ${plan.args.tag}`
          : `${app.host.name}: ${plan.args.tag} serves, the previous version may still stand by (commit failed)`,
      );
    }
    if (ok) io.out(`rollout of ${plan.args.tag} done on ${names.join(", ")} in ${elapsed()}`);
    else io.err(`rollout FAILED while committing after ${elapsed()}: ${summary.join("; ")}`);
    return { ok, summary };
  } finally {
    await lock.release();
  }
}

/** Runs one phase of a host's deploy script, each of its lines prefixed with the host's name. */
function runPhase(
  run: PhaseRunner,
  plan: RolloutPlan,
  host: FleetHostPlan,
  phase: string,
  stdin: string,
  io: RolloutIo,
): Promise<PhaseOutcome> {
  return run(host.host, phaseCommand(plan, host, phase), stdin, (line, stream) =>
    (stream === "stdout" ? io.out : io.err)(`[${host.host.name}] ${line}`),
  );
}

/**
 * Sends the hosts in `back` to their previous version, newest switch first. A host whose switch
 * is still running (its lock is busy: the connection was lost, the deploy goes on detached) is
 * asked again until `revertWaitSeconds` have passed.
 */
async function revertAll(
  plan: RolloutPlan,
  secrets: RolloutSecrets,
  io: RolloutIo,
  run: PhaseRunner,
  back: readonly FleetHostPlan[],
  failed: FleetHostPlan,
): Promise<string[]> {
  const summary: string[] = [];
  for (const host of back) {
    const deadline = Date.now() + plan.revertWaitSeconds * 1000;
    for (;;) {
      io.out(`[${host.host.name}] revert: starting`);
      const outcome = await runPhase(run, plan, host, "revert", secrets.stdin.app, io);
      if (outcome.code === 0) {
        summary.push(`${host.host.name}: previous version`);
        break;
      }
      if (Date.now() < deadline && (outcome.code === LOCK_BUSY_EXIT || outcome.sshError)) {
        await new Promise((r) => setTimeout(r, 2000));
        continue;
      }
      io.err(
        `[${host.host.name}] revert FAILED (${outcome.sshError ?? `exit ${outcome.code}`}): if its switch went through, it serves ${plan.args.tag} with the previous version standing by; the next deploy of this stack puts it back first`,
      );
      summary.push(`${host.host.name}: unknown (revert failed)`);
      break;
    }
  }
  for (const app of plan.apps) {
    if (!back.includes(app) && app !== failed) summary.push(`${app.host.name}: previous version`);
  }
  if (!back.includes(failed))
    summary.push(`${failed.host.name}: previous version (its deploy undid itself)`);
  return summary;
}
