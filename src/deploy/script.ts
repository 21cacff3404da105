// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are bash, where ${...} is bash syntax
import type { DeployConfig, DeployHost } from "../config/deploy";
import {
  compose,
  composeEnsureRunning,
  composeRunOnce,
  composeStart,
  curlThroughProxy,
  dockerExec,
  dockerImagePresent,
  dockerInspect,
  dockerLogin,
  dockerPull,
  dockerRemove,
  dockerStop,
  nginxCheck,
  nginxReload,
  nginxTest,
  nginxWorkerPids,
  pgDatabaseSize,
  pgDumpToDir,
  pidsAlive,
  serviceContainers,
  slotServiceOf,
} from "./commands";
import {
  APP_SECRET_ENV,
  COMPOSE_FILE,
  healthProbeCommand,
  renderUpstream,
  SITE_FILE,
  SLOT_HEADER,
  type Slot,
  slotImageVariable,
} from "./compose";
import { maskFunctions, outputFunctions } from "./script-output";
import { all, assign, assignArray, type Cmd, quiet, quote, render, v } from "./shell";
import { REQUIRED_STDIN_KEYS, STDIN_KEYS } from "./stdin";

/**
 * Everything the deploy script of one host is built from. The image and the migrate flag are
 * not: they are this run's arguments (`./run-command.ts`), so the script file stays the same
 * from one image to the next.
 */
export interface DeployScriptInput {
  readonly stack: string;
  readonly host: DeployHost;
  readonly deploy: Omit<DeployConfig, "image" | "migrate" | "registry">;
  /** Release id: the content hash of the copied compose project. */
  readonly release: string;
}

/** The arguments the script takes (`name=value`), all required; see `./run-command.ts`. */
export const RUN_ARGUMENTS = ["image", "tag", "registry", "migrate"] as const;

/** Exit code of a script started with missing or unknown arguments (nothing was changed). */
export const USAGE_EXIT = 2;

/** The steps, in order, as the script names them in its log and in failure messages. */
export const DEPLOY_STEPS = [
  "lock",
  "preflight",
  "infra",
  "backup",
  "pull",
  "migrate",
  "start",
  "health",
  "switch",
  "verify",
  "watch",
  "drain",
  "record",
] as const;

/** Deploy logs kept on the host (`<appDir>/logs`, one `.out` and one `.err` per run). */
export const RUN_LOGS_KEPT = 20;

/** Exit code of a deploy that found another one running (EX_TEMPFAIL). */
export const LOCK_BUSY_EXIT = 75;

/**
 * The image reference a host runs: pinned by digest when one is configured (the tag is then
 * only a name for people), else the tag.
 *
 * @example imageReference({ repository: "ghcr.io/o/r/backend", tag: "v2" }) // "ghcr.io/o/r/backend:v2"
 */
