/** Local commands: the harness's hosts are on this machine, so checks that need no SSH run here. */
import { type SpawnOptions, spawn } from "node:child_process";

/** Result of a command, remote or local. `code` is null when it died of a signal. */
export interface CommandResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  /**
   * stdout and stderr together in the order they arrived (runOverSsh only): what the command
   * provider's shared buffer holds and its error quotes (`../support/provider.ts`).
   */
  output?: string;
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
