# shellcheck shell=bash
# The deploy of one host of a fleet: app hosts with PostgreSQL and Redis on an accessories host,
# or external (deploy.accessories; docs/scaling.md). The rollout (src/deploy/fleet/rollout.ts)
# runs this script once per phase and host, holding the stack's lock on the accessories host
# (with an external database, on the first app host) meanwhile:
#   phase=database  on the accessories host: infra, backup, pull, migrate; with an external
#                   database, on the first app host: preflight, pull, pg_dump (or none, with
#                   backup: provider), migrate; once, before any app host moves;
#   phase=switch    on each app host in turn: pull, start, health, switch, verify, watch; the
#                   old version keeps running and stands by, recorded in $STATE_DIR/fleet-pending;
#   phase=commit    on each app host once every one has switched: drain the old version, record;
#   phase=revert    on the app hosts that switched, when a later one failed: traffic goes back
#                   to the old version, the new one goes.
# The steps are those of a single host (steps.sh); this file only orders them per phase.

# The phases each role takes.
readonly FLEET_DATABASE_PHASES=(database) FLEET_APP_PHASES=(switch commit revert)

# The phase argument, taken out of this run's arguments (the rest are a single host's).
fleet_phase() {
  local arg phase=''
  FLEET_ARGS=()
  for arg in "$@"; do
    case $arg in
      phase=?*) phase=${arg#phase=} ;;
      *) FLEET_ARGS+=("$arg") ;;
    esac
  done
  local -a allowed
  if [[ $FLEET_ROLE == database ]]; then allowed=("${FLEET_DATABASE_PHASES[@]}"); else allowed=("${FLEET_APP_PHASES[@]}"); fi
  # With an external database, an app host (the first) takes the database side too.
  if [[ $FLEET_DATABASE == external ]]; then allowed+=(database); fi
  if [[ " ${allowed[*]} " != *" $phase "* ]]; then
    local given=none
    if [[ -n $phase ]]; then given="$(printf '%q' "$phase")"; fi
    printf 'deploy: the %s host takes phase=%s, not %s; nothing was changed\n' "$FLEET_ROLE" "$(IFS='|'; printf '%s' "${allowed[*]}")" "$given" >&2
    exit "$USAGE_EXIT"
  fi
  PHASE=$phase
  readonly PHASE
}

# Where a switched app host keeps what the commit or the revert needs.
fleet_pending_file() {
  printf '%s/fleet-pending\n' "$STATE_DIR"
}

# Records the switch this run made: the old version stands by until the rollout decides.
write_pending() {
  printf 'image=%s\nrelease=%s\nfingerprint=%s\nold_slot=%s\nold_cid=%s\nold_addr=%s\nold_image=%s\nnew_slot=%s\nnew_cid=%s\nnew_addr=%s\nat=%s\n' \
    "$IMAGE" "$RELEASE" "$FINGERPRINT" "$OLD_SLOT" "$OLD_CID" "$OLD_ADDR" "$OLD_IMAGE" "$NEW_SLOT" "$NEW_CID" "$NEW_ADDR" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" |
    write_file "$(fleet_pending_file)"
}

# Reads a pending switch back; returns 1 when there is none.
read_pending() {
  local file
  file="$(fleet_pending_file)"
  [[ -f $file ]] || return 1
  PENDING_IMAGE="$(state_get "$file" image)"
  FINGERPRINT="$(state_get "$file" fingerprint)"
  OLD_SLOT="$(state_get "$file" old_slot)"
  OLD_CID="$(state_get "$file" old_cid)"
  OLD_ADDR="$(state_get "$file" old_addr)"
  OLD_IMAGE="$(state_get "$file" old_image)"
  NEW_SLOT="$(state_get "$file" new_slot)"
  NEW_CID="$(state_get "$file" new_cid)"
  NEW_ADDR="$(state_get "$file" new_addr)"
  PROXY_CID="$(container_of proxy)"
}

