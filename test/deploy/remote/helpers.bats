#!/usr/bin/env bats
# Unit tests of the deploy script's bash helpers (src/deploy/remote/*.sh), run by
# test/deploy/remote.test.ts with DEPLOY_SETTINGS (a preamble rendered from a test config) and
# REMOTE_DIR set. Each test sources the parts afresh; main.sh without its last two lines, so
# nothing runs.

setup() {
  # shellcheck disable=SC1090
  source "$DEPLOY_SETTINGS"
  local part
  for part in output helpers steps; do
    # shellcheck disable=SC1090
    source "$REMOTE_DIR/$part.sh"
  done
  # shellcheck disable=SC1090
  source <(sed '/^main "\$@"$/,$d' "$REMOTE_DIR/main.sh")
  STEP=test
}

stdin() {
  printf 'POSTGRES_PASSWORD=pg-secret\nDATABASE_URL=postgresql://u:pg-secret@postgres/db\nJWT_SECRET_KEY=jwt=with=equals\n'
}

@test "read_stdin keeps each value under its key, '=' in a value included, never as a variable" {
  read_stdin < <(printf '# a comment\n\n'; stdin)
  [ "${SECRETS[POSTGRES_PASSWORD]}" = pg-secret ]
  [ "${SECRETS[JWT_SECRET_KEY]}" = jwt=with=equals ]
  [ ! -v POSTGRES_PASSWORD ]
  [ ! -v JWT_SECRET_KEY ]
}

@test "read_stdin refuses a key it does not know, naming the key and not the value" {
  fail() { printf '%s\n' "$*"; exit 1; }
  run read_stdin < <(stdin; printf 'EXTRA_KEY=do-not-print\n')
  [ "$status" -eq 1 ]
  [ "$output" = "stdin: unexpected key EXTRA_KEY" ]
}

@test "read_stdin names a missing secret, and a registry user without its token" {
  fail() { printf '%s\n' "$*"; exit 1; }
  run read_stdin < <(printf 'POSTGRES_PASSWORD=p\nDATABASE_URL=u\n')
  [ "$output" = "stdin: JWT_SECRET_KEY is missing" ]
  run read_stdin < <(stdin; printf 'REGISTRY_USERNAME=bot\n')
  [ "$output" = "stdin: REGISTRY_USERNAME and REGISTRY_TOKEN go together" ]
  run read_stdin < <(stdin; printf 'not a dotenv line\n')
  [ "$output" = "stdin: expected KEY=value lines (dotenv), got a line without '='" ]
  run read_stdin < <(stdin; printf 'bad key=x\n')
  [ "$output" = "stdin: unexpected key (malformed)" ]
}

@test "with_app_env gives the app's secrets to one command only, never the database password" {
  read_stdin < <(stdin)
  run with_app_env env
  [[ $output == *"DATABASE_URL=postgresql://u:pg-secret@postgres/db"* ]]
  [[ $output == *"JWT_SECRET_KEY=jwt=with=equals"* ]]
  [[ $output != *"POSTGRES_PASSWORD"* ]]
  [ ! -v DATABASE_URL ]
  [[ $(env) != *pg-secret* ]]
}

@test "the fingerprint covers image, release, migrate flag and every app secret, in that order" {
  read_stdin < <(stdin)
  IMAGE=r/b:v1 MIGRATE=1
  local expected
  expected="$(printf '%s\n' "$IMAGE" "$RELEASE" "$MIGRATE" "${SECRETS[DATABASE_URL]}" "${SECRETS[JWT_SECRET_KEY]}" | sha256sum | cut -c 1-64)"
  [ "$(fingerprint)" = "$expected" ]
  SECRETS[JWT_SECRET_KEY]=rotated
  [ "$(fingerprint)" != "$expected" ]
}

@test "undos run newest first, and a commit drops them" {
  undo_a() { echo a; }
  undo_b() { echo b; }
  on_failure undo_a
  on_failure undo_b
  run run_undos
  [ "$output" = "$(printf 'b\na')" ]
  commit
  [ "${#UNDO[@]}" -eq 0 ]
  [ "$COMMITTED" -eq 1 ]
}

@test "state_get reads a value without running it; write_file replaces a file whole" {
  local dir
  dir="$(mktemp -d)"
  printf 'slot=green\nimage=$(touch %s/ran)\n' "$dir" | write_file "$dir/current"
  [ "$(state_get "$dir/current" slot)" = green ]
  [ "$(state_get "$dir/current" image)" = "\$(touch $dir/ran)" ]
  [ ! -e "$dir/ran" ]
  [ "$(state_get "$dir/none" slot)" = "" ]
  [ "$(find "$dir" -name 'current.*' | wc -l)" -eq 0 ]
  rm -rf "$dir"
}

