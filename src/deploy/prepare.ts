import { readFileSync } from "node:fs";
import { join } from "node:path";
import { assign } from "./shell";

const PREPARE = readFileSync(join(__dirname, "remote", "prepare.sh"), "utf8").replace(
  /^# shellcheck shell=sh\n/,
  "",
);

/**
 * The command that lays out `appDir` before files are copied into it: `remote/prepare.sh`
 * (POSIX sh, idempotent), after its two settings, each quoted (`./shell.ts`).
 */
export function buildPrepareScript(appDir: string, releaseDir: string): string {
  return [assign("APP_DIR", appDir), assign("RELEASE_DIR", releaseDir), PREPARE].join("\n");
}
