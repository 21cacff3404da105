# shellcheck shell=bash
# The deploy's entry: the settings check, this run's arguments, the run log, the EXIT trap,
# then the steps in order. Everything above is function definitions; the one command at the
# bottom runs them, so bash has read the whole file before any step starts.

# Exit code of a script started with missing or unknown arguments or settings (nothing was
# changed), and of a deploy that found another one running (EX_TEMPFAIL).
readonly USAGE_EXIT=2 LOCK_BUSY_EXIT=75
# Deploy logs kept on the host (<appDir>/logs, one .out, .err and .log per run).
readonly RUN_LOGS_KEPT=20
# The steps, in order, as the log and failure messages name them.
readonly STEPS=(lock preflight infra backup pull migrate start health switch verify watch drain record)

# Every setting the preamble must write (src/deploy/settings.ts); a test holds the two together.
require_settings() {
  local name arrays
  arrays="$(compgen -A arrayvar | tr '\n' ' ')"
  for name in STACK HOST_NAME APP_DIR PROJECT RELEASE RELEASE_SHA256 COMPOSE_PREFERENCE MIGRATION_COMMAND MIGRATION_CHECK \
    MIGRATION_LOCK_WAIT MIGRATION_ATTEMPTS MIGRATION_TIMEOUT \
    DB_NAME DB_USER BACKUP_KEEP BACKUP_MIN_FREE_MIB BACKUP_COMPRESSION BACKUP_CPU_SHARES BACKUP_TIMEOUT VERIFY_PATHS VERIFY_PROBE PROXY_URL \
    APP_PORT HEALTH_TIMEOUT HEALTH_RETRIES HEALTH_PROBE WATCH_SECONDS DRAIN_SECONDS STOP_TIMEOUT \
    POSTGRES_IMAGE REDIS_IMAGE PROXY_IMAGE PROXY_GLOBALS STDIN_KEYS REQUIRED_STDIN_KEYS MASKED_KEYS APP_SECRETS; do
    # An empty array (MIGRATION_CHECK=()) is declared, though -v sees no element.
    if [[ ! -v $name && " $arrays " != *" $name "* ]]; then
      printf 'deploy: setting %s is missing from the preamble; nothing was changed\n' "$name" >&2
      exit "$USAGE_EXIT"
    fi
  done
}

# This run's arguments (the run command's line; src/deploy/run-command.ts): the image, its
# tag, the registry of a private image and the migrate flag. Anything else, or one missing,
# stops the script before it reads stdin or changes anything.
parse_arguments() {
  local arg
  IMAGE='' IMAGE_TAG='' REGISTRY='' MIGRATE=''
  for arg in "$@"; do
    case $arg in
      image=?*) IMAGE=${arg#image=} ;;
      tag=?*) IMAGE_TAG=${arg#tag=} ;;
      registry=?*) REGISTRY=${arg#registry=} ;;
      migrate=0 | migrate=1) MIGRATE=${arg#migrate=} ;;
      *)
        printf 'deploy: unexpected argument %q; nothing was changed\n' "$arg" >&2
        exit "$USAGE_EXIT"
        ;;
    esac
  done
  if [[ -z $IMAGE || -z $IMAGE_TAG || -z $REGISTRY || -z $MIGRATE ]]; then
    printf 'deploy: usage: bash %s image=<image> tag=<tag> registry=<registry> migrate=0|1, with the secrets as dotenv lines on stdin; nothing was changed\n' "${SCRIPT_FILE:-deploy.sh}" >&2
    exit "$USAGE_EXIT"
  fi
  if [[ $IMAGE == *@* ]]; then
    IMAGE_PINNED=1 IMAGE_REPOSITORY=${IMAGE%@*}
  else
    IMAGE_PINNED=0 IMAGE_REPOSITORY=${IMAGE%:"$IMAGE_TAG"}
  fi
  readonly IMAGE IMAGE_TAG REGISTRY MIGRATE IMAGE_PINNED IMAGE_REPOSITORY
}