@test "serving_slot reads the routing file the switch wrote (an earlier version's upstream.conf without it), and nothing else" {
  PROXY_DIR="$(mktemp -d)"
  [ "$(serving_slot)" = "" ]
  printf '# Serving slot, ... slot=blue\nmap $host ...\n' >"$PROXY_DIR/upstream.conf"
  [ "$(serving_slot)" = blue ]
  set_routing green 172.18.0.5 blue 172.18.0.4
  [ "$(serving_slot)" = green ]
  [ "$(stat -c %a "$PROXY_DIR/routing")" = 644 ]
  printf '# x\nred backend-red:8000 172.18.0.5:8000\n' >"$PROXY_DIR/routing"
  [ "$(serving_slot)" = "" ]
  rm -rf "$PROXY_DIR"
}

@test "proxy_connections_to counts the proxy's open connections to one address and port, and fails when Docker does not answer" {
  docker() {
    [ "$FAKE_DOCKER" = up ] || return 1
    printf '%s\n' \
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode' \
      '   0: 0600A8C0:C350 050012AC:1F40 01 00000000:00000000 00:00000000 00000000   101        0 1 1' \
      '   1: 0600A8C0:C351 050012AC:1F40 02 00000000:00000000 00:00000000 00000000   101        0 2 1' \
      '   2: 0600A8C0:C352 050012AC:1F40 06 00000000:00000000 00:00000000 00000000   101        0 3 1' \
      '   3: 0600A8C0:C353 040012AC:1F40 01 00000000:00000000 00:00000000 00000000   101        0 4 1' \
      '   4: 0600A8C0:C354 050012AC:1F41 01 00000000:00000000 00:00000000 00000000   101        0 5 1'
  }
  FAKE_DOCKER=up
  [ "$(proxy_connections_to 172.18.0.5)" = 2 ]
  [ "$(proxy_connections_to 172.18.0.4)" = 1 ]
  [ "$(proxy_connections_to 172.18.0.9)" = 0 ]
  FAKE_DOCKER=down
  run proxy_connections_to 172.18.0.5
  [ "$status" -ne 0 ]
}

@test "proxy_tcp_table reads the proxy's table through its process on this host, never a pid that is not the proxy's, else in the container" {
  local cid
  cid=$(printf 'c%.0s' {1..64})
  docker() { # the calls, one line each, in $BATS_TEST_TMPDIR/calls
    echo "$1" >>"$BATS_TEST_TMPDIR/calls"
    case $1 in
      inspect) echo "$FAKE_PID" ;;
      exec) echo "table from docker exec" ;;
    esac
  }
  calls() { tr '\n' ' ' <"$BATS_TEST_TMPDIR/calls"; : >"$BATS_TEST_TMPDIR/calls"; }
  PROC_ROOT=$BATS_TEST_TMPDIR/proc PROXY_CID=$cid FAKE_PID=4242
  mkdir -p "$PROC_ROOT/4242/net"
  echo "table from the host" >"$PROC_ROOT/4242/net/tcp"
  echo "0::/system.slice/docker-$cid.scope" >"$PROC_ROOT/4242/cgroup"
  find_proxy_pid
  find_proxy_pid
  [ "$(proxy_tcp_table)" = "table from the host" ]
  [ "$(proxy_tcp_table)" = "table from the host" ]
  [ "$(calls)" = "inspect " ] # the pid is looked up once per container
  # The pid now belongs to another process: never believed.
  echo "0::/user.slice/session-1.scope" >"$PROC_ROOT/4242/cgroup"
  [ "$(proxy_tcp_table)" = "table from docker exec" ]
  [ "$(calls)" = "exec " ]
  # A recreated proxy is looked up again; no /proc entry for its pid (hidepid, a remote engine).
  PROXY_CID=$(printf 'd%.0s' {1..64}) FAKE_PID=77
  find_proxy_pid
  [ "$(proxy_tcp_table)" = "table from docker exec" ]
  [ "$(calls)" = "inspect exec " ]
  # An engine that gives no pid (the container stopped): docker exec, which fails as before.
  PROXY_CID=$cid FAKE_PID=0
  find_proxy_pid
  [ -z "$PROXY_PID" ]
  [ "$(proxy_tcp_table)" = "table from docker exec" ]
  [ "$(calls)" = "inspect exec " ]
}

