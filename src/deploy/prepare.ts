import { quote } from "./shell";

/** Directories of `appDir` that hold secrets or backups: readable by the deploy user only. */
export const PRIVATE_DIRS = ["backups", "env", "state"] as const;
/** Directories any local user may list (the proxy container reads `proxy/`). */
export const SHARED_DIRS = ["releases", "proxy"] as const;

/**
 * The command that lays out `appDir` before files are copied into it (the copy needs the
 * release directory to exist). POSIX sh, so it runs under any login shell, and idempotent.
 * When the deploy user cannot create `appDir`, it says the one command an admin must run.
 */
export function buildPrepareScript(appDir: string, releaseDir: string): string {
  const shared = [`${appDir}/releases`, releaseDir, `${appDir}/proxy`];
  const secret = PRIVATE_DIRS.map((d) => `${appDir}/${d}`);
  return [
    "set -eu",
    `if ! mkdir -p ${quote(appDir)} 2>/dev/null || [ ! -w ${quote(appDir)} ]; then`,
    `  echo "prepare: $(id -un) cannot write ${appDir}; an admin runs once: sudo install -d -o $(id -un) -g $(id -gn) -m 750 ${appDir}" >&2`,
    "  exit 1",
    "fi",
    `mkdir -p ${shared.map(quote).join(" ")}`,
    `chmod 755 ${shared.map(quote).join(" ")}`,
    `mkdir -p ${secret.map(quote).join(" ")}`,
    `chmod 700 ${secret.map(quote).join(" ")}`,
    `echo "prepare: ${releaseDir} ready"`,
    "",
  ].join("\n");
}
