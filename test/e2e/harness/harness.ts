/**
 * The e2e harness: real SSH, real Docker, a real registry, on this machine (see DESIGN.md,
 * "E2E harness"). `ensureHarness()` provisions everything through provision.sh and returns
 * what a test needs; the other helpers run things the way the deploy will meet them:
 * remote commands and copies exactly as Pulumi's command provider performs them, PostgreSQL
 * queries inside a compose project's container, and an HTTP load that counts every failure.
 */
import { type SpawnOptions, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { Client, type ConnectConfig } from "ssh2";
import { commandProviderError } from "../../deploy/support/provider";

/** Root of the repository (this file lives in test/e2e/harness). */
export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
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

/** Result of a command, remote or local. `code` is null when it died of a signal. */
export interface CommandResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  /**
   * stdout and stderr together in the order they arrived (runOverSsh only): what the command
   * provider's shared buffer holds and its error quotes (`../../deploy/support/provider.ts`).
   */
  output?: string;
}

function defaultStateDir(): string {
  return process.env.E2E_STATE_DIR || path.join(REPO_ROOT, ".e2e-state");
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

/** Decodes the key blob of an OpenSSH public key line (`ssh-ed25519 AAAA... [comment]`). */
function keyBlob(line: string): Buffer {
  const b64 = line.trim().split(/\s+/)[1];
  if (!b64) {
    throw new Error(`not an OpenSSH public key line: ${JSON.stringify(line)}`);
  }
  return Buffer.from(b64, "base64");
}

function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** Connection overrides, for tests that must see a refusal (a wrong pinned key, say). */
export interface SshConnectOverrides {
  /** Pin this host key line instead of the harness's. */
  hostPublicKey?: string;
  user?: string;
  privateKey?: string;
  port?: number;
  readyTimeoutMs?: number;
}

/** Opens an SSH connection with the host key verified against the pinned key. */
function connect(h: Harness, o: SshConnectOverrides = {}): Promise<Client> {
  const pinnedLine = o.hostPublicKey ?? h.ssh.hostPublicKey;
  const pinned = keyBlob(pinnedLine);
  const keyType = pinnedLine.trim().split(/\s+/)[0] ?? "ssh-ed25519";
  let presented: Buffer | undefined;
  const config: ConnectConfig = {
    host: h.ssh.host,
    port: o.port ?? h.ssh.port,
    username: o.user ?? h.ssh.user,
    privateKey: o.privateKey ?? h.privateKey,
    readyTimeout: o.readyTimeoutMs ?? 20_000,
    algorithms: { serverHostKey: [keyType as "ssh-ed25519"] },
    hostVerifier: (key: Buffer) => {
      presented = key;
      return key.equals(pinned);
    },
  };
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once("ready", () => resolve(client));
    client.once("error", (err: Error) => {
      client.end();
      if (presented && !presented.equals(pinned)) {
        reject(
          new Error(
            `ssh ${config.username}@${config.host}:${config.port}: host key mismatch: server presented ${fingerprint(presented)}, pinned ${fingerprint(pinned)} (${err.message})`,
          ),
        );
      } else {
        reject(new Error(`ssh ${config.username}@${config.host}:${config.port}: ${err.message}`));
      }
    });
    client.connect(config);
  });
}

/** Options of runOverSsh. */
export interface RunOverSshOptions extends SshConnectOverrides {
  /** Written to the command's stdin, then stdin is closed (as the provider does). */
  stdin?: string;
  /**
   * Deliberately unsupported: the provider's env goes through SSH `setenv`, which sshd drops
   * (AcceptEnv LANG LC_* only). Secrets must travel on stdin.
   */
  env?: never;
  /** Close the connection and reject after this long; default 15 minutes. */
  timeoutMs?: number;
  /** Called with each chunk of output as it arrives (the provider streams it too). */
  onOutput?: (chunk: string, stream: "stdout" | "stderr") => void;
  /**
   * Cuts the connection when aborted, the way a network failure or a killed `pulumi up`
   * would: the TCP socket is destroyed, no SSH disconnect, no signal to the remote command.
   * The result then has `code: null` and `signal: "connection cut"`.
   */
  cut?: AbortSignal;
}