@test "wait_healthy gives a container its whole health.timeoutSeconds, to the millisecond, then fails naming it" {
  run bash -c '
    source "$1"
    for part in output helpers steps; do source "$2/$part.sh"; done
    docker() {
      case $1 in
        ps) echo cid-1 ;;
        inspect) echo "running 0 starting" ;;
        *) return 1 ;;
      esac
    }
    fail() { printf "%s\n" "$*"; exit 1; }
    STEP=health
    # 0.9 s into this shell, bash counts 0 whole seconds, and one more 0.1 s later.
    sleep 0.9
    t0=$(now_ms)
    (wait_healthy backend-blue 1 probe_app)
    echo "waited $(($(now_ms) - t0))"
  ' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR"
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "backend-blue was not healthy after 1 s (health.timeoutSeconds; last probe: "* ]]
  [ "${lines[1]%% *}" = waited ]
  ((${lines[1]#waited } >= 1000))
}

@test "wait_healthy with a probe passes as soon as it does: PostgreSQL over TCP to the database, Redis on PONG only" {
  run bash -c '
    source "$1"
    for part in output helpers steps; do source "$2/$part.sh"; done
    probes=$3/probes
    # Docker has not probed yet ("starting"); the service answers from the third probe on.
    docker() {
      case $1 in
        ps) echo cid-1 ;;
        inspect) echo "running 0 starting" ;;
        exec)
          shift
          echo "$*" >>"$probes"
          local n
          n=$(wc -l <"$probes")
          case $2 in
            pg_isready) ((n >= 3)) ;;
            redis-cli) if ((n >= 3)); then echo PONG; else echo "LOADING Redis is loading the dataset in memory"; fi ;;
          esac
          ;;
        *) return 1 ;;
      esac
    }
    fail() { printf "%s\n" "$*"; exit 1; }
    STEP=infra
    (wait_healthy postgres 20 probe_postgres) && echo "postgres after $(wc -l <"$probes") probes"
    sort -u "$probes"
    echo "cid-1 pg_isready -q -h 127.0.0.1 -U $DB_USER -d $DB_NAME"
    rm "$probes"
    (wait_healthy redis 20 probe_redis) && echo "redis after $(wc -l <"$probes") probes"
  ' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR" "$BATS_TEST_TMPDIR"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "postgres after 3 probes" ]
  # Every probe asked PostgreSQL over TCP for the app's database as its user.
  [ "${lines[1]}" = "${lines[2]}" ]
  [ "${lines[3]}" = "redis after 3 probes" ]
  [ "${#lines[@]}" -eq 4 ]
}

@test "parse_arguments takes the repository and the pinning from the image argument" {
  parse_arguments "image=127.0.0.1:5000/o/backend@sha256:$(printf 'd%.0s' {1..64})" tag=v2 registry=127.0.0.1:5000 migrate=0
  [ "$IMAGE_REPOSITORY" = 127.0.0.1:5000/o/backend ]
  [ "$IMAGE_PINNED" = 1 ]
  [ "$MIGRATE" = 0 ]
}

@test "parse_arguments refuses an unknown or missing argument with the usage exit code" {
  run parse_arguments image=r/b:v1 tag=v1 registry=r migrate=1 surprise=1
  [ "$status" -eq "$USAGE_EXIT" ]
  [[ $output == *"unexpected argument surprise=1"* ]]
  run parse_arguments image=r/b:v1 tag=v1 migrate=1
  [ "$status" -eq "$USAGE_EXIT" ]
  [[ $output == *"usage: bash"* ]]
  run parse_arguments image=r/b:v1 tag=v1 registry=r migrate=yes
  [ "$status" -eq "$USAGE_EXIT" ]
}

@test "require_settings names a setting the preamble did not write" {
  run bash -c 'source <(grep -v "^  APP_PORT=" "$1" | sed "s/ APP_PORT / /"); source <(sed "/^main \"\\\$@\"\$/,\$d" "$2/main.sh"); require_settings; echo passed' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR"
  [ "$status" -eq "$USAGE_EXIT" ]
  [[ $output == *"setting APP_PORT is missing"* ]]
  run bash -c 'source "$1"; source <(sed "/^main \"\\\$@\"\$/,\$d" "$2/main.sh"); require_settings; echo passed' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR"
  [ "$output" = passed ]
}

@test "seconds_of and now_ms" {
  [ "$(seconds_of 1234)" = 1.2 ]
  [ "$(seconds_of 60000)" = 60.0 ]
  local a b
  a="$(now_ms)"
  sleep 0.05
  b="$(now_ms)"
  ((b - a >= 40 && b - a < 5000))
}

@test "log masks every secret read, and writes to the log and to fd 3" {
  read_stdin < <(stdin)
  local out
  out="$(log "connecting with pg-secret and jwt=with=equals" 3>&1 >/dev/null)"
  [ "$out" = "[deploy web-1] test: connecting with *** and ***" ]
}

@test "container_address is empty, not an error, for a container that does not exist yet (under pipefail and errexit)" {
  docker() { return 1; }
  run bash -c 'set -euo pipefail; source "$1"; source "$2/helpers.sh"; docker() { return 1; }; a="$(container_address none)"; printf "[%s]\n" "$a"' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR"
  [ "$status" -eq 0 ]
  [ "$output" = "[]" ]
}

