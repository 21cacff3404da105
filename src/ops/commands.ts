import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { isApprovalGated } from "../config/catalog";
import type { StackConfig } from "../config/schema";
import { assign, assignArray } from "../deploy/shell";
import {
  buildStatusScript,
  describeResult,
  formatStatus,
  type HostReport,
  parseHostReport,
  remoteScript,
} from "./report";
import { type Credentials, execOnHost, type SshHost, where } from "../deploy/ssh-exec";
import { OpsError } from "./stack";

/** What a command prints, and how it exits. */
export interface Output {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

export interface OpsContext {
  readonly config: StackConfig;
  readonly credentials: Credentials;
  readonly io: Output;
  /** `--host <name>`: only that host. */
  readonly host?: string;
}

/** How long a read-only command waits for a host. */
const READ_TIMEOUT_MS = 30_000;

/** The stack's hosts, or the one `--host` names. */
export function selectHosts(ctx: Pick<OpsContext, "config" | "host">): readonly SshHost[] {
  const hosts = ctx.config.deploy.hosts;
  if (ctx.host === undefined) return hosts;
  const found = hosts.filter((h) => h.name === ctx.host);
  if (found.length === 0) {
    throw new OpsError(
      `--host ${ctx.host}: the stack has no such host (deploy.hosts: ${hosts.map((h) => h.name).join(", ")})`,
      2,
    );
  }
  return found;
}

/** Each host's report, read in parallel; a host that cannot be read is named with why. */
async function readReports(
  ctx: OpsContext,
  runs = 20,
): Promise<{ host: SshHost; report?: HostReport; error?: string }[]> {
  const { appDir, composeProject } = ctx.config.deploy;
  const script = buildStatusScript(appDir, composeProject, runs);
  return Promise.all(
    selectHosts(ctx).map(async (host) => {
      try {
        const r = await execOnHost(host, ctx.credentials, script, { timeoutMs: READ_TIMEOUT_MS });
        if (r.code !== 0) {
          const why = r.stderr.trim().split("\n").pop() ?? "";
          return { host, error: `the report script exited with ${r.code}${why ? `: ${why}` : ""}` };
        }
        return { host, report: parseHostReport(r.stdout) };
      } catch (err) {
        return { host, error: (err as Error).message };
      }
    }),
  );
}

/** `ops status`: per host, what serves since when, the last deploy, the lock, the containers. */
export async function status(ctx: OpsContext, json: boolean): Promise<number> {
  const reports = await readReports(ctx, 1);
  if (json) {
    ctx.io.out(
      JSON.stringify(
        reports.map(({ host, report, error }) => ({
          host: host.name,
          address: where(host),
          ...(report ?? {}),
          ...(error ? { error } : {}),
        })),
        null,
        2,
      ),
    );
  } else {
    for (const [i, { host, report, error }] of reports.entries()) {
      if (i > 0) ctx.io.out("");
      if (report) for (const line of formatStatus(host.name, where(host), report)) ctx.io.out(line);
      else ctx.io.out(`${host.name} (${where(host)})\n  unreadable: ${error}`);
    }
    const versions = new Set(
      reports.map((r) => r.report?.current?.digest ?? r.report?.current?.tag),
    );
    if (reports.length > 1 && versions.size > 1) {
      ctx.io.out("");
      ctx.io.out("note: the hosts do not all serve the same version");
    }
  }
  return reports.some((r) => r.error) ? 1 : 0;
}

export interface AuditEntry {
  readonly at: string;
  readonly host: string;
  readonly what: string;
}

/**
 * `ops audit`: every deploy run the hosts still have a log of (the newest 20 per host: each
 * run's result, failures included), then the successful deploys of `history.log` older than
 * those, newest first across hosts.
 */
export async function audit(ctx: OpsContext, json: boolean, limit: number): Promise<number> {
  const reports = await readReports(ctx, 20);
  const entries: AuditEntry[] = [];
  for (const { host, report, error } of reports) {
    if (!report) {
      ctx.io.err(`${host.name} (${where(host)}): unreadable: ${error}`);
      continue;
    }
    for (const run of report.runs) {
      entries.push({ at: run.startedAt, host: host.name, what: describeResult(run.result) });
    }
    const oldestRun = report.runs.at(-1)?.startedAt;
    for (const h of report.history) {
      if (oldestRun === undefined || h.at < oldestRun) {
        entries.push({ at: h.at, host: host.name, what: `deployed (history.log): ${h.line}` });
      }
    }
  }
  entries.sort((a, b) => (a.at === b.at ? a.host.localeCompare(b.host) : a.at < b.at ? 1 : -1));
  const shown = entries.slice(0, limit);
  if (json) ctx.io.out(JSON.stringify(shown, null, 2));
  else if (shown.length === 0) ctx.io.out("no deploy recorded on any host");
  else for (const e of shown) ctx.io.out(`${e.at}  ${e.host}  ${e.what}`);
  return reports.some((r) => r.error) ? 1 : 0;
}

/** `ops lock status`: who holds each host's deploy lock, since when. */
export async function lockStatus(ctx: OpsContext): Promise<number> {
  const reports = await readReports(ctx, 1);
  for (const { host, report, error } of reports) {
    if (!report) {
      ctx.io.out(`${host.name}: unreadable: ${error}`);
      continue;
    }
    const { lock } = report;
    if (lock.held) {
      const alive = lock.pidAlive ? "its process is running" : "its recorded process is gone";
      ctx.io.out(
        `${host.name}: held by ${lock.owner ?? "a process that recorded no owner"} (${alive})`,
      );
    } else if (lock.owner) {
      ctx.io.out(
        `${host.name}: free; a stale owner record is left (${lock.owner}); ops lock release --force clears it`,
      );
    } else ctx.io.out(`${host.name}: free`);
  }
  return reports.some((r) => r.error) ? 1 : 0;
}

/** Exit status of a refused release: a live deploy holds the lock. */
export const REFUSED_EXIT = 3;

/**
 * `ops lock release --force`: on each host, clears the lock's owner record when no live
 * process holds the lock; refuses (exit {@link REFUSED_EXIT}) while the deploy that holds it
 * runs. The lock itself is the kernel's (`flock`): it goes with the process that held it.
 */
export async function lockRelease(ctx: OpsContext, force: boolean): Promise<number> {
  if (!force) {
    throw new OpsError(
      "lock release changes the host: pass --force (it still refuses while a deploy holds the lock)",
      2,
    );
  }
  const script = [
    "# clicky-delivery ops: lock release.",
    assign("APP_DIR", ctx.config.deploy.appDir),
    remoteScript("lock-release"),
  ].join("\n");
  let exit = 0;
  for (const host of selectHosts(ctx)) {
    try {
      const r = await execOnHost(host, ctx.credentials, script, { timeoutMs: READ_TIMEOUT_MS });
      ctx.io.out(`${host.name}: ${r.stdout.trim() || r.stderr.trim()}`);
      if (r.code !== 0) exit = Math.max(exit, r.code === REFUSED_EXIT ? REFUSED_EXIT : 1);
    } catch (err) {
      ctx.io.out(`${host.name}: unreadable: ${(err as Error).message}`);
      exit = Math.max(exit, 1);
    }
  }
  return exit;
}

export interface LogsOptions {
  /** `docker logs --since`: a duration (`10m`) or a time (`2026-12-04T03:00:00Z`). */
  readonly since?: string;
  readonly tail: number;
  readonly follow: boolean;
  /** Ends `--follow` (Ctrl-C). */
  readonly signal?: AbortSignal;
}

/** A value `docker logs --since` takes: a Go duration or an RFC 3339 time / Unix timestamp. */
export function checkSince(since: string): string {
  if (
    /^\d+(\.\d+)?(ns|us|ms|s|m|h)$/.test(since) ||
    /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/.test(since) ||
    /^\d+(\.\d+)?$/.test(since)
  ) {
    return since;
  }
  throw new OpsError(
    `--since ${since}: expected a duration (10m, 2h) or a time (2026-12-04T03:00:00Z)`,
    2,
  );
}

type Stream = "stdout" | "stderr";

/**
 * Whole lines out of a remote command's output chunks, each stream on its own (a chunk may end
 * mid-line); `flush` gives what is left once the command has ended.
 */
export function lineSplitter(onLine: (line: string, stream: Stream) => void) {
  const partial: Record<Stream, string> = { stdout: "", stderr: "" };
  return {
    push: (chunk: string, stream: Stream) => {
      const lines = (partial[stream] + chunk).split("\n");
      partial[stream] = lines.pop() ?? "";
      for (const line of lines) onLine(line, stream);
    },
    flush: () => {
      for (const stream of ["stdout", "stderr"] as const) {
        if (partial[stream] !== "") onLine(partial[stream], stream);
        partial[stream] = "";
      }
    },
  };
}

/**
 * `ops logs`: the serving container's logs from every host, each line prefixed with the host's
 * name; with `--follow`, from all hosts at once until interrupted.
 */
export async function logs(ctx: OpsContext, opts: LogsOptions): Promise<number> {
  const script = [
    "# clicky-delivery ops: logs.",
    assign("APP_DIR", ctx.config.deploy.appDir),
    assign("PROJECT", ctx.config.deploy.composeProject),
    assign("SINCE", opts.since === undefined ? "" : checkSince(opts.since)),
    `TAIL=${Math.max(0, Math.floor(opts.tail))}`,
    `FOLLOW=${opts.follow ? 1 : 0}`,
    remoteScript("logs"),
  ].join("\n");
  const hosts = selectHosts(ctx);
  const width = Math.max(...hosts.map((h) => h.name.length));
  const one = async (host: SshHost): Promise<number> => {
    const prefix = `${host.name.padEnd(width)} | `;
    const lines = lineSplitter((line) => ctx.io.out(prefix + line));
    try {
      const r = await execOnHost(host, ctx.credentials, script, {
        onData: lines.push,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.follow ? {} : { timeoutMs: 120_000 }),
      });
      lines.flush();
      return r.code === 0 || r.code === null ? 0 : 1;
    } catch (err) {
      ctx.io.err(`${host.name}: ${(err as Error).message}`);
      return 1;
    }
  };
  const codes = opts.follow
    ? await Promise.all(hosts.map(one))
    : await hosts.reduce<Promise<number[]>>(
        async (acc, host) => [...(await acc), await one(host)],
        Promise.resolve([]),
      );
  return Math.max(0, ...codes);
}

