/**
 * Every value that reaches a host, declared once: its name on the deploy's stdin (and in the
 * app's environment when the app reads it), the stack config it comes from, who reads it on
 * the host, whether the deploy needs it, whether output masks it, and its line in the docs.
 * The deploy script's settings (`src/deploy/settings.ts`), its stdin (`src/deploy/stdin.ts`),
 * the compose file's environment, the stack's required secrets and the docs' tables all come
 * from this table; the user's own app secrets (`deploy.app.secrets`) join it as app readers.
 *
 * The GitHub half has its own table (`./catalog.ts`): values there reach workflows, never a host.
 */

/** Who reads a value on the host. */
export type HostReader =
  /** The app's containers (environment), and its migration's one-off container. */
  | "app"
  /** PostgreSQL: its first start, and the backup's `pg_dump`. */
  | "database"
  /** The image pull's `docker login`, for a private image. */
  | "registry";

/** What a value is computed from: stack secrets and the database section. */
export interface HostValueSources {
  readonly secrets: Readonly<Record<string, string | undefined>>;
  /** The user's app secrets (`appSecrets`), by name. */
  readonly appSecrets: Readonly<Record<string, string>>;
  readonly databaseUrl: (password: string) => string;
}

export interface HostValueSpec {
  /** Name on stdin and, for the app, in its environment. */
  readonly name: string;
  /** The config key its value comes from, as error messages and the docs name it. */
  readonly from: string;
  readonly readers: readonly HostReader[];
  /** Whether every deploy needs it (else: only when its source is set). */
  readonly required: boolean;
  /** Whether the deploy's output masks it (a registry user name is an account, not a secret). */
  readonly masked: boolean;
  readonly purpose: string;
  readonly value: (sources: HostValueSources) => string | undefined;
}

/** The values every stack's hosts get, in the order stdin carries them. */
export const hostValueCatalog: readonly HostValueSpec[] = [
  {
    name: "POSTGRES_PASSWORD",
    from: "postgresPassword",
    readers: ["database"],
    required: true,
    masked: true,
    purpose: "Password of the app's PostgreSQL role: PostgreSQL's first start and the backup",
    value: ({ secrets }) => secrets.postgresPassword,
  },
  {
    name: "DATABASE_URL",
    from: "postgresPassword",
    readers: ["app"],
    required: true,
    masked: true,
    purpose: "The app's database URL in the driver's form (deploy.database), password included",
    value: ({ secrets, databaseUrl }) =>
      secrets.postgresPassword === undefined ? undefined : databaseUrl(secrets.postgresPassword),
  },
  {
    name: "JWT_SECRET_KEY",
    from: "jwtSecretKey",
    readers: ["app"],
    required: true,
    masked: true,
    purpose: "The backend's JWT signing key",
    value: ({ secrets }) => secrets.jwtSecretKey,
  },
  {
    name: "REGISTRY_USERNAME",
    from: "registryUsername",
    readers: ["registry"],
    required: false,
    masked: false,
    purpose: "User of the image pull, for a private image (with REGISTRY_TOKEN)",
    value: ({ secrets }) => secrets.registryUsername,
  },
  {
    name: "REGISTRY_TOKEN",
    from: "registryToken",
    readers: ["registry"],
    required: false,
    masked: true,
    purpose: "Token of the image pull, for a private image (with REGISTRY_USERNAME)",
    value: ({ secrets }) => secrets.registryToken,
  },
];

/**
 * The values of a stack whose PostgreSQL and Redis are external (`deploy.accessories.external`):
 * the app's DATABASE_URL and REDIS_URL come as they are from the secrets `databaseUrl` and
 * `redisUrl`; there is no PostgreSQL of the stack's own to give a password to.
 */
export const externalDatabaseValues: readonly HostValueSpec[] = hostValueCatalog.flatMap(
  (spec): HostValueSpec[] => {
    if (spec.name === "POSTGRES_PASSWORD") return [];
    if (spec.name !== "DATABASE_URL") return [spec];
    return [
      {
        name: "DATABASE_URL",
        from: "databaseUrl",
        readers: ["app", "database"],
        required: true,
        masked: true,
        purpose:
          "The app's database URL as the secret databaseUrl gives it (an external database); the pre-deploy pg_dump reads it too",
        value: ({ secrets }) => secrets.databaseUrl,
      },
      {
        name: "REDIS_URL",
        from: "redisUrl",
        readers: ["app"],
        required: true,
        masked: true,
        purpose: "The app's Redis URL as the secret redisUrl gives it (an external Redis)",
        value: ({ secrets }) => secrets.redisUrl,
      },
    ];
  },
);

/** The secret config key holding the user's app secrets, one entry per declared name. */
export const APP_SECRETS_KEY = "appSecrets";

/** A user app secret (`deploy.app.secrets`) as a catalog entry. */
function appSecretSpec(name: string): HostValueSpec {
  return {
    name,
    from: `${APP_SECRETS_KEY}.${name}`,
    readers: ["app"],
    required: true,
    masked: true,
    purpose: "App secret declared in deploy.app.secrets",
    value: ({ appSecrets }) => appSecrets[name],
  };
}

