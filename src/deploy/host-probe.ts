import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROUTING_FILE, SITE_FILE, ROUTING_SCRIPT, SLOTS, slotService } from "./compose";
import { assign } from "./shell";
import { execOnHost, type SshHost, where } from "./ssh-exec";

/**
 * The host's actual state as an input of the plan. Remote commands have no read: once a deploy
 * ran, the engine believes the host until a trigger changes. So on every preview and update the
 * program reads each host once (one SSH exec of a read-only script), compares what it finds
 * with what the stack last put there, and when they differ gives the host's commands a new
 * `replacementTrigger`: the preview shows the replace (so the drift check fails), and `up`
 * runs prepare, the copies and the deploy again, which put the host back.
 *
 * Why a probe over SSH from the program rather than `@pulumi/command`'s `local.run` invoke:
 * the invoke runs a local command, so it would need an `ssh` binary on the machine that runs
 * Pulumi and the private key in a file for it; `ssh2` (the library the command provider's Go
 * twin mirrors) keeps the key in memory, pins the host key the same way, and needs nothing
 * installed. The script only reads: `cat`, `sha256sum`, `docker ps`.
 */

/** Services of the compose project other than the backend slots, which must run. */
const INFRA_SERVICES = ["proxy", "postgres", "redis"] as const;
/** The proxy's files, live in `<appDir>/proxy/`, copied there from the release at a switch. */
const LIVE_SITE_FILES = [SITE_FILE, ROUTING_SCRIPT] as const;

/** What the stack expects on one host. */
export interface ProbeExpectation {
  readonly appDir: string;
  readonly project: string;
  /** The release id and its directory. */
  readonly release: string;
  readonly releaseDir: string;
  /** Every file of the release directory (compose project, site, deploy script) -> sha256 hex. */
  readonly files: ReadonlyMap<string, string>;
  /** The image reference the deploy runs. */
  readonly image: string;
  /**
   * Whether this run deploys a new image or release to the host anyway (the stack's last
   * recorded deploy differs, or it never deployed): then the host serving the previous one is
   * not drift.
   */
  readonly stackChanges: boolean;
  /** Whether the stack ever deployed (a recorded deploy output); a host with no record is then drift. */
  readonly deployedBefore: boolean;
}

/** `remote/probe.sh` without its shellcheck directive. */
const PROBE_BODY = readFileSync(join(__dirname, "remote", "probe.sh"), "utf8").replace(
  /^# shellcheck shell=sh\n/,
  "",
);

/** sha256 (hex) of a text, as `sha256sum` prints it for the file holding it. */
export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * The read-only script the probe runs: `remote/probe.sh` (POSIX sh, for any login shell) after
 * its settings. One line per fact: `record <key>=<value>` (the deploy's `state/current`, no
 * secrets), `file|site <name> <sha256 or missing>`, `routing <slot or none>`,
 * `container <service>|<state>|<status>`, or `docker-error <message>`; `end` last, so a
 * cut-off answer is not taken for a whole one.
 */
export function buildProbeScript(
  e: Pick<ProbeExpectation, "appDir" | "project" | "releaseDir" | "files">,
): string {
  return [
    "# clicky-delivery host probe: reads, never writes.",
    assign("APP_DIR", e.appDir),
    assign("PROJECT", e.project),
    assign("RELEASE_DIR", e.releaseDir),
    assign("FILES", [...e.files.keys()].join(" ")),
    assign("SITE", LIVE_SITE_FILES.join(" ")),
    `ROUTING=${ROUTING_FILE}`,
    PROBE_BODY,
  ].join("\n");
}

/** One container of the project, as `docker ps` reports it. */
export interface ProbedContainer {
  readonly state: string;
  readonly status: string;
}

/** What the probe read on a host. */
export interface HostObservation {
  /** The deploy record (`state/current`), undefined when the host has none. */
  readonly record?: Readonly<Record<string, string>>;
  /** Release file -> sha256, or `missing`. */
  readonly files: ReadonlyMap<string, string>;
  /** Live proxy file -> sha256, or `missing`. */
  readonly site: ReadonlyMap<string, string>;
  /** The slot the proxy routes to, undefined when there is no routing file. */
  readonly routing?: string;
  /** Service -> container; empty when Docker did not answer. */
  readonly containers: ReadonlyMap<string, ProbedContainer>;
  /** Docker's own error, when `docker ps` failed. */
  readonly dockerError?: string;
}

