import type { DeployConfig, DeployHost } from "../config/deploy";
import { type HostValues, hostValues } from "../config/host-values";
import { createHash } from "node:crypto";
import {
  healthProbeCommand,
  PROXY_GLOBALS,
  type ReleaseFiles,
  verifyProbeCommand,
} from "./compose";
import { assign, assignArray } from "./shell";

/**
 * Every value the deploy script of one host takes from the stack, as the preamble writes it:
 * one readonly bash variable each, quoted word by word (`./shell.ts`). The script's own
 * `require_settings` (`remote/main.sh`) names the same variables; a test holds the two lists
 * together. Everything else in the script is the same text for every stack.
 */
export interface DeploySettings {
  readonly STACK: string;
  readonly HOST_NAME: string;
  readonly APP_DIR: string;
  readonly PROJECT: string;
  /** Release id: the content hash of the copied compose project. */
  readonly RELEASE: string;
  /** `<sha256> <file>` of each release file, checked where the deploy uses them. */
  readonly RELEASE_SHA256: readonly string[];
  readonly COMPOSE_PREFERENCE: DeployConfig["compose"];
  readonly MIGRATION_COMMAND: readonly string[];
  /** Exits 0 when nothing is to migrate (empty: never asked). */
  readonly MIGRATION_CHECK: readonly string[];
  readonly MIGRATION_LOCK_WAIT: number;
  readonly MIGRATION_ATTEMPTS: number;
  readonly MIGRATION_TIMEOUT: number;
  readonly DB_NAME: string;
  readonly DB_USER: string;
  readonly BACKUP_KEEP: number;
  readonly BACKUP_MIN_FREE_MIB: number;
  readonly BACKUP_COMPRESSION: number;
  readonly BACKUP_CPU_SHARES: number;
  readonly BACKUP_TIMEOUT: number;
  readonly VERIFY_PATHS: readonly string[];
  /** The pre-switch check inside the new slot (`verifyProbeCommand`). */
  readonly VERIFY_PROBE: readonly string[];
  /** Where the deploy's `curl` reaches the proxy on the host itself. */
  readonly PROXY_URL: string;
  readonly APP_PORT: number;
  readonly HEALTH_TIMEOUT: number;
  readonly HEALTH_RETRIES: number;
  /** The backend's health probe, run in its container (`./compose.ts`). */
  readonly HEALTH_PROBE: readonly string[];
  readonly WATCH_SECONDS: number;
  readonly DRAIN_SECONDS: number;
  readonly STOP_TIMEOUT: number;
  readonly POSTGRES_IMAGE: string;
  readonly REDIS_IMAGE: string;
  readonly PROXY_IMAGE: string;
  /** nginx's `-g` directives of the proxy's command (the routing module), for `nginx -t`. */
  readonly PROXY_GLOBALS: string;
  /** The dotenv keys stdin may hold (`./values.ts`), those it must hold, those masked. */
  readonly STDIN_KEYS: readonly string[];
  readonly REQUIRED_STDIN_KEYS: readonly string[];
  readonly MASKED_KEYS: readonly string[];
  /** The stdin keys that reach the app's environment. */
  readonly APP_SECRETS: readonly string[];
}

/** Everything the deploy script of one host is built from (the image is a run argument). */
export interface DeployScriptInput {
  readonly stack: string;
  readonly host: DeployHost;
  readonly deploy: Omit<DeployConfig, "image" | "migrate" | "registry">;
  /** The release: its id (content hash of the copied compose project) and its files. */
  readonly release: Pick<ReleaseFiles, "id" | "files">;
}

/** Where the deploy's `curl` reaches the proxy on the host itself. */
export function proxyUrl(proxy: DeployConfig["proxy"]): string {
  const address = proxy.bindAddress === "0.0.0.0" ? "127.0.0.1" : proxy.bindAddress;
  const host =
    address === "::"
      ? "[::1]"
      : address.includes(":")
        ? `[${address.replace(/^\[|\]$/g, "")}]`
        : address;
  return `http://${host}:${proxy.port}`;
}

/** The settings of one host's deploy script, from the stack config. */
export function deploySettings(input: DeployScriptInput): DeploySettings {
  const { deploy, host, stack } = input;
  const values: HostValues = hostValues(deploy.app.secrets, {
    externalDatabase: deploy.accessories?.external === true,
  });
  return {
    STACK: stack,
    HOST_NAME: host.name,
    APP_DIR: deploy.appDir,
    PROJECT: deploy.composeProject,
    RELEASE: input.release.id,
    RELEASE_SHA256: [...input.release.files].map(
      ([name, text]) => `${createHash("sha256").update(text).digest("hex")} ${name}`,
    ),
    COMPOSE_PREFERENCE: deploy.compose,
    MIGRATION_COMMAND: deploy.migrationCommand,
    MIGRATION_CHECK: deploy.migrationCheckCommand,
    MIGRATION_LOCK_WAIT: deploy.migrationLockWaitSeconds,
    MIGRATION_ATTEMPTS: deploy.migrationAttempts,
    MIGRATION_TIMEOUT: deploy.migrationTimeoutSeconds,
    DB_NAME: deploy.database.name,
    DB_USER: deploy.database.user,
    BACKUP_KEEP: deploy.backup.keep,
    BACKUP_MIN_FREE_MIB: deploy.backup.minFreeMiB,
    BACKUP_COMPRESSION: deploy.backup.compressionLevel,
    BACKUP_CPU_SHARES: deploy.backup.cpuShares,
    BACKUP_TIMEOUT: deploy.backup.timeoutSeconds,
    VERIFY_PATHS: deploy.app.verifyPaths,
    VERIFY_PROBE: verifyProbeCommand(deploy),
    PROXY_URL: proxyUrl(deploy.proxy),
    APP_PORT: deploy.app.port,
    HEALTH_TIMEOUT: deploy.health.timeoutSeconds,
    HEALTH_RETRIES: deploy.health.retries,
    HEALTH_PROBE: healthProbeCommand(deploy),
    WATCH_SECONDS: deploy.watchSeconds,
    DRAIN_SECONDS: deploy.drainSeconds,
    STOP_TIMEOUT: deploy.stopTimeoutSeconds,
    POSTGRES_IMAGE: deploy.images.postgres,
    REDIS_IMAGE: deploy.images.redis,
    PROXY_IMAGE: deploy.images.proxy,
    PROXY_GLOBALS,
    STDIN_KEYS: values.stdinKeys,
    REQUIRED_STDIN_KEYS: values.requiredKeys,
    MASKED_KEYS: values.maskedKeys,
    APP_SECRETS: values.appKeys,
  };
}

/**
 * The settings as bash: literal values, quoted word by word, then made readonly. The only
 * bash this program writes from TypeScript; the rest of the script is `remote/*.sh`.
 */
export function renderSettings(settings: DeploySettings): string[] {
  const lines = Object.entries(settings).map(([name, value]) =>
    Array.isArray(value)
      ? assignArray(name, value as readonly string[])
      : assign(name, String(value)),
  );
  return [
    "# Settings from the stack config (src/deploy/settings.ts): literal values, quoted on purpose.",
    "# shellcheck disable=SC2016",
    "{",
    ...lines.map((line) => `  ${line}`),
    "}",
    `readonly ${Object.keys(settings).join(" ")}`,
  ];
}
