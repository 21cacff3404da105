# shellcheck shell=bash
# Helpers every step uses: failing, timing, compose, secrets, state files, containers, health,
# the proxy's routing file and its nginx workers.

# Response header naming the slot that answered (the release's nginx site adds it).
readonly SLOT_HEADER=X-Clicky-Slot
# The proxy's routing file in PROXY_DIR (its routing.js reads /etc/nginx/conf.d/routing), and
# the release's files the proxy loads at start or reload (src/deploy/compose.ts).
readonly ROUTING_NAME=routing
readonly PROXY_SITE_FILES=(site.conf routing.js)

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

# Writes a file atomically (temp file in the same directory, then rename); $2, when given, is
# its mode (a temp file starts as 0600).
write_file() {
  local path=$1 mode=${2:-} tmp
  tmp="$(mktemp "$path.XXXXXX")"
  cat >"$tmp"
  if [[ -n $mode ]]; then chmod "$mode" "$tmp"; fi
  mv -f "$tmp" "$path"
}

# One look at the project's service containers (compose's one-off runs left out), as preflight,
# infra and the proxy check ask about them: by compose service, the newest container's SNAP_ID,
# SNAP_RUNNING (true/false, as is_running), SNAP_STATUS (running, restarting, exited, ...),
# SNAP_HEALTH (healthy, unhealthy, starting, or none without a health check), SNAP_IMAGE (the
# reference it was started from) and SNAP_IMAGE_ID. Two docker calls on every deploy's critical
# path, where asking Docker about each service's id, state, health and image apart took
# about twenty. A snapshot: a step that changes containers asks Docker again.
declare -gA SNAP_ID=() SNAP_RUNNING=() SNAP_STATUS=() SNAP_HEALTH=() SNAP_IMAGE=() SNAP_IMAGE_ID=()
snapshot_containers() {
  SNAP_ID=() SNAP_RUNNING=() SNAP_STATUS=() SNAP_HEALTH=() SNAP_IMAGE=() SNAP_IMAGE_ID=()
  local -a ids
  local service id running status health image_id image
  mapfile -t ids < <(docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$PROJECT" --filter label=com.docker.compose.oneoff=False 2>/dev/null || true)
  ((${#ids[@]})) || return 0
  # docker ps lists the newest first, and inspect keeps that order: the first of a service wins,
  # as with container_of.
  while read -r service id running status health image_id image; do
    [[ -n $image && -z ${SNAP_ID[$service]:-} ]] || continue
    SNAP_ID[$service]=$id SNAP_RUNNING[$service]=$running SNAP_STATUS[$service]=$status
    SNAP_HEALTH[$service]=$health SNAP_IMAGE_ID[$service]=$image_id SNAP_IMAGE[$service]=$image
  done < <(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{.Id}} {{.State.Running}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.Image}} {{.Config.Image}}' "${ids[@]}" 2>/dev/null || true)
}

# The container of a compose service of this project (Docker labels; no compose start-up).
container_of() {
  local service=$1
  docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$service" --filter label=com.docker.compose.oneoff=False 2>/dev/null | head -n 1 || true
}

is_running() {
  [[ -n $1 ]] && [[ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" == true ]]
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

# PostgreSQL's and Redis's health checks as the compose file gives them (src/deploy/compose.ts),
# run in their containers now: PostgreSQL over TCP to the database, never the socket (on a
# first start the entrypoint's temporary server answers on the socket only).
probe_postgres() {
  docker exec "$1" pg_isready -q -h 127.0.0.1 -U "$DB_USER" -d "$DB_NAME" >/dev/null 2>&1
}

probe_redis() {
  [[ "$(docker exec "$1" redis-cli ping 2>/dev/null)" == PONG ]]
}

# Waits until a service's container is healthy; fails at once on exit or crash loop, and
# otherwise only at the timeout (health.timeoutSeconds): Docker's `unhealthy` verdict, which
# comes after its start period and retries, does not end the wait, so the one timeout the user
# set decides (a slow boot that Docker gives up on still gets its full time; Docker turns it
# healthy again at its next passing probe). With $3, a probe function (probe_app,
# probe_postgres, probe_redis) given the container, it passes as soon as that probe does
# (checked every half second) instead of at Docker's next interval.
wait_healthy() {
  local service=$1 timeout=$2 probe=${3:-} cid status restarts health deadline started=$SECONDS unhealthy_at=''
  # To the millisecond: bash's SECONDS counts whole seconds, which gave 19.x s of 20.
  deadline=$(($(now_ms) + timeout * 1000))
  cid="$(container_of "$service")"
  [[ -n $cid ]] || fail "$service has no container"
  while :; do
    # One docker inspect a round: status, restarts and Docker's health verdict.
    read -r status restarts health < <(docker inspect -f '{{.State.Status}} {{.RestartCount}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$cid" 2>/dev/null || echo gone 0 none) || true
    case "$status/$health" in
      running/healthy | running/none) return 0 ;;
      running/unhealthy) unhealthy_at=${unhealthy_at:-$((SECONDS - started))} ;;
      exited/* | dead/* | gone/*) fail "$service stopped (exit code $(docker inspect -f '{{.State.ExitCode}}' "$cid" 2>/dev/null)) before it was healthy; see: docker logs $cid" ;;
    esac
    if [[ ${restarts:-0} -ge 3 ]]; then
      fail "$service keeps restarting ($restarts restarts); see: docker logs $cid"
    fi
    if [[ -n $probe && $status == running ]] && "$probe" "$cid"; then
      return 0
    fi
    if (($(now_ms) >= deadline)); then
      fail "$service was not healthy after $timeout s (health.timeoutSeconds${unhealthy_at:+; Docker marked it unhealthy after $unhealthy_at s}; last probe: $(last_probe "$cid"))"
    fi
    sleep 0.5
  done
}

# Sets BACKUP_CPU to `docker run`'s options for a dump's container: its CPU weight
# (backup.cpuShares; none for 0, Docker's default), so that the serving version comes first.
dump_cpu_options() {
  BACKUP_CPU=()
  if ((BACKUP_CPU_SHARES > 0)); then BACKUP_CPU=(--cpu-shares "$BACKUP_CPU_SHARES"); fi
}

# Removes container $1 (if any) and returns once Docker no longer lists it, for up to 10 s. A
# one-off that Docker removes by itself (`docker run --rm`, compose v2's `run --rm`) is still
# listed for a moment after its run ended, and `docker rm -f` then refuses ("removal already in
# progress"); a deploy that ends in that moment would leave it to be seen.
remove_container() {
  local i
  docker rm -f "$1" >/dev/null 2>&1 || true
  for ((i = 0; i < 100; i++)); do
    docker container inspect --format '{{.Id}}' "$1" >/dev/null 2>&1 || return 0
    sleep 0.1
  done
}

# Stops and removes a backend slot's container, if any.
remove_slot() {
  local cid
  cid="$(container_of "backend-$1")"
  if [[ -n $cid ]]; then docker rm -f -v "$cid" >/dev/null 2>&1 || true; fi
}

# The slot the proxy's routing file names, empty before the first switch. A host last deployed
# before the routing file existed names it in upstream.conf's first line (`# ... slot=green`).
serving_slot() {
  local slot
  if [[ -f $PROXY_DIR/$ROUTING_NAME ]]; then
    slot="$(awk '$0 !~ /^#/ && NF { print $1; exit }' "$PROXY_DIR/$ROUTING_NAME" 2>/dev/null || true)"
  else
    slot="$(sed -n 's/^# .*slot=\([a-z]*\)$/\1/p' "$PROXY_DIR/upstream.conf" 2>/dev/null | head -n 1 || true)"
  fi
  case $slot in blue | green) printf '%s\n' "$slot" ;; esac
}

# The proxy's routing file (src/deploy/compose.ts, renderRouting, renders the same text; the
# proxy's routing.js reads it per request): slot $1 serves, by name (resolved per request
# through Docker's DNS) and by its address $2 (the fallback); slot $3 at address $4, when
# given, stands by for what the serving one cannot answer.
render_routing() {
  printf '%s\n' '# Serving slot, written by the deploy script at each switch; the proxy reads it per request.'
  printf '%s backend-%s:%s %s:%s' "$1" "$1" "$APP_PORT" "$2" "$APP_PORT"
  if [[ -n ${4:-} ]]; then printf ' %s %s:%s' "$3" "$4" "$APP_PORT"; fi
  printf '\n'
}

# The hash of a directory's proxy site files (what nginx loads at start or reload).
site_hash() {
  (cd "$1" && cat "${PROXY_SITE_FILES[@]}") | sha256sum | cut -c 1-64
}

# Routes the proxy's next request (one atomic rename; nginx's workers read the file, so it is
# world-readable). Arguments as render_routing's.
set_routing() {
  render_routing "$@" | write_file "$PROXY_DIR/$ROUTING_NAME" 644
}

# The address of a container on the project's network, empty when it has none (yet).
container_address() {
  { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" 2>/dev/null || true; } | awk '{ print $1 }'
}

# One query in the database, as its owner, through the postgres container's psql (PG_CID, else
# looked up): unaligned rows, fields separated by a space; empty when it fails.
pg_query() {
  docker exec "${PG_CID:-$(container_of postgres)}" psql -X -At -F ' ' -U "$DB_USER" -d "$DB_NAME" -c "$1" 2>/dev/null || true
}

# The address of a container on the project's network; the deploy fails when it has none.
address_of() {
  local address
  address="$(container_address "$1")"
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

# Whether the running proxy loads the routing module (a proxy started by an earlier version of
# this program does not, and cannot serve this site).
proxy_routes() {
  [[ "$(docker inspect -f '{{join .Config.Cmd " "}}' "$PROXY_CID" 2>/dev/null)" == *"$PROXY_GLOBALS"* ]]
}

# How many connections the proxy holds open to address $1 on the app's port (ESTABLISHED or
# SYN_SENT in its network namespace's /proc/net/tcp): requests in flight to that slot. nginx
# opens one connection per request to a slot and closes it with the response. Fails when
# Docker does not answer, which says nothing about the count.
proxy_connections_to() {
  local a b c d table
  IFS=. read -r a b c d <<<"$1"
  table="$(proxy_tcp_table)" || return 1
  awk -v peer="$(printf '%02X%02X%02X%02X:%04X' "$d" "$c" "$b" "$a" "$APP_PORT")" \
    '$3 == peer && ($4 == "01" || $4 == "02") { n++ } END { print n + 0 }' <<<"$table"
}

# Where this host shows processes (a test points it elsewhere).
PROC_ROOT=/proc
# The pid of the proxy container's main process on this host (empty: not shown here), and the
# container (PROXY_CID) it was looked up for.
PROXY_PID='' PROXY_PID_OF=''

# Looks up PROXY_PID, once per proxy container (call it outside a command substitution, which
# would forget it).
find_proxy_pid() {
  [[ $PROXY_PID_OF != "$PROXY_CID" ]] || return 0
  PROXY_PID_OF=$PROXY_CID
  PROXY_PID="$(docker inspect -f '{{.State.Pid}}' "$PROXY_CID" 2>/dev/null || true)"
  [[ $PROXY_PID =~ ^[1-9][0-9]*$ ]] || PROXY_PID=''
}

# The proxy's /proc/net/tcp. Read on the host through the /proc entry of its main process
# (PROXY_PID) when this host shows that process as the proxy's (the engine runs here; its cgroup
# names the container, and is read again after the table, so that a pid reused meanwhile is
# never believed): a file read, where a docker exec takes a few hundred ms on a busy host. Else
# with docker exec in the container: a remote engine, /proc mounted with hidepid, a proxy
# restarted since its pid was looked up.
proxy_tcp_table() {
  local dir cgroup='' table='' again=''
  if [[ -n $PROXY_PID && $PROXY_PID_OF == "$PROXY_CID" ]]; then
    dir=$PROC_ROOT/$PROXY_PID
    { cgroup="$(<"$dir/cgroup")" && table="$(<"$dir/net/tcp")" && again="$(<"$dir/cgroup")"; } 2>/dev/null || true
    if [[ $cgroup == *"$PROXY_CID"* && $again == *"$PROXY_CID"* && -n $table ]]; then
      printf '%s\n' "$table"
      return 0
    fi
  fi
  docker exec "$PROXY_CID" cat /proc/net/tcp 2>/dev/null
}

# Waits until the proxy has held no connection to address $1 for two looks in a row, 0.1 s
# apart, and at least $2 ms (default 0) have passed, at most DRAIN_SECONDS in all. WAITED says
# how long it took; DRAINED is 1 when the connections were seen to end, 0 when time ran out.
wait_drained() {
  local address=$1 least=${2:-0} t0 n='?' quiet=0
  t0="$(now_ms)"
  DRAINED=0
  find_proxy_pid
  while :; do
    if n="$(proxy_connections_to "$address")" && ((n == 0)); then quiet=$((quiet + 1)); else quiet=0; fi
    if ((quiet >= 2 && $(now_ms) - t0 >= least)); then
      DRAINED=1
      break
    fi
    if (($(now_ms) - t0 >= DRAIN_SECONDS * 1000)); then
      if [[ -z $n ]]; then
        log "could not count the proxy's requests in flight to $address within $DRAIN_SECONDS s (deploy.drainSeconds; Docker did not answer); going on"
      elif ((n == 0 && quiet < 2)); then
        # One look saw none; the second, which confirms it, did not come in time.
        log "the proxy had no request in flight to $address at its last look, unconfirmed by a second within $DRAIN_SECONDS s (deploy.drainSeconds; Docker answered slowly); going on"
      elif ((n == 0)); then
        log "the proxy had no request in flight to $address; $DRAIN_SECONDS s (deploy.drainSeconds) ended the wait before its $least ms; going on"
      else
        log "the proxy still had $n request(s) in flight to $address after $DRAIN_SECONDS s (deploy.drainSeconds); going on"
      fi
      break
    fi
    sleep 0.1
  done
  WAITED="$(seconds_of "$(($(now_ms) - t0))")"
}

# The pids of the proxy's nginx workers now: those that could still hold a request under the
# site the next reload replaces.
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

# Makes nginx load the proxy's site files (only when they changed: a switch never reloads);
# fails (the caller undoes) if it cannot.
reload_proxy() {
  docker exec "$PROXY_CID" nginx -t -q -g "$PROXY_GLOBALS" || fail "nginx rejected the new configuration"
  docker exec "$PROXY_CID" nginx -s reload -g "$PROXY_GLOBALS" || fail "nginx did not reload"
}