# Traffic back to the version that served before the pending switch; the new one goes. When
# that version no longer runs (it crashed meanwhile), the new one keeps serving and the switch
# is committed instead: a host serving nothing helps no one.
revert_pending() {
  STEP=revert
  if [[ -n $OLD_SLOT ]] && ! is_running "$OLD_CID"; then
    log "WARNING: backend-$OLD_SLOT ($OLD_IMAGE) no longer runs, so traffic cannot go back to it: backend-$NEW_SLOT ($PENDING_IMAGE) keeps serving"
    if [[ $PENDING_IMAGE == "$IMAGE" ]]; then
      commit_pending
    else
      # Settling before another image's switch: this run's preflight finds it serving.
      rm -f "$(fleet_pending_file)"
    fi
    return 0
  fi
  if [[ -n $OLD_SLOT ]]; then
    set_routing "$OLD_SLOT" "$OLD_ADDR"
  else
    rm -f "$PROXY_DIR/$ROUTING_NAME"
  fi
  if [[ -n $NEW_ADDR ]] && is_running "$PROXY_CID"; then wait_drained "$NEW_ADDR" 1100; fi
  remove_slot "$NEW_SLOT"
  rm -f "$(fleet_pending_file)"
  if [[ -n $OLD_SLOT ]]; then
    log "traffic is back on backend-$OLD_SLOT ($OLD_IMAGE); backend-$NEW_SLOT ($PENDING_IMAGE) was removed"
  else
    log "backend-$NEW_SLOT ($PENDING_IMAGE) was removed; no version served here before it"
  fi
}

# The pending switch becomes the serving version: the old one drains and stops, the host records.
commit_pending() {
  COMMITTED=1
  CLICKY_IMAGE_BLUE=$PENDING_IMAGE CLICKY_IMAGE_GREEN=$PENDING_IMAGE
  printf -v "CLICKY_IMAGE_${NEW_SLOT^^}" '%s' "$PENDING_IMAGE"
  if [[ -n $OLD_SLOT ]]; then printf -v "CLICKY_IMAGE_${OLD_SLOT^^}" '%s' "$OLD_IMAGE"; fi
  run_step drain
  run_step record
  rm -f "$(fleet_pending_file)"
}

# A switch that a rollout left pending (it was stopped before it decided): back to the version
# that served before, when it still runs, so that this rollout starts from one version.
settle_pending() {
  read_pending || return 0
  log "a rollout that did not finish left backend-$NEW_SLOT ($PENDING_IMAGE) switched in, backend-${OLD_SLOT:-none} standing by: going back first"
  revert_pending
  OLD_SLOT='' OLD_CID='' OLD_ADDR='' OLD_IMAGE='' NEW_SLOT='' NEW_CID='' NEW_ADDR='' FINGERPRINT='' PROXY_CID=''
}

