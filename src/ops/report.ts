import { readFileSync } from "node:fs";
import { join } from "node:path";
import { assign } from "../deploy/shell";

/** A remote script of `remote/`, without its shellcheck directive line. */
export function remoteScript(name: string): string {
  return readFileSync(join(__dirname, "remote", `${name}.sh`), "utf8").replace(
    /^# shellcheck shell=bash\n/,
    "",
  );
}

/** The read-only report script (`remote/status.sh`) with its settings. */
export function buildStatusScript(appDir: string, project: string, runs = 20): string {
  return [
    "# clicky-delivery ops: reads, never writes.",
    assign("APP_DIR", appDir),
    assign("PROJECT", project),
    `RUNS=${Math.max(1, Math.floor(runs))}`,
    remoteScript("status"),
  ].join("\n");
}

/** A deploy record (`<appDir>/state/current` or `previous`), as the deploy writes it. */
export interface DeployRecord {
  readonly slot?: string;
  readonly image?: string;
  readonly tag?: string;
  readonly digest?: string;
  readonly release?: string;
  readonly backup?: string;
  readonly deployedAt?: string;
}

export type RunResult =
  | { readonly kind: "succeeded"; readonly tag?: string; readonly timings?: string }
  | { readonly kind: "unchanged"; readonly tag?: string }
  | { readonly kind: "failed"; readonly step?: string; readonly reason: string }
  | { readonly kind: "running" }
  | { readonly kind: "ended"; readonly last: string };

/** One deploy run, from its log on the host (`<appDir>/logs/<UTC start>-<pid>.*`). */
export interface DeployRun {
  /** ISO time the run started (UTC). */
  readonly startedAt: string;
  readonly result: RunResult;
}

export interface Container {
  readonly service: string;
  readonly state: string;
  readonly status: string;
}

/** What `remote/status.sh` says about one host. */
export interface HostReport {
  readonly current?: DeployRecord;
  readonly previous?: DeployRecord;
  readonly lock: {
    readonly held: boolean;
    readonly owner?: string;
    readonly pid?: number;
    readonly pidAlive?: boolean;
  };
  /** Newest first. */
  readonly runs: readonly DeployRun[];
  /** `history.log` lines (successful deploys, oldest first): time and the rest. */
  readonly history: readonly { readonly at: string; readonly line: string }[];
  readonly containers: readonly Container[];
  readonly dockerError?: string;
}

const RECORD_KEYS: Readonly<Record<string, keyof DeployRecord>> = {
  slot: "slot",
  image: "image",
  tag: "tag",
  digest: "digest",
  release: "release",
  backup: "backup",
  deployed_at: "deployedAt",
};

