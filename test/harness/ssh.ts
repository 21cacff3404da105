/**
 * Remote commands and copies exactly as Pulumi's command provider performs them: over SSH with
 * the host key pinned, stdin written then closed, SFTP for copies.
 */
import { createHash } from "node:crypto";
import { Client, type ConnectConfig } from "ssh2";
import { commandProviderError } from "../support/provider";
import type { CommandResult } from "./local";
import type { Harness } from "./state";

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
 * output (`../support/provider.ts` cites the provider's code).
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
