# shellcheck shell=bash
# Helpers every step uses: failing, timing, compose, secrets, state files, containers, health,
# the proxy's upstream file and its nginx workers.

# Response header naming the slot that answered (the release's nginx site adds it).
readonly SLOT_HEADER=X-Clicky-Slot

# The values read from stdin, by key (read_stdin); never variables of their own name.
declare -gA SECRETS=()

# Ends the deploy with a reason; the EXIT trap undoes what this run changed and reports.
fail() {
  FAIL_REASON="$*"
  exit 1
}

# Milliseconds since the epoch (bash 5's clock, else date).
now_ms() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    local t=${EPOCHREALTIME/./}
    printf '%s\n' "$((t / 1000))"
  else
    date +%s%3N
  fi
}

# Milliseconds as seconds with one decimal.
seconds_of() {
  printf '%d.%d' "$(($1 / 1000))" "$(($1 % 1000 / 100))"
}

# The project's compose command, with the variant found by preflight.
compose() {
  "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE" "$@"
}

# Runs a command with the app's secrets (APP_SECRETS) in its environment, for compose to pass
# on to the container; in a subshell, so they reach that command only, never the deploy's
# other commands. The values go through the environment, never a command line (`ps`).
with_app_env() {
  (
    for key in "${APP_SECRETS[@]}"; do export "$key=${SECRETS[$key]}"; done
    "$@"
  )
}

# Reads the secrets from stdin: dotenv lines, only STDIN_KEYS, every REQUIRED_STDIN_KEYS key,
# the registry's user and token together. Values go to SECRETS, never to variables of their
# own name, so no secret can shadow a variable of this script.
read_stdin() {
  local line key known k
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z $line || $line == "#"* ]] && continue
    [[ $line == *=* ]] || fail "stdin: expected KEY=value lines (dotenv), got a line without '='"
    key=${line%%=*}
    known=0
    for k in "${STDIN_KEYS[@]}"; do [[ $k == "$key" ]] && known=1; done
    if ((!known)); then
      [[ $key =~ ^[A-Z_][A-Z0-9_]*$ ]] || key="(malformed)"
      fail "stdin: unexpected key $key"
    fi
    SECRETS[$key]=${line#*=}
  done
  for key in "${REQUIRED_STDIN_KEYS[@]}"; do
    [[ -n ${SECRETS[$key]:-} ]] || fail "stdin: $key is missing"
  done
  if [[ -n ${SECRETS[REGISTRY_USERNAME]:-} && -z ${SECRETS[REGISTRY_TOKEN]:-} ]] ||
    [[ -z ${SECRETS[REGISTRY_USERNAME]:-} && -n ${SECRETS[REGISTRY_TOKEN]:-} ]]; then
    fail "stdin: REGISTRY_USERNAME and REGISTRY_TOKEN go together"
  fi
  build_masks
}

# Reads key=value from a state file without executing it.
state_get() {
  local file=$1 key=$2 line
  [[ -f $file ]] || return 0
  while IFS= read -r line; do
    if [[ $line == "$key="* ]]; then
      printf '%s\n' "${line#*=}"
      return 0
    fi
  done <"$file"
}

# Writes a file atomically (temp file in the same directory, then rename).
write_file() {
  local path=$1 tmp
  tmp="$(mktemp "$path.XXXXXX")"
  cat >"$tmp"
  mv -f "$tmp" "$path"
}

# The container of a compose service of this project (Docker labels; no compose start-up).
container_of() {
  local service=$1
  docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$service" --filter label=com.docker.compose.oneoff=False 2>/dev/null | head -n 1 || true
}