/** Parses the probe's output; throws when it is not one (cut off, or another program's). */
export function parseObservation(text: string): HostObservation {
  const lines = text.split("\n").filter((l) => l.length > 0);
  const start = lines.indexOf("probe 1");
  if (start < 0 || lines[lines.length - 1] !== "end") {
    throw new Error(`the probe's answer is incomplete: ${JSON.stringify(text.slice(-200))}`);
  }
  let record: Record<string, string> | undefined;
  const files = new Map<string, string>();
  const site = new Map<string, string>();
  const containers = new Map<string, ProbedContainer>();
  let routing: string | undefined;
  let dockerError: string | undefined;
  for (const line of lines.slice(start + 1, -1)) {
    const [kind, ...rest] = line.split(" ");
    const value = rest.join(" ");
    if (kind === "record") {
      const eq = value.indexOf("=");
      if (eq > 0) {
        record ??= {};
        record[value.slice(0, eq)] = value.slice(eq + 1);
      }
    } else if (kind === "file" || kind === "site") {
      const [name, hash] = rest;
      if (name && hash) (kind === "file" ? files : site).set(name, hash);
    } else if (kind === "routing") {
      routing = value === "none" ? undefined : value;
    } else if (kind === "container") {
      const [service = "", state = "", status = ""] = value.split("|");
      if (service && !containers.has(service)) containers.set(service, { state, status });
    } else if (kind === "docker-error") {
      dockerError = value || "no message";
    }
  }
  return {
    ...(record ? { record } : {}),
    files,
    site,
    ...(routing ? { routing } : {}),
    containers,
    ...(dockerError ? { dockerError } : {}),
  };
}

/** A container's health from `docker ps`'s status: `Up 3 minutes (unhealthy)` -> unhealthy. */
function healthOf(c: ProbedContainer): string | undefined {
  return /\((healthy|unhealthy|health: starting)\)/.exec(c.status)?.[1];
}

function containerProblem(
  service: string,
  c: ProbedContainer | undefined,
  role: string,
): string | undefined {
  if (!c) return `${service} (${role}) has no container`;
  if (c.state !== "running") return `${service} (${role}) is ${c.state} (${c.status})`;
  if (healthOf(c) === "unhealthy") return `${service} (${role}) is unhealthy`;
  return undefined;
}

/**
 * How the host differs from what the stack last put there, one sentence each; empty when it
 * does not. Image and release are compared only when this run deploys neither anew; the
 * release's files only when the host's record names this release (a new release has a new
 * directory that the copies fill).
 */