/** `20261204T031000Z-1234` -> `2026-12-04T03:10:00Z`. */
export function runStartedAt(name: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-\d+$/.exec(name);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z` : name;
}

/**
 * What a run's log says about how it ended: its last progress line (`[deploy <host>] <step>:
 * ...`) and the first line of its failure report; `lockHeld` tells a run still going from one
 * that was killed before it could report.
 */
export function runResult(last: string, failed: string | undefined, lockHeld: boolean): RunResult {
  if (failed) {
    const m = /^deploy FAILED on .*? at step (\S+): (.*)$/.exec(failed);
    return m
      ? { kind: "failed", step: m[1], reason: m[2] ?? "" }
      : { kind: "failed", reason: failed };
  }
  const body = last.replace(/^\[deploy [^\]]*\] [^:]*: /, "");
  const deployed = /^deployed (\S+) \(.*?\) to .*?; timings: (.*)$/.exec(body);
  if (deployed) return { kind: "succeeded", tag: deployed[1], timings: deployed[2] };
  const unchanged = /^nothing to do: (\S+) /.exec(body);
  if (unchanged) return { kind: "unchanged", tag: unchanged[1] };
  if (lockHeld) return { kind: "running" };
  return { kind: "ended", last: body };
}

/**
 * Parses `remote/status.sh`'s answer. Throws when it is cut off (no `end` line) or is not one.
 */
export function parseHostReport(text: string): HostReport {
  const lines = text.split("\n").filter((l) => l !== "");
  if (lines[0] !== "ops 1") throw new Error("the host's answer is not an ops report");
  if (lines.at(-1) !== "end") throw new Error("the host's answer was cut off");
  const records: Record<"current" | "previous", Record<string, string>> = {
    current: {},
    previous: {},
  };
  const missing = new Set<string>();
  let held = false;
  let owner: string | undefined;
  let pid: number | undefined;
  let pidAlive: boolean | undefined;
  const rawRuns: { name: string; alive: boolean; last: string; failed?: string }[] = [];
  const history: { at: string; line: string }[] = [];
  const containers: Container[] = [];
  let dockerError: string | undefined;
  for (const line of lines.slice(1, -1)) {
    const space = line.indexOf(" ");
    const kind = space === -1 ? line : line.slice(0, space);
    const rest = space === -1 ? "" : line.slice(space + 1);
    switch (kind) {
      case "current":
      case "previous": {
        const eq = rest.indexOf("=");
        if (eq > 0) records[kind][rest.slice(0, eq)] = rest.slice(eq + 1);
        break;
      }
      case "current-missing":
      case "previous-missing":
        missing.add(kind.replace("-missing", ""));
        break;
      case "lock":
        held = rest === "held";
        break;
      case "lock-owner":
        owner = rest;
        break;
      case "lock-pid": {
        const [p, state] = rest.split(" ");
        pid = Number(p);
        pidAlive = state === "alive";
        break;
      }
      case "run": {
        const [name = "", alive] = rest.split(" ");
        rawRuns.push({ name, alive: alive === "alive", last: "" });
        break;
      }
      case "run-last": {
        const run = rawRuns.at(-1);
        if (run) run.last = rest;
        break;
      }
      case "run-failed": {
        const run = rawRuns.at(-1);
        if (run) run.failed = rest;
        break;
      }
      case "history": {
        const [at = "", ...tail] = rest.split(" ");
        history.push({ at, line: tail.join(" ") });
        break;
      }
      case "container": {
        const [service = "", state = "", ...status] = rest.split("|");
        containers.push({ service, state, status: status.join("|") });
        break;
      }
      case "docker-error":
        dockerError = rest;
        break;
      default:
        break;
    }
  }
  const record = (which: "current" | "previous"): DeployRecord | undefined => {
    if (missing.has(which)) return undefined;
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(records[which])) {
      const field = RECORD_KEYS[key];
      if (field) out[field] = value;
    }
    return Object.keys(out).length > 0 ? (out as DeployRecord) : undefined;
  };
  const newest = rawRuns[0]?.name;
  const runs = rawRuns.map((r) => ({
    startedAt: runStartedAt(r.name),
    // Only the newest run can still be going: the lock allows one deploy at a time.
    result: runResult(r.last, r.failed, held && r.name === newest),
  }));
  const current = record("current");
  const previous = record("previous");
  return {
    ...(current ? { current } : {}),
    ...(previous ? { previous } : {}),
    lock: {
      held,
      ...(owner !== undefined ? { owner } : {}),
      ...(pid !== undefined ? { pid, pidAlive: pidAlive ?? false } : {}),
    },
    runs,
    history,
    containers,
    ...(dockerError !== undefined ? { dockerError } : {}),
  };
}

/** A short image name: the tag with the digest's first 12 hex digits. */
export function describeRecord(r: DeployRecord): string {
  const digest = r.digest?.startsWith("sha256:") ? ` (${r.digest.slice(0, 19)})` : "";
  return `${r.tag ?? "?"}${digest}`;
}

export function describeResult(r: RunResult): string {
  switch (r.kind) {
    case "succeeded":
      return `deployed ${r.tag ?? "?"}${r.timings ? `; ${r.timings}` : ""}`;
    case "unchanged":
      return `nothing to do: ${r.tag ?? "?"} already served`;
    case "failed":
      return `FAILED${r.step ? ` at step ${r.step}` : ""}: ${r.reason}`;
    case "running":
      return "running now";
    case "ended":
      return `ended without a result (killed?); its last line: ${r.last || "none"}`;
  }
}

/** `ops status` for one host, as lines for a person. */
export function formatStatus(name: string, address: string, r: HostReport): string[] {
  const lines = [`${name} (${address})`];
  const cur = r.current;
  lines.push(
    cur
      ? `  serving     ${describeRecord(cur)} since ${cur.deployedAt ?? "?"}, slot ${cur.slot ?? "?"}, release ${cur.release ?? "?"}`
      : "  serving     nothing: no deploy record (never deployed, or the host was rebuilt)",
  );
  if (r.previous) lines.push(`  previous    ${describeRecord(r.previous)} (rollback target)`);
  const last = r.runs[0];
  if (last) lines.push(`  last deploy ${last.startedAt}: ${describeResult(last.result)}`);
  lines.push(
    r.lock.held
      ? `  lock        held: ${r.lock.owner ?? "no owner recorded"}${r.lock.pidAlive ? "" : " (that process is gone)"}`
      : `  lock        free${r.lock.owner ? ` (a stale owner record is left: ${r.lock.owner}; ops lock release --force clears it)` : ""}`,
  );
  if (r.dockerError) lines.push(`  containers  Docker did not answer: ${r.dockerError}`);
  else if (r.containers.length === 0) lines.push("  containers  none of this project");
  else {
    const serving = cur?.slot ? `backend-${cur.slot}` : undefined;
    for (const c of [...r.containers].sort((a, b) => a.service.localeCompare(b.service))) {
      const mark = c.service === serving ? " (serving)" : "";
      lines.push(`  container   ${c.service}${mark}: ${c.state}, ${c.status}`);
    }
  }
  return lines;
}