@test "remove_container returns once Docker no longer lists the container, though docker rm refused it as already being removed" {
  CALLS="$BATS_TEST_TMPDIR/calls"
  : >"$CALLS"
  docker() {
    printf '%s\n' "$*" >>"$CALLS"
    case $1 in
      rm) return 1 ;; # "removal of container ... is already in progress"
      container) (($(grep -c '^container inspect' "$CALLS") < 4)) ;;
    esac
  }
  remove_container clicky-migrate-7-1
  [ "$(grep -c '^rm -f clicky-migrate-7-1$' "$CALLS")" -eq 1 ]
  # Listed three times, gone the fourth: it waited for exactly that.
  [ "$(grep -c '^container inspect --format {{.Id}} clicky-migrate-7-1$' "$CALLS")" -eq 4 ]
}

@test "dump_cpu_options gives the dump's container backup.cpuShares, and nothing for 0 (Docker's default)" {
  [ "$BACKUP_CPU_SHARES" -eq 128 ] # the default
  dump_cpu_options
  [ "${BACKUP_CPU[*]}" = "--cpu-shares 128" ]
  run bash -c 'source <(sed "s/^  BACKUP_CPU_SHARES=.*/  BACKUP_CPU_SHARES=0/" "$1"); source "$2/helpers.sh"; dump_cpu_options; printf "%s [%s]\n" "$BACKUP_CPU_SHARES" "${BACKUP_CPU[*]}"' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR"
  [ "$status" -eq 0 ]
  [ "$output" = "0 []" ]
}

@test "keep_dump gives up on a dump still running backup.timeoutSeconds after it started, and leaves it to undo_backup" {
  [ "$BACKUP_TIMEOUT" -eq 3600 ] # the default
  run bash -c '
    source <(sed "s/^  BACKUP_TIMEOUT=.*/  BACKUP_TIMEOUT=1/" "$1")
    for part in output helpers steps; do source "$2/$part.sh"; done
    TMP_DIR=$3
    sleep 30 &
    BACKUP_PID=$!
    BACKUP_T0=$(now_ms)
    t0=$SECONDS
    if keep_dump "$DB_NAME" "$DB_NAME"; then echo kept; fi
    printf "%s|%s|%s\n" "$((SECONDS - t0))" "$BACKUP_ERROR" "$(kill -0 "$BACKUP_PID" 2>/dev/null && echo running)"
    kill "$BACKUP_PID"
  ' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR" "$BATS_TEST_TMPDIR"
  [ "$status" -eq 0 ]
  [[ $output == [12]"|the dump of clicky_db did not finish within 1 s (backup.timeoutSeconds); it was stopped and no partial dump is kept|running" ]]
}

@test "keep_dump keeps a dump that reads back as the database named (an empty name: any), refuses one that does not, and keeps BACKUP_KEEP" {
  run bash -c '
    source <(sed "s/^  BACKUP_KEEP=.*/  BACKUP_KEEP=2/" "$1")
    for part in output helpers steps; do source "$2/$part.sh"; done
    TMP_DIR=$3 BACKUP_DIR=$3/backups STEP=backup
    mkdir -p "$BACKUP_DIR"
    keep() { # $1: the TOC the dump reads back as; $2, $3: keep_dump arguments
      printf "%s
" "$1" >"$TMP_DIR/backup.toc"
      BACKUP_TARGET="$BACKUP_DIR/$STACK-$((++n))-v9.dump" BACKUP_PARTIAL="$BACKUP_DIR/partial"
      echo data >"$BACKUP_PARTIAL"
      true &
      BACKUP_PID=$! BACKUP_T0=$(now_ms)
      keep_dump "$2" "$3" && echo kept || echo "refused: $BACKUP_ERROR"
    }
    keep ";     dbname: clicky_db" "$DB_NAME" "$DB_NAME"
    keep ";     dbname: other" "$DB_NAME" "$DB_NAME"
    keep ";     dbname: other" "the external database" ""
    keep ";     no name" "the external database" ""
    keep ";     dbname: clicky_db" "$DB_NAME" "$DB_NAME"
    ls "$BACKUP_DIR"
  ' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR" "$BATS_TEST_TMPDIR"
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == *"backup: database saved to "*"/$STACK-1-v9.dump ("*"verified with pg_restore --list)" ]]
  [ "${lines[1]}" = "kept" ]
  [ "${lines[2]}" = "refused: the dump does not read back as database clicky_db with pg_restore --list" ]
  [[ ${lines[3]} == *"database saved to "*"/$STACK-3-v9.dump ("* ]]
  [ "${lines[4]}" = "kept" ]
  [ "${lines[5]}" = "refused: the dump does not read back as a database with pg_restore --list" ]
  [[ ${lines[6]} == *"database saved to "*"/$STACK-5-v9.dump ("* ]]
  [[ ${lines[7]} == *"removed old backup $STACK-1-v9.dump" ]]
  [ "${lines[8]}" = "kept" ]
  [ "${lines[9]}" = "$STACK-3-v9.dump" ]
  [ "${lines[10]}" = "$STACK-5-v9.dump" ]
  [ "${#lines[@]}" -eq 11 ]
}