export function imageReference(image: DeployConfig["image"]): string {
  return image.digest ? `${image.repository}@${image.digest}` : `${image.repository}:${image.tag}`;
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

/** `cmd || fail "<message>"`: the message may use script variables. */
function orFail(cmd: Cmd, message: string): string {
  return `${render(cmd)} || fail ${dq(message)}`;
}

/** A double-quoted bash string of trusted text that may reference variables. */
function dq(text: string): string {
  if (/["`\\]/.test(text)) throw new Error(`dq: text must not contain ", \` or \\: ${text}`);
  return `"${text}"`;
}

function fn(name: string, body: readonly string[]): string[] {
  return [`${name}() {`, ...body.map((line) => (line === "" ? "" : `  ${line}`)), "}", ""];
}

/** Settings as readonly script variables: the only place config values enter the script. */
function settings(input: DeployScriptInput): string[] {
  const { deploy, host, stack } = input;
  const lines = [
    assign("STACK", stack),
    assign("HOST_NAME", host.name),
    assign("APP_DIR", deploy.appDir),
    assign("PROJECT", deploy.composeProject),
    assign("RELEASE", input.release),
    assign("COMPOSE_PREFERENCE", deploy.compose),
    assignArray("MIGRATION_COMMAND", deploy.migrationCommand),
    assign("DB_NAME", deploy.database.name),
    assign("DB_USER", deploy.database.user),
    assign("BACKUP_KEEP", String(deploy.backup.keep)),
    assign("BACKUP_MIN_FREE_MIB", String(deploy.backup.minFreeMiB)),
    assign("BACKUP_COMPRESSION", String(deploy.backup.compressionLevel)),
    assignArray("VERIFY_PATHS", deploy.app.verifyPaths),
    assign("PROXY_URL", proxyUrl(deploy.proxy)),
    assign("HEALTH_TIMEOUT", String(deploy.health.timeoutSeconds)),
    assign("HEALTH_RETRIES", String(deploy.health.retries)),
    assignArray("HEALTH_PROBE", healthProbeCommand(deploy)),
    assign("WATCH_SECONDS", String(deploy.watchSeconds)),
    assign("DRAIN_SECONDS", String(deploy.drainSeconds)),
    assign("STOP_TIMEOUT", String(deploy.stopTimeoutSeconds)),
    assign("POSTGRES_IMAGE", deploy.images.postgres),
    assign("REDIS_IMAGE", deploy.images.redis),
    assign("PROXY_IMAGE", deploy.images.proxy),
  ];
  const names = lines.map((line) => line.slice(0, line.indexOf("=")));
  return [
    "# Settings from the stack config: literal values, quoted on purpose.",
    "# shellcheck disable=SC2016",
    "{",
    ...lines.map((line) => `  ${line}`),
    "}",
    'RELEASE_DIR="$APP_DIR/releases/$RELEASE"',
    `COMPOSE_FILE="$RELEASE_DIR/${COMPOSE_FILE}"`,
    'STATE_DIR="$APP_DIR/state"',
    'BACKUP_DIR="$APP_DIR/backups"',
    'ENV_DIR="$APP_DIR/env"',
    'PROXY_DIR="$APP_DIR/proxy"',
    'LOG_DIR="$APP_DIR/logs"',
    `readonly ${[...names, "RELEASE_DIR", "COMPOSE_FILE", "STATE_DIR", "BACKUP_DIR", "ENV_DIR", "PROXY_DIR", "LOG_DIR"].join(" ")}`,
  ];
}

/** Helpers every step uses: logging, failing, state files, containers, waiting for health. */
function helpers(appPort: number): string[] {
  const secretAssignments = APP_SECRET_ENV.map((key) => `${key}="$${key}"`).join(" ");
  return [
    ...maskFunctions(),
    ...outputFunctions(),
    "# Ends the deploy with a reason; the EXIT trap undoes what this run changed and reports.",
    ...fn("fail", ['FAIL_REASON="$*"', "exit 1"]),
    "# Milliseconds since the epoch (bash 5's clock, else date).",
    ...fn("now_ms", [
      "if [[ -n ${EPOCHREALTIME:-} ]]; then",
      "  local t=${EPOCHREALTIME/./}",
      "  printf '%s\\n' \"$((t / 1000))\"",
      "else",
      "  date +%s%3N",
      "fi",
    ]),
    "# Milliseconds as seconds with one decimal.",
    ...fn("seconds_of", ['printf \'%d.%d\' "$(($1 / 1000))" "$(($1 % 1000 / 100))"']),
    "# Runs one step and records how long it took.",
    ...fn("run_step", [
      "local t0",
      't0="$(now_ms)"',
      '"step_$1"',
      'TIMINGS+=("$1 $(seconds_of "$(($(now_ms) - t0))") s")',
    ]),
    "# The project's compose command, with the variant found by preflight.",
    ...fn("compose", ['"${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE" "$@"']),
    "# Runs a command with the app's secrets in its environment (for compose to pass on).",
    ...fn("with_app_env", [`${secretAssignments} "$@"`]),
    "# Reads key=value from a state file without executing it.",
    ...fn("state_get", [
      "local file=$1 key=$2 line",
      "[[ -f $file ]] || return 0",
      "while IFS= read -r line; do",
      '  if [[ $line == "$key="* ]]; then',
      "    printf '%s\\n' \"${line#*=}\"",
      "    return 0",
      "  fi",
      'done <"$file"',
    ]),
    "# Writes a file atomically (temp file in the same directory, then rename).",
    ...fn("write_file", [
      "local path=$1 tmp",
      'tmp="$(mktemp "$path.XXXXXX")"',
      'cat >"$tmp"',
      'mv -f "$tmp" "$path"',
    ]),
    "# The container of a compose service of this project (Docker labels; no compose start-up).",
    ...fn("container_of", [
      "local service=$1",
      `${render(serviceContainers("PROJECT", "service"))} 2>/dev/null | head -n 1 || true`,
    ]),
    ...fn("is_running", [
      '[[ -n $1 ]] && [[ "$(docker inspect -f \'{{.State.Running}}\' "$1" 2>/dev/null)" == true ]]',
    ]),
    ...fn("health_of", [
      "docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' \"$1\" 2>/dev/null || true",
    ]),
    "# The output of the last health probe of a container, on one line.",
    ...fn("last_probe", [
      'docker inspect -f \'{{with .State.Health}}{{range .Log}}{{.ExitCode}}: {{.Output}}{{"\\n"}}{{end}}{{end}}\' "$1" 2>/dev/null |',
      "  grep -v '^$' | tail -n 1 | tr '\\n\\r\\t' '   ' | cut -c 1-300",
    ]),
    "# The backend's own health probe, run in its container now (Docker runs it every interval).",
    ...fn("probe_app", [
      "local cid=$1",
      `${render(dockerExec("cid", [all("HEALTH_PROBE")]))} >/dev/null 2>&1`,
    ]),
    "# Waits until a service's container is healthy; fails on exit, crash loop, unhealthy or",
    "# timeout. With `probe`, a backend passes as soon as its own probe does (checked every",
    "# half second) instead of at Docker's next interval.",
    ...fn("wait_healthy", [
      "local service=$1 timeout=$2 probe=${3:-} cid state deadline",
      "deadline=$((SECONDS + timeout))",
      'cid="$(container_of "$service")"',
      '[[ -n $cid ]] || fail "$service has no container"',
      "while :; do",
      `  state="$(${render(dockerInspect("{{.State.Status}} {{.RestartCount}}", "cid"))} 2>/dev/null || echo gone 0)"`,
      '  case "$state/$(health_of "$cid")" in',
      "    running*/healthy | running*/none) return 0 ;;",
      '    running*/unhealthy) fail "$service is unhealthy: $(last_probe "$cid")" ;;',
      `    exited*/* | dead*/* | gone*/*) fail "$service stopped (exit code $(${render(dockerInspect("{{.State.ExitCode}}", "cid"))} 2>/dev/null)) before it was healthy; see: docker logs $cid" ;;`,
      "  esac",
      "  if [[ ${state#* } -ge 3 ]]; then",
      '    fail "$service keeps restarting (${state#* } restarts); see: docker logs $cid"',
      "  fi",
      '  if [[ -n $probe && $state == running* ]] && probe_app "$cid"; then',
      "    return 0",
      "  fi",
      "  if ((SECONDS >= deadline)); then",
      '    fail "$service was not healthy after $timeout s (last probe: $(last_probe "$cid"))"',
      "  fi",
      "  sleep 0.5",
      "done",
    ]),
    "# Stops and removes a backend slot's container, if any.",
    ...fn("remove_slot", [
      "local cid",
      'cid="$(container_of "backend-$1")"',
      `if [[ -n $cid ]]; then ${render(quiet(dockerRemove("cid")))} || true; fi`,
    ]),
    "# The slot the proxy's upstream file names, empty before the first switch.",
    ...fn("serving_slot", [
      "local slot",
      'slot="$(sed -n \'s/^# .*slot=\\([a-z]*\\)$/\\1/p\' "$PROXY_DIR/upstream.conf" 2>/dev/null | head -n 1 || true)"',
      "case $slot in blue | green) printf '%s\\n' \"$slot\" ;; esac",
    ]),
    "# The proxy's upstream file: slot $1 serves, by name and by its address $2; the address $3",
    "# (may be empty) is the fallback group's backup.",
    ...fn("render_upstream", [
      "if [[ -n ${3:-} ]]; then",
      "  # shellcheck disable=SC2016 # $host and the $clicky_* names are nginx variables",
      `  printf '%s\\n' ${upstreamWords(appPort, true)}`,
      "else",
      "  # shellcheck disable=SC2016",
      `  printf '%s\\n' ${upstreamWords(appPort, false)}`,
      "fi",
    ]),
    "# The address of a container on the project's network.",
    ...fn("address_of", [
      "local cid=$1 address",
      `address="$(${render(dockerInspect("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "cid"))} 2>/dev/null | awk '{ print $1 }')"`,
      '[[ -n $address ]] || fail "container $1 has no address on the project\'s network"',
      "printf '%s\\n' \"$address\"",
    ]),
    "# One GET through the proxy; prints `<status> <slot>`.",
    ...fn("probe_proxy", [
      "local url=$1 code",
      ': >"$HEADERS_FILE"',
      `code="$(${render(curlThroughProxy('"$url"', "HEADERS_FILE"))} 2>/dev/null)" || code=000`,
      `printf '%s %s\\n' "$code" "$(sed -n 's/^${SLOT_HEADER}: *\\([a-z]*\\).*/\\1/Ip' "$HEADERS_FILE" | head -n 1)"`,
    ]),
    "# The pids of the proxy's nginx workers now: those that could still send a request to a",
    "# slot the next configuration no longer names.",
    ...fn("snapshot_workers", [
      "PROXY_WORKERS=()",
      'if is_running "$PROXY_CID"; then',
      `  mapfile -t PROXY_WORKERS < <(${render(nginxWorkerPids("PROXY_CID"))} 2>/dev/null || true)`,
      "fi",
    ]),
    "# Waits until every snapshotted worker has exited (after a reload each finishes the",
    "# requests it holds, then exits), at most DRAIN_SECONDS; WAITED says how long it took.",
    ...fn("wait_workers_gone", [
      "local t0",
      "local -a alive",
      't0="$(now_ms)"',
      "while ((${#PROXY_WORKERS[@]} > 0)); do",
      `  mapfile -t alive < <(${render(pidsAlive("PROXY_CID", "PROXY_WORKERS"))} 2>/dev/null || true)`,
      "  ((${#alive[@]} > 0)) || break",
      "  if (($(now_ms) - t0 >= DRAIN_SECONDS * 1000)); then",
      '    log "nginx workers ${alive[*]} still hold requests after $DRAIN_SECONDS s (deploy.drainSeconds); going on"',
      "    break",
      "  fi",
      "  sleep 0.1",
      "done",
      'WAITED="$(seconds_of "$(($(now_ms) - t0))")"',
    ]),
    "# Installs an upstream file and makes nginx load it; fails (the caller undoes) if it cannot.",
    ...fn("reload_proxy", [
      `${orFail(nginxTest("PROXY_CID"), "nginx rejected the new configuration")}`,
      `${orFail(nginxReload("PROXY_CID"), "nginx did not reload")}`,
    ]),
  ];
}

/**
 * The lines of `renderUpstream` as bash words, with the serving slot as `$1`, its address as
 * `$2` and the backup's address as `$3`, so the script writes exactly what TypeScript renders.
 */
function upstreamWords(appPort: number, withBackup: boolean): string {
  const text = renderUpstream(
    { slot: "@SLOT@" as Slot, address: "@ADDR@" },
    appPort,
    withBackup ? { slot: "@SLOT@" as Slot, address: "@BACKUP@" } : undefined,
  );
  const args: Record<string, string> = { "@SLOT@": '"$1"', "@ADDR@": '"$2"', "@BACKUP@": '"$3"' };
  return text
    .trimEnd()
    .split("\n")
    .map((line) =>
      line
        .split(/(@SLOT@|@ADDR@|@BACKUP@)/)
        .map((part) => args[part] ?? (part === "" ? "" : quote(part)))
        .join(""),
    )
    .join(" ");
}

function readStdin(): string[] {
  const allowed = STDIN_KEYS.join(" | ");
  return fn("read_stdin", [
    "local line key",
    "while IFS= read -r line || [[ -n $line ]]; do",
    '  [[ -z $line || $line == "#"* ]] && continue',
    "  [[ $line == *=* ]] || fail \"stdin: expected KEY=value lines (dotenv), got a line without '='\"",
    "  key=${line%%=*}",
    "  case $key in",
    `    ${allowed}) printf -v "$key" '%s' "\${line#*=}" ;;`,
    '    *) [[ $key =~ ^[A-Z_][A-Z0-9_]*$ ]] || key="(malformed)"',
    '      fail "stdin: unexpected key $key" ;;',
    "  esac",
    "done",
    `for key in ${REQUIRED_STDIN_KEYS.join(" ")}; do`,
    '  [[ -n ${!key:-} ]] || fail "stdin: $key is missing"',
    "done",
    "if [[ -n ${REGISTRY_USERNAME:-} && -z ${REGISTRY_TOKEN:-} ]] || [[ -z ${REGISTRY_USERNAME:-} && -n ${REGISTRY_TOKEN:-} ]]; then",
    '  fail "stdin: REGISTRY_USERNAME and REGISTRY_TOKEN go together"',
    "fi",
    "build_masks",
  ]);
}

function stepLock(): string[] {
  return fn("step_lock", [
    "STEP=lock",
    'command -v flock >/dev/null || fail "flock is not installed (package util-linux)"',
    '[[ -d $STATE_DIR ]] || fail "$STATE_DIR is missing: the prepare command did not run"',
    'exec 9>>"$STATE_DIR/deploy.lock"',
    "if ! flock -n 9; then",
    '  local holder="no owner recorded yet"',
    '  [[ -s $STATE_DIR/deploy.lock.owner ]] && holder="$(head -c 400 "$STATE_DIR/deploy.lock.owner")"',
    "  LOCK_BUSY=1",
    '  fail "another deploy holds $STATE_DIR/deploy.lock: $holder; this one changed nothing"',
    "fi",
    "LOCKED=1",
    'local client="${SSH_CLIENT:-local}"',
    "printf 'deploy of %s (stack %s) by %s from %s, pid %s, since %s\\n' \\",
    '  "$IMAGE" "$STACK" "$(id -un)" "${client%% *}" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" |',
    '  write_file "$STATE_DIR/deploy.lock.owner"',
    'log "lock held; deploying $IMAGE_TAG ($IMAGE), release $RELEASE; this run\'s log: $RUN_LOG.log"',
  ]);
}

function stepPreflight(): string[] {
  return fn("step_preflight", [
    "STEP=preflight",
    'command -v docker >/dev/null || fail "docker is not installed or not on the PATH of $(id -un)"',
    `${render(quiet(["docker", "info"]))} || fail "cannot reach the Docker engine as $(id -un) (is it running, is $(id -un) in the docker group?)"`,
    "# The compose variant; v1 is a Python program that takes a while to start, so it is",
    "# looked up on the PATH rather than asked for its version.",
    "if [[ $COMPOSE_PREFERENCE != v1 ]] && " +
      render(quiet(["docker", "compose", "version"])) +
      "; then",
    "  COMPOSE=(docker compose)",
    "elif [[ $COMPOSE_PREFERENCE != v2 ]] && command -v docker-compose >/dev/null; then",
    "  COMPOSE=(docker-compose)",
    "else",
    '  fail "no compose to use: deploy.compose is $COMPOSE_PREFERENCE, and neither docker compose (v2) nor docker-compose (v1) is there for it (install one)"',
    "fi",
    'command -v curl >/dev/null || fail "curl is not installed; the deploy verifies through the proxy with it"',
    '[[ -f $COMPOSE_FILE && -f $RELEASE_DIR/site.conf ]] || fail "release $RELEASE was not copied to $RELEASE_DIR"',
    "",
    "# The compose file takes each slot's image from these; the old slot's is set below.",
    `export ${slotImageVariable("blue")}="$IMAGE" ${slotImageVariable("green")}="$IMAGE"`,
    `${render(quiet(compose("config", "-q")))} || fail "the compose file $COMPOSE_FILE is not valid: $(compose config -q 2>&1 | tail -n 1)"`,
    "# What serves now: the slot the proxy's upstream names, if its container runs.",
    'SERVING_SLOT="$(serving_slot)"',
    'if [[ -n $SERVING_SLOT ]]; then OLD_CID="$(container_of "backend-$SERVING_SLOT")"; fi',
    'if is_running "$OLD_CID"; then',
    "  OLD_SLOT=$SERVING_SLOT",
    `  OLD_IMAGE="$(${render(dockerInspect("{{.Config.Image}}", "OLD_CID"))})"`,
    `  printf -v "CLICKY_IMAGE_\${OLD_SLOT^^}" '%s' "$OLD_IMAGE"`,
    "fi",
    "if [[ $SERVING_SLOT == blue ]]; then NEW_SLOT=green; else NEW_SLOT=blue; fi",
    'PROXY_CID="$(container_of proxy)"',
    "",
    "# Room for a backup: the database's size plus the configured margin.",
    "local pg_cid need_kib free_kib",
    'pg_cid="$(container_of postgres)"',
    'if is_running "$pg_cid"; then',
    `  need_kib="$(${render(pgDatabaseSize("pg_cid", "DB_USER", "DB_NAME"))} 2>/dev/null | tr -dc 0-9 || true)"`,
    "  need_kib=$(( ${need_kib:-0} / 1024 + BACKUP_MIN_FREE_MIB * 1024 ))",
    `  free_kib="$(df -Pk "$BACKUP_DIR" | awk 'NR == 2 { print $4 }')"`,
    "  if (( free_kib < need_kib )); then",
    '    fail "not enough disk for a backup in $BACKUP_DIR: $((free_kib / 1024)) MiB free, $((need_kib / 1024)) MiB needed (the database and backup.minFreeMiB); nothing was changed"',
    "  fi",
    "fi",
    'log "compose: ${COMPOSE[*]}; serving: ${OLD_SLOT:-nothing}${OLD_IMAGE:+ ($OLD_IMAGE)}; new slot: $NEW_SLOT"',
  ]);
}

/**
 * The release's nginx site, with the upstream file the switch will write, checked by nginx in
 * a throwaway container of the proxy's image before anything changes: a configuration nginx
 * rejects never reaches the live proxy.
 */
function checkReleaseProxy(): string[] {
  return fn("step_proxy_check", [
    "STEP=preflight",
    "local image",
    'PROXY_CHECK_DIR="$(mktemp -d "$APP_DIR/proxy-check.XXXXXX")"',
    'chmod 755 "$PROXY_CHECK_DIR"',
    `cp "$RELEASE_DIR/${SITE_FILE}" "$PROXY_CHECK_DIR/site.conf"`,
    'render_upstream "$NEW_SLOT" 127.0.0.1 "${OLD_SLOT:+127.0.0.1}" >"$PROXY_CHECK_DIR/upstream.conf"',
    'chmod 644 "$PROXY_CHECK_DIR/site.conf" "$PROXY_CHECK_DIR/upstream.conf"',
    "# The image that will load it: the running proxy's, else the configured one.",
    'if is_running "$PROXY_CID"; then',
    `  image="$(${render(dockerInspect("{{.Image}}", "PROXY_CID"))})"`,
    "else",
    '  image="$PROXY_IMAGE"',
    "fi",
    `if ! ${render(nginxCheck("image", "PROXY_CHECK_DIR"))} >"$TMP_DIR/nginx-check.log" 2>&1; then`,
    '  fail "nginx rejects the site.conf of release $RELEASE: $(grep -m 1 -i emerg "$TMP_DIR/nginx-check.log" || tail -n 1 "$TMP_DIR/nginx-check.log"); nothing was changed"',
    "fi",
    'log "nginx accepts the site.conf of release $RELEASE"',
  ]);
}

/** Fingerprint of what a deploy would put in place: image, release, migration flag and env. */
function fingerprint(): string[] {
  return fn("fingerprint", [
    `printf '%s\\n' "$IMAGE" "$RELEASE" "$MIGRATE" ${APP_SECRET_ENV.map((k) => `"$${k}"`).join(" ")} | sha256sum | cut -c 1-64`,
  ]);
}

function nothingToDo(): string[] {
  return fn("already_deployed", [
    'local current="$STATE_DIR/current"',
    "[[ -n $OLD_SLOT ]] || return 1",
    '[[ "$(state_get "$current" fingerprint)" == "$FINGERPRINT" ]] || return 1',
    '[[ "$(state_get "$current" slot)" == "$OLD_SLOT" ]] || return 1',
    '[[ "$(health_of "$OLD_CID")" == healthy ]] || return 1',
    'is_running "$PROXY_CID"',
  ]);
}

function stepInfra(): string[] {
  const check = fn("check_infra_image", [
    "local service=$1 want=$2 cid have",
    'cid="$(container_of "$service")"',
    "[[ -n $cid ]] || return 0",
    `have="$(${render(dockerInspect("{{.Config.Image}}", "cid"))} 2>/dev/null || true)"`,
    'if [[ $have != "$want" ]]; then',
    '  log "WARNING: $service runs $have but the config says $want; a deploy never recreates it (README: Runbook: changing an infrastructure image)"',
    "fi",
  ]);
  return [
    ...check,
    ...fn("step_infra", [
      "STEP=infra",
      "# compose up would leave running services alone; asking Docker first is much quicker.",
      'if ! is_running "$(container_of postgres)" || ! is_running "$(container_of redis)"; then',
      `  POSTGRES_PASSWORD="$POSTGRES_PASSWORD" ${orFail(composeEnsureRunning("postgres", "redis"), "could not start postgres and redis")}`,
      "fi",
      'wait_healthy postgres "$HEALTH_TIMEOUT"',
      'wait_healthy redis "$HEALTH_TIMEOUT"',
      "# Infrastructure containers are never recreated by a deploy; say so when config moved on.",
      'check_infra_image postgres "$POSTGRES_IMAGE"',
      'check_infra_image redis "$REDIS_IMAGE"',
      'check_infra_image proxy "$PROXY_IMAGE"',
    ]),
  ];
}

function stepBackup(): string[] {
  const dump = pgDumpToDir({
    name: "BACKUP_CONTAINER",
    postgresContainer: "pg_cid",
    postgresImage: "pg_image",
    backupDir: "BACKUP_DIR",
    user: "DB_USER",
    database: "DB_NAME",
    compressionLevel: "BACKUP_COMPRESSION",
    file: "partial",
  });
  return fn("step_backup", [
    "STEP=backup",
    "local stamp target partial pg_cid pg_image t0",
    't0="$(now_ms)"',
    'stamp="$(date -u +%Y%m%dT%H%M%SZ)"',
    'target="$BACKUP_DIR/$STACK-$stamp-$IMAGE_TAG.dump"',
    'partial="${target##*/}.partial"',
    'pg_cid="$(container_of postgres)"',
    `pg_image="$(${render(dockerInspect("{{.Image}}", "pg_cid"))})"`,
    "# Named, so that a deploy stopped meanwhile removes it and its partial file (EXIT trap).",
    'BACKUP_CONTAINER="$PROJECT-backup-$$"',
    'BACKUP_PARTIAL="$BACKUP_DIR/$partial"',
    `if ! PGPASSWORD="$POSTGRES_PASSWORD" ${render(dump)} >"$TMP_DIR/backup.toc" 2>"$TMP_DIR/backup.err"; then`,
    '  fail "pg_dump of $DB_NAME failed: $(tail -n 1 "$TMP_DIR/backup.err")"',
    "fi",
    'grep -q "dbname: $DB_NAME" "$TMP_DIR/backup.toc" || fail "the dump does not read back as database $DB_NAME with pg_restore --list"',
    'mv -f "$BACKUP_PARTIAL" "$target"',
    "BACKUP_CONTAINER='' BACKUP_PARTIAL=''",
    "BACKUP_PATH=$target",
    'log "database saved to $BACKUP_PATH ($(du -k "$BACKUP_PATH" | cut -f 1) KiB in $(seconds_of "$(($(now_ms) - t0))") s, verified with pg_restore --list)"',
    "# Retention: the newest BACKUP_KEEP dumps of this stack (names sort by time).",
    "local -a dumps",
    "local i",
    "shopt -s nullglob",
    'dumps=("$BACKUP_DIR/$STACK"-*.dump)',
    "shopt -u nullglob",
    "for ((i = 0; i < ${#dumps[@]} - BACKUP_KEEP; i++)); do",
    '  rm -f -- "${dumps[i]}"',
    '  log "removed old backup ${dumps[i]##*/}"',
    "done",
  ]);
}

/**
 * The pull runs in the background while the backup runs (neither needs the other). It prints
 * one line, what it did or why it failed; `step_pull` waits for it. It closes the lock's
 * descriptor, so a pull that outlives a killed deploy never holds the lock.
 */
function stepPull(): string[] {
  return [
    ...fn("pull_image", [
      `if [[ $IMAGE_PINNED == 1 ]] && ${render(quiet(dockerImagePresent("IMAGE")))}; then`,
      "  printf '%s is already on this host\\n' \"$IMAGE\"",
      "  return 0",
      "fi",
      'local docker_config=""',
      "if [[ -n ${REGISTRY_USERNAME:-} ]]; then",
      '  docker_config="$TMP_DIR/docker"',
      '  mkdir -p "$docker_config"',
      `  if ! printf '%s' "$REGISTRY_TOKEN" | ${render(dockerLogin("docker_config", "REGISTRY", "REGISTRY_USERNAME"))} >"$TMP_DIR/login.log" 2>&1; then`,
      '    rm -rf "$docker_config"',
      "    # The registry's answer, never the user name or the token (the report masks them too).",
      '    printf \'login to %s failed: %s\\n\' "$REGISTRY" "$(tail -n 1 "$TMP_DIR/login.log")"',
      "    return 1",
      "  fi",
      "fi",
      "local rc=0",
      `${render(dockerPull("docker_config", "IMAGE"))} >/dev/null 2>"$TMP_DIR/pull.err" || rc=$?`,
      "# The login's config (base64 of user:token) lives only as long as the pull.",
      'if [[ -n $docker_config ]]; then rm -rf "$docker_config"; fi',
      "if ((rc != 0)); then",
      '  printf \'could not pull %s: %s\\n\' "$IMAGE" "$(tail -n 1 "$TMP_DIR/pull.err")"',
      "  return 1",
      "fi",
      "printf 'pulled %s\\n' \"$IMAGE\"",
    ]),
    ...fn("start_pull", ['(exec 9>&-; pull_image) >"$TMP_DIR/pull.out" 2>&1 &', "PULL_PID=$!"]),
    ...fn("step_pull", [
      "STEP=pull",
      "local rc=0 said",
      'wait "$PULL_PID" || rc=$?',
      "PULL_PID=''",
      'said="$(tail -n 1 "$TMP_DIR/pull.out")"',
      '((rc == 0)) || fail "${said:-the pull failed (exit $rc)}"',
      'log "$said"',
    ]),
  ];
}

function stepMigrate(): string[] {
  return fn("step_migrate", [
    "STEP=migrate",
    "if [[ $MIGRATE != 1 ]]; then",
    '  log "skipped: deploy.migrate is false"',
    "  return 0",
    "fi",
    'remove_slot "$NEW_SLOT"',
    'log "running ${MIGRATION_COMMAND[*]} with $IMAGE"',
    `with_app_env ${orFail(composeRunOnce(slotServiceOf("NEW_SLOT"), [all("MIGRATION_COMMAND")]), "the migration (${MIGRATION_COMMAND[*]}) failed with $IMAGE; no traffic was moved")}`,
  ]);
}

function stepStart(): string[] {
  return fn("step_start", [
    "STEP=start",
    'remove_slot "$NEW_SLOT"',
    `printf '%s=%s\\n' ${APP_SECRET_ENV.map((k) => `${k} "$${k}"`).join(" ")} | write_file "$ENV_DIR/$NEW_SLOT.env"`,
    "NEW_STARTED=1",
    `with_app_env ${orFail(composeStart(slotServiceOf("NEW_SLOT")), "could not start backend-$NEW_SLOT")}`,
    'NEW_CID="$(container_of "backend-$NEW_SLOT")"',
    'log "started backend-$NEW_SLOT with $IMAGE"',
  ]);
}

function stepHealth(): string[] {
  return fn("step_health", [
    "STEP=health",
    'wait_healthy "backend-$NEW_SLOT" "$HEALTH_TIMEOUT" probe',
    'log "backend-$NEW_SLOT is healthy"',
  ]);
}

function stepSwitch(): string[] {
  return fn("step_switch", [
    "STEP=switch",
    "local name",
    "for name in upstream.conf site.conf; do",
    '  if [[ -f $PROXY_DIR/$name ]]; then cp -p "$PROXY_DIR/$name" "$TMP_DIR/$name.before"; fi',
    "done",
    "SWITCHED=1",
    `write_file "$PROXY_DIR/site.conf" <"$RELEASE_DIR/${SITE_FILE}"`,
    'NEW_ADDR="$(address_of "$NEW_CID")"',
    'render_upstream "$NEW_SLOT" "$NEW_ADDR" | write_file "$PROXY_DIR/upstream.conf"',
    'if is_running "$PROXY_CID"; then',
    "  snapshot_workers",
    "  reload_proxy",
    "  # Old workers may still accept a connection or two before they stop; verify must not",
    "  # meet one, so they go first (each finishes what it holds).",
    "  wait_workers_gone",
    "else",
    `  ${orFail(composeStart("proxy"), "could not start the proxy")}`,
    '  PROXY_CID="$(container_of proxy)"',
    "fi",
    "# Until the proxy answers from the new slot (a reload is asynchronous; a new proxy starts).",
    "local answer deadline=$((SECONDS + HEALTH_TIMEOUT))",
    "while :; do",
    '  answer="$(probe_proxy "$PROXY_URL${VERIFY_PATHS[0]}")"',
    '  [[ ${answer#* } == "$NEW_SLOT" ]] && break',
    '  ((SECONDS < deadline)) || fail "the proxy still answers ${answer%% *} from ${answer#* } after the switch"',
    "  sleep 0.2",
    "done",
    'log "the proxy sends traffic to backend-$NEW_SLOT"',
  ]);
}

function stepVerify(): string[] {
  return fn("step_verify", [
    "STEP=verify",
    "local path answer",
    'for path in "${VERIFY_PATHS[@]}"; do',
    '  answer="$(probe_proxy "$PROXY_URL$path")"',
    '  [[ ${answer%% *} == 2?? ]] || fail "GET $path through the proxy answered ${answer%% *}"',
    '  [[ ${answer#* } == "$NEW_SLOT" ]] || fail "GET $path was answered by ${answer#* }, not $NEW_SLOT"',
    '  log "GET $path through the proxy: ${answer%% *} from backend-$NEW_SLOT"',
    "done",
  ]);
}

/**
 * The watch window: the new version serves, the old one still runs. If the new one exits,
 * restarts, turns unhealthy or fails its own probe `health.retries` times in a row (probed
 * every second, so as strict as Docker's verdict at a faster cadence), the EXIT trap puts
 * the previous proxy configuration back (traffic returns to the old version) and removes it.
 */
function stepWatch(): string[] {
  return fn("step_watch", [
    "STEP=watch",
    "if [[ -z $OLD_SLOT ]] || ((WATCH_SECONDS == 0)); then",
    "  COMMITTED=1 NEW_STARTED=0 SWITCHED=0",
    '  log "skipped: ${OLD_SLOT:+deploy.watchSeconds is 0}${OLD_SLOT:-no previous version to go back to}"',
    "  return 0",
    "fi",
    "local t0 elapsed state restarts0 left misses=0",
    "# The old slot becomes the backup: what the new one cannot take goes there meanwhile.",
    'render_upstream "$NEW_SLOT" "$NEW_ADDR" "$(address_of "$OLD_CID")" | write_file "$PROXY_DIR/upstream.conf"',
    "reload_proxy",
    't0="$(now_ms)"',
    `restarts0="$(${render(dockerInspect("{{.RestartCount}}", "NEW_CID"))})"`,
    'log "watching backend-$NEW_SLOT for $WATCH_SECONDS s; backend-$OLD_SLOT stands by"',
    "while :; do",
    '  elapsed="$(seconds_of "$(($(now_ms) - t0))")"',
    "  # A failed inspect (a busy Docker engine) says nothing: count it as a missed probe.",
    `  state="$(${render(dockerInspect("{{.State.Status}} {{.RestartCount}}", "NEW_CID"))} 2>/dev/null || echo "unknown $restarts0")"`,
    '  case "$state/$(health_of "$NEW_CID")" in',
    "    unknown*) misses=$((misses + 1)) ;;",
    '    running*/unhealthy) fail "backend-$NEW_SLOT turned unhealthy $elapsed s after the switch: $(last_probe "$NEW_CID")" ;;',
    "    running*) ;;",
    `    *) fail "backend-$NEW_SLOT stopped $elapsed s after the switch (exit code $(${render(dockerInspect("{{.State.ExitCode}}", "NEW_CID"))} 2>/dev/null)); see: docker logs $NEW_CID" ;;`,
    "  esac",
    '  if [[ ${state#* } != "$restarts0" ]]; then',
    '    fail "backend-$NEW_SLOT crashed and was restarted $elapsed s after the switch; see: docker logs $NEW_CID"',
    "  fi",
    "  # As strict as Docker's own verdict: health.retries failed probes in a row.",
    "  if [[ $state == running* ]]; then",
    '    if probe_app "$NEW_CID"; then misses=0; else misses=$((misses + 1)); fi',
    "  fi",
    '  ((misses < HEALTH_RETRIES)) || fail "backend-$NEW_SLOT failed its health probe $misses times in a row, $elapsed s after the switch"',
    "  left=$((WATCH_SECONDS * 1000 - ($(now_ms) - t0)))",
    "  ((left > 0)) || break",
    '  sleep "$(seconds_of "$((left < 1000 ? left : 1000))")"',
    "done",
    "# From here on the new version serves: a later failure must not undo the switch.",
    "COMMITTED=1 NEW_STARTED=0 SWITCHED=0",
    'log "backend-$NEW_SLOT stayed up for $WATCH_SECONDS s"',
  ]);
}

/**
 * Drain: the proxy drops the backup (one more graceful reload), then the old version runs
 * until every nginx worker that could still send it a request has finished (at most
 * `drainSeconds`), and is stopped with SIGTERM and `stopTimeoutSeconds` of grace.
 */
function stepDrain(): string[] {
  return fn("step_drain", [
    "STEP=drain",
    "if [[ -z $OLD_SLOT ]]; then",
    '  log "no previous version to stop"',
    "  return 0",
    "fi",
    "snapshot_workers",
    'render_upstream "$NEW_SLOT" "$NEW_ADDR" | write_file "$PROXY_DIR/upstream.conf"',
    "reload_proxy",
    "wait_workers_gone",
    'log "no nginx worker sends to backend-$OLD_SLOT any more (after $WAITED s)"',
    `${orFail(quiet(dockerStop("OLD_CID", "STOP_TIMEOUT")), "could not stop backend-$OLD_SLOT")}`,
    'remove_slot "$OLD_SLOT"',
    'log "stopped backend-$OLD_SLOT ($OLD_IMAGE)"',
  ]);
}

function stepRecord(): string[] {
  return fn("step_record", [
    "STEP=record",
    "local digest",
    `digest="$(docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$IMAGE" 2>/dev/null | grep -m 1 "^$IMAGE_REPOSITORY@" | cut -d @ -f 2 || true)"`,
    'if [[ -f $STATE_DIR/current ]]; then cp -p "$STATE_DIR/current" "$STATE_DIR/previous"; fi',
    "{",
    "  printf 'slot=%s\\nimage=%s\\ntag=%s\\ndigest=%s\\nrelease=%s\\nbackup=%s\\ndeployed_at=%s\\nfingerprint=%s\\n' \\",
    '    "$NEW_SLOT" "$IMAGE" "$IMAGE_TAG" "${digest:-unknown}" "$RELEASE" "${BACKUP_PATH:-none}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$FINGERPRINT"',
    '} | write_file "$STATE_DIR/current"',
    'printf \'%s %s slot=%s image=%s backup=%s\\n\' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$STACK" "$NEW_SLOT" "$IMAGE" "${BACKUP_PATH:-none}" >>"$STATE_DIR/history.log"',
    "# For people running compose by hand in $APP_DIR/current (see the README, The deploy).",
    `printf 'COMPOSE_PROJECT_NAME=%s\\n${slotImageVariable("blue")}=%s\\n${slotImageVariable("green")}=%s\\n' "$PROJECT" "$${slotImageVariable("blue")}" "$${slotImageVariable("green")}" | write_file "$RELEASE_DIR/.env"`,
    'ln -sfn "$RELEASE_DIR" "$APP_DIR/current.new"',
    'mv -T "$APP_DIR/current.new" "$APP_DIR/current"',
    'log "recorded: $IMAGE_TAG ($IMAGE) serves from backend-$NEW_SLOT; previous: ${OLD_IMAGE:-none}"',
  ]);
}

/** The EXIT trap: on failure, undo this run's changes in reverse order, then report. */
function onExit(): string[] {
  return fn("on_exit", [
    "local rc=$?",
    "set +e",
    "trap - ERR",
    'if [[ -n $PULL_PID ]]; then kill "$PULL_PID" 2>/dev/null; fi',
    `if [[ -n $BACKUP_CONTAINER ]]; then ${render(quiet(["docker", "rm", "-f", v("BACKUP_CONTAINER")]))}; rm -f "$BACKUP_PARTIAL"; fi`,
    "if ((rc != 0)); then",
    "  local where=$STEP",
    "  if ((SWITCHED)); then",
    "    STEP=undo",
    '    log "restoring the proxy configuration that served before"',
    "    local name",
    "    snapshot_workers",
    "    for name in upstream.conf site.conf; do",
    '      if [[ -f $TMP_DIR/$name.before ]]; then mv -f "$TMP_DIR/$name.before" "$PROXY_DIR/$name"; else rm -f "$PROXY_DIR/$name"; fi',
    "    done",
    `    if is_running "$PROXY_CID"; then ${render(quiet(nginxReload("PROXY_CID")))}; fi`,
    "    # The new slot goes only once no worker of the switched configuration can reach it.",
    "    wait_workers_gone",
    '    log "traffic is back on backend-${OLD_SLOT:-?} (after $WAITED s for the requests in flight)"',
    "  fi",
    "  if ((NEW_STARTED)); then",
    "    STEP=undo",
    '    log "removing backend-$NEW_SLOT ($IMAGE)"',
    '    remove_slot "$NEW_SLOT"',
    "  fi",
    '  if [[ -z $FAIL_REASON ]]; then FAIL_REASON="command failed (exit $rc) at line ${FAILED_LINE:-?}: ${FAILED_COMMAND:-?}"; fi',
    "  # The secrets read so far (stdin may have failed halfway), then the report: the log's",
    "  # last lines first, so that the step, the reason, what serves and the backup end it.",
    "  build_masks",
    "  report_log_tail",
    '  report "deploy FAILED on $HOST_NAME (stack $STACK) at step $where: $FAIL_REASON"',
    "  if ((LOCK_BUSY)); then",
    "    rc=$LOCK_BUSY_EXIT",
    "  elif ((COMMITTED)); then",
    '    report "the new version $IMAGE serves from backend-$NEW_SLOT; finish the step by hand"',
    "  elif [[ -n $OLD_SLOT ]]; then",
    '    report "the previous version keeps serving: $OLD_IMAGE in backend-$OLD_SLOT"',
    "  else",
    '    report "no previous version was serving on this host"',
    "  fi",
    "  if ((!LOCK_BUSY)); then",
    '    report "backup taken before this deploy: ${BACKUP_PATH:-none (the deploy stopped before the backup step)}"',
    "  fi",
    "fi",
    'if [[ -n $PROXY_CHECK_DIR ]]; then rm -rf "$PROXY_CHECK_DIR"; fi',
    'if [[ -n $TMP_DIR ]]; then rm -rf "$TMP_DIR"; fi',
    'if ((LOCKED)); then rm -f "$STATE_DIR/deploy.lock.owner"; fi',
    'exit "$rc"',
  ]);
}

/**
 * This run's arguments, from the run command's line (`./run-command.ts`): the image, its tag,
 * the registry of a private image and the migrate flag. Anything else, or one missing, stops
 * the script before it reads stdin or changes anything.
 */
function runArguments(): string[] {
  const usage = RUN_ARGUMENTS.map((name) =>
    name === "migrate" ? "migrate=0|1" : `${name}=<${name}>`,
  ).join(" ");
  return [
    "# This run's arguments (the run command's line; src/deploy/run-command.ts).",
    "IMAGE='' IMAGE_TAG='' REGISTRY='' MIGRATE=''",
    'for arg in "$@"; do',
    "  case $arg in",
    "    image=?*) IMAGE=${arg#image=} ;;",
    "    tag=?*) IMAGE_TAG=${arg#tag=} ;;",
    "    registry=?*) REGISTRY=${arg#registry=} ;;",
    "    migrate=0 | migrate=1) MIGRATE=${arg#migrate=} ;;",
    `    *) printf 'deploy: unexpected argument %q; nothing was changed\\n' "$arg" >&2; exit ${USAGE_EXIT} ;;`,
    "  esac",
    "done",
    "if [[ -z $IMAGE || -z $IMAGE_TAG || -z $REGISTRY || -z $MIGRATE ]]; then",
    `  printf 'deploy: usage: bash %s ${usage}, with the secrets as dotenv lines on stdin; nothing was changed\\n' "\${BASH_SOURCE[0]:-deploy.sh}" >&2`,
    `  exit ${USAGE_EXIT}`,
    "fi",
    'if [[ $IMAGE == *@* ]]; then IMAGE_PINNED=1 IMAGE_REPOSITORY=${IMAGE%@*}; else IMAGE_PINNED=0 IMAGE_REPOSITORY=${IMAGE%:"$IMAGE_TAG"}; fi',
    "readonly IMAGE IMAGE_TAG REGISTRY MIGRATE IMAGE_PINNED IMAGE_REPOSITORY",
  ];
}

/**
 * Where the script's output goes (see `./script-output.ts`): everything to this run's log,
 * `<appDir>/logs/<UTC time>-<pid>.log` (mode 0600, directory 0700; a temporary directory
 * before the prepare command made `<appDir>/state`), progress lines to fd 3 and the failure
 * report to fd 4.
 *
 * The deploy must not depend on the SSH connection that started it: when the connection drops
 * (no pty, so no SIGHUP; the next write to the closed pipe would kill it halfway), the deploy
 * carries on to its end, success or undo, and releases the lock. So the command SSH runs starts
 * the same script file again as a worker in its own session (`setsid`), with the same
 * arguments and stdin, its fd 3 and 4 on `<log>.out` and `<log>.err`, streams those two back
 * (`.out` to stdout, `.err` to stderr), and exits with the worker's code. Run other than from a
 * file (`bash -c`), or without `setsid`, it runs inline, fd 3 and 4 being its own stdout and
 * stderr. Either way the caller sees only progress and report lines, never a command's output.
 */
function runLog(): string[] {
  return [
    "if [[ -z ${CLICKY_DEPLOY_WORKER:-} ]]; then",
    '  if [[ -d $STATE_DIR ]] && { [[ -d $LOG_DIR ]] || mkdir -m 700 "$LOG_DIR" 2>/dev/null; }; then',
    "    # Keep the newest runs' logs (their names sort by time).",
    "    shopt -s nullglob",
    '    RUN_LOGS=("$LOG_DIR"/*.out)',
    "    shopt -u nullglob",
    `    for ((i = 0; i < \${#RUN_LOGS[@]} - ${RUN_LOGS_KEPT - 1}; i++)); do rm -f -- "\${RUN_LOGS[i]%.out}".{out,err,log}; done`,
    '    RUN_LOG="$LOG_DIR/$(date -u +%Y%m%dT%H%M%SZ)-$$"',
    "  else",
    '    RUN_LOG="$(mktemp -d "${TMPDIR:-/tmp}/clicky-deploy.XXXXXX")/run"',
    "  fi",
    '  : >"$RUN_LOG.out"',
    '  : >"$RUN_LOG.err"',
    '  : >"$RUN_LOG.log"',
    "  if [[ -f ${BASH_SOURCE[0]:-} ]] && command -v setsid >/dev/null; then",
    '    CLICKY_DEPLOY_WORKER="$RUN_LOG" setsid bash "${BASH_SOURCE[0]}" "$@" <&0 3>>"$RUN_LOG.out" 4>>"$RUN_LOG.err" >>"$RUN_LOG.log" 2>&1 &',
    "    WORKER=$!",
    '    tail -n +1 -s 0.1 --pid="$WORKER" -f "$RUN_LOG.out" &',
    '    tail -n +1 -s 0.1 --pid="$WORKER" -f "$RUN_LOG.err" >&2 &',
    "    WORKER_RC=0",
    '    wait "$WORKER" || WORKER_RC=$?',
    "    wait",
    "    # Killed before it could report (SIGKILL, out of memory): say where its log is.",
    "    if ((WORKER_RC != 0)) && [[ ! -s $RUN_LOG.err ]]; then",
    '      printf \'deploy FAILED on %s (stack %s): the deploy ended with exit %s before it could report; its log: %s\\n\' "$HOST_NAME" "$STACK" "$WORKER_RC" "$RUN_LOG.log" >&2',
    "    fi",
    '    exit "$WORKER_RC"',
    "  fi",
    '  exec 3>&1 4>&2 >>"$RUN_LOG.log" 2>&1',
    "else",
    "  RUN_LOG=$CLICKY_DEPLOY_WORKER",
    "fi",
    "readonly RUN_LOG",
  ];
}

/**
 * The deploy script of one host: one bash program, copied to the host next to the release it
 * belongs to and run by the run command's short line (`./run-command.ts`) with this run's
 * image as arguments. It reads the secrets as dotenv lines on stdin and holds no secret itself.
 *
 * Steps: lock, preflight, infra, backup (with the pull in the background), pull, migrate,
 * start, health, switch, verify, watch, drain, record. Until the watch window has passed, any
 * failure removes the new version, restores the proxy configuration, leaves the old version
 * serving and exits non-zero naming the step and the backup. A rerun with nothing changed
 * finds the same fingerprint and changes nothing. The work runs detached from the SSH
 * session (see `runLog`), so a dropped connection neither stops it halfway nor leaves the
 * lock held. What it prints is progress lines and, on failure, a report with the last lines of
 * its log on the host, every secret masked (`./script-output.ts`); commands' own output stays
 * in that log.
 */
export function buildDeployScript(input: DeployScriptInput): string {
  const lines = [
    "#!/usr/bin/env bash",
    `# clicky-delivery deploy of stack ${input.stack} to host ${input.host.name} (${input.host.host}).`,
    "# Generated by src/deploy/script.ts; the README, The deploy explains every step.",
    `# Run as: bash <this file> ${RUN_ARGUMENTS.map((a) => `${a}=...`).join(" ")} (src/deploy/run-command.ts),`,
    `# with dotenv lines on stdin: ${STDIN_KEYS.join(", ")} (the last two only for a private image).`,
    'if [ -z "${BASH_VERSION:-}" ]; then',
    '  echo "deploy: this script needs bash; run it as: bash <this file> image=... tag=... registry=... migrate=..." >&2',
    "  exit 2",
    "fi",
    "# One compound command, read whole before any of it runs: bash reads a script file as it goes.",
    "{",
    "set -Eeuo pipefail",
    "umask 077",
    "export LC_ALL=C",
    "shopt -u patsub_replacement 2>/dev/null || true",
    "",
    ...settings(input),
    `readonly LOCK_BUSY_EXIT=${LOCK_BUSY_EXIT}`,
    "",
    ...runArguments(),
    ...runLog(),
    "",
    "STEP=stdin FAIL_REASON='' FAILED_COMMAND='' FAILED_LINE=''",
    "LOCKED=0 LOCK_BUSY=0 NEW_STARTED=0 SWITCHED=0 COMMITTED=0",
    "BACKUP_PATH='' OLD_SLOT='' OLD_IMAGE='' OLD_CID='' NEW_SLOT='' NEW_CID='' NEW_ADDR='' SERVING_SLOT='' FINGERPRINT=''",
    "TMP_DIR='' HEADERS_FILE='' PROXY_CID='' PROXY_CHECK_DIR='' PULL_PID='' BACKUP_CONTAINER='' BACKUP_PARTIAL=''",
    "COMPOSE=()",
    "PROXY_WORKERS=() WAITED=''",
    "TIMINGS=()",
    "MASKS=() MASKED=''",
    ...STDIN_KEYS.map((key) => `${key}=''`),
    "",
    ...helpers(input.deploy.app.port),
    ...readStdin(),
    ...fingerprint(),
    ...nothingToDo(),
    ...stepLock(),
    ...stepPreflight(),
    ...checkReleaseProxy(),
    ...stepInfra(),
    ...stepBackup(),
    ...stepPull(),
    ...stepMigrate(),
    ...stepStart(),
    ...stepHealth(),
    ...stepSwitch(),
    ...stepVerify(),
    ...stepWatch(),
    ...stepDrain(),
    ...stepRecord(),
    ...onExit(),
    "trap on_exit EXIT",
    "trap 'exit 129' HUP",
    "trap 'exit 130' INT",
    "trap 'exit 143' TERM",
    "trap 'FAILED_COMMAND=$BASH_COMMAND FAILED_LINE=$LINENO' ERR",
    "",
    'TMP_DIR="$(mktemp -d)"',
    'HEADERS_FILE="$TMP_DIR/headers"',
    "read_stdin",
    "run_step lock",
    "run_step preflight",
    'FINGERPRINT="$(fingerprint)"',
    "if already_deployed; then",
    "  STEP=finished",
    '  log "nothing to do: $IMAGE_TAG ($IMAGE) already serves from backend-$OLD_SLOT with this release and env"',
    "  exit 0",
    "fi",
    "run_step proxy_check",
    "start_pull",
    ...DEPLOY_STEPS.slice(2).map((step) => `run_step ${step}`),
    "STEP=finished",
    "log \"deployed $IMAGE_TAG ($IMAGE) to $HOST_NAME; timings: $(IFS=,; printf '%s' \"${TIMINGS[*]}\" | sed 's/,/, /g')\"",
    "}",
    "",
  ];
  return lines.join("\n");
}