# --- the accessories host's preflight: docker, compose, the release, disk for a backup.
step_fleet_preflight() {
  STEP=preflight
  command -v docker >/dev/null || fail "docker is not installed or not on the PATH of $(id -un)"
  docker info >/dev/null 2>&1 || fail "cannot reach the Docker engine as $(id -un) (is it running, is $(id -un) in the docker group?)"
  if [[ $COMPOSE_PREFERENCE != v1 ]] && docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif [[ $COMPOSE_PREFERENCE != v2 ]] && command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
  else
    fail "no compose to use: deploy.compose is $COMPOSE_PREFERENCE, and neither docker compose (v2) nor docker-compose (v1) is there for it (install one)"
  fi
  local entry name got
  for entry in "${RELEASE_SHA256[@]}"; do
    name=${entry#* }
    got="$(sha256sum <"$RELEASE_DIR/$name" 2>/dev/null | cut -c 1-64 || true)"
    [[ $got == "${entry%% *}" ]] || fail "$RELEASE_DIR/$name differs from release $RELEASE of the stack (missing, or changed on the host after it was copied); run pulumi up again, which copies it back; nothing was changed"
  done
  export CLICKY_IMAGE_MIGRATE="$IMAGE"
  compose config -q >/dev/null 2>&1 || fail "the compose file $COMPOSE_FILE is not valid: $(compose config -q 2>&1 | tail -n 1)"
  local pg_cid need_kib free_kib
  pg_cid="$(container_of postgres)"
  if is_running "$pg_cid"; then
    need_kib="$(PG_CID=$pg_cid pg_query 'SELECT pg_database_size(current_database())' | tr -dc 0-9 || true)"
    need_kib=$((${need_kib:-0} / 1024 + BACKUP_MIN_FREE_MIB * 1024))
    free_kib="$(df -Pk "$BACKUP_DIR" | awk 'NR == 2 { print $4 }')"
    if ((free_kib < need_kib)); then
      fail "not enough disk for a backup in $BACKUP_DIR: $((free_kib / 1024)) MiB free, $((need_kib / 1024)) MiB needed (the database and backup.minFreeMiB); nothing was changed"
    fi
  fi
  log "compose: ${COMPOSE[*]}; accessories host of the stack"
}

# --- the accessories host's infra: PostgreSQL and Redis up and healthy, as on one host. The
# password must be the configured one: a rotation needs every app host's old version trusted
# while it stops, which this deploy does only on one host.
step_fleet_infra() {
  STEP=infra
  snapshot_containers
  infra_up
  check_infra_image postgres "$POSTGRES_IMAGE"
  check_infra_image redis "$REDIS_IMAGE"
  PG_CID="$(container_of postgres)"
  local verdict
  verdict="$(check_db_password)"
  case $verdict in
    ok) ;;
    refused) fail "PostgreSQL refuses the configured password for role $DB_USER: changing it is done by a single-host deploy only, not across app hosts yet (docs/scaling.md); set postgresPassword back, or change the role's password by hand (docs/operations.md); nothing was changed" ;;
    *) fail "could not check the database password of role $DB_USER: ${verdict#error: }; nothing was changed" ;;
  esac
}

# --- the database side with an external database, on the first app host: its own preflight
# (what serves here, the release), the pull, the backup (a pg_dump from here, or the provider's
# recovery), the migrations in a one-off container of the new image on this host.
fleet_external_database() {
  run_step lock
  run_step preflight
  start_pull
  run_step external_backup
  run_step pull
  run_step migrate
  STEP=finished
  log "database side of $IMAGE_TAG ($IMAGE) ready, run from $HOST_NAME against the external database; timings: $(timings_text)"
}

