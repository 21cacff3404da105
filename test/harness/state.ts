/**
 * The e2e harness's state: one per checkout (`.e2e-state/`, or E2E_STATE_DIR), with its own
 * ports and credentials, provisioned by provision.sh (DESIGN.md, "E2E harness").
 * `ensureHarness()` provisions it once per process and returns what a test needs.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

/** Root of the repository (this file lives in test/harness). */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");
/** The provisioning script that ensureHarness runs. */
export const PROVISION_SCRIPT = path.join(__dirname, "provision.sh");

/** One pushed tag of the stand-in backend. */
export interface BackendTag {
  /** `<registry>/clicky/backend:v1`, e.g. `127.0.0.1:20404/clicky/backend:v1` */
  ref: string;
  /** `sha256:...` manifest digest in the local registry */
  digest: string;
  /** `<registry>/clicky/backend@sha256:...` */
  pinned: string;
  /**
   * The local build it was pushed from (`clicky-e2e/backend-build:v1`). The registry tags are
   * not kept in the local image store, so a deploy must log in and pull them.
   */
  localBuild: string;
}

/** The content of `<state dir>/state.json`, as provision.sh writes it. */
export interface HarnessState {
  schema: number;
  stateDir: string;
  ssh: {
    host: string;
    port: number;
    user: string;
    privateKeyPath: string;
    clientPublicKey: string;
    /** `ssh-ed25519 AAAA...` of the server's host key, to pin. */
    hostPublicKey: string;
  };
  registry: { address: string; user: string; password: string };
  images: {
    base: string;
    postgres: string;
    redis: string;
    proxy: string;
    backend: { repository: string; tags: Record<string, BackendTag> };
  };
  docker: {
    serverVersion: string;
    clientVersion: string;
    cliPath: string;
    storageDriver: string;
    /** `docker compose version --short` as the deploy user, or null when absent. */
    composeV2: string | null;
    /** `docker-compose version --short` as the deploy user, or null when absent. */
    composeV1: string | null;
  };
  provisionedAt: string;
}

/** A provisioned harness: the state plus the client private key, read once. */
export interface Harness extends HarnessState {
  /** Content of the client private key (OpenSSH format), as a deploy's config would hold it. */
  privateKey: string;
}

/** Options of ensureHarness. */
export interface EnsureHarnessOptions {
  /** State directory; default `$E2E_STATE_DIR` or `<repo>/.e2e-state`. */
  stateDir?: string;
  /** Abort provisioning after this long; default 30 minutes (a cold run takes a few). */
  timeoutMs?: number;
  /** Where provision.sh's progress goes; default process.stderr. */
  progress?: NodeJS.WritableStream;
}

function defaultStateDir(): string {
  return process.env.E2E_STATE_DIR || path.join(REPO_ROOT, ".e2e-state");
}

/**
 * A short name of this checkout's harness (6 hex of its state dir's path), for what its tests
 * create on the hosts that every checkout shares (the `deploy` user's home, the Docker engine):
 * app directories and compose projects named with it never meet another checkout's.
 */
export function harnessInstance(stateDir: string = defaultStateDir()): string {
  return createHash("sha256").update(path.resolve(stateDir)).digest("hex").slice(0, 6);
}

function onPath(cmd: string): boolean {
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  return dirs.some((d) => existsSync(path.join(d, cmd)));
}

/**
 * The `skip` value of an e2e suite: a plain reason (also printed) when the harness cannot run
 * here, `false` when it can, and `false` under `CI=true`, where a harness that cannot start must
 * fail the suite rather than skip it.
 */
export function e2eSkip(suite: string): string | false {
  const availability = harnessAvailability();
  if (availability.ok || process.env.CI === "true") return false;
  const reason = `${suite} cannot run here: ${availability.reason}`;
  console.log(`# skipping: ${reason}`);
  return reason;
}

/**
 * Says cheaply, without installing or starting anything, whether e2e can run here, so a
 * test can skip with a plain reason instead of failing half-way through provisioning.
 */