/** The catalog of one stack: the fixed values, then its own app secrets (sorted). */
function hostValueSpecs(
  appSecretNames: readonly string[],
  externalDatabase: boolean,
): HostValueSpec[] {
  const fixed = externalDatabase ? externalDatabaseValues : hostValueCatalog;
  return [...fixed, ...[...appSecretNames].sort().map(appSecretSpec)];
}

/** The lists the deploy script's settings carry, derived from a stack's catalog. */
export interface HostValues {
  readonly specs: readonly HostValueSpec[];
  readonly stdinKeys: readonly string[];
  readonly requiredKeys: readonly string[];
  readonly maskedKeys: readonly string[];
  /** What reaches the app's environment, in stdin order. */
  readonly appKeys: readonly string[];
}

export function hostValues(
  appSecretNames: readonly string[],
  opts: { readonly externalDatabase?: boolean } = {},
): HostValues {
  const specs = hostValueSpecs(appSecretNames, opts.externalDatabase === true);
  const names = (keep: (spec: HostValueSpec) => boolean) =>
    specs.filter(keep).map((spec) => spec.name);
  return {
    specs,
    stdinKeys: names(() => true),
    requiredKeys: names((spec) => spec.required),
    maskedKeys: names((spec) => spec.masked),
    appKeys: names((spec) => spec.readers.includes("app")),
  };
}

/**
 * Names a user's app secret or plain env may not take: the catalog's own, `REDIS_URL` (the
 * compose file sets it), names the process environment of compose and Docker means something
 * by, and the deploy script's readonly variables (the app's secrets are exported to compose in
 * a subshell of the script, where a readonly name cannot be set; a test holds this list
 * against `src/deploy/remote/*.sh` and the settings).
 */
export const RESERVED_ENV_NAMES: readonly string[] = [
  ...hostValueCatalog.map((spec) => spec.name),
  "REDIS_URL",
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "PWD",
  "OLDPWD",
  "IFS",
  "TMPDIR",
  "TERM",
  "LANG",
  // deploy script (src/deploy/remote/*.sh and the settings preamble)
  "APP_DIR",
  "APP_PORT",
  "APP_SECRETS",
  "BACKUP_COMPRESSION",
  "BACKUP_CPU_SHARES",
  "BACKUP_DIR",
  "BACKUP_KEEP",
  "BACKUP_MIN_FREE_MIB",
  "BACKUP_TIMEOUT",
  "COMPOSE_FILE",
  "COMPOSE_PREFERENCE",
  "DB_NAME",
  "DB_USER",
  "DRAIN_SECONDS",
  "ENV_DIR",
  "HEALTH_PROBE",
  "HEALTH_RETRIES",
  "HEALTH_TIMEOUT",
  "HOST_NAME",
  "IMAGE",
  "IMAGE_PINNED",
  "IMAGE_REPOSITORY",
  "IMAGE_TAG",
  "LOCK_BUSY_EXIT",
  "LOG_DIR",
  "LOG_TAIL_BYTES",
  "LOG_TAIL_LINES",
  "LOG_TAIL_LINE_BYTES",
  "MASK",
  "MASKED_KEYS",
  "MIGRATE",
  "MIGRATION_ATTEMPTS",
  "MIGRATION_COMMAND",
  "MIGRATION_CHECK",
  "MIGRATION_LOCK_WAIT",
  "MIGRATION_TIMEOUT",
  "OUTPUT_LINE_BYTES",
  "POSTGRES_IMAGE",
  "PROJECT",
  "PROXY_DIR",
  "PROXY_GLOBALS",
  "PROXY_IMAGE",
  "PROXY_SITE_FILES",
  "PROXY_URL",
  "REDIS_IMAGE",
  "REGISTRY",
  "RELEASE",
  "RELEASE_SHA256",
  "RELEASE_DIR",
  "REQUIRED_STDIN_KEYS",
  "ROUTING_NAME",
  "RUN_LOG",
  "RUN_LOGS_KEPT",
  "SCRIPT_FILE",
  "SITE_FILE",
  "SLOT_HEADER",
  "STACK",
  "STATE_DIR",
  "STDIN_KEYS",
  "STEPS",
  "STOP_TIMEOUT",
  "USAGE_EXIT",
  "VERIFY_PATHS",
  "VERIFY_PROBE",
  "WATCH_SECONDS",
];

/** Prefixes of names compose, Docker, bash, locales and this program read from the environment. */
export const RESERVED_ENV_PREFIXES: readonly string[] = [
  "COMPOSE_",
  "DOCKER_",
  "BASH",
  "LC_",
  "SSH_",
  "CLICKY_",
];

/** Why a user may not name an app secret or env `name`, or undefined when they may. */
export function reservedEnvReason(name: string): string | undefined {
  if (RESERVED_ENV_NAMES.includes(name)) {
    return `${name} is a name the deploy sets or uses itself; choose another`;
  }
  const prefix = RESERVED_ENV_PREFIXES.find((p) => name.startsWith(p));
  return prefix
    ? `names starting with ${prefix} are read by the deploy, compose or Docker; choose another`
    : undefined;
}