@test "the dump's compression (COMPRESS_DUMP, run in sh) gzips each table's data in place and leaves toc.dat; a failed gzip leaves the raw file and no partial one; it keeps the free space it is given" {
  run bash -c '
    source "$1"
    for part in output helpers steps; do source "$2/$part.sh"; done
    compress() { sh -c "$COMPRESS_DUMP" clicky-compress "$@"; echo "exit $?"; }
    dump=$3/x.dump
    mkdir -p "$dump"
    printf "toc\n" >"$dump/toc.dat"
    seq 1 20000 >"$dump/3348.dat"
    printf "tiny\n" >"$dump/3350.dat"
    compress 1 0 "$dump"
    ls "$dump" | tr "\n" " "; echo
    [[ "$(gzip -dc "$dump/3348.dat.gz")" == "$(seq 1 20000)" ]] && echo same
    cat "$dump/toc.dat"
    # A gzip that fails (a full disk): the raw file stays, no partial file is left.
    other=$3/y.dump
    mkdir -p "$other" "$3/bin"
    printf "data\n" >"$other/1.dat"
    printf "#!/bin/sh\necho partial; exit 1\n" >"$3/bin/gzip"
    chmod +x "$3/bin/gzip"
    PATH=$3/bin:$PATH compress 1 0 "$other"
    ls "$other" | tr "\n" " "; echo
    cat "$other/1.dat"
    # No room beside the space to keep free (a petabyte here): the files stay raw.
    compress 1 1000000000000 "$other"
    ls "$other" | tr "\n" " "; echo
  ' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR" "$BATS_TEST_TMPDIR"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "exit 0" ]
  [ "${lines[1]}" = "3348.dat.gz 3350.dat.gz toc.dat " ]
  [ "${lines[2]}" = "same" ]
  [ "${lines[3]}" = "toc" ]
  [ "${lines[4]}" = "exit 1" ]
  [ "${lines[5]}" = "1.dat " ]
  [ "${lines[6]}" = "data" ]
  [ "${lines[7]}" = "exit 0" ]
  [ "${lines[8]}" = "1.dat " ]
  [ "${#lines[@]}" -eq 9 ]
}

@test "the dump's compression goes through several dumps in turn; it removes the temporary file a killed gzip left and passes over a file gone meanwhile" {
  run bash -c '
    source "$1"
    for part in output helpers steps; do source "$2/$part.sh"; done
    a=$3/a.dump b=$3/b.dump
    mkdir -p "$a" "$b"
    printf "toc\n" >"$a/toc.dat"
    seq 1 500 >"$a/1.dat"
    printf "partial" >"$a/1.dat.gz.cut-7"
    printf "toc\n" >"$b/toc.dat"
    seq 1 700 >"$b/2.dat"
    # A gzip whose source another compression removed as it started: passed over, not an error.
    mkdir -p "$3/bin"
    printf "#!/bin/sh\ncase \"\$3\" in */2.dat) rm -f \"\$3\"; exit 1;; esac\nexec /bin/gzip \"\$@\"\n" >"$3/bin/gzip"
    chmod +x "$3/bin/gzip"
    printf "3\n" >"$b/3.dat"
    PATH=$3/bin:$PATH sh -c "$COMPRESS_DUMP" clicky-compress 1 0 "$a" "$b"
    echo "exit $?"
    ls "$a" | tr "\n" " "; echo
    ls "$b" | tr "\n" " "; echo
    [[ "$(gzip -dc "$a/1.dat.gz")" == "$(seq 1 500)" ]] && echo same
    gzip -dc "$b/3.dat.gz"
  ' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR" "$BATS_TEST_TMPDIR"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "exit 0" ]
  [ "${lines[1]}" = "1.dat.gz toc.dat " ]
  [ "${lines[2]}" = "3.dat.gz toc.dat " ]
  [ "${lines[3]}" = "same" ]
  [ "${lines[4]}" = "3" ]
  [ "${#lines[@]}" -eq 5 ]
}