# Percent-decodes $1 (a URL's user, password or database name).
url_decode() {
  local text=${1//+/%2B}
  printf '%b' "${text//%/\\x}"
}

# The external database's connection from DATABASE_URL (scheme://user:password@host[:port]/name
# [?query]) as libpq's variables, exported in the caller's subshell only: PGHOST, PGPORT, PGUSER,
# PGPASSWORD, PGDATABASE, and PGSSLMODE from `sslmode=` or `ssl=` in the query. Never a command line.
external_pg_env() {
  local url=${SECRETS[DATABASE_URL]} rest userinfo hostport query='' host port=5432 mode=''
  rest=${url#*://}
  userinfo=${rest%@*}
  rest=${rest##*@}
  hostport=${rest%%/*}
  rest=${rest#*/}
  if [[ $rest == *\?* ]]; then
    query=${rest#*\?}
    rest=${rest%%\?*}
  fi
  if [[ $hostport == \[*\]:* ]]; then
    host=${hostport%]:*} host=${host#[} port=${hostport##*]:}
  elif [[ $hostport == \[*\] ]]; then
    host=${hostport#[} host=${host%]}
  elif [[ $hostport == *:* ]]; then
    host=${hostport%:*} port=${hostport##*:}
  else
    host=$hostport
  fi
  mode="$(tr '&' '\n' <<<"$query" | sed -n 's/^\(sslmode\|ssl\)=//p' | head -n 1)"
  case $mode in true) mode=require ;; false) mode=disable ;; esac
  export PGHOST=$host PGPORT=$port
  PGUSER="$(url_decode "${userinfo%%:*}")"
  PGPASSWORD="$(url_decode "${userinfo#*:}")"
  PGDATABASE="$(url_decode "$rest")"
  export PGUSER PGPASSWORD PGDATABASE
  if [[ -n $mode ]]; then export PGSSLMODE=$mode; fi
}

# --- backup of an external database: a custom-format pg_dump in a throwaway container of the
# PostgreSQL image, on this host's network (it reaches the database as the app does), checked
# with pg_restore --list, kept in <appDir>/backups like a single host's; or, with
# accessories.backup `provider`, no dump and a statement that the provider's recovery covers it.
step_external_backup() {
  STEP=backup
  if [[ $FLEET_BACKUP == provider ]]; then
    log "no dump: deploy.accessories.backup is provider, so the provider's point-in-time recovery covers this deploy; to undo its migrations' data changes, restore the database to a time before $(date -u +%Y-%m-%dT%H:%M:%SZ) from the provider's console"
    return 0
  fi
  [[ ${SECRETS[DATABASE_URL]#*://} == *@*/* ]] || fail "DATABASE_URL (the secret databaseUrl) is not scheme://user:password@host:port/name; nothing was changed"
  local partial
  begin_dump
  partial=${BACKUP_PARTIAL##*/}
  # In the background, so that backup.timeoutSeconds bounds it; the lock's descriptor is closed,
  # so a dump that outlives a killed deploy never holds it.
  # shellcheck disable=SC2016 # the command line runs in the dump's container
  (
    exec 9>&-
    external_pg_env
    env_args=(-e PGHOST -e PGPORT -e PGUSER -e PGPASSWORD -e PGDATABASE)
    if [[ -v PGSSLMODE ]]; then env_args+=(-e PGSSLMODE); fi
    exec docker run --rm --name "$BACKUP_CONTAINER" "${BACKUP_CPU[@]}" --network host --user "$(id -u):$(id -g)" "${env_args[@]}" -v "$BACKUP_DIR:/backups" --entrypoint sh "$POSTGRES_IMAGE" -c 'pg_dump -Fc -Z "$1" -f "/backups/$2" && pg_restore --list "/backups/$2"' sh "$BACKUP_COMPRESSION" "$partial"
  ) >"$TMP_DIR/backup.toc" 2>"$TMP_DIR/backup.err" &
  BACKUP_PID=$!
  log "dumping the external database to ${BACKUP_TARGET##*/}"
  # Kept (or failed) at once: the app hosts switch later, in their own phase.
  keep_dump "the external database" "" || fail "$BACKUP_ERROR"
}

fleet_database() {
  if [[ $FLEET_DATABASE == external ]]; then
    fleet_external_database
    return 0
  fi
  run_step lock
  run_step fleet_preflight
  start_pull
  run_step fleet_infra
  run_step backup
  # The app hosts switch later, in their own phase: the dump is kept before the migration, always.
  finish_backup
  run_step pull
  # The migration's one-off container is the compose service backend-migrate.
  NEW_SLOT=migrate
  run_step migrate
  STEP=finished
  log "database side of $IMAGE_TAG ($IMAGE) ready on $HOST_NAME; timings: $(timings_text)"
}

# An app host that still runs the project's own PostgreSQL was a single host: its data is there,
# not on the accessories host or the external database this release points the app at.
# Switching would serve the users an empty or another database, so nothing moves until the data
# has been moved and that container removed (docs/scaling.md, From one host to several).
refuse_local_database() {
  local cid
  cid="$(container_of postgres)"
  if is_running "$cid"; then
    fail "$HOST_NAME still runs this project's own PostgreSQL ($(docker inspect -f '{{.Name}}' "$cid" 2>/dev/null | tr -d /)), which holds the data of a single-host deploy: move its data to the stack's database first, then remove that container (docs/scaling.md, From one host to several); nothing was changed here"
  fi
}

fleet_switch() {
  run_step lock
  settle_pending
  run_step preflight
  refuse_local_database
  FINGERPRINT="$(fingerprint)"
  if already_deployed; then
    if ((${#SITE_DRIFT[@]})); then repair_site; fi
    STEP=finished
    log "nothing to do: $IMAGE_TAG ($IMAGE) already serves from backend-$OLD_SLOT with this release and env"
    return 0
  fi
  run_step proxy_check
  start_pull
  local step
  for step in pull start health switch verify watch; do run_step "$step"; done
  write_pending
  STEP=finished
  log "switched $HOST_NAME to $IMAGE_TAG ($IMAGE) in backend-$NEW_SLOT; backend-${OLD_SLOT:-none} stands by until the rollout commits; timings: $(timings_text)"
}

fleet_commit() {
  run_step lock
  if ! read_pending; then
    STEP=finished
    log "nothing to commit on $HOST_NAME: no switch is pending"
    return 0
  fi
  [[ $PENDING_IMAGE == "$IMAGE" ]] || fail "the switch pending on $HOST_NAME is to $PENDING_IMAGE, not $IMAGE; nothing was changed"
  commit_pending
  STEP=finished
  log "committed $IMAGE_TAG ($IMAGE) on $HOST_NAME"
}

fleet_revert() {
  run_step lock
  if ! read_pending; then
    STEP=finished
    log "nothing to revert on $HOST_NAME: no switch is pending"
    return 0
  fi
  revert_pending
  STEP=finished
}

fleet_main() {
  require_settings
  if [[ ! -v FLEET_ROLE ]]; then
    printf 'deploy: setting FLEET_ROLE is missing from the preamble; nothing was changed\n' >&2
    exit "$USAGE_EXIT"
  fi
  RELEASE_DIR="$APP_DIR/releases/$RELEASE"
  COMPOSE_FILE="$RELEASE_DIR/docker-compose.yml"
  SITE_FILE="$RELEASE_DIR/site.conf"
  STATE_DIR="$APP_DIR/state"
  BACKUP_DIR="$APP_DIR/backups"
  ENV_DIR="$APP_DIR/env"
  PROXY_DIR="$APP_DIR/proxy"
  LOG_DIR="$APP_DIR/logs"
  readonly RELEASE_DIR COMPOSE_FILE SITE_FILE STATE_DIR BACKUP_DIR ENV_DIR PROXY_DIR LOG_DIR
  fleet_phase "$@"
  parse_arguments "${FLEET_ARGS[@]}"
  detach "$@"

  STEP=stdin FAIL_REASON='' FAILED_COMMAND='' FAILED_LINE=''
  LOCKED=0 LOCK_BUSY=0 COMMITTED=0
  BACKUP_PATH='' OLD_SLOT='' OLD_IMAGE='' OLD_CID='' NEW_SLOT='' NEW_CID='' NEW_ADDR='' OLD_ADDR='' SERVING_SLOT='' FINGERPRINT=''
  TMP_DIR='' HEADERS_FILE='' PROXY_CID='' PROXY_CHECK_DIR='' PULL_PID='' BACKUP_CONTAINER='' BACKUP_PARTIAL='' BACKUP_PID='' BACKUP_TARGET='' BACKUP_T0=0 BACKUP_ERROR='' BACKUP_IMAGE=''
  MIGRATION_CONTAINER='' MIGRATION_VERDICT='' MIGRATION_RC=0 LOCK_HOLDERS='' PG_CID='' PENDING_IMAGE='' HELD_PID=''
  ROTATION=0 ROTATION_BRIDGE='' ROTATION_VERIFIER=''
  CHECK_PID='' CHECK_T0=0 EARLY_STEPS=() BACKUP_DISCARD=0 DB_PASSWORD_STATE=''
  COMPOSE=()
  PROXY_WORKERS=() WAITED='' DRAINED=0 PROXY_LOADED=0 SITE_DRIFT=()
  TIMINGS=()

  trap on_exit EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'FAILED_COMMAND=$BASH_COMMAND FAILED_LINE=$LINENO' ERR

  TMP_DIR="$(mktemp -d)"
  HEADERS_FILE="$TMP_DIR/headers"
  read_stdin
  "fleet_$PHASE"
}