export function harnessAvailability(): { ok: boolean; reason?: string } {
  if (process.platform !== "linux") {
    return { ok: false, reason: `e2e needs Linux (this is ${process.platform})` };
  }
  const uid = process.getuid?.();
  if (uid !== 0) {
    return {
      ok: false,
      reason: `e2e needs root (uid is ${uid}): it installs packages and starts dockerd and sshd`,
    };
  }
  if (!onPath("bash")) {
    return { ok: false, reason: "bash is not on PATH" };
  }
  const haveDocker = onPath("docker") && (onPath("dockerd") || dockerAnswers());
  if (!haveDocker && !onPath("apt-get")) {
    return {
      ok: false,
      reason: "no Docker engine here and no apt-get to install one (docker.io)",
    };
  }
  return { ok: true };
}

function dockerAnswers(): boolean {
  const r = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], {
    stdio: "ignore",
    timeout: 5000,
  });
  return r.status === 0;
}

const ensured = new Map<string, Promise<Harness>>();

/**
 * Provisions the harness (idempotent; cheap when already done) and returns its state. Runs
 * once per process and state dir; concurrent processes are serialised by provision.sh's lock.
 * Throws a clear error when not root or when provisioning fails, with the tail of its output.
 */
export function ensureHarness(opts: EnsureHarnessOptions = {}): Promise<Harness> {
  const stateDir = path.resolve(opts.stateDir ?? defaultStateDir());
  let p = ensured.get(stateDir);
  if (!p) {
    p = provision(stateDir, opts);
    ensured.set(stateDir, p);
    p.catch(() => ensured.delete(stateDir));
  }
  return p;
}

async function provision(stateDir: string, opts: EnsureHarnessOptions): Promise<Harness> {
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new Error(
      `e2e harness: must run as root (uid is ${uid}); provision.sh installs packages and starts dockerd, a registry and sshd`,
    );
  }
  const progress = opts.progress ?? process.stderr;
  const timeoutMs = opts.timeoutMs ?? 30 * 60_000;
  const output: string[] = [];
  const started = Date.now();
  const code = await new Promise<number | string>((resolve, reject) => {
    const child = spawn("bash", [PROVISION_SCRIPT], {
      env: { ...process.env, E2E_STATE_DIR: stateDir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      resolve(`timed out after ${timeoutMs} ms`);
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      output.push(text);
      progress.write(text);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`e2e harness: cannot run ${PROVISION_SCRIPT}: ${err.message}`));
    });
    child.on("close", (c, signal) => {
      clearTimeout(timer);
      resolve(c ?? `killed by ${signal}`);
    });
  });
  const all = output.join("");
  try {
    mkdirSync(path.join(stateDir, "logs"), { recursive: true });
    writeFileSync(path.join(stateDir, "logs", "provision.last.log"), all);
  } catch {
    // the state dir may be what failed; the error below carries the output anyway
  }
  if (code !== 0) {
    const tail = all.trimEnd().split("\n").slice(-25).join("\n");
    throw new Error(
      `e2e harness: provision.sh failed (${typeof code === "number" ? `exit ${code}` : code}) after ${Math.round((Date.now() - started) / 1000)} s; last output:\n${tail}\n(full output: ${path.join(stateDir, "logs", "provision.last.log")})`,
    );
  }
  return loadHarness(stateDir);
}

/**
 * Reads an already provisioned harness from its state.json without provisioning, for tools
 * that run after ensureHarness (or after `provision.sh` by hand).
 */
export function loadHarness(stateDir: string = defaultStateDir()): Harness {
  const file = path.join(stateDir, "state.json");
  let state: HarnessState;
  try {
    state = JSON.parse(readFileSync(file, "utf8")) as HarnessState;
  } catch (err) {
    throw new Error(`e2e harness: cannot read ${file}: ${(err as Error).message}`);
  }
  if (state.schema !== 1 || !state.ssh?.hostPublicKey || !state.registry?.password) {
    throw new Error(`e2e harness: ${file} is not a state file of this harness version`);
  }
  return { ...state, privateKey: readFileSync(state.ssh.privateKeyPath, "utf8") };
}
