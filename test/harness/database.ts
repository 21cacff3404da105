/** PostgreSQL inside a compose project's container, as the deploy's own database helpers reach it. */
import { runLocal } from "./local";

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
