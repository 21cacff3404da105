// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are bash, where ${...} is bash syntax
import { type DeployConfig, type DeployHost, registryOf } from "../config/deploy";
import {
  compose,
  composeContainerId,
  composeEnsureRunning,
  composeRemove,
  composeRunOnce,
  composeStart,
  composeStop,
  curlThroughProxy,
  dockerImagePresent,
  dockerInspect,
  dockerLogin,
  dockerPull,
  nginxReload,
  nginxTest,
  pgDatabaseSize,
  pgDump,
  pgRestoreList,
  slotServiceOf,
} from "./commands";
import {
  APP_SECRET_ENV,
  COMPOSE_FILE,
  renderUpstream,
  SITE_FILE,
  SLOT_HEADER,
  type Slot,
  slotImageVariable,
} from "./compose";
import { all, assign, assignArray, type Cmd, quiet, quote, raw, render } from "./shell";
import { REQUIRED_STDIN_KEYS, STDIN_KEYS } from "./stdin";

/** Everything the deploy script of one host is built from. */
export interface DeployScriptInput {
  readonly stack: string;
  readonly host: DeployHost;
  readonly deploy: DeployConfig;
  /** Release id: the content hash of the copied compose project. */
  readonly release: string;
}

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
  "drain",
  "record",
] as const;

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
  const registry = deploy.registry ?? registryOf(deploy.image.repository);
  const lines = [
    assign("STACK", stack),
    assign("HOST_NAME", host.name),
    assign("APP_DIR", deploy.appDir),
    assign("PROJECT", deploy.composeProject),
    assign("RELEASE", input.release),
    assign("IMAGE", imageReference(deploy.image)),
    assign("IMAGE_REPOSITORY", deploy.image.repository),
    assign("IMAGE_TAG", deploy.image.tag),
    assign("IMAGE_PINNED", deploy.image.digest ? "1" : "0"),
    assign("REGISTRY", registry),
    assign("COMPOSE_PREFERENCE", deploy.compose),
    assign("MIGRATE", deploy.migrate ? "1" : "0"),
    assignArray("MIGRATION_COMMAND", deploy.migrationCommand),
    assign("DB_NAME", deploy.database.name),
    assign("DB_USER", deploy.database.user),
    assign("BACKUP_KEEP", String(deploy.backup.keep)),
    assign("BACKUP_MIN_FREE_MIB", String(deploy.backup.minFreeMiB)),
    assignArray("VERIFY_PATHS", deploy.app.verifyPaths),
    assign("PROXY_URL", proxyUrl(deploy.proxy)),
    assign("HEALTH_TIMEOUT", String(deploy.health.timeoutSeconds)),
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
    `readonly ${[...names, "RELEASE_DIR", "COMPOSE_FILE", "STATE_DIR", "BACKUP_DIR", "ENV_DIR", "PROXY_DIR"].join(" ")}`,
  ];
}

/** Helpers every step uses: logging, failing, state files, waiting for health. */
function helpers(): string[] {
  const secretAssignments = APP_SECRET_ENV.map((key) => `${key}="$${key}"`).join(" ");
  return [
    ...fn("log", ['printf \'[deploy %s] %s: %s\\n\' "$HOST_NAME" "$STEP" "$*"']),
    "# Ends the deploy with a reason; the EXIT trap undoes what this run changed and reports.",
    ...fn("fail", ['FAIL_REASON="$*"', "exit 1"]),
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
    ...fn("container_of", [
      `${render(composeContainerId(raw('"$1"')))} 2>/dev/null | head -n 1 || true`,
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
    "# Waits until a service's container is healthy; fails on exit, crash loop, unhealthy or timeout.",
    ...fn("wait_healthy", [
      "local service=$1 timeout=$2 cid state deadline",
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
      "  if ((SECONDS >= deadline)); then",
      '    fail "$service was not healthy after $timeout s (last probe: $(last_probe "$cid"))"',
      "  fi",
      "  sleep 1",
      "done",
    ]),
    "# Stops and removes a backend slot's container, if any.",
    ...fn("remove_slot", [`${render(quiet(composeRemove(slotServiceOf("1"))))} || true`]),
    "# The slot the proxy's upstream file names, empty before the first switch.",
    ...fn("serving_slot", [
      "local slot",
      'slot="$(sed -n \'s/^# .*slot=\\([a-z]*\\)$/\\1/p\' "$PROXY_DIR/upstream.conf" 2>/dev/null | head -n 1 || true)"',
      "case $slot in blue | green) printf '%s\\n' \"$slot\" ;; esac",
    ]),
    "# One GET through the proxy; prints `<status> <slot>`.",
    ...fn("probe_proxy", [
      "local url=$1 code",
      ': >"$HEADERS_FILE"',
      `code="$(${render(curlThroughProxy('"$url"', "HEADERS_FILE"))} 2>/dev/null)" || code=000`,
      `printf '%s %s\\n' "$code" "$(sed -n 's/^${SLOT_HEADER}: *\\([a-z]*\\).*/\\1/Ip' "$HEADERS_FILE" | head -n 1)"`,
    ]),
  ];
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
    'log "lock held"',
  ]);
}

