import type { DeployConfig } from "../config/deploy";
import type { HostValueSources, HostValueSpec } from "../config/host-values";

/**
 * The app's DATABASE_URL in the driver's form; the password is percent-encoded so any
 * character is safe in the URL.
 *
 * @example databaseUrl(db, "p@ss") // "postgresql+asyncpg://clicky:p%40ss@postgres:5432/clicky_db"
 */
export function databaseUrl(
  database: DeployConfig["database"],
  password: string,
  server = "postgres:5432",
): string {
  return `${database.urlScheme}://${encodeURIComponent(database.user)}:${encodeURIComponent(password)}@${server}/${database.name}`;
}

/** Plain values of the deploy's secrets, only ever handled inside an `apply`. */
export interface DeploySecretValues {
  /** Secret config keys -> values (`postgresPassword`, `jwtSecretKey`, registry pair). */
  readonly secrets: Readonly<Record<string, string | undefined>>;
  /** The user's app secrets (`appSecrets`), by name. */
  readonly appSecrets?: Readonly<Record<string, string>>;
}

/**
 * The deploy command's stdin: one `KEY=value` line per value of the stack's host catalog
 * (`../config/host-values.ts`), in catalog order; an optional value that is not set is left
 * out. A value must fit on one line; errors name the config key, never the value. `server` is
 * where the app finds PostgreSQL (`host:port`): the compose service on one host, the accessories
 * host's private address on an app host of a fleet.
 */
export function buildDeployStdin(
  specs: readonly HostValueSpec[],
  database: DeployConfig["database"],
  values: DeploySecretValues,
  server?: string,
): string {
  const sources: HostValueSources = {
    secrets: values.secrets,
    appSecrets: values.appSecrets ?? {},
    databaseUrl: (password) => databaseUrl(database, password, server),
  };
  const lines: string[] = [];
  for (const spec of specs) {
    const value = spec.value(sources);
    if (value === undefined) {
      if (spec.required) throw new Error(`secret ${spec.from} is not set`);
      continue;
    }
    if (value === "") throw new Error(`secret ${spec.from} must not be empty`);
    if (/[\n\r\0]/.test(value)) {
      throw new Error(
        `secret ${spec.from} contains a line break or NUL; the deploy passes it as one dotenv line`,
      );
    }
    lines.push(`${spec.name}=${value}`);
  }
  return `${lines.join("\n")}\n`;
}
