import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  audit,
  exec,
  type LocalRunner,
  lockRelease,
  lockStatus,
  logs,
  type Output,
  rollback,
  rotateDbPassword,
  status,
  type Terminal,
} from "./commands";
import { OpsError, pulumiConfigSecret, readOpsStack, resolveCredentials } from "./stack";

const COMMON = `Options every command takes:
  --stack <name>       the stack (its Pulumi.<name>.yaml is read; required)
  --host <name>        only this host of deploy.hosts
  --dir <folder>       the folder of Pulumi.yaml (default: the current folder)
  --identity <file>    the deploy's SSH private key; default: the stack's sshPrivateKey read
                       with the Pulumi CLI (pulumi config get --show-secrets), else the SSH agent
Hosts are reached as the deploy reaches them: deploy.hosts[] user, address and pinned host key.`;

export const HELP: Readonly<Record<string, string>> = {
  "": `usage: npm run ops -- <command> --stack <name> [options]

Day-two operations on a stack's hosts, over the deploy's own SSH connection:
  status               what each host serves (tag, digest, since when), its last deploy's
                       result and step timings, the deploy lock, container health
  audit                deploy runs across hosts, newest first, failures included
  logs                 the serving app's logs from every host, prefixed with the host
  exec [-i] -- <command>
                       a one-off command in a new container of the serving image, with the
                       app's environment (never inside the serving container); -i: a shell
  rollback [--yes]     deploy the version the hosts record as previous, the way this stack
                       deploys (approval-gated: the production workflow, reviewers approve)
  rotate-db-password [--yes]
                       a new database password, put in place by a deploy with no failed
                       request (approval-gated: committed, then the production workflow)
  lock status          who holds each host's deploy lock, since when
  lock release --force clear a lock left by a deploy that is gone (refused while it runs)

npm run ops -- <command> --help says more about one command.

${COMMON}`,
  status: `usage: npm run ops -- status --stack <name> [--json]

Per host: the version served (tag and digest) and since when, the slot and release, the
previous version (what a rollback returns to), the last deploy's result with its step timings
(or the step and reason it failed at), the deploy lock's holder if any, and each container of
the project with its health. Reads only. --json prints the same as JSON.
Exit status: 0, or 1 when a host could not be read.

${COMMON}`,
  audit: `usage: npm run ops -- audit --stack <name> [--limit <n>] [--json]

The deploy history across hosts, newest first: every run a host keeps a log of (its 20
newest: deployed with timings, nothing to do, FAILED at a step with the reason, running, or
ended without a result), then the older successful deploys of the host's history.log.
--limit (default 50) caps the lines. Reads only.

${COMMON}`,
  logs: `usage: npm run ops -- logs --stack <name> [--since <when>] [--tail <n>] [--follow]

The serving container's output (docker logs --timestamps) from each host, each line prefixed
with the host's name. --since takes a duration (10m, 2h) or a time (2026-12-04T03:00:00Z);
--tail (default 200) the number of lines per host; --follow keeps streaming from every host
until Ctrl-C. Reads only.

${COMMON}`,
  exec: `usage: npm run ops -- exec --stack <name> [--host <name>] [-i] -- <command> [args...]

Runs the command in a new container of the image the host serves, with the serving
container's environment (the app's settings and secrets) and on the project's network, so it
reaches PostgreSQL and Redis as the app does: a management command (alembic current, a data
fix). Never inside the serving container, which keeps serving; the container is removed when
the command ends. Its output streams back; the exit status is the command's. With several
hosts, name one with --host.
-i, --interactive: the command reads this terminal's input; when it is a terminal, the remote
command gets one too (its size follows this window's), so a shell or a Python console works:
npm run ops -- exec --stack staging -i -- bash

${COMMON}`,
  rollback: `usage: npm run ops -- rollback --stack <name> [--yes]

Deploys the version every host records as previous (<appDir>/state/previous), without
migrations, through the path a deploy of the stack takes, never around it:
- an approval-gated stack (production): dispatches the production workflow with that version
  (gh workflow run deploy-prod.yml -f version=<tag> -f run_migrations=false); its reviewers
  approve it like any deploy. Needs the GitHub CLI, logged in.
- otherwise: pulumi up of the stack with that tag for the run (backup, health gate, switch).
Without --yes it only prints what it would run. Refused when the hosts record different
previous versions. To undo the schema too: docs/operations.md, Runbook: alembic downgrade.

${COMMON}`,
  "rotate-db-password": `usage: npm run ops -- rotate-db-password --stack <name> [--password-stdin] [--yes]

Changes the password of the app's PostgreSQL role (deploy.database.user) with no failed
request. It sets a new random one (32 bytes; --password-stdin reads yours from stdin) as the
stack's postgresPassword (pulumi config set --secret, the value on its stdin, never printed),
then deploys: on each host the deploy changes the role's password as the database's owner
before its backup, keeps the serving version's new connections working (trusted from its own
address) until it stops, and starts the new version with the new password; a deploy that fails
puts the old password back.
- a stack that is not approval-gated: pulumi up --stack <name> --diff. Commit the stack file
  afterwards: a deploy from a file with the old password changes it back.
- an approval-gated stack (production): the config only; commit the stack file, merge it, then
  dispatch the production workflow (the command is printed); reviewers approve it.
Without --yes it only prints what it would run. Needs the Pulumi CLI, logged in.

${COMMON}`,
  lock: `usage: npm run ops -- lock status --stack <name>
       npm run ops -- lock release --force --stack <name>

status: per host, whether a deploy holds the lock (<appDir>/state/deploy.lock), which one
(image, stack, user, address, pid, since when) and whether its process still runs.
release --force: clears the owner record of a lock no live process holds (a deploy killed
before it could clean up). It refuses, exit status 3, while the deploy holding the lock runs:
that deploy releases it itself when it ends, success or undo.

${COMMON}`,
};