function stepPreflight(): string[] {
  return fn("step_preflight", [
    "STEP=preflight",
    'command -v docker >/dev/null || fail "docker is not installed or not on the PATH of $(id -un)"',
    `${render(quiet(["docker", "info"]))} || fail "cannot reach the Docker engine as $(id -un) (is it running, is $(id -un) in the docker group?)"`,
    "case $COMPOSE_PREFERENCE in",
    "  v2) COMPOSE=(docker compose) ;;",
    "  v1) COMPOSE=(docker-compose) ;;",
    "  *)",
    `    if ${render(quiet(["docker", "compose", "version"]))}; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi`,
    "    ;;",
    "esac",
    `${render(quiet([all("COMPOSE"), "version"]))} || fail "\${COMPOSE[*]} is not available (install docker compose v2, or docker-compose v1)"`,
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
    "",
    "# Room for a backup: the database's size plus the configured margin.",
    "local pg_cid need_kib free_kib",
    'pg_cid="$(container_of postgres)"',
    'if is_running "$pg_cid"; then',
    `  need_kib="$(${render(pgDatabaseSize("DB_USER", "DB_NAME"))} 2>/dev/null | tr -dc 0-9 || true)"`,
    "  need_kib=$(( ${need_kib:-0} / 1024 + BACKUP_MIN_FREE_MIB * 1024 ))",
    `  free_kib="$(df -Pk "$BACKUP_DIR" | awk 'NR == 2 { print $4 }')"`,
    "  if (( free_kib < need_kib )); then",
    '    fail "not enough disk for a backup in $BACKUP_DIR: $((free_kib / 1024)) MiB free, $((need_kib / 1024)) MiB needed"',
    "  fi",
    "fi",
    'log "compose: ${COMPOSE[*]}; serving: ${OLD_SLOT:-nothing}${OLD_IMAGE:+ ($OLD_IMAGE)}; new slot: $NEW_SLOT"',
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
    'is_running "$(container_of proxy)"',
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
      `POSTGRES_PASSWORD="$POSTGRES_PASSWORD" ${orFail(composeEnsureRunning("postgres", "redis"), "could not start postgres and redis")}`,
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
  return fn("step_backup", [
    "STEP=backup",
    "local stamp partial",
    'stamp="$(date -u +%Y%m%dT%H%M%SZ)"',
    'BACKUP_PATH="$BACKUP_DIR/$STACK-$stamp-$IMAGE_TAG.dump"',
    'partial="$BACKUP_PATH.partial"',
    `${render(pgDump("DB_USER", "DB_NAME"))} >"$partial" || { rm -f "$partial"; BACKUP_PATH=""; fail "pg_dump of $DB_NAME failed"; }`,
    `${render(pgRestoreList())} <"$partial" >"$TMP_DIR/backup.toc" 2>&1 || { rm -f "$partial"; BACKUP_PATH=""; fail "the dump does not read back with pg_restore --list"; }`,
    'grep -q "dbname: $DB_NAME" "$TMP_DIR/backup.toc" || { rm -f "$partial"; BACKUP_PATH=""; fail "the dump is not of database $DB_NAME"; }',
    'mv -f "$partial" "$BACKUP_PATH"',
    'log "database saved to $BACKUP_PATH ($(du -k "$BACKUP_PATH" | cut -f 1) KiB, verified with pg_restore --list)"',
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

function stepPull(): string[] {
  return fn("step_pull", [
    "STEP=pull",
    `if [[ $IMAGE_PINNED == 1 ]] && ${render(quiet(dockerImagePresent("IMAGE")))}; then`,
    '  log "$IMAGE is already on this host"',
    "  return 0",
    "fi",
    'local docker_config=""',
    "if [[ -n ${REGISTRY_USERNAME:-} ]]; then",
    '  docker_config="$TMP_DIR/docker"',
    '  mkdir -p "$docker_config"',
    `  printf '%s' "$REGISTRY_TOKEN" | ${render(quiet(dockerLogin("docker_config", "REGISTRY", "REGISTRY_USERNAME")))} ||`,
    '    fail "login to $REGISTRY as $REGISTRY_USERNAME failed"',
    "fi",
    orFail([...dockerPull("docker_config", "IMAGE"), raw(">/dev/null")], "could not pull $IMAGE"),
    'log "pulled $IMAGE"',
  ]);
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
    'log "started backend-$NEW_SLOT with $IMAGE"',
  ]);
}

function stepHealth(): string[] {
  return fn("step_health", [
    "STEP=health",
    'wait_healthy "backend-$NEW_SLOT" "$HEALTH_TIMEOUT"',
    'log "backend-$NEW_SLOT is healthy"',
  ]);
}

/** One bash word for a line of text in which `@SLOT@` stands for the new slot's name. */
function wordWithSlot(line: string): string {
  return line
    .split("@SLOT@")
    .map((part) => (part === "" ? "" : quote(part)))
    .join('"$NEW_SLOT"');
}

function stepSwitch(appPort: number): string[] {
  const upstream = renderUpstream("@SLOT@" as Slot, appPort)
    .trimEnd()
    .split("\n");
  return fn("step_switch", [
    "STEP=switch",
    "local name",
    "for name in upstream.conf site.conf; do",
    '  if [[ -f $PROXY_DIR/$name ]]; then cp -p "$PROXY_DIR/$name" "$TMP_DIR/$name.before"; fi',
    "done",
    "SWITCHED=1",
    `write_file "$PROXY_DIR/site.conf" <"$RELEASE_DIR/${SITE_FILE}"`,
    "# shellcheck disable=SC2016 # $host, $clicky_backend and $clicky_slot are nginx variables",
    `printf '%s\\n' ${upstream.map(wordWithSlot).join(" ")} | write_file "$PROXY_DIR/upstream.conf"`,
    'if is_running "$(container_of proxy)"; then',
    `  ${orFail(nginxTest(), "nginx rejected the new configuration")}`,
    `  ${orFail(nginxReload(), "nginx did not reload")}`,
    "else",
    `  ${orFail(composeStart("proxy"), "could not start the proxy")}`,
    '  wait_healthy proxy "$HEALTH_TIMEOUT"',
    "fi",
    "# Until the proxy answers from the new slot (reload is asynchronous).",
    "local i answer",
    "for ((i = 0; i < 50; i++)); do",
    '  answer="$(probe_proxy "$PROXY_URL${VERIFY_PATHS[0]}")"',
    '  [[ ${answer#* } == "$NEW_SLOT" ]] && break',
    "  sleep 0.2",
    "done",
    '[[ ${answer#* } == "$NEW_SLOT" ]] || fail "the proxy still answers from ${answer#* } after the switch"',
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
    "# From here on the new version serves: a later failure must not undo the switch.",
    "NEW_STARTED=0",
    "SWITCHED=0",
    "COMMITTED=1",
  ]);
}

function stepDrain(): string[] {
  return fn("step_drain", [
    "STEP=drain",
    "if [[ -z $OLD_SLOT ]]; then",
    '  log "no previous version to stop"',
    "  return 0",
    "fi",
    'log "letting backend-$OLD_SLOT finish its requests for $DRAIN_SECONDS s"',
    'sleep "$DRAIN_SECONDS"',
    `${orFail(quiet(composeStop(slotServiceOf("OLD_SLOT"), "STOP_TIMEOUT")), "could not stop backend-$OLD_SLOT")}`,
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
    "if ((rc != 0)); then",
    "  local where=$STEP",
    "  if ((SWITCHED)); then",
    "    STEP=undo",
    '    log "restoring the proxy configuration that served before"',
    "    local name",
    "    for name in upstream.conf site.conf; do",
    '      if [[ -f $TMP_DIR/$name.before ]]; then mv -f "$TMP_DIR/$name.before" "$PROXY_DIR/$name"; else rm -f "$PROXY_DIR/$name"; fi',
    "    done",
    `    if is_running "$(container_of proxy)"; then ${render(quiet(nginxReload()))}; fi`,
    "  fi",
    "  if ((NEW_STARTED)); then",
    "    STEP=undo",
    '    log "removing backend-$NEW_SLOT ($IMAGE)"',
    '    remove_slot "$NEW_SLOT"',
    "  fi",
    '  if [[ -z $FAIL_REASON ]]; then FAIL_REASON="command failed (exit $rc) at line ${FAILED_LINE:-?}: ${FAILED_COMMAND:-?}"; fi',
    '  printf \'deploy FAILED on %s (stack %s) at step %s: %s\\n\' "$HOST_NAME" "$STACK" "$where" "$FAIL_REASON" >&2',
    "  if ((LOCK_BUSY)); then",
    "    rc=$LOCK_BUSY_EXIT",
    "  elif ((COMMITTED)); then",
    '    printf \'the new version %s serves from backend-%s; finish the step by hand\\n\' "$IMAGE" "$NEW_SLOT" >&2',
    "  elif [[ -n $OLD_SLOT ]]; then",
    '    printf \'the previous version keeps serving: %s in backend-%s\\n\' "$OLD_IMAGE" "$OLD_SLOT" >&2',
    "  else",
    "    printf 'no previous version was serving on this host\\n' >&2",
    "  fi",
    "  if ((!LOCK_BUSY)); then",
    "    printf 'backup taken before this deploy: %s\\n' \"${BACKUP_PATH:-none (the deploy stopped before the backup step)}\" >&2",
    "  fi",
    "fi",
    'if [[ -n $TMP_DIR ]]; then rm -rf "$TMP_DIR"; fi',
    'if ((LOCKED)); then rm -f "$STATE_DIR/deploy.lock.owner"; fi',
    'exit "$rc"',
  ]);
}

/**
 * The deploy script of one host: one bash program, the `create` of its remote command. It
 * reads the secrets as dotenv lines on stdin and holds no secret itself.
 *
 * Steps: lock, preflight, infra, backup, pull, migrate, start, health, switch, verify, drain,
 * record. Until `verify` succeeds, any failure removes the new version, restores the proxy
 * configuration, leaves the old version serving and exits non-zero naming the step and the
 * backup. A rerun with nothing changed finds the same fingerprint and changes nothing.
 */
export function buildDeployScript(input: DeployScriptInput): string {
  const lines = [
    "#!/usr/bin/env bash",
    `# clicky-delivery deploy of stack ${input.stack} to host ${input.host.name} (${input.host.host}).`,
    "# Generated by src/deploy/script.ts; the README, The deploy explains every step.",
    `# Reads dotenv lines on stdin: ${STDIN_KEYS.join(", ")} (the last two only for a private image).`,
    'if [ -z "${BASH_VERSION:-}" ]; then',
    '  echo "deploy: this script needs bash; make bash the login shell of $(id -un)" >&2',
    "  exit 2",
    "fi",
    "set -Eeuo pipefail",
    "umask 077",
    "export LC_ALL=C",
    "",
    ...settings(input),
    `readonly LOCK_BUSY_EXIT=${LOCK_BUSY_EXIT}`,
    "",
    "STEP=stdin FAIL_REASON='' FAILED_COMMAND='' FAILED_LINE=''",
    "LOCKED=0 LOCK_BUSY=0 NEW_STARTED=0 SWITCHED=0 COMMITTED=0",
    "BACKUP_PATH='' OLD_SLOT='' OLD_IMAGE='' OLD_CID='' NEW_SLOT='' SERVING_SLOT='' FINGERPRINT=''",
    "TMP_DIR='' HEADERS_FILE=''",
    "COMPOSE=()",
    ...STDIN_KEYS.map((key) => `${key}=''`),
    "",
    ...helpers(),
    ...readStdin(),
    ...fingerprint(),
    ...nothingToDo(),
    ...stepLock(),
    ...stepPreflight(),
    ...stepInfra(),
    ...stepBackup(),
    ...stepPull(),
    ...stepMigrate(),
    ...stepStart(),
    ...stepHealth(),
    ...stepSwitch(input.deploy.app.port),
    ...stepVerify(),
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
    "step_lock",
    "step_preflight",
    'FINGERPRINT="$(fingerprint)"',
    "if already_deployed; then",
    "  STEP=finished",
    '  log "nothing to do: $IMAGE_TAG ($IMAGE) already serves from backend-$OLD_SLOT with this release and env"',
    "  exit 0",
    "fi",
    ...DEPLOY_STEPS.slice(2).map((step) => `step_${step}`),
    "STEP=finished",
    'log "deployed $IMAGE_TAG ($IMAGE) to $HOST_NAME"',
    "",
  ];
  return lines.join("\n");
}