/**
 * Runs `script` on the harness host the way Pulumi's command provider (remote.Command) does:
 * one SSH connection, one exec session whose command is the script string itself (the
 * remote login shell runs it with `-c`), no pty, stdin written and then closed (closed at
 * once when there is none), stdout and stderr kept apart. The host key must equal the
 * pinned one, or the connection fails. Resolves with the exit code even when non-zero.
 */
export async function runOverSsh(
  h: Harness,
  script: string,
  opts: RunOverSshOptions = {},
): Promise<CommandResult> {
  const client = await connect(h, opts);
  const timeoutMs = opts.timeoutMs ?? 15 * 60_000;
  try {
    return await new Promise<CommandResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.end();
        reject(new Error(`runOverSsh: no exit after ${timeoutMs} ms`));
      }, timeoutMs);
      client.exec(script, (err, stream) => {
        if (err) {
          clearTimeout(timer);
          reject(new Error(`runOverSsh: exec refused: ${err.message}`));
          return;
        }
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        const both: Buffer[] = [];
        let code: number | null = null;
        let signal: string | undefined;
        stream.on("exit", (c: number | null, sig?: string) => {
          code = typeof c === "number" ? c : null;
          if (sig) signal = sig;
        });
        stream.on("data", (d: Buffer) => {
          out.push(d);
          both.push(d);
          opts.onOutput?.(d.toString("utf8"), "stdout");
        });
        stream.stderr.on("data", (d: Buffer) => {
          errOut.push(d);
          both.push(d);
          opts.onOutput?.(d.toString("utf8"), "stderr");
        });
        const onCut = () => {
          signal = "connection cut";
          client.destroy();
          stream.emit("close");
        };
        if (opts.cut?.aborted) onCut();
        else opts.cut?.addEventListener("abort", onCut, { once: true });
        stream.on("close", () => {
          clearTimeout(timer);
          opts.cut?.removeEventListener("abort", onCut);
          const result: CommandResult = {
            code,
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(errOut).toString("utf8"),
            output: Buffer.concat(both).toString("utf8"),
          };
          if (signal) result.signal = signal;
          resolve(result);
        });
        stream.end(opts.stdin && opts.stdin.length > 0 ? opts.stdin : undefined);
      });
    });
  } finally {
    client.end();
  }
}

/** A remote command's result and, when it failed, the provider's error text. */
export interface ProviderRun {
  result: CommandResult;
  /** `<err>: running "<create>":\n<output>`, as the command provider reports a failure. */
  error?: string;
}

/**
 * Runs a registered command's `create` with its stdin as remote.Command does (runOverSsh) and,
 * when it fails, builds the error the provider would report, quoting `create` and all of the
 * output (`../../deploy/support/provider.ts` cites the provider's code).
 */
export async function runAsProvider(
  h: Harness,
  create: string,
  opts: RunOverSshOptions = {},
): Promise<ProviderRun> {
  const result = await runOverSsh(h, create, opts);
  if (result.code === 0 || result.signal === "connection cut") return { result };
  return { result, error: commandProviderError(create, result, result.output ?? "") };
}

/** One file for copyOverSsh. */
export interface RemoteFile {
  remotePath: string;
  content: string | Buffer;
  /** Set this mode after writing; without it the server's default applies (the provider sets none). */
  mode?: number;
}

/**
 * Writes files on the harness host over SFTP as the deploy user, the way the provider's
 * CopyToRemote does (create-or-truncate, then write; the parent directory must exist).
 */