interface Parsed {
  readonly command: string;
  readonly sub?: string;
  readonly values: Record<string, string | boolean | undefined>;
  /** Everything after `--` (the command of `exec`). */
  readonly rest: readonly string[];
}

function parse(argv: readonly string[]): Parsed {
  const dash = argv.indexOf("--");
  const rest = dash === -1 ? [] : argv.slice(dash + 1);
  const { values, positionals } = parseArgs({
    args: dash === -1 ? [...argv] : argv.slice(0, dash),
    allowPositionals: true,
    options: {
      stack: { type: "string" },
      host: { type: "string" },
      dir: { type: "string" },
      identity: { type: "string" },
      json: { type: "boolean" },
      limit: { type: "string" },
      since: { type: "string" },
      tail: { type: "string" },
      follow: { type: "boolean", short: "f" },
      yes: { type: "boolean" },
      force: { type: "boolean" },
      "password-stdin": { type: "boolean" },
      interactive: { type: "boolean", short: "i" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command = "", sub] = positionals;
  return { command, ...(sub !== undefined ? { sub } : {}), values, rest };
}

function count(value: string | boolean | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new OpsError(`--${name} ${value}: expected a whole number`, 2);
  return n;
}

/** Runs `npm run ops -- <argv>`; resolves with the exit status. */
export async function runOps(
  argv: readonly string[],
  io: Output,
  env: NodeJS.ProcessEnv = process.env,
  signal?: AbortSignal,
  runLocal?: LocalRunner,
  readStdin: () => string = () => readFileSync(0, "utf8"),
  terminal: () => Terminal = processTerminal,
): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${HELP[""]}`);
    return 2;
  }
  const { command, sub, values, rest } = parsed;
  if (!(command in HELP) || command === "") {
    if (values.help || command === "" || command === "help") {
      io.out(HELP[""] ?? "");
      return command === "" && !values.help ? 2 : 0;
    }
    io.err(`unknown command "${command}"\n\n${HELP[""]}`);
    return 2;
  }
  if (values.help) {
    io.out(HELP[command] ?? "");
    return 0;
  }
  try {
    const stack = values.stack;
    if (typeof stack !== "string" || stack === "") {
      throw new OpsError(`--stack is required\n\n${HELP[command]}`, 2);
    }
    if (command === "lock" && sub !== "status" && sub !== "release") {
      throw new OpsError(`lock takes status or release\n\n${HELP.lock}`, 2);
    }
    const dir = typeof values.dir === "string" ? values.dir : process.cwd();
    const config = readOpsStack(dir, stack);
    const credentials = resolveCredentials({
      ...(typeof values.identity === "string" ? { identityFile: values.identity } : {}),
      stack,
      dir,
      ...(env.SSH_AUTH_SOCK ? { agentSocket: env.SSH_AUTH_SOCK } : {}),
      pulumiSecret: pulumiConfigSecret,
    });
    for (const h of config.deploy.hosts) {
      if (h.hostKey === undefined) {
        io.err(
          `warning: ${h.name}: no pinned host key (deploy.hosts[].hostKey), so any server answering at ${h.host}:${h.port} is trusted`,
        );
      }
    }
    const ctx = {
      config,
      credentials,
      io,
      ...(typeof values.host === "string" ? { host: values.host } : {}),
    };
    switch (command) {
      case "status":
        return await status(ctx, values.json === true);
      case "audit":
        return await audit(ctx, values.json === true, count(values.limit, "limit", 50));
      case "logs":
        return await logs(ctx, {
          ...(typeof values.since === "string" ? { since: values.since } : {}),
          tail: count(values.tail, "tail", 200),
          follow: values.follow === true,
          ...(signal ? { signal } : {}),
        });
      case "rollback":
        return await rollback(ctx, {
          yes: values.yes === true,
          dir,
          ...(runLocal ? { run: runLocal } : {}),
        });
      case "exec":
        return await exec(ctx, rest, values.interactive === true ? terminal() : undefined);
      case "rotate-db-password":
        return await rotateDbPassword(ctx, {
          yes: values.yes === true,
          dir,
          ...(runLocal ? { run: runLocal } : {}),
          // One line; a trailing line break is not part of it (as pulumi config set reads it).
          ...(values["password-stdin"] === true
            ? { password: readStdin().replace(/\r?\n$/, "") }
            : {}),
        });
      case "lock":
        return sub === "status"
          ? await lockStatus(ctx)
          : await lockRelease(ctx, values.force === true);
      default:
        return 2;
    }
  } catch (err) {
    if (err instanceof OpsError) {
      io.err(err.message);
      return err.exitCode;
    }
    throw err;
  }
}

/** This process's stdin and stdout as `exec --interactive`'s terminal. */
function processTerminal(): Terminal {
  const { stdin, stdout } = process;
  const tty = stdin.isTTY === true && stdout.isTTY === true;
  return {
    input: stdin,
    write: (chunk, stream) => (stream === "stdout" ? stdout : process.stderr).write(chunk),
    ...(tty
      ? {
          size: () => ({ rows: stdout.rows, cols: stdout.columns }),
          onResize: (listener: () => void) => {
            stdout.on("resize", listener);
            return () => stdout.off("resize", listener);
          },
          setRaw: (raw: boolean) => stdin.setRawMode(raw),
        }
      : {}),
  };
}

if (require.main === module) {
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  runOps(
    process.argv.slice(2),
    { out: (l) => console.log(l), err: (l) => console.error(l) },
    process.env,
    controller.signal,
  ).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exitCode = 1;
    },
  );
}