is_running() {
  [[ -n $1 ]] && [[ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" == true ]]
}

health_of() {
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2>/dev/null || true
}

# The output of the last health probe of a container, on one line.
last_probe() {
  docker inspect -f '{{with .State.Health}}{{range .Log}}{{.ExitCode}}: {{.Output}}{{"\n"}}{{end}}{{end}}' "$1" 2>/dev/null |
    grep -v '^$' | tail -n 1 | tr '\n\r\t' '   ' | cut -c 1-300
}

# The backend's own health probe, run in its container now (Docker runs it every interval).
probe_app() {
  local cid=$1
  docker exec "$cid" "${HEALTH_PROBE[@]}" >/dev/null 2>&1
}

# Waits until a service's container is healthy; fails on exit, crash loop, unhealthy or
# timeout. With `probe`, a backend passes as soon as its own probe does (checked every
# half second) instead of at Docker's next interval.
wait_healthy() {
  local service=$1 timeout=$2 probe=${3:-} cid state deadline
  deadline=$((SECONDS + timeout))
  cid="$(container_of "$service")"
  [[ -n $cid ]] || fail "$service has no container"
  while :; do
    state="$(docker inspect -f '{{.State.Status}} {{.RestartCount}}' "$cid" 2>/dev/null || echo gone 0)"
    case "$state/$(health_of "$cid")" in
      running*/healthy | running*/none) return 0 ;;
      running*/unhealthy) fail "$service is unhealthy: $(last_probe "$cid")" ;;
      exited*/* | dead*/* | gone*/*) fail "$service stopped (exit code $(docker inspect -f '{{.State.ExitCode}}' "$cid" 2>/dev/null)) before it was healthy; see: docker logs $cid" ;;
    esac
    if [[ ${state#* } -ge 3 ]]; then
      fail "$service keeps restarting (${state#* } restarts); see: docker logs $cid"
    fi
    if [[ -n $probe && $state == running* ]] && probe_app "$cid"; then
      return 0
    fi
    if ((SECONDS >= deadline)); then
      fail "$service was not healthy after $timeout s (last probe: $(last_probe "$cid"))"
    fi
    sleep 0.5
  done
}

# Stops and removes a backend slot's container, if any.
remove_slot() {
  local cid
  cid="$(container_of "backend-$1")"
  if [[ -n $cid ]]; then docker rm -f -v "$cid" >/dev/null 2>&1 || true; fi
}

# The slot the proxy's upstream file names, empty before the first switch.
serving_slot() {
  local slot
  slot="$(sed -n 's/^# .*slot=\([a-z]*\)$/\1/p' "$PROXY_DIR/upstream.conf" 2>/dev/null | head -n 1 || true)"
  case $slot in blue | green) printf '%s\n' "$slot" ;; esac
}

# The proxy's upstream file (src/deploy/compose.ts, renderUpstream, renders the same text):
# slot $1 serves, by name (resolved per request through Docker's DNS) and by its address $2 (the
# fallback group); the address $3, when given, is the fallback group's backup.
render_upstream() {
  # shellcheck disable=SC2016 # $host and the $clicky_* names are nginx variables
  printf '%s\n' \
    "# Serving slot, written by the deploy script at each switch. slot=$1" \
    'map $host $clicky_backend { default http://backend-'"$1:$APP_PORT"'; }' \
    'map $host $clicky_slot { default '"$1"'; }' \
    'upstream clicky_slots {' \
    "  server $2:$APP_PORT;"
  if [[ -n ${3:-} ]]; then printf '%s\n' "  server $3:$APP_PORT backup;"; fi
  printf '%s\n' '}'
}

# The address of a container on the project's network.
address_of() {
  local cid=$1 address
  address="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$cid" 2>/dev/null | awk '{ print $1 }')"
  [[ -n $address ]] || fail "container $1 has no address on the project's network"
  printf '%s\n' "$address"
}

# One GET through the proxy; prints `<status> <slot>`.
probe_proxy() {
  local url=$1 code
  : >"$HEADERS_FILE"
  code="$(curl -sS -o /dev/null --max-time 10 -D "$HEADERS_FILE" -w '%{http_code}' "$url" 2>/dev/null)" || code=000
  printf '%s %s\n' "$code" "$(sed -n "s/^$SLOT_HEADER: *\([a-z]*\).*/\1/Ip" "$HEADERS_FILE" | head -n 1)"
}

# The pids of the proxy's nginx workers now: those that could still send a request to a
# slot the next configuration no longer names.
snapshot_workers() {
  PROXY_WORKERS=()
  if is_running "$PROXY_CID"; then
    # shellcheck disable=SC2016 # the script runs in the proxy's container
    mapfile -t PROXY_WORKERS < <(docker exec "$PROXY_CID" sh -c 'for f in /proc/[0-9]*/cmdline; do case "$(tr "\000" " " <"$f" 2>/dev/null)" in "nginx: worker process"*) p=${f#/proc/}; echo "${p%/cmdline}" ;; esac; done' 2>/dev/null || true)
  fi
}

# Waits until every snapshotted worker has exited (after a reload each finishes the
# requests it holds, then exits), at most DRAIN_SECONDS; WAITED says how long it took.
wait_workers_gone() {
  local t0
  local -a alive
  t0="$(now_ms)"
  while ((${#PROXY_WORKERS[@]} > 0)); do
    # shellcheck disable=SC2016 # the script runs in the proxy's container
    mapfile -t alive < <(docker exec "$PROXY_CID" sh -c 'for p in "$@"; do [ -e "/proc/$p" ] && echo "$p"; done; exit 0' sh "${PROXY_WORKERS[@]}" 2>/dev/null || true)
    ((${#alive[@]} > 0)) || break
    if (($(now_ms) - t0 >= DRAIN_SECONDS * 1000)); then
      log "nginx workers ${alive[*]} still hold requests after $DRAIN_SECONDS s (deploy.drainSeconds); going on"
      break
    fi
    sleep 0.1
  done
  WAITED="$(seconds_of "$(($(now_ms) - t0))")"
}

# Makes nginx load the proxy's files; fails (the caller undoes) if it cannot.
reload_proxy() {
  docker exec "$PROXY_CID" nginx -t -q || fail "nginx rejected the new configuration"
  docker exec "$PROXY_CID" nginx -s reload || fail "nginx did not reload"
}