@test "compress_dump compresses the kept dump, then the stack's other dumps that are raw in part, newest first, unless a compression runs still; nothing with compression 0" {
  # The settings with BACKUP_COMPRESSION left writable.
  local settings="$BATS_TEST_TMPDIR/settings.bash"
  sed -E '/^readonly /{s/ BACKUP_COMPRESSION( |$)/\1/g}' "$DEPLOY_SETTINGS" >"$settings"
  run bash -c '
    source "$1"
    for part in output helpers steps; do source "$2/$part.sh"; done
    BACKUP_DIR=$3/backups BACKUP_IMAGE=pgimage BACKUP_COMPRESSION=1 BACKUP_CPU=() STEP=backup
    mkdir -p "$BACKUP_DIR" "$3/bin"
    for d in 1 2 3 4; do mkdir -p "$BACKUP_DIR/$STACK-$d-v9.dump"; printf "toc\n" >"$BACKUP_DIR/$STACK-$d-v9.dump/toc.dat"; done
    echo raw >"$BACKUP_DIR/$STACK-1-v9.dump/7.dat"
    echo gz >"$BACKUP_DIR/$STACK-2-v9.dump/7.dat.gz"
    echo raw >"$BACKUP_DIR/$STACK-3-v9.dump/7.dat"
    echo raw >"$BACKUP_DIR/$STACK-4-v9.dump/7.dat"
    echo raw >"$BACKUP_DIR/other-1-v9.dump"
    # docker: `ps` answers what $3/running holds; `run` writes its dumps (the arguments after
    # the script, its level and the space to keep) to $3/ran.
    printf "#!/bin/bash\nif [[ \$1 == ps ]]; then cat %s/running 2>/dev/null; exit 0; fi\nwhile [[ \$1 != clicky-compress ]]; do shift; done\nshift\necho \"\$*\" >>%s/ran\n" "$3" "$3" >"$3/bin/docker"
    chmod +x "$3/bin/docker"
    export PATH=$3/bin:$PATH
    compress_dump "$BACKUP_DIR/$STACK-4-v9.dump"; wait; cat "$3/ran"; rm "$3/ran"
    echo abc123 >"$3/running"
    compress_dump "$BACKUP_DIR/$STACK-4-v9.dump"; wait; cat "$3/ran"; rm "$3/ran"
    rm "$3/running"
    BACKUP_COMPRESSION=0
    compress_dump "$BACKUP_DIR/$STACK-4-v9.dump"; wait; [[ -e $3/ran ]] || echo "none started"
  ' _ "$settings" "$REMOTE_DIR" "$BATS_TEST_TMPDIR"
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == *"backup: compressing also 2 earlier backup(s) that an earlier compression left raw in part" ]]
  [[ ${lines[1]} == "1 "*" /backups/$STACK-4-v9.dump /backups/$STACK-3-v9.dump /backups/$STACK-1-v9.dump" ]]
  [[ ${lines[2]} == "1 "*" /backups/$STACK-4-v9.dump" ]]
  [ "${lines[3]}" = "none started" ]
  [ "${#lines[@]}" -eq 4 ]
}

@test "keep_dump reports the dump's own time (until its table of contents was written), not the time until the deploy kept it" {
  run bash -c '
    source "$1"
    for part in output helpers steps; do source "$2/$part.sh"; done
    TMP_DIR=$3 BACKUP_DIR=$3/backups STEP=backup
    mkdir -p "$BACKUP_DIR"
    keep() { # $1: ms from the dump start to when its table of contents was written
      BACKUP_T0=$(( $(now_ms) - 9000 ))
      printf ";     dbname: clicky_db\n" >"$TMP_DIR/backup.toc"
      local at=$((BACKUP_T0 + $1))
      touch -d "@$((at / 1000)).$(printf %03d $((at % 1000)))" "$TMP_DIR/backup.toc"
      BACKUP_TARGET="$BACKUP_DIR/$STACK-$((++n))-v9.dump" BACKUP_PARTIAL="$BACKUP_DIR/partial"
      echo data >"$BACKUP_PARTIAL"
      true &
      BACKUP_PID=$!
      keep_dump "$DB_NAME" "" >"$TMP_DIR/said" 2>&1
      sed -n "s/.* KiB in \([0-9.]*\) s, .*/\1/p" "$TMP_DIR/said"
    }
    keep 1250
    keep -4000
  ' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR" "$BATS_TEST_TMPDIR"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "1.2" ]
  # A clock that disagrees (a table of contents older than the dump): the time until kept.
  [[ ${lines[1]} == 9.[0-9] ]]
  [ "${#lines[@]}" -eq 2 ]
}

@test "backup.timeoutSeconds 0 waits for the dump however long it takes; a dump that ends is never overdue" {
  run bash -c '
    source <(sed "s/^  BACKUP_TIMEOUT=.*/  BACKUP_TIMEOUT=0/" "$1")
    for part in output helpers steps; do source "$2/$part.sh"; done
    sleep 1.5 &
    BACKUP_PID=$!
    BACKUP_T0=$(( $(now_ms) - 5000 ))
    backup_overdue_wait && echo overdue || echo waited
    backup_overdue && echo overdue || echo "not overdue"
  ' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR"
  [ "$status" -eq 0 ]
  [ "$output" = $'waited\nnot overdue' ]
  [ "$BACKUP_TIMEOUT" -eq 3600 ]
  sleep 0.2 &
  BACKUP_PID=$!
  BACKUP_T0=$(now_ms)
  ! backup_overdue_wait
  ! kill -0 "$BACKUP_PID" 2>/dev/null
}