export async function copyOverSsh(
  h: Harness,
  files: RemoteFile[],
  overrides: SshConnectOverrides = {},
): Promise<void> {
  const client = await connect(h, overrides);
  try {
    const sftp = await new Promise<import("ssh2").SFTPWrapper>((resolve, reject) =>
      client.sftp((err, s) => (err ? reject(err) : resolve(s))),
    );
    for (const f of files) {
      await new Promise<void>((resolve, reject) => {
        const fail = (what: string) => (err: Error) =>
          reject(new Error(`copyOverSsh: ${what} ${f.remotePath}: ${err.message}`));
        const flags = f.mode === undefined ? {} : { mode: f.mode };
        sftp.open(f.remotePath, "w", flags, (err, handle) => {
          if (err) return fail("cannot create")(err);
          const data = typeof f.content === "string" ? Buffer.from(f.content, "utf8") : f.content;
          const finish = () => {
            const close = () =>
              sftp.close(handle, (e) => (e ? fail("cannot close")(e) : resolve()));
            if (f.mode === undefined) return close();
            sftp.fchmod(handle, f.mode, (e) => (e ? fail("cannot chmod")(e) : close()));
          };
          if (data.length === 0) return finish();
          writeAll(sftp, handle, data, 0, (e) => (e ? fail("cannot write")(e) : finish()));
        });
      });
    }
    sftp.end();
  } finally {
    client.end();
  }
}

function writeAll(
  sftp: import("ssh2").SFTPWrapper,
  handle: Buffer,
  data: Buffer,
  offset: number,
  done: (err?: Error) => void,
): void {
  const chunk = Math.min(32 * 1024, data.length - offset);
  sftp.write(handle, data, offset, chunk, offset, (err) => {
    if (err) return done(err);
    if (offset + chunk >= data.length) return done();
    writeAll(sftp, handle, data, offset + chunk, done);
  });
}

/** Options of runLocal. */
export interface RunLocalOptions {
  stdin?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Runs a local command (no shell) and collects its output; the harness host is this
 * machine, so checks that need no SSH (docker inspect, docker exec) use this.
 */
export function runLocal(
  cmd: string,
  args: string[],
  opts: RunLocalOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = {
      stdio: ["pipe", "pipe", "pipe"],
      env: opts.env ?? process.env,
    };
    if (opts.cwd) spawnOpts.cwd = opts.cwd;
    const child = spawn(cmd, args, spawnOpts);
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 5 * 60_000);
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => errOut.push(d));
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const r: CommandResult = {
        code,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(errOut).toString("utf8"),
      };
      if (signal) r.signal = signal;
      resolve(r);
    });
    // A command that exits without reading its stdin closes the pipe first: not an error.
    child.stdin?.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE") reject(err);
    });
    child.stdin?.end(opts.stdin ?? "");
  });
}

/**
 * Names of the containers of a compose project (optionally one service), running or not,
 * found by the labels both docker compose v2 and docker-compose v1 set.
 */
export async function composeContainers(project: string, service?: string): Promise<string[]> {
  const args = [
    "ps",
    "-a",
    "--format",
    "{{.Names}}",
    "--filter",
    `label=com.docker.compose.project=${project}`,
  ];
  if (service) args.push("--filter", `label=com.docker.compose.service=${service}`);
  const r = await runLocal("docker", args);
  if (r.code !== 0) throw new Error(`docker ps: ${r.stderr.trim()}`);
  return r.stdout.split("\n").filter(Boolean).sort();
}

/** Options of psqlInContainer. */
export interface PsqlOptions {
  /** Database role; default `clicky`. */
  user?: string;
  /** Database; default `clicky_db`. */
  database?: string;
  /** How long psql may run; default one minute. */
  timeoutMs?: number;
}

/**
 * Runs SQL with psql inside a running PostgreSQL container (`docker exec`, local socket,
 * as the official image allows) and returns psql's unaligned, tuples-only output, trimmed.
 * Rows are lines and columns are separated by `|`. Throws with psql's error on failure.
 */