/** The local end of `ops exec --interactive`: its stdin, its output, and a terminal if any. */
export interface Terminal {
  readonly input: Readable;
  /** Output as it comes, unsplit (a prompt has no line end; a terminal merges both streams). */
  readonly write: (chunk: string, stream: Stream) => void;
  /** The local terminal's size, when stdin and stdout are one: the session then gets a pty. */
  readonly size?: () => { readonly rows: number; readonly cols: number };
  /** Subscribes to size changes; returns the unsubscribe. */
  readonly onResize?: (listener: () => void) => () => void;
  /** Raw mode of the local terminal (keys go to the remote one as typed, Ctrl-C included). */
  readonly setRaw?: (raw: boolean) => void;
}

/**
 * `ops exec -- <command...>`: the command in a new container of the serving image on one host,
 * with the serving container's environment and network (how a user runs a management
 * command), never inside the serving container; the container is removed afterwards. Its
 * output streams back as it comes; the exit status is the command's. With a `terminal`
 * (`--interactive`), the command reads its stdin, and gets a terminal when the local side is
 * one (a shell, a Python console).
 */
export async function exec(
  ctx: OpsContext,
  command: readonly string[],
  terminal?: Terminal,
): Promise<number> {
  if (command.length === 0) {
    throw new OpsError(
      "exec needs a command after --, e.g. npm run ops -- exec --stack staging -- alembic current",
      2,
    );
  }
  const hosts = selectHosts(ctx);
  const host = hosts[0];
  if (hosts.length > 1 || host === undefined) {
    throw new OpsError(
      `exec runs on one host: pass --host <name> (deploy.hosts: ${hosts.map((h) => h.name).join(", ")})`,
      2,
    );
  }
  const script = [
    "# clicky-delivery ops: exec.",
    assign("APP_DIR", ctx.config.deploy.appDir),
    assign("PROJECT", ctx.config.deploy.composeProject),
    assign("INTERACTIVE", terminal ? "1" : "0"),
    assignArray("CMD", command),
    remoteScript("exec"),
  ].join("\n");
  const lines = lineSplitter((line, stream) =>
    stream === "stdout" ? ctx.io.out(line) : ctx.io.err(line),
  );
  const size = terminal?.size?.();
  let unsubscribe: (() => void) | undefined;
  try {
    if (size) terminal?.setRaw?.(true);
    const r = await execOnHost(host, ctx.credentials, script, {
      onData: terminal ? terminal.write : lines.push,
      ...(terminal ? { stdin: terminal.input } : {}),
      ...(size ? { pty: { ...size, term: process.env.TERM || "xterm-256color" } } : {}),
      onChannel: (channel) => {
        if (!size || !terminal?.onResize || !terminal.size) return;
        const current = terminal.size;
        unsubscribe = terminal.onResize(() => {
          const now = current();
          channel.setWindow(now.rows, now.cols, 0, 0);
        });
      },
    });
    lines.flush();
    return r.code ?? 1;
  } catch (e) {
    ctx.io.err(`${host.name}: ${(e as Error).message}`);
    return 1;
  } finally {
    unsubscribe?.();
    if (size) terminal?.setRaw?.(false);
    // Nothing reads it any more: a stdin that never ends (a pipe) must not keep this process up.
    terminal?.input.pause();
  }
}

