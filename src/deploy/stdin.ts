import type { DeployConfig } from "../config/deploy";

/** The dotenv keys the deploy script accepts on stdin, in the order they are written. */
export const STDIN_KEYS = [
  "POSTGRES_PASSWORD",
  "DATABASE_URL",
  "JWT_SECRET_KEY",
  "REGISTRY_USERNAME",
  "REGISTRY_TOKEN",
] as const;
export type StdinKey = (typeof STDIN_KEYS)[number];

/** Keys every deploy needs; the registry pair is for private images only. */
export const REQUIRED_STDIN_KEYS = ["POSTGRES_PASSWORD", "DATABASE_URL", "JWT_SECRET_KEY"] as const;

/** Plain values of the deploy's secrets, only ever handled inside an `apply`. */
export interface DeploySecretValues {
  readonly postgresPassword: string;
  readonly jwtSecretKey: string;
  readonly registryUsername?: string;
  readonly registryToken?: string;
}

/** The stack secret key each stdin value comes from, for error messages that name no value. */
const SOURCE_KEY: Readonly<Record<StdinKey, string>> = {
  POSTGRES_PASSWORD: "postgresPassword",
  DATABASE_URL: "postgresPassword",
  JWT_SECRET_KEY: "jwtSecretKey",
  REGISTRY_USERNAME: "registryUsername",
  REGISTRY_TOKEN: "registryToken",
};

/**
 * The app's DATABASE_URL in the driver's form; the password is percent-encoded so any
 * character is safe in the URL.
 *
 * @example databaseUrl(db, "p@ss") // "postgresql+asyncpg://clicky:p%40ss@postgres:5432/clicky_db"
 */
export function databaseUrl(database: DeployConfig["database"], password: string): string {
  return `${database.urlScheme}://${encodeURIComponent(database.user)}:${encodeURIComponent(password)}@postgres:5432/${database.name}`;
}

/**
 * The deploy command's stdin: one `KEY=value` line per secret, read by the script as dotenv.
 * A value must fit on one line; the error names the stack secret, never the value.
 */
export function buildDeployStdin(
  database: DeployConfig["database"],
  secrets: DeploySecretValues,
): string {
  const values: Partial<Record<StdinKey, string>> = {
    POSTGRES_PASSWORD: secrets.postgresPassword,
    DATABASE_URL: databaseUrl(database, secrets.postgresPassword),
    JWT_SECRET_KEY: secrets.jwtSecretKey,
  };
  if (secrets.registryUsername !== undefined || secrets.registryToken !== undefined) {
    if (!secrets.registryUsername || !secrets.registryToken) {
      throw new Error(
        "registryUsername and registryToken go together: set both secrets or neither",
      );
    }
    values.REGISTRY_USERNAME = secrets.registryUsername;
    values.REGISTRY_TOKEN = secrets.registryToken;
  }
  const lines: string[] = [];
  for (const key of STDIN_KEYS) {
    const value = values[key];
    if (value === undefined) continue;
    if (value === "") throw new Error(`secret ${SOURCE_KEY[key]} must not be empty`);
    if (/[\n\r\0]/.test(value)) {
      throw new Error(
        `secret ${SOURCE_KEY[key]} contains a line break or NUL; the deploy passes it as one dotenv line`,
      );
    }
    lines.push(`${key}=${value}`);
  }
  return `${lines.join("\n")}\n`;
}
