import { type Cmd, raw, type Token, v } from "./shell";

/**
 * The commands the deploy script runs, as tokens. `compose` is the script's own function that
 * calls the detected compose variant (`docker compose` or `docker-compose`) with the project
 * name and the release's compose file, so every builder here works with both.
 */

/** `compose <args>`: the project's compose command. */
export function compose(...args: readonly Token[]): Cmd {
  return ["compose", ...args];
}

/** A backend slot's service, from the script variable holding the slot name. */
export function slotServiceOf(slotVariable: string): Token {
  return raw(`"backend-$${slotVariable}"`);
}

/** Starts services that are not running yet and leaves running ones exactly as they are. */
export function composeEnsureRunning(...services: readonly Token[]): Cmd {
  return compose("up", "-d", "--no-deps", "--no-recreate", ...services);
}

/** Creates and starts one service (the new slot, or the proxy on a first deploy). */
export function composeStart(service: Token): Cmd {
  return compose("up", "-d", "--no-deps", service);
}

/** Stops and removes a service's containers (and their anonymous volumes). */
export function composeRemove(service: Token): Cmd {
  return compose("rm", "-f", "-s", "-v", service);
}

/** Stops a service, giving it `timeoutVariable` seconds after SIGTERM. */
export function composeStop(service: Token, timeoutVariable: string): Cmd {
  return compose("stop", "-t", v(timeoutVariable), service);
}

/** The id of a service's container, empty when it has none. */
export function composeContainerId(service: Token): Cmd {
  return compose("ps", "-q", service);
}

/** Runs a one-off command in a fresh container of a service (no dependencies started). */
export function composeRunOnce(service: Token, command: readonly Token[]): Cmd {
  return compose("run", "--rm", "--no-deps", "-T", service, ...command);
}

/** Runs a command in the running container of a service, without a TTY. */
export function composeExec(service: Token, command: readonly Token[]): Cmd {
  return compose("exec", "-T", service, ...command);
}

/** A custom-format dump of the app database, written to stdout. */
export function pgDump(userVariable: string, databaseVariable: string): Cmd {
  return composeExec("postgres", [
    "pg_dump",
    "-U",
    v(userVariable),
    "-d",
    v(databaseVariable),
    "-Fc",
  ]);
}

/** Lists the table of contents of a dump read on stdin: fails when the dump is unreadable. */
export function pgRestoreList(): Cmd {
  return composeExec("postgres", ["pg_restore", "--list"]);
}

/** The size of the app database in bytes. */
export function pgDatabaseSize(userVariable: string, databaseVariable: string): Cmd {
  return composeExec("postgres", [
    "psql",
    "-X",
    "-At",
    "-U",
    v(userVariable),
    "-d",
    v(databaseVariable),
    "-c",
    "SELECT pg_database_size(current_database())",
  ]);
}

/** nginx checks the configuration it would load. */
export function nginxTest(): Cmd {
  return composeExec("proxy", ["nginx", "-t", "-q"]);
}

/**
 * nginx re-reads its configuration gracefully: new workers take new connections, old workers
 * finish the requests they hold, nothing is dropped.
 */
export function nginxReload(): Cmd {
  return composeExec("proxy", ["nginx", "-s", "reload"]);
}

/** One `docker inspect` field of a container, by Go template. */
export function dockerInspect(format: string, containerVariable: string): Cmd {
  return ["docker", "inspect", "-f", format, v(containerVariable)];
}

/** Whether an image is present locally. */
export function dockerImagePresent(imageVariable: string): Cmd {
  return ["docker", "image", "inspect", v(imageVariable)];
}

/** Logs in to a registry with the password on stdin, into the config dir `configVariable`. */
export function dockerLogin(
  configVariable: string,
  registryVariable: string,
  userVariable: string,
): Cmd {
  return [
    raw(`DOCKER_CONFIG="$${configVariable}"`),
    "docker",
    "login",
    "--username",
    v(userVariable),
    "--password-stdin",
    v(registryVariable),
  ];
}

/** Pulls an image, with credentials from `configVariable` when it is set. */
export function dockerPull(configVariable: string, imageVariable: string): Cmd {
  return [raw(`DOCKER_CONFIG="$${configVariable}"`), "docker", "pull", "--quiet", v(imageVariable)];
}

/**
 * One GET through the proxy: writes the response headers to `headersVariable`'s file and
 * prints the status code. Fails only when no answer came at all.
 */
export function curlThroughProxy(urlExpression: string, headersVariable: string): Cmd {
  return [
    "curl",
    "-sS",
    "-o",
    "/dev/null",
    "--max-time",
    "10",
    "-D",
    v(headersVariable),
    "-w",
    "%{http_code}",
    raw(urlExpression),
  ];
}