@test "wait_drained says how its wait ended: drained, requests still in flight, none seen but unconfirmed, or Docker silent" {
  run bash -c '
    source <(sed "s/^  DRAIN_SECONDS=.*/  DRAIN_SECONDS=1/" "$1")
    for part in output helpers steps; do source "$2/$part.sh"; done
    STEP=drain
    drain() { wait_drained 10.0.0.9 "${1:-0}"; echo "DRAINED=$DRAINED"; }
    proxy_connections_to() { echo 0; }
    drain
    proxy_connections_to() { echo 3; }
    drain
    # Docker so slow that its first answer comes after the second has passed.
    proxy_connections_to() { sleep 1.2; echo 0; }
    drain
    proxy_connections_to() { return 1; }
    drain
    proxy_connections_to() { echo 0; }
    drain 1500
  ' _ "$DEPLOY_SETTINGS" "$REMOTE_DIR"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "DRAINED=1" ]
  [[ ${lines[1]} == *"drain: the proxy still had 3 request(s) in flight to 10.0.0.9 after 1 s (deploy.drainSeconds); going on" ]]
  [ "${lines[2]}" = "DRAINED=0" ]
  [[ ${lines[3]} == *"drain: the proxy had no request in flight to 10.0.0.9 at its last look, unconfirmed by a second within 1 s (deploy.drainSeconds; Docker answered slowly); going on" ]]
  [ "${lines[4]}" = "DRAINED=0" ]
  [[ ${lines[5]} == *"drain: could not count the proxy's requests in flight to 10.0.0.9 within 1 s (deploy.drainSeconds; Docker did not answer); going on" ]]
  [ "${lines[6]}" = "DRAINED=0" ]
  [[ ${lines[7]} == *"drain: the proxy had no request in flight to 10.0.0.9; 1 s (deploy.drainSeconds) ended the wait before its 1500 ms; going on" ]]
  [ "${lines[8]}" = "DRAINED=0" ]
  [ "${#lines[@]}" -eq 9 ]
}

@test "the migration check runs in the container that then migrates: exit 0 ends it, else it waits for the word, and an image without sh is checked apart" {
  # The check says $CHECK_SAYS and exits $CHECK_RC; the migration appends its argument to $CALLS.
  local settings="$BATS_TEST_TMPDIR/settings.bash"
  # shellcheck disable=SC2016 # expanded where the settings are sourced, and in the "container"
  C='  MIGRATION_CHECK=(sh -c '\''printf "%s\n" "$CHECK_SAYS"; exit "$CHECK_RC"'\'')' \
    M='  MIGRATION_COMMAND=(sh -c '\''echo "migrated with $1" >>"$0"'\'' "$CALLS" "two words")' \
    awk '/^  MIGRATION_CHECK=/ { print ENVIRON["C"]; next } /^  MIGRATION_COMMAND=/ { print ENVIRON["M"]; next } { print }' \
    "$DEPLOY_SETTINGS" >"$settings"
  run bash -c '
    dir=$3 CALLS=$3/calls
    source "$1"
    for part in output helpers steps; do source "$2/$part.sh"; done
    TMP_DIR=$dir IMAGE=app:v2 NEW_SLOT=green STEP=migrate HELD_PID="" MIGRATION_CONTAINER=""
    exec 3>>"$dir/progress"
    fails() { echo "failed: $1"; cat "$dir/progress"; exit 1; }
    docker() { :; }
    # `compose run --rm --no-deps -T --name <name> <service> <command...>`: the command, run here.
    compose() { shift 7 && "$@"; }
    migration_pending() { echo apart >>"$CALLS"; }

    # Nothing pending: the check exits 0, and nothing waits.
    export CHECK_SAYS="at head" CHECK_RC=0
    if check_in_migration_container; then fails "pending"; fi
    [ -z "$HELD_PID$MIGRATION_CONTAINER" ] || fails "left $HELD_PID $MIGRATION_CONTAINER"
    grep -q "nothing to migrate (sh -c .* exited 0 in" "$dir/progress" || fails "no nothing-to-migrate line"

    # Pending: the container waits; the word runs the migration with its arguments as given.
    export CHECK_SAYS="FAILED: not at head" CHECK_RC=3
    check_in_migration_container || fails "not pending"
    kill -0 "$HELD_PID" || fails "not waiting"
    grep -q "exited 3 (FAILED: not at head): waiting for the backup, then migrating" "$dir/progress" || fails "no pending line"
    [ ! -e "$CALLS" ] || fails "migrated before the word"
    printf "migrate\n" >&8
    exec 8>&-
    wait "$HELD_PID" || fails "the migration failed"
    [ "$(cat "$CALLS")" = "migrated with two words" ] || fails "migrated as $(cat "$CALLS")"

    # Pending, but the deploy ends without the word (its end closes the pipe): no migration.
    rm -f "$CALLS"
    check_in_migration_container || fails "not pending"
    exec 8>&-
    wait "$HELD_PID" || fails "the run failed"
    [ ! -e "$CALLS" ] || fails "migrated without the word"

    # The exit line reaches the file in pieces (compose copies the output in chunks): the
    # check waits for the whole line, and a pending migration waits for the word.
    rm -f "$CALLS"
    compose() {
      printf "FAILED: not at head\n\nclicky-migration-check-exit 1"
      sleep 0.5
      printf "27 end\n"
      read -r go && [ "$go" = migrate ] && echo "migrated in pieces" >>"$CALLS"
    }
    check_in_migration_container || fails "not pending"
    grep -q "exited 127 (FAILED: not at head): waiting for the backup, then migrating" "$dir/progress" || fails "no pending line for the line in pieces"
    printf "migrate\n" >&8
    exec 8>&-
    wait "$HELD_PID" || fails "the migration failed"
    [ "$(cat "$CALLS")" = "migrated in pieces" ] || fails "migrated as $(cat "$CALLS")"

    # An image whose container cannot run sh: the check runs in a container of its own.
    compose() { echo "exec: sh: executable file not found in \$PATH"; return 127; }
    HELD_PID="" && rm -f "$CALLS"
    check_in_migration_container || fails "not pending"
    [ -z "$HELD_PID$MIGRATION_CONTAINER" ] || fails "left $HELD_PID $MIGRATION_CONTAINER"
    [ "$(cat "$CALLS")" = apart ] || fails "not checked apart"
    grep -q "could not run the check (exec: sh: executable file not found in \$PATH): checking in a container of its own" "$dir/progress" || fails "no fallback line"
    echo done
  ' _ "$settings" "$REMOTE_DIR" "$BATS_TEST_TMPDIR"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = done ]
}

