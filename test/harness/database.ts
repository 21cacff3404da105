/** PostgreSQL inside a compose project's container, as the deploy's own database helpers reach it. */
import { runLocal } from "./local";

export interface PsqlOptions {
  /** Database role; default `clicky`. */
  user?: string;
  /** Database; default `clicky_db`. */
  database?: string;
  /** How long psql may run; default one minute. */
  timeoutMs?: number;
  /** The Docker engine the container runs on (`docker -H`), e.g. a fleet host's; default this machine's. */
  dockerHost?: string;
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
      ...(opts.dockerHost ? ["-H", opts.dockerHost] : []),
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

/** A container's first address on its networks (`docker inspect`), empty when it has none. */
export async function containerAddress(container: string): Promise<string> {
  const r = await runLocal("docker", [
    "inspect",
    "-f",
    "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
    container,
  ]);
  return r.stdout.trim().split(" ")[0] ?? "";
}

/**
 * Whether PostgreSQL in `container` takes `password` for the role as an app connects: over the
 * project's network, to the container's own address (the socket and 127.0.0.1 are trusted and
 * would take any password). False only for "password authentication failed"; any other
 * failure throws.
 */
export async function passwordAccepted(
  container: string,
  password: string,
  opts: Pick<PsqlOptions, "user" | "database"> = {},
): Promise<boolean> {
  const address = await containerAddress(container);
  if (!address) throw new Error(`${container} has no address`);
  const r = await runLocal(
    "docker",
    ["exec", "-e", "PGPASSWORD", container, "psql", "-X", "-At", "-h", address].concat([
      "-U",
      opts.user ?? "clicky",
      "-d",
      opts.database ?? "clicky_db",
      "-c",
      "SELECT 1",
    ]),
    { env: { ...process.env, PGPASSWORD: password } },
  );
  if (r.code === 0) return true;
  if (/password authentication failed/.test(r.stderr)) return false;
  throw new Error(`psql to ${container} at ${address} failed (exit ${r.code}): ${r.stderr.trim()}`);
}

/**
 * Opens one new PostgreSQL connection from inside a backend container, with its own
 * DATABASE_URL and driver (the stand-in app's psycopg2): what its pool does when it grows or
 * replaces a connection. Resolves with "ok" or the driver's last line of error.
 */
export async function connectAsApp(container: string): Promise<string> {
  const r = await runLocal("docker", [
    "exec",
    container,
    "python3",
    "-c",
    [
      "import os, urllib.parse as u, psycopg2",
      'p = u.urlsplit(os.environ["DATABASE_URL"])',
      "psycopg2.connect(host=p.hostname, port=p.port or 5432, user=u.unquote(p.username), password=u.unquote(p.password), dbname=p.path[1:], connect_timeout=3).close()",
      'print("ok")',
    ].join("\n"),
  ]);
  return r.code === 0 ? r.stdout.trim() : (r.stderr.trim().split("\n").at(-1) ?? "");
}