export async function psqlInContainer(
  container: string,
  sql: string,
  opts: PsqlOptions = {},
): Promise<string> {
  const r = await runLocal(
    "docker",
    [
      "exec",
      "-i",
      container,
      "psql",
      "-X",
      "-At",
      "-v",
      "ON_ERROR_STOP=1",
      "-U",
      opts.user ?? "clicky",
      "-d",
      opts.database ?? "clicky_db",
    ],
    { stdin: sql, timeoutMs: opts.timeoutMs ?? 60_000 },
  );
  if (r.code !== 0) {
    throw new Error(`psql in ${container} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout.trim();
}

const PROJECT_RE = /^[a-z0-9][a-z0-9_-]*$/;
const PROTECTED_DIRS = new Set(
  [
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib64",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/work",
  ].map((d) => path.normalize(d)),
);

/**
 * Tears down a test's compose project so that the next scenario starts clean: removes its
 * containers, volumes and networks (found by compose labels, so it needs neither the compose
 * file nor the same compose variant) and deletes its app directory on the host. Refuses
 * project names and directories that could hit something that is not a test's.
 */
export async function cleanupProject(
  h: Harness,
  appDir: string,
  composeProjectName: string,
): Promise<void> {
  if (!PROJECT_RE.test(composeProjectName)) {
    throw new Error(
      `cleanupProject: invalid compose project name ${JSON.stringify(composeProjectName)}`,
    );
  }
  const dir = path.normalize(appDir);
  if (
    !path.isAbsolute(dir) ||
    PROTECTED_DIRS.has(dir) ||
    dir.split("/").filter(Boolean).length < 2
  ) {
    throw new Error(`cleanupProject: refusing to remove ${JSON.stringify(appDir)}`);
  }
  const label = `label=com.docker.compose.project=${composeProjectName}`;
  const list = async (args: string[]) => {
    const r = await runLocal("docker", args);
    if (r.code !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr.trim()}`);
    return r.stdout.split("\n").filter(Boolean);
  };
  const containers = await list(["ps", "-aq", "--filter", label]);
  if (containers.length > 0) await runLocal("docker", ["rm", "-f", "-v", ...containers]);
  const volumes = await list(["volume", "ls", "-q", "--filter", label]);
  if (volumes.length > 0) await runLocal("docker", ["volume", "rm", "-f", ...volumes]);
  const networks = await list(["network", "ls", "-q", "--filter", label]);
  if (networks.length > 0) await runLocal("docker", ["network", "rm", ...networks]);
  const rm = await runLocal("rm", ["-rf", "--one-file-system", "--", dir]);
  if (rm.code !== 0) throw new Error(`cleanupProject: rm -rf ${dir}: ${rm.stderr.trim()}`);
  void h;
}

/** Options of startLoad. */
export interface LoadOptions {
  /** http://127.0.0.1:PORT/path; only loopback targets are accepted. */
  url: string;
  /** Requests started per second (open loop: slow answers do not slow the rate). */
  ratePerSecond: number;
  /** Stop by itself after this long; default 60 s, at most 10 minutes. */
  durationMs?: number;
  /** Reuse connections (HTTP keep-alive); default false (a new connection per request). */
  keepAlive?: boolean;
  /** A request with no complete answer after this long counts as an error; default 5 s. */
  requestTimeoutMs?: number;
  /** Never more than this many requests in flight; extra ticks are counted as skipped. */
  maxInFlight?: number;
  /** Keep at most this many failure records; default 200. */
  maxFailureRecords?: number;
  /** Keep every request's outcome in `samples` (for plots); default false. */
  recordSamples?: boolean;
}

/** One request's outcome, when `recordSamples` is on. */
export interface LoadSample {
  /** ms since the load started, when the request was sent */
  atMs: number;
  /** ms until the answer or the error */
  latencyMs: number;
  /** the HTTP status, or 0 for a connection error or timeout */
  status: number;
}

/** One failed request, for the report. */
export interface LoadFailure {
  /** ms since the load started */
  atMs: number;
  kind: "status" | "error";
  /** the HTTP status or the error message */
  detail: string;
}