@test "start_early begins the dump, and the check when the new image is pinned and here, only when PostgreSQL is up and takes the password" {
  # The settings with MIGRATE, IMAGE_PINNED and MIGRATION_CHECK left writable, for each case.
  local settings="$BATS_TEST_TMPDIR/settings.bash"
  sed -E '/^readonly /{s/ (MIGRATE|IMAGE_PINNED|MIGRATION_CHECK)( |$)/\2/g;s/ (MIGRATE|IMAGE_PINNED|MIGRATION_CHECK)( |$)/\2/g}' "$DEPLOY_SETTINGS" >"$settings"
  # Prints what start_early started (stubs append to a list), EARLY_STEPS and the undos, as
  # `calls|early|undos`, with `$1` evaluated first to set the case up.
  tried() {
    bash -c '
      source "$1"
      for part in output helpers steps; do source "$2/$part.sh"; done
      CALLS=() UNDO=() EARLY_STEPS=() TIMINGS=() DB_PASSWORD_STATE="" TMP_DIR=$3
      log() { :; }
      step_backup() { CALLS+=(backup); }
      spawn_migration_check() { CALLS+=(check); }
      remove_leftover_migrations() { CALLS+=(leftovers); }
      db_password_state() { printf "none\n%s\n" "$PASSWORD"; }
      docker() { [[ "$1 $2" == "image inspect" && $HERE == 1 ]]; }
      SNAP_ID[postgres]=pg1 SNAP_STATUS[postgres]=running SNAP_HEALTH[postgres]=healthy
      PASSWORD=ok MIGRATE=1 IMAGE_PINNED=1 HERE=1 MIGRATION_CHECK=(alembic current --check-heads)
      eval "$4"
      start_early
      IFS=,
      printf "%s|%s|%s|%s\n" "${CALLS[*]}" "${EARLY_STEPS[*]}" "${UNDO[*]}" "${DB_PASSWORD_STATE//$'"'"'\n'"'"'/ }"
    ' _ "$settings" "$REMOTE_DIR" "$BATS_TEST_TMPDIR" "$1"
  }
  [ "$(tried :)" = "backup,leftovers,check|backup|undo_migrate|none ok" ]
  # The new image is not here, or not pinned (a pull may change it), or nothing to check: the
  # dump alone.
  [ "$(tried HERE=0)" = "backup|backup||none ok" ]
  [ "$(tried IMAGE_PINNED=0)" = "backup|backup||none ok" ]
  [ "$(tried MIGRATE=0)" = "backup|backup||none ok" ]
  [ "$(tried 'MIGRATION_CHECK=()')" = "backup|backup||none ok" ]
  # A rotation due, or no answer about the password: nothing starts early (infra acts on this
  # same answer, kept in DB_PASSWORD_STATE).
  [ "$(tried PASSWORD=refused)" = "|||none refused" ]
  [ "$(tried 'PASSWORD="error: timeout"')" = "|||none error: timeout" ]
  # PostgreSQL not running and healthy in preflight's snapshot: nothing is asked.
  [ "$(tried 'SNAP_HEALTH[postgres]=starting')" = "|||" ]
  [ "$(tried 'SNAP_STATUS[postgres]=exited')" = "|||" ]
}