/**
 * Runs a local program (gh, pulumi) with the terminal attached; resolves with its exit status.
 * With `input`, that goes to its stdin instead of the terminal (a secret, never an argument).
 */
export type LocalRunner = (
  command: string,
  args: readonly string[],
  cwd: string,
  input?: string,
) => number | Promise<number>;

export const runLocally: LocalRunner = (command, args, cwd, input) => {
  const r = spawnSync(command, [...args], {
    cwd,
    ...(input === undefined
      ? { stdio: "inherit" }
      : { stdio: ["pipe", "inherit", "inherit"], input }),
  });
  if (r.error) throw new OpsError(`${command}: ${r.error.message}`);
  return r.status ?? 1;
};

/**
 * `ops rollback`: deploys the version the hosts record as previous (`state/previous`), through
 * the path a deploy of this stack takes: for an approval-gated stack, the production workflow
 * dispatched with that version and no migration, so its reviewers approve it as any deploy;
 * otherwise `pulumi up` of the stack with that tag for this run. Every host must record the
 * same previous version. Without `--yes` it only says what it would run.
 */
export async function rollback(
  ctx: OpsContext,
  opts: { readonly yes: boolean; readonly dir: string; readonly run?: LocalRunner },
): Promise<number> {
  const reports = await readReports(ctx, 1);
  const unreadable = reports.filter((r) => r.error);
  if (unreadable.length > 0) {
    for (const r of unreadable) ctx.io.err(`${r.host.name}: unreadable: ${r.error}`);
    throw new OpsError("rollback needs every host's record; nothing was run");
  }
  const previous = reports.map((r) => ({ host: r.host.name, tag: r.report?.previous?.tag }));
  const tags = new Set(previous.map((p) => p.tag));
  const [tag] = [...tags];
  if (tags.size !== 1 || tag === undefined) {
    throw new OpsError(
      `the hosts do not record one previous version (${previous.map((p) => `${p.host}: ${p.tag ?? "none"}`).join(", ")}); name the version yourself (docs/operations.md, Runbook: roll back); nothing was run`,
    );
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) {
    throw new OpsError(`the recorded previous tag "${tag}" is not an image tag; nothing was run`);
  }
  const current = reports[0]?.report?.current?.tag ?? "?";
  const { config } = ctx;
  const stack = config.stack;
  const gated = isApprovalGated(config.environment);
  const [command, args]: [string, string[]] = gated
    ? ["gh", dispatchArgs(config, tag)]
    : [
        "pulumi",
        [
          "up",
          "--stack",
          stack,
          "--config-path",
          "--config",
          `deploy.image.tag=${tag}`,
          "--config",
          "deploy.migrate=false",
          "--diff",
        ],
      ];
  ctx.io.out(
    `rollback of ${stack}: ${current} -> ${tag} (the version every host records as previous), without migrations`,
  );
  ctx.io.out(
    gated
      ? `${stack} is approval-gated: the production workflow deploys it once a reviewer approves`
      : `${stack} is not approval-gated: pulumi up deploys it, with the deploy's backup, health gate and switch`,
  );
  ctx.io.out(`  ${command} ${args.join(" ")}`);
  if (!opts.yes) {
    ctx.io.out("nothing was run: add --yes to run it");
    return 0;
  }
  const code = await (opts.run ?? runLocally)(command, args, opts.dir);
  if (code === 0 && !gated) {
    ctx.io.out(
      `the stack now records ${tag} as deployed; pulumi up wrote the tag into Pulumi.${stack}.yaml: git checkout -- Pulumi.${stack}.yaml drops it (later runs keep the recorded image)`,
    );
  }
  if (code === 0 && gated) {
    ctx.io.out("dispatched: approve the run in GitHub Actions (Deploy to Production)");
  }
  return code;
}