# Where the output goes (src/deploy/script-output.ts): everything to this run's log,
# <appDir>/logs/<UTC time>-<pid>.log (mode 0600, directory 0700; a temporary directory before
# the prepare command made <appDir>/state), progress lines to fd 3, the failure report to fd 4.
#
# The deploy must not depend on the SSH connection that started it: when the connection drops
# (no pty, so no SIGHUP; the next write to the closed pipe would kill it halfway), the deploy
# carries on to its end, success or undo, and releases the lock. So the command SSH runs starts
# this file again as a worker in its own session (setsid), with the same arguments and stdin,
# its fd 3 and 4 on <log>.out and <log>.err, streams those two back (.out to stdout, .err to
# stderr), and exits with the worker's code. Run other than from a file (bash -c), or without
# setsid, it runs inline, fd 3 and 4 being its own stdout and stderr.
detach() {
  if [[ -n ${CLICKY_DEPLOY_WORKER:-} ]]; then
    RUN_LOG=$CLICKY_DEPLOY_WORKER
    readonly RUN_LOG
    return 0
  fi
  local -a run_logs
  local i worker worker_rc
  if [[ -d $STATE_DIR ]] && { [[ -d $LOG_DIR ]] || mkdir -m 700 "$LOG_DIR" 2>/dev/null; }; then
    # Keep the newest runs' logs (their names sort by time).
    shopt -s nullglob
    run_logs=("$LOG_DIR"/*.out)
    shopt -u nullglob
    for ((i = 0; i < ${#run_logs[@]} - (RUN_LOGS_KEPT - 1); i++)); do rm -f -- "${run_logs[i]%.out}".{out,err,log}; done
    RUN_LOG="$LOG_DIR/$(date -u +%Y%m%dT%H%M%SZ)-$$"
  else
    RUN_LOG="$(mktemp -d "${TMPDIR:-/tmp}/clicky-deploy.XXXXXX")/run"
  fi
  readonly RUN_LOG
  : >"$RUN_LOG.out"
  : >"$RUN_LOG.err"
  : >"$RUN_LOG.log"
  if [[ -f $SCRIPT_FILE ]] && command -v setsid >/dev/null; then
    CLICKY_DEPLOY_WORKER="$RUN_LOG" setsid bash "$SCRIPT_FILE" "$@" <&0 3>>"$RUN_LOG.out" 4>>"$RUN_LOG.err" >>"$RUN_LOG.log" 2>&1 &
    worker=$!
    tail -n +1 -s 0.1 --pid="$worker" -f "$RUN_LOG.out" &
    tail -n +1 -s 0.1 --pid="$worker" -f "$RUN_LOG.err" >&2 &
    worker_rc=0
    wait "$worker" || worker_rc=$?
    wait
    # Killed before it could report (SIGKILL, out of memory): say where its log is.
    if ((worker_rc != 0)) && [[ ! -s $RUN_LOG.err ]]; then
      printf 'deploy FAILED on %s (stack %s): the deploy ended with exit %s before it could report; its log: %s\n' "$HOST_NAME" "$STACK" "$worker_rc" "$RUN_LOG.log" >&2
    fi
    exit "$worker_rc"
  fi
  exec 3>&1 4>&2 >>"$RUN_LOG.log" 2>&1
}

# The EXIT trap: on failure, the registered undos (newest first), then the report.
# shellcheck disable=SC2317 # run by the EXIT trap
on_exit() {
  local rc=$?
  set +e
  trap - ERR
  if ((rc != 0)); then
    local where=$STEP docker_gone='' failed_at took
    failed_at="$(now_ms)"
    # A Docker engine that stopped answering makes every later command fail: say so first, and
    # claim nothing about what serves (the undos cannot have run either).
    if ((!LOCK_BUSY)) && [[ ${#COMPOSE[@]} -gt 0 ]] && ! timeout 10 docker info >/dev/null 2>"$TMP_DIR/docker-info.err"; then
      docker_gone="$(grep -m 1 . "$TMP_DIR/docker-info.err" | cut -c 1-200)"
      docker_gone=${docker_gone:-no answer within 10 s}
    fi
    run_undos
    # Past the switch, the old version no longer takes traffic: a rotation's trust line goes.
    if ((COMMITTED)) && [[ -z $docker_gone ]]; then end_rotation_bridge; fi
    # Where the time went: the steps that ended, the one that failed, and the undo.
    if ((!LOCK_BUSY)) && [[ -n $RUN_STEP ]]; then
      took="$(seconds_of "$((failed_at - RUN_STEP_T0))")"
      TIMINGS+=("$RUN_STEP $took s" "undo $(seconds_of "$(($(now_ms) - failed_at))") s")
      STEP=$where
      log "failed after $took s in step $RUN_STEP; timings: $(timings_text)"
    fi
    if [[ -z $FAIL_REASON ]]; then FAIL_REASON="command failed (exit $rc) at line ${FAILED_LINE:-?}: ${FAILED_COMMAND:-?}"; fi
    if [[ -n $docker_gone ]]; then FAIL_REASON="the Docker engine stopped answering ($docker_gone); the step's own error: $FAIL_REASON"; fi
    # The secrets read so far (stdin may have failed halfway), then the report: the log's
    # last lines first, so that the step, the reason, what serves and the backup end it.
    build_masks
    report_log_tail
    report "deploy FAILED on $HOST_NAME (stack $STACK) at step $where: $FAIL_REASON"
    if ((LOCK_BUSY)); then
      rc=$LOCK_BUSY_EXIT
    elif [[ -n $docker_gone ]]; then
      report "what serves on this host is unknown while Docker does not answer: once it is back, docker ps and $STATE_DIR/current show it, and the next deploy puts this release in place"
    elif ((COMMITTED)); then
      report "the new version $IMAGE serves from backend-$NEW_SLOT; finish the step by hand"
    elif [[ -n $OLD_SLOT ]]; then
      report "the previous version keeps serving: $OLD_IMAGE in backend-$OLD_SLOT"
    else
      report "no previous version was serving on this host"
    fi
    if ((LOCK_BUSY)); then
      :
    elif [[ -n ${PHASE:-} && $PHASE != database ]]; then
      # A fleet's app host: the rollout's database phase dumps, once, before any host moves.
      report "backup: taken by this rollout's database phase, not by the $PHASE phase of an app host"
    else
      report "backup taken before this deploy: ${BACKUP_PATH:-none (the deploy stopped before its backup was complete)}"
    fi
  fi
  if [[ -n $PROXY_CHECK_DIR ]]; then rm -rf "$PROXY_CHECK_DIR"; fi
  if [[ -n $TMP_DIR ]]; then rm -rf "$TMP_DIR"; fi
  if ((LOCKED)); then rm -f "$STATE_DIR/deploy.lock.owner"; fi
  exit "$rc"
}

main() {
  require_settings
  RELEASE_DIR="$APP_DIR/releases/$RELEASE"
  COMPOSE_FILE="$RELEASE_DIR/docker-compose.yml"
  SITE_FILE="$RELEASE_DIR/site.conf"
  STATE_DIR="$APP_DIR/state"
  BACKUP_DIR="$APP_DIR/backups"
  ENV_DIR="$APP_DIR/env"
  PROXY_DIR="$APP_DIR/proxy"
  LOG_DIR="$APP_DIR/logs"
  readonly RELEASE_DIR COMPOSE_FILE SITE_FILE STATE_DIR BACKUP_DIR ENV_DIR PROXY_DIR LOG_DIR
  parse_arguments "$@"
  detach "$@"

  STEP=stdin FAIL_REASON='' FAILED_COMMAND='' FAILED_LINE=''
  LOCKED=0 LOCK_BUSY=0 COMMITTED=0
  BACKUP_PATH='' OLD_SLOT='' OLD_IMAGE='' OLD_CID='' NEW_SLOT='' NEW_CID='' NEW_ADDR='' OLD_ADDR='' SERVING_SLOT='' FINGERPRINT=''
  TMP_DIR='' HEADERS_FILE='' PROXY_CID='' PROXY_CHECK_DIR='' PULL_PID='' BACKUP_CONTAINER='' BACKUP_PARTIAL='' BACKUP_PID='' BACKUP_TARGET='' BACKUP_T0=0 BACKUP_ERROR='' BACKUP_IMAGE=''
  MIGRATION_CONTAINER='' MIGRATION_VERDICT='' MIGRATION_RC=0 LOCK_HOLDERS='' PG_CID='' HELD_PID=''
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
  run_step lock
  run_step preflight
  FINGERPRINT="$(fingerprint)"
  if already_deployed; then
    if ((${#SITE_DRIFT[@]})); then repair_site; fi
    STEP=finished
    log "nothing to do: $IMAGE_TAG ($IMAGE) already serves from backend-$OLD_SLOT with this release and env"
    exit 0
  fi
  start_pull
  start_early
  run_step proxy_check
  local step
  for step in "${STEPS[@]:2}"; do
    [[ " ${EARLY_STEPS[*]} " != *" $step "* ]] || continue
    run_step "$step"
  done
  STEP=finished
  log "deployed $IMAGE_TAG ($IMAGE) to $HOST_NAME; timings: $(timings_text)"
}

main "$@"
exit