export function hostDifferences(o: HostObservation, e: ProbeExpectation): string[] {
  const out: string[] = [];
  if (o.dockerError) out.push(`Docker did not answer: ${o.dockerError}`);
  const record = o.record;
  if (!record) {
    if (e.deployedBefore) {
      out.push(
        `no deploy record (${e.appDir}/state/current): the host was wiped or rebuilt, or the deploy's files were removed`,
      );
    }
  } else {
    const recorded = record.release;
    if (!e.stackChanges && (record.image !== e.image || recorded !== e.release)) {
      out.push(
        `it serves ${record.image ?? "?"} (release ${recorded ?? "?"}) but the stack last deployed ${e.image} (release ${e.release}) there`,
      );
    }
    const slot = record.slot;
    if (o.routing !== slot) {
      out.push(
        `the proxy routes to ${o.routing ?? "nothing (no routing file)"}, the deploy record says ${slot ?? "?"}`,
      );
    }
    if (!o.dockerError) {
      if (slot && (SLOTS as readonly string[]).includes(slot)) {
        const service = slotService(slot as (typeof SLOTS)[number]);
        const p = containerProblem(service, o.containers.get(service), "serving");
        if (p) out.push(p);
      }
      for (const service of INFRA_SERVICES) {
        const p = containerProblem(service, o.containers.get(service), "always on");
        if (p) out.push(p);
      }
    }
  }
  const sameRelease = record?.release === e.release || !e.stackChanges;
  const allMissing = [...e.files.keys()].every((name) => o.files.get(name) === "missing");
  if (sameRelease && (record || e.deployedBefore) && allMissing) {
    out.push(`the release directory ${e.releaseDir} is missing (${e.files.size} files)`);
  } else if (sameRelease && (record || e.deployedBefore)) {
    for (const [name, want] of e.files) {
      const got = o.files.get(name);
      if (got === "missing") out.push(`${e.releaseDir}/${name} is missing`);
      else if (got !== want)
        out.push(`${e.releaseDir}/${name} differs from the stack's (changed on the host)`);
    }
  }
  if (record?.release === e.release) {
    for (const name of LIVE_SITE_FILES) {
      const want = e.files.get(name);
      const got = o.site.get(name);
      if (!want) continue;
      if (got === "missing")
        out.push(`${e.appDir}/proxy/${name} (the proxy's live copy) is missing`);
      else if (got !== want) {
        out.push(
          `${e.appDir}/proxy/${name} (the proxy's live copy) differs from the release's (changed on the host)`,
        );
      }
    }
  }
  return out;
}

/**
 * The host's token in the commands' `replacementTrigger`: unchanged while the host is as the
 * stack left it, new when it differs. It is derived from the previous token, so that a host
 * that drifts the same way twice still gets a new one, and it never flips back once the host
 * is put right (the engine replaces on any change of the trigger; `shouldTriggerReplace` in
 * pkg/resource/deploy/step_generator.go).
 */
export function hostToken(previous: string | undefined, differences: readonly string[]): string {
  if (differences.length === 0) return previous ?? "0";
  return createHash("sha256")
    .update(`${previous ?? "0"}\n${[...differences].sort().join("\n")}`)
    .digest("hex")
    .slice(0, 16);
}

/** Where and how to reach a host for the probe: the deploy's own connection settings. */
export interface ProbeTarget {
  readonly host: SshHost;
  readonly privateKey: string;
  readonly script: string;
}

/** Reads a host: resolves with the probe's stdout, rejects with a one-line reason. */
export type HostProber = (target: ProbeTarget) => Promise<string>;

/** How long the probe may take, connection included, before the run gives up on the host. */
export const PROBE_TIMEOUT_MS = 20_000;

/**
 * The probe over SSH ({@link execOnHost}: the pinned host key checked as the command provider
 * checks it, one exec session, no stdin, no pty), within {@link PROBE_TIMEOUT_MS}.
 */
export const sshProber: HostProber = async (target) => {
  const r = await execOnHost(
    target.host,
    { kind: "key", privateKey: target.privateKey },
    target.script,
    { timeoutMs: PROBE_TIMEOUT_MS },
  );
  if (r.code === 0) return r.stdout;
  const last = r.stderr.trim().split("\n").pop();
  throw new Error(
    `ssh ${where(target.host)}: the probe exited with ${r.code}${last ? `: ${last}` : ""}`,
  );
};

/** What the program makes of one host's probe. */
export interface ProbeOutcome {
  /** The token for the host's `replacementTrigger`. */
  readonly token: string;
  readonly differences: readonly string[];
  /** Why the host could not be read, when it could not (the token then stays as it was). */
  readonly unreadable?: string;
}

/** Probes one host and decides its token; never throws (an unreadable host keeps its token). */
export async function probeOutcome(
  prober: HostProber,
  target: ProbeTarget,
  expectation: ProbeExpectation,
  previous: string | undefined,
): Promise<ProbeOutcome> {
  let observation: HostObservation;
  try {
    observation = parseObservation(await prober(target));
  } catch (err) {
    return {
      token: previous ?? "0",
      differences: [],
      unreadable: err instanceof Error ? err.message : String(err),
    };
  }
  const differences = hostDifferences(observation, expectation);
  return { token: hostToken(previous, differences), differences };
}