/** The production workflow's dispatch of `tag` without migrations (rollback, rotation). */
function dispatchArgs(config: StackConfig, tag: string): string[] {
  return [
    "workflow",
    "run",
    "deploy-prod.yml",
    "--repo",
    `${config.github.owner}/${config.github.repository}`,
    "--ref",
    config.github.defaultBranch,
    "-f",
    `version=${tag}`,
    "-f",
    "run_migrations=false",
  ];
}

/** A new database password: 32 random bytes, base64url (43 characters, nothing to escape). */
export function newDatabasePassword(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * `ops rotate-db-password`: a new `postgresPassword` in the stack's config (`pulumi config set
 * --secret`, the value on its stdin), then the deploy that puts it in place: on each host the
 * deploy changes the role's password before the backup, keeps the serving version's new
 * connections trusted from its own address until it stops, and starts the new version with the
 * new password (src/deploy/remote/steps.sh, ensure_db_password). A stack that is not
 * approval-gated deploys with `pulumi up`; an approval-gated one through its workflow once the
 * changed stack file is on the default branch. Without `--yes` it only says what it would run.
 */
export async function rotateDbPassword(
  ctx: OpsContext,
  opts: {
    readonly yes: boolean;
    readonly dir: string;
    readonly run?: LocalRunner;
    /** The new password (`--password-stdin`); a random one otherwise. */
    readonly password?: string;
  },
): Promise<number> {
  const { config } = ctx;
  const stack = config.stack;
  const { user, name } = config.deploy.database;
  const accessories = config.deploy.accessories;
  if (accessories) {
    throw new OpsError(
      accessories.external
        ? "the database is external (deploy.accessories.external): change the password at the provider, then `pulumi config set --secret databaseUrl` with it and `pulumi up` (docs/scaling.md); nothing was run"
        : "the database runs on an accessories host for several app hosts: a rotation is done by a single-host deploy only, not across app hosts yet (docs/scaling.md, Limits); nothing was run",
      2,
    );
  }
  const gated = isApprovalGated(config.environment);
  const password = opts.password ?? newDatabasePassword();
  if (password === "" || /[\r\n\0]/.test(password)) {
    throw new OpsError(
      "the new password is empty or holds a line break or NUL: the deploy passes it as one line; nothing was run",
      2,
    );
  }
  const set = ["config", "set", "--secret", "postgresPassword", "--stack", stack];
  const up = ["up", "--stack", stack, "--diff"];
  let tag = "<the tag production serves>";
  if (gated) {
    const reports = await readReports(ctx, 1);
    const tags = new Set(reports.map((r) => r.report?.current?.tag));
    const [only] = [...tags];
    if (tags.size === 1 && only !== undefined) tag = only;
  }
  ctx.io.out(
    `rotation of the database password of ${stack} (role ${user}, database ${name}), ${opts.password === undefined ? "to a new random password (32 bytes)" : "to the password read from stdin"}:`,
  );
  ctx.io.out(`  pulumi ${set.join(" ")}   (the password on its stdin, never printed)`);
  if (gated) {
    ctx.io.out(
      `  then: commit Pulumi.${stack}.yaml to ${config.github.defaultBranch} (a pull request, like any change), and deploy it:`,
    );
    ctx.io.out(`  gh ${dispatchArgs(config, tag).join(" ")}`);
    ctx.io.out(
      `${stack} is approval-gated: the production workflow's pulumi up changes the password once a reviewer approves`,
    );
  } else {
    ctx.io.out(`  pulumi ${up.join(" ")}`);
  }
  ctx.io.out(
    "the deploy changes the role's password on each host before its backup, keeps the serving version's new connections working until it stops, and starts the new version with the new password: no request fails",
  );
  if (!opts.yes) {
    ctx.io.out("nothing was run: add --yes to run it");
    return 0;
  }
  const run = opts.run ?? runLocally;
  const setCode = await run("pulumi", set, opts.dir, password);
  if (setCode !== 0) {
    throw new OpsError(
      `pulumi config set failed (exit ${setCode}): the stack's config and the hosts are unchanged`,
      setCode,
    );
  }
  ctx.io.out(`Pulumi.${stack}.yaml holds the new password (encrypted)`);
  if (gated) {
    ctx.io.out(
      `next: commit Pulumi.${stack}.yaml, merge it, then run the gh command above; until then the hosts keep the old password`,
    );
    return 0;
  }
  const upCode = await run("pulumi", up, opts.dir);
  if (upCode !== 0) {
    ctx.io.out(
      `pulumi up did not finish (exit ${upCode}): each host either took the new password or kept the old one (a failed deploy puts the old one back); pulumi up again finishes the rotation`,
    );
    return upCode;
  }
  ctx.io.out(
    `rotated. Commit Pulumi.${stack}.yaml now: a deploy from a stack file with the old password would change it back`,
  );
  return 0;
}
