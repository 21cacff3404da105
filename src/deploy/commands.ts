// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are shell, where ${...} is its syntax
import { type Cmd, raw, type Token, v } from "./shell";

/**
 * The commands the deploy script runs, as tokens. `compose` is the script's own function that
 * calls the detected compose variant (`docker compose` or `docker-compose`) with the project
 * name and the release's compose file, so every compose builder here works with both. What
 * only needs a container that already exists goes to the Docker CLI directly: compose v1 is a
 * Python program that takes most of a second to start, and a deploy asks dozens of questions.
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

/** Runs a one-off command in a fresh container of a service (no dependencies started). */
export function composeRunOnce(service: Token, command: readonly Token[]): Cmd {
  return compose("run", "--rm", "--no-deps", "-T", service, ...command);
}

/**
 * The ids of a compose service's containers, running or not, by the labels both compose v1
 * and v2 set; one-off `run` containers (a migration) are not the service's.
 */
export function serviceContainers(projectVariable: string, serviceVariable: string): Cmd {
  return [
    "docker",
    "ps",
    "-aq",
    "--no-trunc",
    "--filter",
    raw(`"label=com.docker.compose.project=$${projectVariable}"`),
    "--filter",
    raw(`"label=com.docker.compose.service=$${serviceVariable}"`),
    "--filter",
    "label=com.docker.compose.oneoff=False",
  ];
}

/** Runs a command in a running container, without a TTY. */
export function dockerExec(containerVariable: string, command: readonly Token[]): Cmd {
  return ["docker", "exec", v(containerVariable), ...command];
}

/** Stops a container, giving it `timeoutVariable` seconds after its stop signal. */
export function dockerStop(containerVariable: string, timeoutVariable: string): Cmd {
  return ["docker", "stop", "-t", v(timeoutVariable), v(containerVariable)];
}

/** Removes a container (stopping it first) and its anonymous volumes. */
export function dockerRemove(containerVariable: string): Cmd {
  return ["docker", "rm", "-f", "-v", v(containerVariable)];
}

/**
 * A custom-format dump of the app database into `<backup dir>/<file>`, read back with
 * `pg_restore --list` (its table of contents on stdout). It runs in a one-off container of
 * the running PostgreSQL's own image (same pg_dump version as the server), in that
 * container's network namespace, as the deploy user (the dump is the deploy user's file), and
 * writes straight into the backup directory: no copy of the dump through `docker exec`'s
 * output stream, which costs more than the compression on a large database. The password
 * comes from the environment (`PGPASSWORD`), never the command line.
 */
export function pgDumpToDir(opts: {
  readonly name: string;
  readonly postgresContainer: string;
  readonly postgresImage: string;
  readonly backupDir: string;
  readonly user: string;
  readonly database: string;
  readonly compressionLevel: string;
  readonly file: string;
}): Cmd {
  return [
    "docker",
    "run",
    "--rm",
    "--name",
    v(opts.name),
    "--network",
    raw(`"container:$${opts.postgresContainer}"`),
    "--user",
    raw('"$(id -u):$(id -g)"'),
    "-e",
    "PGPASSWORD",
    "-v",
    raw(`"$${opts.backupDir}:/backups"`),
    "--entrypoint",
    "sh",
    v(opts.postgresImage),
    "-c",
    'pg_dump -h 127.0.0.1 -U "$1" -d "$2" -Fc -Z "$3" -f "/backups/$4" && pg_restore --list "/backups/$4"',
    "sh",
    v(opts.user),
    v(opts.database),
    v(opts.compressionLevel),
    v(opts.file),
  ];
}

/** The size of the app database in bytes. */
export function pgDatabaseSize(
  containerVariable: string,
  userVariable: string,
  databaseVariable: string,
): Cmd {
  return dockerExec(containerVariable, [
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

/**
 * nginx checks a candidate configuration directory in a throwaway container of the proxy's
 * image, mounted where the live one mounts `conf.d`: a configuration nginx rejects is found
 * before anything changes, and never reaches the running proxy.
 */
export function nginxCheck(imageVariable: string, dirVariable: string): Cmd {
  return [
    "docker",
    "run",
    "--rm",
    "--network",
    "none",
    "-v",
    raw(`"$${dirVariable}:/etc/nginx/conf.d:ro"`),
    "--entrypoint",
    "nginx",
    v(imageVariable),
    "-t",
    "-q",
  ];
}

/** nginx checks the configuration it would load. */
export function nginxTest(containerVariable: string): Cmd {
  return dockerExec(containerVariable, ["nginx", "-t", "-q"]);
}

/**
 * nginx re-reads its configuration gracefully: new workers take new connections, old workers
 * finish the requests they hold, nothing is dropped.
 */
export function nginxReload(containerVariable: string): Cmd {
  return dockerExec(containerVariable, ["nginx", "-s", "reload"]);
}

/**
 * The pids of nginx's worker processes (serving or shutting down), read from `/proc`, so
 * any image with a POSIX shell answers (busybox or coreutils).
 */
export function nginxWorkerPids(containerVariable: string): Cmd {
  return dockerExec(containerVariable, [
    "sh",
    "-c",
    'for f in /proc/[0-9]*/cmdline; do case "$(tr "\\000" " " <"$f" 2>/dev/null)" in "nginx: worker process"*) p=${f#/proc/}; echo "${p%/cmdline}" ;; esac; done',
  ]);
}

/** Which of the pids in the array `pidsVariable` still run in the container. */
export function pidsAlive(containerVariable: string, pidsVariable: string): Cmd {
  return dockerExec(containerVariable, [
    "sh",
    "-c",
    'for p in "$@"; do [ -e "/proc/$p" ] && echo "$p"; done; exit 0',
    "sh",
    raw(`"\${${pidsVariable}[@]}"`),
  ]);
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