/** Latency summary in milliseconds, of the requests that got an answer. */
export interface LatencySummary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Counts of a load run. `sent === ok2xx + non2xxTotal + errorsTotal + inFlight`. */
export interface LoadResult {
  sent: number;
  ok2xx: number;
  non2xx: Record<string, number>;
  non2xxTotal: number;
  errors: Record<string, number>;
  errorsTotal: number;
  /** Ticks not sent because maxInFlight was reached. */
  skipped: number;
  /** Requests still unanswered when the result was taken (0 after stop()). */
  inFlight: number;
  /** Answers by X-App-Version header (`-` when absent). */
  versions: Record<string, number>;
  latencyMs: LatencySummary;
  failures: LoadFailure[];
  durationMs: number;
  /** Every request's outcome in the order they ended, when `recordSamples` was on. */
  samples: LoadSample[];
}

/** A running load. */
export interface LoadHandle {
  /** Stops sending, waits for requests in flight, and resolves with the final counts. */
  stop(): Promise<LoadResult>;
  /** Resolves with the final counts once the load ended (by duration or stop()). */
  done: Promise<LoadResult>;
  /** Counts so far. */
  snapshot(): LoadResult;
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function summarize(lat: number[]): LatencySummary {
  if (lat.length === 0) return { count: 0, min: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  const s = [...lat].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    count: s.length,
    min: round(s[0] ?? 0),
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    max: round(s[s.length - 1] ?? 0),
    mean: round(s.reduce((a, b) => a + b, 0) / s.length),
  };
}

/**
 * Sends a steady stream of HTTP GETs to a loopback URL while a deploy runs, so a test can
 * prove that no request was dropped: every request ends up counted as 2xx, non-2xx (by
 * status) or a connection error (by message). Bounded in time, stoppable, loopback only.
 */
export function startLoad(opts: LoadOptions): LoadHandle {
  const url = new URL(opts.url);
  if (url.protocol !== "http:") throw new Error(`startLoad: only http:// URLs (${opts.url})`);
  if (!isLoopback(url.hostname)) {
    throw new Error(`startLoad: only loopback targets are allowed, not ${url.hostname}`);
  }
  if (!(opts.ratePerSecond > 0 && opts.ratePerSecond <= 2000)) {
    throw new Error("startLoad: ratePerSecond must be in (0, 2000]");
  }
  const durationMs = Math.min(opts.durationMs ?? 60_000, 10 * 60_000);
  const requestTimeoutMs = opts.requestTimeoutMs ?? 5000;
  const maxInFlight = opts.maxInFlight ?? 256;
  const maxFailures = opts.maxFailureRecords ?? 200;
  const keepAlive = opts.keepAlive ?? false;
  const agent = new http.Agent({ keepAlive, maxSockets: maxInFlight });

  const start = performance.now();
  let sent = 0;
  let ok2xx = 0;
  let skipped = 0;
  let inFlight = 0;
  let non2xxTotal = 0;
  let errorsTotal = 0;
  let stoppedAt: number | undefined;
  const non2xx: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const versions: Record<string, number> = {};
  const latencies: number[] = [];
  const failures: LoadFailure[] = [];
  const samples: LoadSample[] = [];
  const sample = (t0: number, status: number) => {
    if (opts.recordSamples) {
      const now = performance.now();
      samples.push({
        atMs: Math.round((t0 - start) * 10) / 10,
        latencyMs: Math.round((now - t0) * 100) / 100,
        status,
      });
    }
  };
  let idleWaiters: (() => void)[] = [];

  const fail = (kind: LoadFailure["kind"], detail: string) => {
    if (failures.length < maxFailures) {
      failures.push({ atMs: Math.round(performance.now() - start), kind, detail });
    }
  };
  const settle = () => {
    inFlight--;
    if (inFlight === 0 && stoppedAt !== undefined) {
      for (const w of idleWaiters) w();
      idleWaiters = [];
    }
  };

  const fire = () => {
    sent++;
    inFlight++;
    const t0 = performance.now();
    let finished = false;
    const end = (fn: () => void) => {
      if (finished) return;
      finished = true;
      fn();
      settle();
    };
    const req = http.get(url, { agent, headers: { "user-agent": "clicky-e2e-load" } }, (res) => {
      res.on("data", () => {});
      res.on("end", () =>
        end(() => {
          latencies.push(performance.now() - t0);
          const status = res.statusCode ?? 0;
          sample(t0, status);
          const v = res.headers["x-app-version"];
          const version = typeof v === "string" ? v : "-";
          versions[version] = (versions[version] ?? 0) + 1;
          if (status >= 200 && status < 300) {
            ok2xx++;
          } else {
            non2xxTotal++;
            non2xx[String(status)] = (non2xx[String(status)] ?? 0) + 1;
            fail("status", String(status));
          }
        }),
      );
      res.on("error", (err) => onError(err));
    });
    const onError = (err: Error & { code?: string }) =>
      end(() => {
        const msg = err.code ? `${err.code}: ${err.message}` : err.message;
        sample(t0, 0);
        errorsTotal++;
        errors[msg] = (errors[msg] ?? 0) + 1;
        fail("error", msg);
      });
    req.setTimeout(requestTimeoutMs, () => {
      req.destroy(
        Object.assign(new Error(`no answer in ${requestTimeoutMs} ms`), { code: "TIMEOUT" }),
      );
    });
    req.on("error", onError);
  };

  const interval = 1000 / opts.ratePerSecond;
  let due = 0;
  const tick = setInterval(
    () => {
      const elapsed = performance.now() - start;
      if (elapsed >= durationMs) {
        void stop();
        return;
      }
      const target = Math.floor(elapsed / interval) + 1;
      while (due < target) {
        due++;
        if (inFlight >= maxInFlight) skipped++;
        else fire();
      }
    },
    Math.max(1, Math.min(10, Math.floor(interval))),
  );

  const snapshot = (): LoadResult => ({
    sent,
    ok2xx,
    non2xx: { ...non2xx },
    non2xxTotal,
    errors: { ...errors },
    errorsTotal,
    skipped,
    inFlight,
    versions: { ...versions },
    latencyMs: summarize(latencies),
    failures: [...failures],
    durationMs: Math.round((stoppedAt ?? performance.now()) - start),
    samples: opts.recordSamples ? [...samples] : [],
  });

  let resolveDone: (r: LoadResult) => void = () => {};
  const done = new Promise<LoadResult>((r) => {
    resolveDone = r;
  });
  let stopping: Promise<LoadResult> | undefined;
  const stop = (): Promise<LoadResult> => {
    if (!stopping) {
      stopping = (async () => {
        clearInterval(tick);
        stoppedAt = performance.now();
        if (inFlight > 0) await new Promise<void>((r) => idleWaiters.push(r));
        agent.destroy();
        const result = snapshot();
        resolveDone(result);
        return result;
      })();
    }
    return stopping;
  };
  return { stop, done, snapshot };
}

/** An HTTP answer, body as text. */
export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One GET to a loopback URL, without keep-alive; rejects on connection errors and after
 * `timeoutMs` (default 5 s). For assertions on what a deployed service answers.
 */
export function httpGet(url: string, timeoutMs = 5000): Promise<HttpAnswer> {
  const u = new URL(url);
  if (!isLoopback(u.hostname)) throw new Error(`httpGet: only loopback targets, not ${u.hostname}`);
  return new Promise((resolve, reject) => {
    const req = http.get(u, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)),
    );
    req.on("error", reject);
  });
}

/**
 * Polls a loopback URL until it answers `status` (default 200), for services that take a
 * moment to start; rejects after `timeoutMs` (default 60 s) with the last answer or error.
 */
export async function waitForHttp(
  url: string,
  opts: { status?: number; timeoutMs?: number; intervalMs?: number } = {},
): Promise<HttpAnswer> {
  const want = opts.status ?? 200;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let last = "no attempt";
  while (Date.now() < deadline) {
    try {
      const a = await httpGet(url, 2000);
      if (a.status === want) return a;
      last = `HTTP ${a.status}: ${a.body.slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
  throw new Error(`waitForHttp ${url}: no ${want} in time (last: ${last})`);
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, so that parallel tests (and other
 * users of the same Docker engine) do not fight over fixed published ports.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("freePort: no port"))));
    });
  });
}
