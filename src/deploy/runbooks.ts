import type { DeployConfig } from "../config/deploy";
import { quote } from "./shell";

/**
 * The operator runbooks of docs/operations.md, as the exact commands to run on a host (as the
 * deploy user). The page shows them rendered for the default config, a test checks that they
 * match, and the e2e runs them against a real host: what the page says is what works.
 */
export interface RunbookContext {
  readonly appDir: string;
  readonly project: string;
  readonly database: DeployConfig["database"];
  /** `docker compose` (v2) or `docker-compose` (v1), as the host has it. */
  readonly compose: string;
}

export function runbookContext(deploy: DeployConfig, compose = "docker compose"): RunbookContext {
  return {
    appDir: deploy.appDir,
    project: deploy.composeProject,
    database: deploy.database,
    compose,
  };
}

/** `sed` that reads one key of a deploy state file (`state/current`, `state/previous`). */
function stateValue(ctx: RunbookContext, file: "current" | "previous", key: string): string {
  return `"$(sed -n 's/^${key}=//p' ${quote(`${ctx.appDir}/state/${file}`)})"`;
}

function inPostgres(ctx: RunbookContext, command: string): string {
  return `${ctx.compose} exec -T postgres ${command}`;
}

/**
 * pg_restore with `args` of `backup` in `<appDir>/backups`: a dump directory (what the deploy
 * keeps, its tables' data compressed or not yet) or a single-file dump (an older deploy's, an
 * external database's). tar carries it into the postgres container, where pg_restore reads it
 * from a temporary directory that goes afterwards, whatever pg_restore's outcome.
 */
function restoreFrom(ctx: RunbookContext, backup: string, args: string): string {
  const script = `d="$(mktemp -d)" && tar -C "$d" -xf - && pg_restore ${args} "$d"/*; rc=$?; rm -rf "$d"; exit "$rc"`;
  return `tar -C ${quote(`${ctx.appDir}/backups`)} -cf - ${quote(backup)} | ${inPostgres(ctx, `sh -c ${quote(script)}`)}`;
}

/**
 * Restores a backup into a scratch database next to the live one, to inspect it or copy rows
 * back; the app keeps serving. `backup` is a dump's name in `<appDir>/backups`.
 */
export function restoreToScratchCommands(
  ctx: RunbookContext,
  backup: string,
  scratch = `${ctx.database.name}_restore`,
): string[] {
  const user = quote(ctx.database.user);
  return [
    `cd ${quote(`${ctx.appDir}/current`)}`,
    inPostgres(ctx, `dropdb -U ${user} --if-exists ${quote(scratch)}`),
    inPostgres(ctx, `createdb -U ${user} ${quote(scratch)}`),
    restoreFrom(ctx, backup, `-U ${user} -d ${quote(scratch)} --no-owner --exit-on-error`),
  ];
}

/**
 * Replaces the live database with a backup. The app is stopped meanwhile (the proxy answers
 * 502 until it is healthy again): everything written since the backup is lost.
 */
export function restoreLiveCommands(ctx: RunbookContext, backup: string): string[] {
  const user = quote(ctx.database.user);
  const db = quote(ctx.database.name);
  return [
    `cd ${quote(`${ctx.appDir}/current`)}`,
    `slot=${stateValue(ctx, "current", "slot")}`,
    `${ctx.compose} stop "backend-$slot"`,
    inPostgres(ctx, `dropdb -U ${user} --force ${db}`),
    inPostgres(ctx, `createdb -U ${user} ${db}`),
    restoreFrom(ctx, backup, `-U ${user} -d ${db} --no-owner --exit-on-error`),
    `${ctx.compose} start "backend-$slot"`,
  ];
}

/**
 * Undoes the newest migration(s) with the image that ran them: after a rollback, that is the
 * previous version recorded on the host (`state/previous`), run as a one-off container on the
 * project's network with the serving slot's env file.
 */
export function downgradeCommands(ctx: RunbookContext, steps = 1): string[] {
  return [
    `cd ${quote(ctx.appDir)}`,
    `image=${stateValue(ctx, "previous", "image")}`,
    `slot=${stateValue(ctx, "current", "slot")}`,
    `docker run --rm --network ${quote(`${ctx.project}_default`)} --env-file "env/$slot.env" "$image" alembic downgrade -${steps}`,
  ];
}

/**
 * A rollback: the previous version named for one run, deployed like any other
 * (docs/operations.md, "Runbook: roll back").
 */
export function rollbackCommands(
  ctx: RunbookContext,
  host: { readonly user: string; readonly host: string; readonly port: number },
  stack: string,
): string[] {
  const s = quote(stack);
  return [
    `ssh -p ${host.port} ${quote(`${host.user}@${host.host}`)} cat ${quote(`${ctx.appDir}/state/previous`)} ${quote(`${ctx.appDir}/state/current`)}`,
    `pulumi config set --path deploy.image.tag <previous tag> --stack ${s}`,
    `pulumi config set --path deploy.migrate false --stack ${s}`,
    `pulumi preview --diff --stack ${s}`,
    `pulumi up --stack ${s}`,
    `git checkout -- Pulumi.${stack}.yaml`,
  ];
}
