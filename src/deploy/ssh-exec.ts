import type { Readable } from "node:stream";
import { Client, type ClientChannel, type ConnectConfig } from "ssh2";
import type { DeployHost } from "../config/deploy";
import { pinnedHostKey } from "../config/host-keys";

/**
 * How a connection authenticates: the deploy's private key (`from` says where it was read), or
 * the user's SSH agent.
 */
export type Credentials =
  | { readonly kind: "key"; readonly privateKey: string; readonly from?: string }
  | { readonly kind: "agent"; readonly socket: string };

/** A host's connection settings, as the stack's `deploy.hosts[]` gives them. */
export type SshHost = Pick<DeployHost, "name" | "host" | "port" | "user" | "hostKey">;

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /** Gives up (and closes the connection) after this long; none: waits for the command. */
  readonly timeoutMs?: number;
  /** Each chunk of stdout and stderr as it arrives (for `--follow`). */
  readonly onData?: (chunk: string, stream: "stdout" | "stderr") => void;
  /** Closes the connection when it fires (Ctrl-C of `logs --follow`). */
  readonly signal?: AbortSignal;
  /**
   * The remote command's stdin (`ops exec --interactive`); none: stdin is closed at once. With
   * `pty`, the session gets a terminal of that size (a shell's line editing, Ctrl-C to the
   * remote command), and `onChannel` hands over the channel for window size changes.
   */
  readonly stdin?: Readable;
  readonly pty?: { readonly rows: number; readonly cols: number; readonly term: string };
  readonly onChannel?: (channel: ClientChannel) => void;
  /** SSH keepalives: a host that stops answering ends the command with an error. */
  readonly connect?: Pick<ConnectConfig, "keepaliveInterval" | "keepaliveCountMax">;
}

/** `user@host:port`, as messages name a host. */
export function where(host: SshHost): string {
  return `${host.user}@${host.host}:${host.port}`;
}

/**
 * Runs `script` on a host over SSH (`ssh2`) with the deploy's own connection settings: the host
 * key must be the pinned one when the stack pins one (as the deploy checks it), one exec
 * session, with no pty and no stdin unless `opts` gives them. Resolves with the exit status and output; rejects with a one-line
 * reason, `ssh user@host:port: ...`, when it cannot connect or gives up. The host probe and the
 * ops commands both run through it.
 */
export function execOnHost(
  host: SshHost,
  credentials: Credentials,
  script: string,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const pinned = pinnedHostKey(host);
  const blob = pinned ? Buffer.from(pinned.trim().split(/\s+/)[1] ?? "", "base64") : undefined;
  const config: ConnectConfig = {
    host: host.host,
    port: host.port,
    username: host.user,
    readyTimeout: 20_000,
    ...(credentials.kind === "key"
      ? { privateKey: credentials.privateKey }
      : { agent: credentials.socket }),
    ...(blob ? { hostVerifier: (key: Buffer) => key.equals(blob) } : {}),
    ...opts.connect,
  };
  return new Promise<ExecResult>((resolve, reject) => {
    const client = new Client();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (error: Error | undefined, code: number | null = null) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      client.end();
      if (error) reject(new Error(`ssh ${where(host)}: ${error.message}`));
      else
        resolve({
          code,
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
        });
    };
    const onAbort = () => finish(undefined, null);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(
        () => finish(new Error(`no answer within ${(opts.timeoutMs ?? 0) / 1000} s`)),
        opts.timeoutMs,
      );
    }
    client.once("error", (e: Error) =>
      finish(
        /verification failed/i.test(e.message)
          ? new Error(
              `the host key is not the one pinned in deploy.hosts[].hostKey (${e.message}); nothing was run`,
            )
          : e,
      ),
    );
    client.once("ready", () => {
      client.exec(
        script,
        opts.pty ? { pty: { ...opts.pty, height: 0, width: 0 } } : {},
        (e, stream) => {
          if (e) return finish(e);
          opts.onChannel?.(stream);
          stream.on("data", (b: Buffer) => {
            out.push(b);
            opts.onData?.(b.toString("utf8"), "stdout");
          });
          stream.stderr.on("data", (b: Buffer) => {
            err.push(b);
            opts.onData?.(b.toString("utf8"), "stderr");
          });
          stream.on("close", (code: number | null) => {
            opts.stdin?.unpipe(stream);
            finish(undefined, code);
          });
          if (opts.stdin) opts.stdin.pipe(stream);
          else stream.end();
        },
      );
    });
    client.connect(config);
  });
}
