# shellcheck shell=bash
# The steps, in the order main.sh runs them. A step that changes the host registers its undo
# (`on_failure undo_...`), defined beside it; until the watch window has passed (`commit`), a
# failure runs the registered undos, newest first, so the old version keeps serving.

UNDO=()

# Registers an undo for a failure from here on.
on_failure() {
  UNDO+=("$1")
}

# From here on the new version serves: a later failure must not undo the switch.
commit() {
  COMMITTED=1
  UNDO=()
}

# Runs the registered undos, newest first (from the EXIT trap, on failure).
run_undos() {
  local i
  for ((i = ${#UNDO[@]} - 1; i >= 0; i--)); do "${UNDO[i]}"; done
  UNDO=()
}

# Runs one step and records how long it took; RUN_STEP and RUN_STEP_T0 say which step runs
# and since when, for the report of a deploy that fails in it.
RUN_STEP='' RUN_STEP_T0=0
run_step() {
  RUN_STEP=$1 RUN_STEP_T0="$(now_ms)"
  "step_$1"
  TIMINGS+=("$1 $(seconds_of "$(($(now_ms) - RUN_STEP_T0))") s")
  RUN_STEP=''
}

# The steps' times so far: `lock 0.0 s, preflight 0.8 s, ...`.
timings_text() {
  local text=''
  if ((${#TIMINGS[@]})); then printf -v text '%s, ' "${TIMINGS[@]}"; fi
  printf '%s' "${text%, }"
}

# --- lock: one deploy at a time on a host; a second one fails fast, naming the holder.
step_lock() {
  STEP=lock
  command -v flock >/dev/null || fail "flock is not installed (package util-linux)"
  [[ -d $STATE_DIR ]] || fail "$STATE_DIR is missing: the prepare command did not run"
  exec 9>>"$STATE_DIR/deploy.lock"
  if ! flock -n 9; then
    local holder="no owner recorded yet"
    [[ -s $STATE_DIR/deploy.lock.owner ]] && holder="$(head -c 400 "$STATE_DIR/deploy.lock.owner")"
    LOCK_BUSY=1
    fail "another deploy holds $STATE_DIR/deploy.lock: $holder; this one changed nothing"
  fi
  LOCKED=1
  local client="${SSH_CLIENT:-local}"
  printf 'deploy of %s (stack %s) by %s from %s, pid %s, since %s\n' \
    "$IMAGE" "$STACK" "$(id -un)" "${client%% *}" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" |
    write_file "$STATE_DIR/deploy.lock.owner"
  log "lock held; deploying $IMAGE_TAG ($IMAGE), release $RELEASE; this run's log: $RUN_LOG.log"
}

# --- preflight: what the host has and serves, and room for a backup; changes nothing.
step_preflight() {
  STEP=preflight
  command -v docker >/dev/null || fail "docker is not installed or not on the PATH of $(id -un)"
  docker info >/dev/null 2>&1 || fail "cannot reach the Docker engine as $(id -un) (is it running, is $(id -un) in the docker group?)"
  # The compose variant; v1 is a Python program that takes a while to start, so it is
  # looked up on the PATH rather than asked for its version.
  if [[ $COMPOSE_PREFERENCE != v1 ]] && docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif [[ $COMPOSE_PREFERENCE != v2 ]] && command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
  else
    fail "no compose to use: deploy.compose is $COMPOSE_PREFERENCE, and neither docker compose (v2) nor docker-compose (v1) is there for it (install one)"
  fi
  command -v curl >/dev/null || fail "curl is not installed; the deploy verifies through the proxy with it"
  local name entry got
  for name in "$COMPOSE_FILE" "$SITE_FILE" "$RELEASE_DIR/routing.js"; do
    [[ -f $name ]] || fail "release $RELEASE was not copied to $RELEASE_DIR (no ${name##*/})"
  done
  # Every release file as the stack rendered it: a file edited on the host after the copy is
  # refused here, before anything uses it (the next pulumi up sees the edit and copies it again).
  for entry in "${RELEASE_SHA256[@]}"; do
    name=${entry#* }
    got="$(sha256sum <"$RELEASE_DIR/$name" 2>/dev/null | cut -c 1-64 || true)"
    [[ $got == "${entry%% *}" ]] || fail "$RELEASE_DIR/$name differs from release $RELEASE of the stack (changed on the host after it was copied); run pulumi up again, which copies it back; nothing was changed"
  done
  # The proxy's live site files, against those of the release that last switched (this one):
  # a hand edit there is put back, and nginx reloaded, whether or not anything else changes.
  if [[ "$(state_get "$STATE_DIR/current" release)" == "$RELEASE" ]]; then
    for name in "${PROXY_SITE_FILES[@]}"; do
      cmp -s "$RELEASE_DIR/$name" "$PROXY_DIR/$name" || SITE_DRIFT+=("$name")
    done
  fi

  # The compose file takes each slot's image from these; the old slot's is set below.
  export CLICKY_IMAGE_BLUE="$IMAGE" CLICKY_IMAGE_GREEN="$IMAGE"
  compose config -q >/dev/null 2>&1 || fail "the compose file $COMPOSE_FILE is not valid: $(compose config -q 2>&1 | tail -n 1)"
  # What serves now: the slot the proxy's routing file names, if its container runs.
  snapshot_containers
  SERVING_SLOT="$(serving_slot)"
  if [[ -n $SERVING_SLOT ]]; then OLD_CID="${SNAP_ID[backend-$SERVING_SLOT]:-}"; fi
  if [[ -n $OLD_CID && ${SNAP_RUNNING[backend-$SERVING_SLOT]} == true ]]; then
    OLD_SLOT=$SERVING_SLOT
    OLD_IMAGE="${SNAP_IMAGE[backend-$OLD_SLOT]}"
    printf -v "CLICKY_IMAGE_${OLD_SLOT^^}" '%s' "$OLD_IMAGE"
  fi
  if [[ $SERVING_SLOT == blue ]]; then NEW_SLOT=green; else NEW_SLOT=blue; fi
  PROXY_CID="${SNAP_ID[proxy]:-}"

  # Room for a backup: the database's size plus the configured margin.
  local pg_cid need_kib free_kib
  pg_cid="${SNAP_ID[postgres]:-}"
  if [[ ${SNAP_RUNNING[postgres]:-} == true ]]; then
    need_kib="$(PG_CID=$pg_cid pg_query 'SELECT pg_database_size(current_database())' | tr -dc 0-9 || true)"
    need_kib=$((${need_kib:-0} / 1024 + BACKUP_MIN_FREE_MIB * 1024))
    free_kib="$(df -Pk "$BACKUP_DIR" | awk 'NR == 2 { print $4 }')"
    if ((free_kib < need_kib)); then
      fail "not enough disk for a backup in $BACKUP_DIR: $((free_kib / 1024)) MiB free, $((need_kib / 1024)) MiB needed (the database and backup.minFreeMiB); nothing was changed"
    fi
  fi
  log "compose: ${COMPOSE[*]}; serving: ${OLD_SLOT:-nothing}${OLD_IMAGE:+ ($OLD_IMAGE)}; new slot: $NEW_SLOT"
}

# A fingerprint of what a deploy would put in place: image, release, migration flag and the
# app's secrets (hashed; a rotated secret redeploys).
fingerprint() {
  local key
  {
    printf '%s\n' "$IMAGE" "$RELEASE" "$MIGRATE"
    for key in "${APP_SECRETS[@]}"; do printf '%s\n' "${SECRETS[$key]}"; done
  } | sha256sum | cut -c 1-64
}

# Whether this image, release and env already serve, healthy: then there is nothing to do.
already_deployed() {
  local current="$STATE_DIR/current"
  [[ -n $OLD_SLOT ]] || return 1
  [[ "$(state_get "$current" fingerprint)" == "$FINGERPRINT" ]] || return 1
  [[ "$(state_get "$current" slot)" == "$OLD_SLOT" ]] || return 1
  [[ ${SNAP_HEALTH[backend-$OLD_SLOT]} == healthy ]] || return 1
  [[ ${SNAP_RUNNING[proxy]:-} == true ]]
}

# The release serves as recorded but the proxy's live site files were changed on the host:
# they are put back and nginx reloads them (it may have loaded the edit), once nginx has
# checked the release's site (step_proxy_check).
repair_site() {
  step_proxy_check
  STEP=switch
  local name
  for name in "${SITE_DRIFT[@]}"; do write_file "$PROXY_DIR/$name" 644 <"$RELEASE_DIR/$name"; done
  if is_running "$PROXY_CID"; then
    snapshot_workers
    reload_proxy
    wait_workers_gone
    site_hash "$RELEASE_DIR" | write_file "$STATE_DIR/proxy-site"
  fi
  log "the proxy's site files were changed on the host (${SITE_DRIFT[*]}): put back as release $RELEASE has them, and nginx reloaded"
}

# --- preflight, continued: the release's nginx site (site.conf and the routing.js it imports),
# checked by nginx in a throwaway container of the proxy's image, with the proxy's own
# `-g` directives, before anything changes: a site nginx rejects never reaches the live proxy.
step_proxy_check() {
  STEP=preflight
  local image name
  PROXY_CHECK_DIR="$(mktemp -d "$APP_DIR/proxy-check.XXXXXX")"
  chmod 755 "$PROXY_CHECK_DIR"
  for name in "${PROXY_SITE_FILES[@]}"; do
    cp "$RELEASE_DIR/$name" "$PROXY_CHECK_DIR/$name"
    chmod 644 "$PROXY_CHECK_DIR/$name"
  done
  # The image that will load it: the running proxy's, else the configured one.
  if [[ ${SNAP_RUNNING[proxy]:-} == true ]]; then
    image="${SNAP_IMAGE_ID[proxy]}"
  else
    image="$PROXY_IMAGE"
  fi
  if ! docker run --rm --network none -v "$PROXY_CHECK_DIR:/etc/nginx/conf.d:ro" --entrypoint nginx "$image" -t -q -g "$PROXY_GLOBALS" >"$TMP_DIR/nginx-check.log" 2>&1; then
    BACKUP_DISCARD=1
    fail "nginx rejects the site of release $RELEASE (site.conf, routing.js; the proxy's image needs nginx's njs module, which the official nginx images ship): $(grep -m 1 -i emerg "$TMP_DIR/nginx-check.log" || tail -n 1 "$TMP_DIR/nginx-check.log"); nothing was changed"
  fi
  log "nginx accepts the site of release $RELEASE"
}

# --- infra: PostgreSQL and Redis running and healthy; never recreated by a deploy.
# What preflight saw (snapshot_containers); compose up never recreates these, and one it
# created now has the configured image.
check_infra_image() {
  local service=$1 want=$2 have
  [[ -n ${SNAP_ID[$service]:-} ]] || return 0
  have=${SNAP_IMAGE[$service]}
  if [[ $have != "$want" ]]; then
    log "WARNING: $service runs $have but the config says $want; a deploy never recreates it (docs/operations.md: Runbook: changing an infrastructure image)"
  fi
}

# PostgreSQL and Redis running and healthy. Both were when the snapshot was taken (the usual
# case): nothing to wait for. Else compose up (it leaves running services alone) and wait,
# asking Docker each time and running each one's health check meanwhile, so that a first start
# goes on once it answers rather than at Docker's next health interval.
infra_up() {
  if ran_healthy postgres && ran_healthy redis; then return 0; fi
  if ! is_running "$(container_of postgres)" || ! is_running "$(container_of redis)"; then
    POSTGRES_PASSWORD="${SECRETS[POSTGRES_PASSWORD]}" compose up -d --no-deps --no-recreate postgres redis || fail "could not start postgres and redis"
  fi
  wait_healthy postgres "$HEALTH_TIMEOUT" probe_postgres
  wait_healthy redis "$HEALTH_TIMEOUT" probe_redis
}

# Whether service $1 was running, healthy or without a health check (as wait_healthy accepts),
# when the snapshot was taken.
ran_healthy() {
  [[ ${SNAP_STATUS[$1]:-} == running ]] && [[ ${SNAP_HEALTH[$1]} == healthy || ${SNAP_HEALTH[$1]} == none ]]
}

step_infra() {
  STEP=infra
  infra_up
  # Infrastructure containers are never recreated by a deploy; say so when config moved on.
  check_infra_image postgres "$POSTGRES_IMAGE"
  check_infra_image redis "$REDIS_IMAGE"
  check_infra_image proxy "$PROXY_IMAGE"
  ensure_db_password
}

# --- infra, continued: the database password. PostgreSQL reads POSTGRES_PASSWORD only when its
# volume is empty, so a changed postgresPassword is put in place here, before the backup and the
# migration use it: the role's password changes to the configured one, as the database's owner
# over the postgres container's local socket (as every query of the deploy runs; the old
# password is not needed). PostgreSQL holds one password per role, and the serving version
# keeps the old one in its environment until it stops: so that its new connections (a pool
# growing or replacing one) are not refused meanwhile, a line of pg_hba.conf trusts the role
# from the serving container's own address (ROTATION_MARK), from before the change until that
# container has stopped (step_drain), or until the undo has put the old password back.

# Marks the pg_hba.conf line a rotation adds; a deploy removes any it finds once its old
# version has stopped (one an interrupted deploy left included).
readonly ROTATION_MARK='clicky-delivery: password rotation'

# What every deploy asks before it rotates anything, in one `docker exec` (this runs on every
# deploy's critical path): first line `left` when pg_hba.conf holds a rotation line, else `none`;
# second line whether PostgreSQL accepts POSTGRES_PASSWORD for DB_USER the way the app connects:
# over the network, from the postgres container itself to its own address on the project's
# network (the socket and 127.0.0.1 are trusted, as in the official image, and would accept any
# password): `ok`, `refused`, or `error: <PostgreSQL's message>`.
db_password_state() {
  local address
  address="$(container_address "$PG_CID")"
  if [[ -z $address ]]; then
    printf 'none\nerror: the postgres container has no address on the project network\n'
    return 0
  fi
  # shellcheck disable=SC2016 # runs in the postgres container
  PGPASSWORD="${SECRETS[POSTGRES_PASSWORD]}" docker exec -e PGPASSWORD -e PGCONNECT_TIMEOUT=10 "$PG_CID" sh -c '
hba=$(psql -X -At -U "$1" -d "$2" -c "SHOW hba_file" 2>/dev/null) || hba=""
if [ -n "$hba" ] && grep -qF "$4" "$hba" 2>/dev/null; then echo left; else echo none; fi
if out=$(psql -X -At -h "$3" -U "$1" -d "$2" -c "SELECT 1" 2>&1); then
  echo ok
else
  case $out in
    *"password authentication failed"*) echo refused ;;
    *) printf "error: %s\n" "$(printf "%s\n" "$out" | grep . | tail -n 1 | cut -c 1-300)" ;;
  esac
fi' sh "$DB_USER" "$DB_NAME" "$address" "$ROTATION_MARK" 2>&1 || printf 'none\nerror: docker exec in the postgres container failed\n'
}

# The second line of db_password_state: `ok`, `refused` or `error: ...`.
check_db_password() {
  db_password_state | sed -n 2p
}

# SQL on stdin, as the database's owner over the socket; stops at the first error. Statements
# that carry a password verifier go this way, never on a command line (`ps`).
pg_exec_stdin() {
  docker exec -i "$PG_CID" psql -X -q -v ON_ERROR_STOP=1 -U "$DB_USER" -d "$DB_NAME" >/dev/null 2>"$TMP_DIR/pg-exec.err"
}

# Rewrites pg_hba.conf without this program's rotation lines, with `$1` (a line) first when
# given, and has PostgreSQL load it; fails when PostgreSQL reports an error in the file (which
# then goes back as it was) or has not loaded it within 10 s.
write_hba() {
  local hba loaded errors deadline
  hba="$(pg_query 'SHOW hba_file')"
  [[ -n $hba ]] || fail "could not read the location of pg_hba.conf from PostgreSQL"
  # The new file is written beside the old one (same owner and mode) and renamed over it: a
  # deploy killed meanwhile leaves either file whole. The old one stays as .clicky-old until
  # PostgreSQL has read the new one without error.
  # shellcheck disable=SC2016 # runs in the postgres container
  docker exec "$PG_CID" sh -c 'set -e; f=$1; cp -p "$f" "$f.clicky-new"; { if [ -n "$2" ]; then printf "%s\n" "$2"; fi; grep -vF "$3" "$f" || true; } >"$f.clicky-new"; cp -p "$f" "$f.clicky-old"; mv -f "$f.clicky-new" "$f"' sh "$hba" "${1:-}" "$ROTATION_MARK" 2>"$TMP_DIR/hba.err" ||
    fail "could not rewrite $hba in the postgres container: $(tail -n 1 "$TMP_DIR/hba.err")"
  errors="$(pg_query 'SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL')"
  if [[ $errors != 0 ]]; then
    # shellcheck disable=SC2016 # runs in the postgres container
    docker exec "$PG_CID" sh -c 'mv -f "$1.clicky-old" "$1"' sh "$hba" >/dev/null 2>&1 || true
    fail "PostgreSQL reports ${errors:-unknown} error(s) in $hba after the rotation's edit; it was put back as it was"
  fi
  # shellcheck disable=SC2016 # runs in the postgres container
  docker exec "$PG_CID" sh -c 'rm -f "$1.clicky-old"' sh "$hba" >/dev/null 2>&1 || true
  # A session started after the postmaster has reloaded reports the new load time.
  loaded="$(pg_query 'SELECT pg_conf_load_time()')"
  pg_query 'SELECT pg_reload_conf()' >/dev/null
  deadline=$(($(now_ms) + 10000))
  while [[ "$(pg_query 'SELECT pg_conf_load_time()')" == "$loaded" ]]; do
    (($(now_ms) < deadline)) || fail "PostgreSQL did not reload $hba within 10 s"
    sleep 0.05
  done
}

ensure_db_password() {
  PG_CID="${SNAP_ID[postgres]:-}"
  [[ -n $PG_CID ]] || PG_CID="$(container_of postgres)"
  local state=$DB_PASSWORD_STATE verdict
  # start_early asked already when PostgreSQL ran healthy (whether or not it then started the
  # dump): its answer stands, nothing has changed the password since; else ask now.
  [[ -n $state ]] || state="$(db_password_state)"
  verdict="$(sed -n 2p <<<"$state")"
  # A line an interrupted rotation left: the version it trusts may still serve, so it stays
  # until this deploy has stopped the old version (step_drain).
  if [[ $(head -n 1 <<<"$state") == left ]]; then
    ROTATION_BRIDGE=left
    log "pg_hba.conf holds a password rotation's line that an interrupted deploy left; it goes once the old version has stopped"
  fi
  case $verdict in
    ok) return 0 ;;
    refused) ;;
    *) fail "could not check the database password of role $DB_USER: ${verdict#error: }; nothing was changed" ;;
  esac
  # The role's current password verifier (a salted hash), for the undo; never printed.
  if ! docker exec "$PG_CID" psql -X -At -U "$DB_USER" -d "$DB_NAME" -c "SELECT 'verifier ' || coalesce(rolpassword, '') FROM pg_authid WHERE rolname = current_user" >"$TMP_DIR/verifier" 2>"$TMP_DIR/verifier.err" ||
    ! grep -q '^verifier ' "$TMP_DIR/verifier"; then
    fail "PostgreSQL refuses the configured password for role $DB_USER, and the role's password could not be read to change it (it needs the database's superuser, as POSTGRES_USER is): $(tail -n 1 "$TMP_DIR/verifier.err"); nothing was changed"
  fi
  ROTATION_VERIFIER="$(sed -n 's/^verifier //p' "$TMP_DIR/verifier")"
  rm -f "$TMP_DIR/verifier"
  ROTATION=1
  on_failure undo_db_password
  if [[ -n $OLD_SLOT ]]; then
    local address prefix=32
    address="$(address_of "$OLD_CID")"
    [[ $address == *:* ]] && prefix=128
    ROTATION_BRIDGE=$address
    write_hba "host all $DB_USER $address/$prefix trust # $ROTATION_MARK: backend-$OLD_SLOT keeps its old password until it stops (deploy pid $$)"
    log "PostgreSQL refuses the configured password for role $DB_USER: changing it; meanwhile backend-$OLD_SLOT, which still has the old one, is trusted from its address $address until it stops"
  else
    log "PostgreSQL refuses the configured password for role $DB_USER: changing it (no version serves on this host)"
  fi
  # psql's \password reads the new password twice (from stdin when no terminal is attached) and
  # sends only its salted verifier: the password itself never reaches the server, its logs or
  # a command line.
  printf '%s\n%s\n' "${SECRETS[POSTGRES_PASSWORD]}" "${SECRETS[POSTGRES_PASSWORD]}" |
    docker exec -i "$PG_CID" psql -X -q -v ON_ERROR_STOP=1 -U "$DB_USER" -d "$DB_NAME" -c "\\password \"$DB_USER\"" >/dev/null 2>"$TMP_DIR/password.err" ||
    fail "could not change the password of role $DB_USER: $(grep -v '^Enter' "$TMP_DIR/password.err" | tail -n 1)"
  verdict="$(check_db_password)"
  [[ $verdict == ok ]] || fail "PostgreSQL still refuses the configured password for role $DB_USER after the change (${verdict#error: })"
  log "role $DB_USER has the configured password; the backup, the migration and the new version use it"
}

# The rotation did not go through: the role gets its old password back (the verifier read before
# the change) and the trust line goes, so the version that keeps serving connects as before.
undo_db_password() {
  STEP=undo
  if ((ROTATION)); then
    if printf "SET log_statement = 'none';\nALTER ROLE \"%s\" PASSWORD %s;\n" "$DB_USER" "$(if [[ -n $ROTATION_VERIFIER ]]; then printf "'%s'" "$ROTATION_VERIFIER"; else printf 'NULL'; fi)" | pg_exec_stdin; then
      log "role $DB_USER has its old password again, as the version that keeps serving uses it"
    else
      log "WARNING: could not give role $DB_USER its old password back ($(tail -n 1 "$TMP_DIR/pg-exec.err")): the serving version's new connections are refused; deploy again to finish the rotation"
    fi
    ROTATION=0
  fi
  end_rotation_bridge
}

# The trust line goes: the version it was for has stopped, or has its password back.
end_rotation_bridge() {
  [[ -n $ROTATION_BRIDGE ]] || return 0
  local what="the address $ROTATION_BRIDGE"
  [[ $ROTATION_BRIDGE != left ]] || what="the address an interrupted rotation left"
  if (write_hba) >/dev/null 2>&1; then
    log "the password rotation is over: pg_hba.conf no longer trusts $what"
    ROTATION_BRIDGE=''
  else
    log "WARNING: could not remove the password rotation's line from pg_hba.conf ($(tail -n 1 "$TMP_DIR/hba.err" 2>/dev/null)); the next deploy that changes something on this host removes it"
  fi
}

# --- early start: what the deploy waits for longest starts before the nginx check and the
# infra step, when nothing it needs is in doubt: PostgreSQL was running and healthy in
# preflight's snapshot and accepts the configured password (no rotation is due; a rotating
# deploy starts them in their own steps, after infra has changed the password). Then the dump
# starts (step_backup, its time counted as `backup`), and, when the new image is on this host
# already (pinned by digest, so that the pull cannot change it), the migration check
# (spawn_migration_check). Both only read the database. A site that nginx then rejects stops
# the deploy with nothing changed: the check's container goes and the dump is discarded, even
# one that had finished (BACKUP_DISCARD). EARLY_STEPS names the steps that ran here, which
# main does not run again.
start_early() {
  ran_healthy postgres || return 0
  PG_CID=${SNAP_ID[postgres]}
  DB_PASSWORD_STATE="$(db_password_state)"
  [[ $(sed -n 2p <<<"$DB_PASSWORD_STATE") == ok ]] || return 0
  run_step backup
  EARLY_STEPS+=(backup)
  if [[ $MIGRATE == 1 && ${#MIGRATION_CHECK[@]} -gt 0 && $IMAGE_PINNED == 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    STEP=migrate
    remove_leftover_migrations
    on_failure undo_migrate
    spawn_migration_check
  fi
}

# What a dump of this deploy is called and how it starts, for the caller that then starts it in
# the background (BACKUP_PID): its start time (BACKUP_T0), the path it is kept as
# (BACKUP_TARGET), the path it writes meanwhile (BACKUP_PARTIAL), its container, named so that a
# deploy stopped meanwhile removes it and its partial dump (BACKUP_CONTAINER), its undo, and its
# CPU weight (BACKUP_CPU).
begin_dump() {
  BACKUP_T0="$(now_ms)"
  BACKUP_TARGET="$BACKUP_DIR/$STACK-$(date -u +%Y%m%dT%H%M%SZ)-$IMAGE_TAG.dump"
  BACKUP_PARTIAL="$BACKUP_TARGET.partial"
  BACKUP_CONTAINER="$PROJECT-backup-$$"
  on_failure undo_backup
  dump_cpu_options
}

# --- backup: pg_dump in a throwaway container of PostgreSQL's image, verified with
# pg_restore --list, then the oldest dumps beyond BACKUP_KEEP go. The dump runs in the
# background (BACKUP_PID) and finish_backup waits for it: before the migration when one is
# pending (step_migrate), else before the commit (step_watch), so that a deploy with nothing to
# migrate starts, checks and switches to the new version while the dump runs. pg_dump reads one
# snapshot, taken as it starts. It writes the directory format uncompressed, the fastest dump
# there is (gzip took most of a compressed dump's time); compress_dump compresses it once it is
# kept, when nothing waits for it any more.
step_backup() {
  STEP=backup
  local partial pg_cid
  begin_dump
  partial=${BACKUP_PARTIAL##*/}
  pg_cid="$(container_of postgres)"
  # The image the dump, and then its compression, run in.
  BACKUP_IMAGE="$(docker inspect -f '{{.Image}}' "$pg_cid")"
  # The lock's descriptor is closed, so a dump that outlives a killed deploy never holds it.
  # shellcheck disable=SC2016 # the command line runs in the dump's container
  (
    exec 9>&-
    PGPASSWORD="${SECRETS[POSTGRES_PASSWORD]}" exec docker run --rm --name "$BACKUP_CONTAINER" "${BACKUP_CPU[@]}" --network "container:$pg_cid" --user "$(id -u):$(id -g)" -e PGPASSWORD -v "$BACKUP_DIR:/backups" --entrypoint sh "$BACKUP_IMAGE" -c 'pg_dump -h 127.0.0.1 -U "$1" -d "$2" -Fd -Z 0 -f "/backups/$3" && pg_restore --list "/backups/$3"' sh "$DB_USER" "$DB_NAME" "$partial"
  ) >"$TMP_DIR/backup.toc" 2>"$TMP_DIR/backup.err" &
  BACKUP_PID=$!
  log "dumping $DB_NAME to ${BACKUP_TARGET##*/}"
}

# Waits for the dump step_backup started, checks it and keeps it (a no-op once done). Its
# time on the deploy's critical path is `backup_wait` in the timings.
finish_backup() {
  [[ -n $BACKUP_PID ]] || return 0
  local step=$STEP t0
  STEP=backup
  t0="$(now_ms)"
  keep_dump "$DB_NAME" "$DB_NAME" || fail "$BACKUP_ERROR"
  TIMINGS+=("backup_wait $(seconds_of "$(($(now_ms) - t0))") s")
  STEP=$step
}

# Waits for the dump (BACKUP_PID, started at BACKUP_T0, writing BACKUP_PARTIAL), checks it,
# keeps it as BACKUP_TARGET and prunes the oldest; returns 1 with BACKUP_ERROR when the dump
# failed, ran past BACKUP_TIMEOUT or does not read back. $1 is what the messages call the
# database, $2 the name the dump must read back as (empty: any, for an external database whose
# name only its URL knows).
keep_dump() {
  local what=$1 dbname=$2 rc=0
  if backup_overdue_wait; then
    BACKUP_ERROR="the dump of $what did not finish within $BACKUP_TIMEOUT s (backup.timeoutSeconds); it was stopped and no partial dump is kept"
    return 1
  fi
  wait "$BACKUP_PID" || rc=$?
  BACKUP_PID=''
  if ((rc != 0)); then
    BACKUP_ERROR="pg_dump of $what failed: $(tail -n 1 "$TMP_DIR/backup.err")"
    return 1
  fi
  if ! grep -q "dbname: $dbname" "$TMP_DIR/backup.toc"; then
    local expected="a database"
    if [[ -n $dbname ]]; then expected="database $dbname"; fi
    BACKUP_ERROR="the dump does not read back as $expected with pg_restore --list"
    return 1
  fi
  # A dump of the same second and tag (none in practice) is replaced, as a file once was.
  if [[ -e $BACKUP_TARGET ]]; then rm -rf -- "$BACKUP_TARGET"; fi
  mv -f -T -- "$BACKUP_PARTIAL" "$BACKUP_TARGET"
  BACKUP_CONTAINER='' BACKUP_PARTIAL=''
  BACKUP_PATH=$BACKUP_TARGET
  # The dump's own time: until pg_restore --list wrote the table of contents, not until this
  # deploy came to keep it (a dump that ran beside a health check ends long before).
  local ended
  ended="$(date -r "$TMP_DIR/backup.toc" +%s%3N 2>/dev/null || true)"
  if [[ -z $ended || $ended == *[!0-9]* ]] || ((ended < BACKUP_T0)); then ended="$(now_ms)"; fi
  log "database saved to $BACKUP_PATH ($(du -sk "$BACKUP_PATH" | cut -f 1) KiB in $(seconds_of "$((ended - BACKUP_T0))") s, verified with pg_restore --list)"
  # Retention: the newest BACKUP_KEEP dumps of this stack (names sort by time).
  local -a dumps
  local i
  shopt -s nullglob
  dumps=("$BACKUP_DIR/$STACK"-*.dump)
  shopt -u nullglob
  for ((i = 0; i < ${#dumps[@]} - BACKUP_KEEP; i++)); do
    rm -rf -- "${dumps[i]}"
    log "removed old backup ${dumps[i]##*/}"
  done
  compress_dump "$BACKUP_PATH"
}

# Waits while the dump (BACKUP_PID) runs, until BACKUP_TIMEOUT seconds after it started (0: no
# limit); true when it is still running then.
backup_overdue_wait() {
  ((BACKUP_TIMEOUT > 0)) || return 1
  while kill -0 "$BACKUP_PID" 2>/dev/null; do
    backup_overdue && return 0
    sleep 0.1
  done
  return 1
}

# Whether the dump has run longer than BACKUP_TIMEOUT seconds (never with 0, no limit).
backup_overdue() {
  ((BACKUP_TIMEOUT > 0 && $(now_ms) - BACKUP_T0 >= BACKUP_TIMEOUT * 1000))
}

# On failure: a dump that has finished is kept all the same (it cost its time, and the next
# deploy starts from it), unless BACKUP_DISCARD says the deploy stopped before its own checks
# were done (a site nginx rejects: nothing is changed, no dump added); one still running is
# stopped, its container and partial file go, so that putting the old version back never waits
# for it.
undo_backup() {
  if ((!BACKUP_DISCARD)) && [[ -n $BACKUP_PID ]] && ! kill -0 "$BACKUP_PID" 2>/dev/null && keep_dump "$DB_NAME" "$DB_NAME"; then return 0; fi
  if [[ -n $BACKUP_CONTAINER ]]; then
    docker rm -f "$BACKUP_CONTAINER" >/dev/null 2>&1
    if [[ -n $BACKUP_PID ]]; then wait "$BACKUP_PID" 2>/dev/null; fi
    BACKUP_PID=''
    rm -rf -- "$BACKUP_PARTIAL"
  fi
}

# What a kept dump's compression runs (POSIX sh, in a container of PostgreSQL's image): in each
# directory-format dump $3, $4, ... in turn, each table's data file N.dat becomes N.dat.gz at
# gzip level $1. pg_restore reads a table's data from N.dat, or from N.dat.gz when there is no
# N.dat, so a dump restores the same at every moment: each file is written to a temporary name
# of this compression's own, renamed to N.dat.gz, and only then are N.dat and any other
# temporary N.dat.gz.* removed (one a compression killed midway left; a second compression of
# the same dump, one an earlier deploy started, does the same work at worst). A file that is
# gone meanwhile (the other compression, or retention) is passed over. It never takes the disk
# below $2 KiB free: a file it has no room for stays raw, restorable all the same, and so do
# the ones after it.
# shellcheck disable=SC2016 # runs in the container
readonly COMPRESS_DUMP='level=$1 keep=$2
shift 2
me=$(cat /proc/sys/kernel/hostname 2>/dev/null)-$$
for dump in "$@"; do
  for f in "$dump"/*.dat; do
    [ -f "$f" ] && [ "${f##*/}" != toc.dat ] || continue
    free=$(df -Pk "$dump" | awk "NR == 2 { print \$4 }")
    [ "${free:-0}" -ge $(($(du -k "$f" 2>/dev/null | cut -f 1) + keep)) ] || exit 0
    if gzip -c "-$level" "$f" >"$f.gz.$me" 2>/dev/null && mv -f "$f.gz.$me" "$f.gz"; then
      rm -f "$f" "$f.gz".*
    else
      rm -f "$f.gz.$me"
      [ -f "$f" ] || continue
      exit 1
    fi
  done
done'

# Whether the directory-format dump $1 holds a table's data file that is not compressed.
has_raw_data() {
  local f
  for f in "$1"/*.dat; do
    [[ -f $f && ${f##*/} != toc.dat ]] && return 0
  done
  return 1
}

# Compresses a kept dump in place (COMPRESS_DUMP at BACKUP_COMPRESSION; 0 keeps it raw) in a
# detached container of PostgreSQL's image (BACKUP_IMAGE) at the dump's CPU weight
# (backup.cpuShares), so that the serving version comes first on a busy CPU, as with the dump.
# Then, newest first, the stack's other kept dumps that an earlier compression left raw in
# part (the host restarted under it, or the disk had no room), unless one is running still.
# Nothing waits for it: the deploy goes on, ends, and the next one starts while it runs; the
# `docker run` that starts it holds none of the deploy's descriptors (the lock, its output). A
# single-file dump (an external database's) is compressed by pg_dump as it is written.
compress_dump() {
  local dump=$1 i
  ((BACKUP_COMPRESSION > 0)) && [[ -d $dump && -n $BACKUP_IMAGE ]] || return 0
  local -a todo=("/backups/${dump##*/}") kept=() left=()
  shopt -s nullglob
  kept=("$BACKUP_DIR/$STACK"-*.dump)
  shopt -u nullglob
  for ((i = ${#kept[@]} - 1; i >= 0; i--)); do
    [[ ${kept[i]} != "$dump" && -d ${kept[i]} ]] && has_raw_data "${kept[i]}" && left+=("/backups/${kept[i]##*/}")
  done
  if ((${#left[@]} > 0)) && [[ -z "$(docker ps -q --filter "name=^$PROJECT-compress-" 2>/dev/null)" ]]; then
    todo+=("${left[@]}")
    log "compressing also ${#left[@]} earlier backup(s) that an earlier compression left raw in part"
  fi
  (
    exec 3>&- 4>&- 8>&- 9>&-
    exec docker run -d --rm --name "$PROJECT-compress-$$" "${BACKUP_CPU[@]}" --network none --user "$(id -u):$(id -g)" -v "$BACKUP_DIR:/backups" --entrypoint sh "$BACKUP_IMAGE" -c "$COMPRESS_DUMP" clicky-compress "$BACKUP_COMPRESSION" "$((BACKUP_MIN_FREE_MIB * 1024))" "${todo[@]}"
  ) </dev/null >/dev/null 2>&1 &
}

# --- pull: runs in the background while the backup runs (neither needs the other). It
# prints one line, what it did or why it failed; step_pull waits for it. It closes the lock's
# descriptor, so a pull that outlives a killed deploy never holds the lock.
pull_image() {
  if [[ $IMAGE_PINNED == 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    printf '%s is already on this host\n' "$IMAGE"
    return 0
  fi
  local docker_config=""
  if [[ -n ${SECRETS[REGISTRY_USERNAME]:-} ]]; then
    docker_config="$TMP_DIR/docker"
    mkdir -p "$docker_config"
    if ! printf '%s' "${SECRETS[REGISTRY_TOKEN]}" | DOCKER_CONFIG="$docker_config" docker login --username "${SECRETS[REGISTRY_USERNAME]}" --password-stdin "$REGISTRY" >"$TMP_DIR/login.log" 2>&1; then
      rm -rf "$docker_config"
      # The registry's answer, never the user name or the token (the report masks them too).
      printf 'login to %s failed: %s\n' "$REGISTRY" "$(tail -n 1 "$TMP_DIR/login.log")"
      return 1
    fi
  fi
  local rc=0
  DOCKER_CONFIG="$docker_config" docker pull --quiet "$IMAGE" >/dev/null 2>"$TMP_DIR/pull.err" || rc=$?
  # The login's config (base64 of user:token) lives only as long as the pull.
  if [[ -n $docker_config ]]; then rm -rf "$docker_config"; fi
  if ((rc != 0)); then
    printf 'could not pull %s: %s\n' "$IMAGE" "$(tail -n 1 "$TMP_DIR/pull.err")"
    return 1
  fi
  printf 'pulled %s\n' "$IMAGE"
}

start_pull() {
  (
    exec 9>&-
    pull_image
  ) >"$TMP_DIR/pull.out" 2>&1 &
  PULL_PID=$!
  on_failure undo_pull
}

step_pull() {
  STEP=pull
  local rc=0 said
  wait "$PULL_PID" || rc=$?
  PULL_PID=''
  said="$(tail -n 1 "$TMP_DIR/pull.out")"
  ((rc == 0)) || fail "${said:-the pull failed (exit $rc)}"
  log "$said"
}

# A pull still running stops with the deploy.
undo_pull() {
  if [[ -n $PULL_PID ]]; then kill "$PULL_PID" 2>/dev/null; fi
}

# --- migrate: the migration command in a one-off container of the new image, before any
# traffic moves; a failed migration leaves the old version serving. While it runs, its
# sessions in PostgreSQL are watched: one that waits for a lock longer than
# MIGRATION_LOCK_WAIT (every write of the serving version to that table queues behind it) has
# its statement cancelled, so its transaction rolls back and the writes go on, and the
# migration is tried again, at most MIGRATION_ATTEMPTS times; a run longer than
# MIGRATION_TIMEOUT is stopped. Each way the log names what was seen.
step_migrate() {
  STEP=migrate
  # Done already when the check started early (start_early).
  [[ -n $CHECK_PID ]] || remove_leftover_migrations
  if [[ $MIGRATE != 1 ]]; then
    log "skipped: deploy.migrate is false${BACKUP_PID:+; the new version starts while the backup runs}"
    return 0
  fi
  remove_slot "$NEW_SLOT"
  [[ -n $CHECK_PID ]] || on_failure undo_migrate
  HELD_PID=''
  if [[ -n $BACKUP_PID || -n $CHECK_PID ]] && ! check_in_migration_container; then return 0; fi
  finish_backup
  local attempt t0 pid
  for ((attempt = 1; ; attempt++)); do
    MIGRATION_CONTAINER="$PROJECT-migrate-$$-$attempt"
    t0="$(now_ms)"
    if ((attempt == 1)); then
      log "running ${MIGRATION_COMMAND[*]} with $IMAGE"
    else
      log "running ${MIGRATION_COMMAND[*]} again (attempt $attempt of $MIGRATION_ATTEMPTS)"
    fi
    if [[ -n $HELD_PID ]]; then
      # The container that checked waits for this line; its output is in migration.out.
      printf 'migrate\n' >&8
      exec 8>&-
      pid=$HELD_PID HELD_PID=''
    else
      with_app_env compose run --rm --no-deps -T --name "$MIGRATION_CONTAINER" "backend-$NEW_SLOT" "${MIGRATION_COMMAND[@]}" &
      pid=$!
    fi
    watch_migration "$pid"
    if [[ -f $TMP_DIR/migration.out ]]; then
      # Its output from the migration's start on (the check's is in the log already). A
      # container that ended before that line (stopped from outside) ran nothing: its whole
      # output goes to the log, and it counts as a failed migration.
      if grep -q '^clicky-migration-start$' "$TMP_DIR/migration.out"; then
        sed '1,/^clicky-migration-start$/d' "$TMP_DIR/migration.out"
      else
        cat "$TMP_DIR/migration.out"
        ((MIGRATION_RC != 0)) || MIGRATION_RC=1
      fi
      rm -f "$TMP_DIR/migration.out"
    fi
    # The run has ended (or was stopped) either way: once its container is gone, nothing is
    # left for undo_migrate.
    remove_container "$MIGRATION_CONTAINER"
    MIGRATION_CONTAINER=''
    case $MIGRATION_VERDICT in
      timeout)
        fail "the migration (${MIGRATION_COMMAND[*]}) ran longer than $MIGRATION_TIMEOUT s (deploy.migrationTimeoutSeconds): it was stopped and its transaction rolled back; no traffic was moved"
        ;;
      lock)
        if ((attempt >= MIGRATION_ATTEMPTS)); then
          fail "the migration waited for a lock $attempt times, $MIGRATION_LOCK_WAIT s each (deploy.migrationLockWaitSeconds), and was cancelled each time; the lock is held by $LOCK_HOLDERS; its transaction rolled back and no traffic was moved (end that session, or deploy again once it is done)"
        fi
        log "the migration waited $MIGRATION_LOCK_WAIT s for a lock held by $LOCK_HOLDERS: cancelled its statement (its transaction rolled back; the serving version's writes go on); trying again in $((attempt * 2)) s"
        sleep "$((attempt * 2))"
        ;;
      *)
        ((MIGRATION_RC == 0)) || fail "the migration (${MIGRATION_COMMAND[*]}) failed with $IMAGE (exit $MIGRATION_RC); no traffic was moved"
        log "the migration finished in $(seconds_of "$(($(now_ms) - t0))") s"
        return 0
        ;;
    esac
  done
}

# What the migration's container runs when it checks first: MIGRATION_CHECK (its word count
# is $1, then its words, then MIGRATION_COMMAND's), then a line with the check's exit code that
# ends in a word (` end`), so that a reader which sees the line written in part (compose copies
# the container's output in chunks) does not take it for the whole. After an exit 0 it ends,
# else it waits for a line on its stdin: when that line says `migrate`, it prints
# `clicky-migration-start` and runs the migration; when it says anything else or stdin ends,
# it ends without migrating.
# shellcheck disable=SC2016 # runs in the container
readonly CHECK_THEN_MIGRATE='c=$1; shift
cmd=; i=1
while [ "$i" -le "$c" ]; do cmd="$cmd \"\${$i}\""; i=$((i + 1)); done
eval "$cmd"
rc=$?
printf "\nclicky-migration-check-exit %s end\n" "$rc"
[ "$rc" -ne 0 ] || exit 0
read -r go || exit 0
[ "$go" = migrate ] || exit 0
shift "$c"
echo clicky-migration-start
exec "$@"'

# Starts MIGRATION_CHECK in the container that then migrates (CHECK_THEN_MIGRATE), in the
# background: CHECK_PID, started at CHECK_T0, writing to migration.out, its stdin the pipe on
# fd 8. Neither it nor its container holds the lock's descriptor.
spawn_migration_check() {
  local go="$TMP_DIR/migration.go"
  CHECK_T0="$(now_ms)"
  MIGRATION_CONTAINER="$PROJECT-migrate-$$-1"
  log "checking whether a migration is pending: ${MIGRATION_CHECK[*]} with $IMAGE"
  rm -f "$go"
  mkfifo -m 600 "$go"
  exec 8<>"$go"
  with_app_env compose run --rm --no-deps -T --name "$MIGRATION_CONTAINER" "backend-$NEW_SLOT" sh -c "$CHECK_THEN_MIGRATE" clicky-migrate "${#MIGRATION_CHECK[@]}" "${MIGRATION_CHECK[@]}" "${MIGRATION_COMMAND[@]}" <"$go" >"$TMP_DIR/migration.out" 2>&1 8>&- 9>&- &
  CHECK_PID=$!
}

# Whether the database needs the migration (true) or not (false), asked while the backup runs,
# in the container that then migrates: MIGRATION_CHECK runs in a one-off container of the new
# image, which then waits (HELD_PID; its stdin is fd 8) for the backup to be kept before it
# runs the migration, so that the migration does not wait for a container to start after the
# backup. The check's exit 0 says no, and that container ends; anything else (a pending
# migration, an older alembic without --check-heads) says yes. An image whose container cannot
# run the check so (no sh) is checked in a container of its own (migration_pending).
check_in_migration_container() {
  if ((${#MIGRATION_CHECK[@]} == 0)); then return 0; fi
  [[ -n $CHECK_PID ]] || spawn_migration_check
  local output="$TMP_DIR/migration.out" pid=$CHECK_PID t0=$CHECK_T0 rc waited
  CHECK_PID=''
  while kill -0 "$pid" 2>/dev/null && ! grep -q '^clicky-migration-check-exit [0-9][0-9]* end$' "$output" && (($(now_ms) - t0 < 120000)); do
    sleep 0.1
  done
  waited=$(($(now_ms) - t0))
  rc="$(sed -n 's/^clicky-migration-check-exit \([0-9][0-9]*\) end$/\1/p' "$output" | head -n 1)"
  if [[ -n $rc ]] && ((rc != 0)); then
    HELD_PID=$pid
    check_verdict "$rc" "$t0" "$(sed '/^clicky-migration-check-exit /,$d' "$output")"
    return 0
  fi
  exec 8>&-
  # Ended (or stopped) without migrating: once its container is gone, nothing is left to undo.
  if [[ -z $rc ]]; then stop_migration; else remove_container "$MIGRATION_CONTAINER"; fi
  wait "$pid" 2>/dev/null || true
  MIGRATION_CONTAINER=''
  if [[ $rc == 0 ]]; then
    rm -f "$output"
    check_verdict 0 "$t0" ''
    return 1
  fi
  if ((waited >= 120000)); then
    rm -f "$output"
    log "${MIGRATION_CHECK[*]} gave no answer within 120 s: waiting for the backup, then migrating"
    return 0
  fi
  log "the migration's container could not run the check ($(grep '[[:alpha:]]' "$output" | tail -n 1 | cut -c 1-200)): checking in a container of its own"
  rm -f "$output"
  migration_pending
}

# Whether the database needs the migration: MIGRATION_CHECK in a one-off container of the new
# image; its exit 0 says no. Anything else (a pending migration, an older alembic without
# --check-heads, no check configured) says yes, so the backup comes first.
migration_pending() {
  if ((${#MIGRATION_CHECK[@]} == 0)); then return 0; fi
  local rc=0 t0
  t0="$(now_ms)"
  log "checking whether a migration is pending: ${MIGRATION_CHECK[*]} with $IMAGE"
  with_app_env timeout 120 "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE" run --rm --no-deps -T --name "$PROJECT-migcheck-$$" "backend-$NEW_SLOT" "${MIGRATION_CHECK[@]}" >"$TMP_DIR/migcheck.out" 2>&1 </dev/null || rc=$?
  remove_container "$PROJECT-migcheck-$$"
  check_verdict "$rc" "$t0" "$(cat "$TMP_DIR/migcheck.out")"
}

# Logs MIGRATION_CHECK's verdict: it exited $1, started at $2 (ms), and said $3. Returns 1 when
# nothing is pending (exit 0), else 0 (a migration is pending), quoting its last line that says
# something (compose v1 may end the output with a bare exit code).
check_verdict() {
  local rc=$1 t0=$2 said=$3
  if ((rc == 0)); then
    log "nothing to migrate (${MIGRATION_CHECK[*]} exited 0 in $(seconds_of "$(($(now_ms) - t0))") s): the new version starts while the backup runs"
    return 1
  fi
  log "${MIGRATION_CHECK[*]} exited $rc ($(printf '%s\n' "$said" | grep '[[:alpha:]]' | tail -n 1 | cut -c 1-200)): waiting for the backup, then migrating"
  return 0
}

# A migration run this deploy could not see to its end: its sessions end (so its transaction
# rolls back) and its container goes. What it committed stays (see the downgrade runbook).
undo_migrate() {
  STEP=undo
  if [[ -n $MIGRATION_CONTAINER ]]; then
    log "stopping the migration run $MIGRATION_CONTAINER"
    stop_lock_watch
    stop_migration
  fi
}

# Watches the migration (process $1) until it ends. Once its container has an address, a
# watcher runs inside PostgreSQL (lock_watch_sql, one psql session in the postgres container):
# ten times a second it looks for a session from that address that has waited for a lock
# MIGRATION_LOCK_WAIT or longer, by PostgreSQL's own clock (since its statement started), and
# then names the sessions that block it and cancels its statement. Sets MIGRATION_VERDICT
# (exited, lock or timeout), MIGRATION_RC (its exit code) and LOCK_HOLDERS.
watch_migration() {
  local pid=$1 t0 address='' watcher='' notice="$TMP_DIR/lock-watch.out"
  t0="$(now_ms)"
  MIGRATION_VERDICT=exited MIGRATION_RC=0 LOCK_HOLDERS=''
  PG_CID="$(container_of postgres)"
  : >"$notice"
  while kill -0 "$pid" 2>/dev/null; do
    if (($(now_ms) - t0 >= MIGRATION_TIMEOUT * 1000)); then
      MIGRATION_VERDICT=timeout
      stop_migration
      break
    fi
    if [[ -z $address ]]; then
      address="$(container_address "$MIGRATION_CONTAINER")"
      if [[ -n $address ]]; then
        docker exec -e "PGAPPNAME=clicky-deploy-watch-$$" "$PG_CID" psql -X -q -U "$DB_USER" -d "$DB_NAME" -c "$(lock_watch_sql "$address")" >/dev/null 2>"$notice" &
        watcher=$!
      fi
    elif grep -q 'clicky-lock-wait' "$notice"; then
      LOCK_HOLDERS="$(sed -n 's/.*clicky-lock-wait [0-9]* //p' "$notice" | head -n 1)"
      MIGRATION_VERDICT=lock
      break
    fi
    sleep 0.1
  done
  if [[ -n $watcher ]]; then
    stop_lock_watch
    wait "$watcher" 2>/dev/null || true
  fi
  # A cancelled migration exits on its error; one that does not within 10 s is stopped.
  local deadline=$(($(now_ms) + 10000))
  while kill -0 "$pid" 2>/dev/null && (($(now_ms) < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then stop_migration; fi
  wait "$pid" || MIGRATION_RC=$?
}

# The watcher watch_migration runs in PostgreSQL, for the migration's sessions from address $1:
# it ends with a notice `clicky-lock-wait <pid> <who blocks it>` once it has cancelled one that
# waited MIGRATION_LOCK_WAIT or more for a lock. Who blocks it, for a person: pid, user,
# application, client, state and how long their transaction has been open; never their query
# text, which may hold data (`SELECT query FROM pg_stat_activity WHERE pid = <pid>` shows it).
# It holds no lock, only a snapshot of pg_stat_activity that it renews each time, and it ends
# by itself a minute after MIGRATION_TIMEOUT, should the deploy that started it be killed.
lock_watch_sql() {
  cat <<SQL
DO \$clicky\$
DECLARE
  waiting int;
  holders text;
  until timestamptz := clock_timestamp() + interval '$((MIGRATION_TIMEOUT + 60)) seconds';
BEGIN
  WHILE clock_timestamp() < until LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT pid INTO waiting FROM pg_stat_activity
      WHERE client_addr = '$1' AND wait_event_type = 'Lock'
        AND clock_timestamp() - query_start >= interval '$MIGRATION_LOCK_WAIT seconds'
      ORDER BY query_start LIMIT 1;
    IF waiting IS NOT NULL THEN
      SELECT string_agg(format('session %s (user %s, application %s, from %s, %s, transaction open %s s)',
          a.pid, a.usename, coalesce(nullif(a.application_name, ''), '-'),
          coalesce(host(a.client_addr), 'local'), coalesce(a.state, '?'),
          coalesce(floor(extract(epoch FROM clock_timestamp() - a.xact_start))::text, '?')), '; ')
        INTO holders FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids(waiting));
      PERFORM pg_cancel_backend(waiting);
      RAISE NOTICE 'clicky-lock-wait % %', waiting, coalesce(holders, 'a session that ended meanwhile');
      RETURN;
    END IF;
    PERFORM pg_sleep(0.1);
  END LOOP;
END
\$clicky\$;
SQL
}

# Ends the lock watchers in PostgreSQL: this deploy's, or with `all`, any a killed deploy left.
stop_lock_watch() {
  local name="clicky-deploy-watch-$$"
  if [[ ${1:-} == all ]]; then name='clicky-deploy-watch-%'; fi
  pg_query "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE '$name'" >/dev/null
}

# Ends the sessions of the current migration container (their transactions roll back) and
# removes it.
stop_migration() {
  local address
  address="$(container_address "$MIGRATION_CONTAINER")"
  if [[ -n $address ]]; then
    pg_query "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE client_addr = '$address'" >/dev/null
  fi
  remove_container "$MIGRATION_CONTAINER"
}

# Migration runs and migration checks a deploy that was killed (kill -9, the OOM killer, a
# reboot) left: this deploy holds the lock, so nothing else runs them. Their sessions end and
# they go.
remove_leftover_migrations() {
  local name what
  while read -r name; do
    MIGRATION_CONTAINER=$name
    stop_migration
    what="a migration run"
    [[ $name != "$PROJECT"-migcheck-* ]] || what="a migration check"
    log "removed $name, $what that an interrupted deploy left (its open transaction, if any, rolled back)"
  done < <(docker ps -a --format '{{.Names}}' 2>/dev/null | grep -E "^$PROJECT-(migrate-[0-9]+-[0-9]+|migcheck-[0-9]+)\$" || true)
  MIGRATION_CONTAINER=''
  stop_lock_watch all
}

# --- start: the new version in the free slot, beside the serving one.
step_start() {
  STEP=start
  local key
  remove_slot "$NEW_SLOT"
  for key in "${APP_SECRETS[@]}"; do printf '%s=%s\n' "$key" "${SECRETS[$key]}"; done | write_file "$ENV_DIR/$NEW_SLOT.env"
  on_failure undo_start
  with_app_env compose up -d --no-deps "backend-$NEW_SLOT" || fail "could not start backend-$NEW_SLOT"
  NEW_CID="$(container_of "backend-$NEW_SLOT")"
  log "started backend-$NEW_SLOT with $IMAGE"
}

undo_start() {
  STEP=undo
  log "removing backend-$NEW_SLOT ($IMAGE)"
  remove_slot "$NEW_SLOT"
}

# --- health: the new version's own health probe passes (or it fails at once on exit); then,
# before any user request reaches it, every VERIFY_PATHS answers 2xx inside its container.
step_health() {
  STEP=health
  wait_healthy "backend-$NEW_SLOT" "$HEALTH_TIMEOUT" probe_app
  log "backend-$NEW_SLOT is healthy"
  local status path answers
  answers="$(docker exec "$NEW_CID" "${VERIFY_PROBE[@]}" 2>"$TMP_DIR/verify-probe.err")" || fail "could not check backend-$NEW_SLOT's paths before the switch: $(tail -n 1 "$TMP_DIR/verify-probe.err"); no traffic was moved"
  while read -r status path; do
    [[ $status == 2?? ]] || fail "GET $path on backend-$NEW_SLOT answered ${status/#0/no answer} before the switch; no traffic was moved"
  done <<<"$answers"
  log "before the switch, on backend-$NEW_SLOT: $(printf '%s' "$answers" | awk '{ printf "%sGET %s %s", (NR > 1 ? ", " : ""), $2, $1 }')"
}

# --- switch: the proxy sends the next request to the new slot: one atomic rename of its
# routing file, which nginx reads per request, so nothing is reloaded and no connection a client
# may reuse is closed. The release's site files go in first; nginx loads them only when they
# differ from what it loaded last (a new version of this program's site), and a proxy started by
# an earlier version, without the routing module, is recreated once.
step_switch() {
  STEP=switch
  local name want
  for name in "$ROUTING_NAME" upstream.conf "${PROXY_SITE_FILES[@]}"; do
    if [[ -f $PROXY_DIR/$name ]]; then cp -p "$PROXY_DIR/$name" "$TMP_DIR/$name.before"; fi
  done
  NEW_ADDR="$(address_of "$NEW_CID")"
  if [[ -n $OLD_SLOT ]]; then OLD_ADDR="$(address_of "$OLD_CID")"; fi
  on_failure undo_switch
  for name in "${PROXY_SITE_FILES[@]}"; do
    cmp -s "$RELEASE_DIR/$name" "$PROXY_DIR/$name" || write_file "$PROXY_DIR/$name" 644 <"$RELEASE_DIR/$name"
  done
  # An earlier version's routing, which this site does not read.
  rm -f "$PROXY_DIR/upstream.conf"
  set_routing "$NEW_SLOT" "$NEW_ADDR"
  want="$(site_hash "$RELEASE_DIR")"
  if ! is_running "$PROXY_CID"; then
    compose up -d --no-deps proxy || fail "could not start the proxy"
    PROXY_CID="$(container_of proxy)"
    PROXY_LOADED=1
  elif ! proxy_routes; then
    log "the proxy runs without the routing module (started by an earlier version of clicky-delivery): recreating it, once; connections are refused or reset for the moment it takes"
    compose up -d --no-deps --force-recreate proxy || fail "could not recreate the proxy"
    PROXY_CID="$(container_of proxy)"
    PROXY_LOADED=1
  elif [[ "$(cat "$STATE_DIR/proxy-site" 2>/dev/null)" != "$want" ]] || ((${#SITE_DRIFT[@]})); then
    log "the proxy's site differs from what nginx loaded last: reloading nginx (a switch alone never does)"
    snapshot_workers
    reload_proxy
    PROXY_LOADED=1
    wait_workers_gone
  fi
  if ((PROXY_LOADED)); then printf '%s\n' "$want" | write_file "$STATE_DIR/proxy-site"; fi
  # Until the proxy answers from the new slot (a new proxy takes a moment to start).
  local answer deadline=$((SECONDS + HEALTH_TIMEOUT))
  while :; do
    answer="$(probe_proxy "$PROXY_URL${VERIFY_PATHS[0]}")"
    [[ ${answer#* } == "$NEW_SLOT" ]] && break
    ((SECONDS < deadline)) || fail "the proxy still answers ${answer%% *} from ${answer#* } after the switch"
    sleep 0.2
  done
  log "the proxy sends traffic to backend-$NEW_SLOT"
}

# Traffic goes back: the routing file names the slot that served before (or is removed on a
# first deploy). Site files that nginx did not load go back too; ones it loaded stay, as nginx
# runs them. The new slot goes (undo_start, registered before, runs next) only once the proxy
# holds no request to it; a request routed just before the rename may still be waiting for
# Docker's DNS (resolver_timeout, 1 s), so this waits at least that long.
undo_switch() {
  STEP=undo
  local name
  if [[ -n $OLD_SLOT && -n $OLD_ADDR ]]; then
    set_routing "$OLD_SLOT" "$OLD_ADDR"
  else
    rm -f "$PROXY_DIR/$ROUTING_NAME"
  fi
  if ((!PROXY_LOADED)); then
    for name in upstream.conf "${PROXY_SITE_FILES[@]}"; do
      if [[ -f $TMP_DIR/$name.before ]]; then mv -f "$TMP_DIR/$name.before" "$PROXY_DIR/$name"; else rm -f "$PROXY_DIR/$name"; fi
    done
  fi
  if [[ -n $NEW_ADDR ]] && is_running "$PROXY_CID"; then
    wait_drained "$NEW_ADDR" 1100
    if ((DRAINED)); then
      log "traffic is back on backend-${OLD_SLOT:-?}; no request to backend-$NEW_SLOT is in flight (after $WAITED s)"
    else
      log "traffic is back on backend-${OLD_SLOT:-?}; requests to backend-$NEW_SLOT were still in flight after $WAITED s"
    fi
  else
    log "traffic is back on backend-${OLD_SLOT:-?}"
  fi
}

# --- verify: every VERIFY_PATHS answers 2xx through the proxy, from the new slot.
step_verify() {
  STEP=verify
  local path answer
  for path in "${VERIFY_PATHS[@]}"; do
    answer="$(probe_proxy "$PROXY_URL$path")"
    [[ ${answer%% *} == 2?? ]] || fail "GET $path through the proxy answered ${answer%% *}"
    [[ ${answer#* } == "$NEW_SLOT" ]] || fail "GET $path was answered by ${answer#* }, not $NEW_SLOT"
    log "GET $path through the proxy: ${answer%% *} from backend-$NEW_SLOT"
  done
}

# --- watch: the new version serves, the old one still runs. If the new one exits, restarts,
# turns unhealthy or fails its own probe HEALTH_RETRIES times in a row (probed every second,
# as strict as Docker's verdict at a faster cadence), the undos put the previous proxy
# configuration back (traffic returns to the old version) and remove it. A backup still
# running extends the watch until it is kept (finish_backup); a failed one is a failure here.
step_watch() {
  STEP=watch
  if [[ -z $OLD_SLOT ]] || ((WATCH_SECONDS == 0)); then
    finish_backup
    commit
    log "skipped: ${OLD_SLOT:+deploy.watchSeconds is 0}${OLD_SLOT:-no previous version to go back to}"
    return 0
  fi
  local t0 elapsed status restarts health restarts0 left probe misses=0
  # The old slot stands by: a safe request the new one cannot answer goes there meanwhile.
  set_routing "$NEW_SLOT" "$NEW_ADDR" "$OLD_SLOT" "$OLD_ADDR"
  t0="$(now_ms)"
  restarts0="$(docker inspect -f '{{.RestartCount}}' "$NEW_CID")"
  log "watching backend-$NEW_SLOT for $WATCH_SECONDS s; backend-$OLD_SLOT stands by"
  while :; do
    elapsed="$(seconds_of "$(($(now_ms) - t0))")"
    # One docker inspect a round: status, restarts and Docker's health verdict. A failed
    # inspect (a busy Docker engine) says nothing: count it as a missed probe.
    read -r status restarts health < <(docker inspect -f '{{.State.Status}} {{.RestartCount}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$NEW_CID" 2>/dev/null || echo unknown "$restarts0" none) || true
    case "$status/$health" in
      unknown/*) misses=$((misses + 1)) ;;
      # Only a verdict that Docker's latest probe still backs: a slow boot may have been marked
      # unhealthy before it passed the gate, until Docker's next passing probe.
      running/unhealthy)
        probe="$(last_probe "$NEW_CID")"
        if [[ $probe != 0:* ]]; then
          fail "backend-$NEW_SLOT turned unhealthy $elapsed s after the switch: $probe"
        fi
        ;;
      running/*) ;;
      *) fail "backend-$NEW_SLOT stopped $elapsed s after the switch (exit code $(docker inspect -f '{{.State.ExitCode}}' "$NEW_CID" 2>/dev/null)); see: docker logs $NEW_CID" ;;
    esac
    if [[ $restarts != "$restarts0" ]]; then
      fail "backend-$NEW_SLOT crashed and was restarted $elapsed s after the switch; see: docker logs $NEW_CID"
    fi
    # As strict as Docker's own verdict: health.retries failed probes in a row.
    if [[ $status == running ]]; then
      if probe_app "$NEW_CID"; then misses=0; else misses=$((misses + 1)); fi
    fi
    ((misses < HEALTH_RETRIES)) || fail "backend-$NEW_SLOT failed its health probe $misses times in a row, $elapsed s after the switch"
    left=$((WATCH_SECONDS * 1000 - ($(now_ms) - t0)))
    if ((left <= 0)); then
      if [[ -z $BACKUP_PID ]] || ! kill -0 "$BACKUP_PID" 2>/dev/null || backup_overdue; then break; fi
      left=1000
    fi
    sleep "$(seconds_of "$((left < 1000 ? left : 1000))")"
  done
  finish_backup
  commit
  log "backend-$NEW_SLOT stayed up for $(seconds_of "$(($(now_ms) - t0))") s"
}

# --- drain: the old slot stops standing by (the routing file names the new one only), then it
# runs until the proxy holds no request to it (at most DRAIN_SECONDS), and is stopped with
# SIGTERM and STOP_TIMEOUT seconds of grace.
step_drain() {
  STEP=drain
  if [[ -z $OLD_SLOT ]]; then
    log "no previous version to stop"
    end_rotation_bridge
    return 0
  fi
  set_routing "$NEW_SLOT" "$NEW_ADDR"
  wait_drained "$OLD_ADDR"
  if ((DRAINED)); then
    log "no request to backend-$OLD_SLOT is in flight (after $WAITED s)"
  else
    log "stopping backend-$OLD_SLOT with requests still in flight after $WAITED s (deploy.drainSeconds); it gets $STOP_TIMEOUT s to finish them"
  fi
  docker stop -t "$STOP_TIMEOUT" "$OLD_CID" >/dev/null 2>&1 || fail "could not stop backend-$OLD_SLOT"
  remove_slot "$OLD_SLOT"
  log "stopped backend-$OLD_SLOT ($OLD_IMAGE)"
  end_rotation_bridge
}

# --- record: what serves now, for the next deploy, for people and for the stack's outputs.
step_record() {
  STEP=record
  local digest
  digest="$(docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$IMAGE" 2>/dev/null | grep -m 1 "^$IMAGE_REPOSITORY@" | cut -d @ -f 2 || true)"
  if [[ -f $STATE_DIR/current ]]; then cp -p "$STATE_DIR/current" "$STATE_DIR/previous"; fi
  {
    printf 'slot=%s\nimage=%s\ntag=%s\ndigest=%s\nrelease=%s\nbackup=%s\ndeployed_at=%s\nfingerprint=%s\n' \
      "$NEW_SLOT" "$IMAGE" "$IMAGE_TAG" "${digest:-unknown}" "$RELEASE" "${BACKUP_PATH:-none}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$FINGERPRINT"
  } | write_file "$STATE_DIR/current"
  printf '%s %s slot=%s image=%s backup=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$STACK" "$NEW_SLOT" "$IMAGE" "${BACKUP_PATH:-none}" >>"$STATE_DIR/history.log"
  # For people running compose by hand in $APP_DIR/current (docs/deploy.md, On the host).
  printf 'COMPOSE_PROJECT_NAME=%s\nCLICKY_IMAGE_BLUE=%s\nCLICKY_IMAGE_GREEN=%s\n' "$PROJECT" "$CLICKY_IMAGE_BLUE" "$CLICKY_IMAGE_GREEN" | write_file "$RELEASE_DIR/.env"
  ln -sfn "$RELEASE_DIR" "$APP_DIR/current.new"
  mv -T "$APP_DIR/current.new" "$APP_DIR/current"
  log "recorded: $IMAGE_TAG ($IMAGE) serves from backend-$NEW_SLOT; previous: ${OLD_IMAGE:-none}"
}
