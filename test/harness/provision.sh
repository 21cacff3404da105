#!/usr/bin/env bash
# Provisions, on this machine, the real parts the e2e tests deploy against:
# Docker engine, a registry on 127.0.0.1 (htpasswd auth), a dedicated sshd on 127.0.0.1
# (key-only, pinned host key) for the non-root user `deploy`, each on ports chosen once per
# state dir (<state dir>/ports), so that two checkouts can provision on one machine, locally built
# images that behave like the official postgres/redis/nginx ones, and the stand-in backend
# app pushed as five tags. Nothing is pulled from the internet: images come from a Debian
# rootfs made with debootstrap. Idempotent: every step checks before it acts.
# Writes <state dir>/state.json for the tests. State dir: $E2E_STATE_DIR or <repo>/.e2e-state.
set -euo pipefail

HARNESS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HARNESS_DIR/../.." && pwd)"
APP_DIR="$HARNESS_DIR/app"
STATE_DIR="${E2E_STATE_DIR:-$REPO_ROOT/.e2e-state}"
LOG_DIR="$STATE_DIR/logs"

SSH_USER=deploy
REGISTRY_USER=clicky-e2e
BASE_IMAGE=clicky-e2e/base:bookworm
POSTGRES_IMAGE=clicky-e2e/postgres:16
REDIS_IMAGE=clicky-e2e/redis:7
PROXY_IMAGE=clicky-e2e/proxy:1
BACKEND_BUILD_REPO=clicky-e2e/backend-build
BACKEND_TAGS=(v1 v2 v3 v4 v5 v6)
APT_PACKAGES=(docker.io docker-compose openssh-server docker-registry debootstrap
  postgresql-client apache2-utils shellcheck curl)
BASE_PACKAGES="python3,python3-psycopg2,postgresql,postgresql-client,redis-server,nginx,libnginx-mod-http-js,curl,ca-certificates,procps,tini,gettext-base,passwd"

START_SECONDS=$SECONDS
log() { printf '[provision %3ds] %s\n' "$((SECONDS - START_SECONDS))" "$*"; }
die() { printf '[provision] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
  die "must run as root (it installs packages and starts dockerd and sshd)"
fi

mkdir -p "$STATE_DIR" "$LOG_DIR"

# --- ports: chosen once per state dir and kept, so every checkout has its own registry and
# sshd (their credentials and host keys live in the state dir) -------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ ! -s "$STATE_DIR/ports" ]]; then
  base=$((20000 + ($(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1) % 4000) * 2))
  while port_in_use "$base" || port_in_use "$((base + 1))"; do base=$((base + 2)); done
  printf 'REGISTRY_PORT=%s\nSSH_PORT=%s\n' "$base" "$((base + 1))" >"$STATE_DIR/ports"
fi
# shellcheck source=/dev/null
source "$STATE_DIR/ports"
REGISTRY_ADDR="127.0.0.1:$REGISTRY_PORT"
BACKEND_REPO="$REGISTRY_ADDR/clicky/backend"
chmod 700 "$STATE_DIR"

# One provisioner at a time: parallel test files all call it.
exec 9>"$STATE_DIR/provision.lock"
if ! flock -w 1800 9; then
  die "another provision.sh held $STATE_DIR/provision.lock for 30 minutes"
fi

export DOCKER_BUILDKIT=0
# Root's own pushes use a private client config, so ~/.docker is never touched.
export DOCKER_CONFIG="$STATE_DIR/docker-client"

# Prints a stable hash of a directory's files (names, modes, contents).
tree_hash() {
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -c . | sha256sum | cut -d' ' -f1
}

image_label() {
  docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

wait_for() {
  local what=$1 tries=$2
  shift 2
  local i
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  die "timed out waiting for $what"
}

# --- 1. packages -------------------------------------------------------------------------
step_packages() {
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null || true) != "install ok installed" ]]; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]} == 0)); then
    log "packages: all present"
    return
  fi
  log "packages: installing ${missing[*]}"
  # Keep package scripts from starting system services (docker, ssh, registry): this script
  # starts its own instances with its own configs.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  } >"$LOG_DIR/apt.log" 2>&1 || rc=$?
  if ((created_policy)); then
    rm -f "$policy"
  fi
  if ((rc != 0)); then
    tail -n 20 "$LOG_DIR/apt.log" >&2
    die "apt-get failed (exit $rc), see $LOG_DIR/apt.log"
  fi
  log "packages: installed"
}

# --- 2. docker engine ----------------------------------------------------------------------
step_dockerd() {
  if docker info >/dev/null 2>&1; then
    log "dockerd: already running"
    return
  fi
  command -v dockerd >/dev/null || die "dockerd not found (package docker.io)"
  log "dockerd: starting (log $LOG_DIR/dockerd.log)"
  # 9>&-: the daemon must not inherit the provision lock, or it would hold it forever.
  setsid nohup dockerd >>"$LOG_DIR/dockerd.log" 2>&1 </dev/null 9>&- &
  local i
  for ((i = 0; i < 120; i++)); do
    if docker info >/dev/null 2>&1; then
      log "dockerd: ready (storage driver $(docker info --format '{{.Driver}}'))"
      return
    fi
    sleep 0.5
  done
  tail -n 30 "$LOG_DIR/dockerd.log" >&2
  die "dockerd did not become ready in 60 s, see $LOG_DIR/dockerd.log"
}

# --- 3. registry -----------------------------------------------------------------------------
registry_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$REGISTRY_ADDR/v2/" || true
}

step_registry() {
  local dir="$STATE_DIR/registry"
  mkdir -p "$dir/data"
  chmod 700 "$dir"
  if [[ ! -s "$dir/password" ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$dir/password")
  fi
  REGISTRY_PASSWORD="$(cat "$dir/password")"
  if [[ ! -s "$dir/htpasswd" ]] || ! htpasswd -vbB "$dir/htpasswd" "$REGISTRY_USER" "$REGISTRY_PASSWORD" >/dev/null 2>&1; then
    htpasswd -cbB "$dir/htpasswd" "$REGISTRY_USER" "$REGISTRY_PASSWORD" 2>/dev/null
    chmod 600 "$dir/htpasswd"
  fi
  if [[ ! -s "$dir/http-secret" ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$dir/http-secret")
  fi
  cat >"$dir/config.yml" <<CONF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
  secret: $(cat "$dir/http-secret")
auth:
  htpasswd:
    realm: clicky-e2e
    path: $dir/htpasswd
CONF
  chmod 600 "$dir/config.yml"
  local status
  status="$(registry_status)"
  if [[ $status == 401 ]]; then
    status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -u "$REGISTRY_USER:$REGISTRY_PASSWORD" "http://$REGISTRY_ADDR/v2/" || true)"
    if [[ $status != 200 ]]; then
      die "the registry on $REGISTRY_ADDR rejects this state dir's credentials (HTTP $status): it was started for another state dir; stop it or use that E2E_STATE_DIR"
    fi
    log "registry: already up on $REGISTRY_ADDR"
    return
  fi
  if [[ $status != 000 ]]; then
    die "something else answers on $REGISTRY_ADDR (HTTP $status on /v2/)"
  fi
  log "registry: starting on $REGISTRY_ADDR (log $LOG_DIR/registry.log)"
  setsid nohup docker-registry serve "$dir/config.yml" >>"$LOG_DIR/registry.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/registry.pid"
  local i
  for ((i = 0; i < 60; i++)); do
    if [[ $(registry_status) == 401 ]]; then
      log "registry: ready"
      return
    fi
    sleep 0.5
  done
  tail -n 20 "$LOG_DIR/registry.log" >&2
  die "registry did not answer 401 on http://$REGISTRY_ADDR/v2/ in 30 s"
}

# --- 4. deploy user and sshd --------------------------------------------------------------------
step_user() {
  getent group docker >/dev/null || die "group docker missing (package docker.io)"
  if ! id "$SSH_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --groups docker "$SSH_USER"
    log "user: created $SSH_USER"
  else
    if [[ $(getent passwd "$SSH_USER" | cut -d: -f7) != /bin/bash ]]; then
      usermod --shell /bin/bash "$SSH_USER"
    fi
    if ! id -nG "$SSH_USER" | tr ' ' '\n' | grep -qx docker; then
      usermod -aG docker "$SSH_USER"
    fi
  fi
  # A locked password ("!") makes sshd refuse the account when UsePAM is off; "*" means
  # "no password" without locking: key auth only.
  if [[ $(getent shadow "$SSH_USER" | cut -d: -f2) == '!'* ]]; then
    usermod -p '*' "$SSH_USER"
  fi
}

step_sshd() {
  local dir="$STATE_DIR/ssh" home
  mkdir -p "$dir"
  chmod 700 "$dir"
  [[ -s "$dir/ssh_host_ed25519_key" ]] || ssh-keygen -q -t ed25519 -N '' -C clicky-e2e-host -f "$dir/ssh_host_ed25519_key"
  [[ -s "$dir/client_ed25519" ]] || ssh-keygen -q -t ed25519 -N '' -C clicky-e2e-client -f "$dir/client_ed25519"
  home="$(getent passwd "$SSH_USER" | cut -d: -f6)"
  install -d -m 700 -o "$SSH_USER" -g "$SSH_USER" "$home/.ssh"
  # Appended, not replaced: every checkout's state dir has its own client key.
  touch "$home/.ssh/authorized_keys"
  grep -qxF "$(cat "$dir/client_ed25519.pub")" "$home/.ssh/authorized_keys" ||
    cat "$dir/client_ed25519.pub" >>"$home/.ssh/authorized_keys"
  chown "$SSH_USER:$SSH_USER" "$home/.ssh/authorized_keys"
  chmod 600 "$home/.ssh/authorized_keys"
  cat >"$dir/sshd_config.new" <<CONF
# clicky-e2e dedicated sshd (provision.sh)
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $SSH_USER
UsePAM no
StrictModes yes
X11Forwarding no
PrintMotd no
AcceptEnv LANG LC_*
MaxStartups 64:30:128
MaxSessions 32
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
  mkdir -p /run/sshd
  chmod 755 /run/sshd
  /usr/sbin/sshd -t -f "$dir/sshd_config.new" || die "sshd rejected its config $dir/sshd_config.new"
  local changed=1
  if [[ -f "$dir/sshd_config" ]] && cmp -s "$dir/sshd_config" "$dir/sshd_config.new"; then
    changed=0
  fi
  mv "$dir/sshd_config.new" "$dir/sshd_config"
  local pid=""
  [[ -s "$dir/sshd.pid" ]] && pid="$(cat "$dir/sshd.pid")"
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    if ((changed)); then
      kill -HUP "$pid"
      log "sshd: config changed, reloaded (pid $pid)"
      sleep 0.5
    else
      log "sshd: already up on 127.0.0.1:$SSH_PORT (pid $pid)"
    fi
  else
    log "sshd: starting on 127.0.0.1:$SSH_PORT (log $LOG_DIR/sshd.log)"
    /usr/sbin/sshd -f "$dir/sshd_config" -E "$LOG_DIR/sshd.log" </dev/null 9>&-
  fi
  wait_for "sshd on 127.0.0.1:$SSH_PORT" 40 ssh-keyscan -T 2 -p "$SSH_PORT" -t ed25519 127.0.0.1
  local served pinned
  served="$(ssh-keyscan -T 2 -p "$SSH_PORT" -t ed25519 127.0.0.1 2>/dev/null | awk '{print $2" "$3}')"
  pinned="$(awk '{print $1" "$2}' "$dir/ssh_host_ed25519_key.pub")"
  [[ $served == "$pinned" ]] || die "sshd on port $SSH_PORT serves another host key than $dir/ssh_host_ed25519_key (another sshd?)"
}

# --- 5. base image ------------------------------------------------------------------------------
debian_mirror() {
  if [[ -n ${E2E_DEBIAN_MIRROR:-} ]]; then
    echo "$E2E_DEBIAN_MIRROR"
    return
  fi
  local uri
  uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)"
  if [[ -z $uri ]]; then
    uri="$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
      awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' | grep -v security | head -n1 || true)"
  fi
  [[ -n $uri ]] || die "no Debian mirror in this machine's apt sources; set E2E_DEBIAN_MIRROR"
  echo "$uri"
}

# --- compose v2: the CLI plugin real hosts ship, from Debian's trixie suite ------------------------
# bookworm's docker-compose package is v1; trixie's is the v2 plugin (it depends only on libc6).
# Only the plugin file is taken from the downloaded package, beside v1, with apt state of its
# own: the machine's sources and installed packages stay as they are.
COMPOSE_V2_PLUGIN=/usr/libexec/docker/cli-plugins/docker-compose
step_compose_v2() {
  if [[ -x $COMPOSE_V2_PLUGIN ]] && docker compose version --short >/dev/null 2>&1; then
    log "compose v2: plugin present ($(docker compose version --short))"
    return
  fi
  local apt_dir="$STATE_DIR/apt-trixie" mirror
  mirror="$(debian_mirror)"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/pkg"
  echo "deb $mirror trixie main" >"$apt_dir/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=-"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives"
    -o "APT::Get::List-Cleanup=0")
  apt-get "${opts[@]}" update -q >"$LOG_DIR/apt-trixie.log" 2>&1 ||
    die "apt-get update of trixie from $mirror failed, see $LOG_DIR/apt-trixie.log"
  (cd "$apt_dir/pkg" && apt-get "${opts[@]}" download -q docker-compose/trixie) >>"$LOG_DIR/apt-trixie.log" 2>&1 ||
    die "apt-get download docker-compose/trixie failed, see $LOG_DIR/apt-trixie.log"
  rm -rf "$apt_dir/extract"
  dpkg-deb -x "$apt_dir"/pkg/docker-compose_*.deb "$apt_dir/extract"
  install -D -m 755 "$apt_dir/extract/usr/libexec/docker/cli-plugins/docker-compose" "$COMPOSE_V2_PLUGIN"
  docker compose version --short >/dev/null 2>&1 || die "the compose v2 plugin from trixie does not run: $COMPOSE_V2_PLUGIN"
  log "compose v2: $(docker compose version --short) installed as a Docker CLI plugin"
}

step_base_image() {
  local want
  want="$(printf 'bookworm minbase %s' "$BASE_PACKAGES" | sha256sum | cut -d' ' -f1)"
  if [[ $(image_label "$BASE_IMAGE" e2e.hash) == "$want" ]]; then
    log "base image: $BASE_IMAGE cached"
    return
  fi
  local mirror rootfs="$STATE_DIR/rootfs" t0=$SECONDS
  mirror="$(debian_mirror)"
  log "base image: debootstrap minbase bookworm from $mirror (log $LOG_DIR/debootstrap.log)"
  rm -rf "$rootfs"
  if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$rootfs" "$mirror" \
    >"$LOG_DIR/debootstrap.log" 2>&1; then
    tail -n 30 "$LOG_DIR/debootstrap.log" >&2
    die "debootstrap failed, see $LOG_DIR/debootstrap.log"
  fi
  log "base image: debootstrap done in $((SECONDS - t0)) s"
  # The postgresql package created a default cluster; images create theirs at start.
  rm -rf "$rootfs/var/lib/postgresql/15/main" "$rootfs/etc/postgresql/15/main"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/debootstrap
  printf 'deb %s bookworm main\n' "$mirror" >"$rootfs/etc/apt/sources.list"
  t0=$SECONDS
  tar -C "$rootfs" -c . | docker import \
    --change "LABEL e2e.hash=$want" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  log "base image: imported $BASE_IMAGE in $((SECONDS - t0)) s"
}

# Builds $2 from context dir $1 (with extra build args) unless an image with the same
# context hash, base image and args exists.
build_image() {
  local context=$1 tag=$2
  shift 2
  local base_id want
  base_id="$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE")"
  want="$(printf '%s %s %s' "$(tree_hash "$context")" "$base_id" "$*" | sha256sum | cut -d' ' -f1)"
  if [[ $(image_label "$tag" e2e.hash) == "$want" ]]; then
    log "image: $tag cached"
    return
  fi
  local args=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --label "e2e.hash=$want" -t "$tag")
  local arg
  for arg in "$@"; do
    args+=(--build-arg "$arg")
  done
  local logfile t0=$SECONDS
  logfile="$LOG_DIR/build-$(printf '%s' "$tag" | tr '/:' '__').log"
  if ! docker build "${args[@]}" "$context" >"$logfile" 2>&1; then
    tail -n 30 "$logfile" >&2
    die "docker build of $tag failed, see $logfile"
  fi
  log "image: built $tag in $((SECONDS - t0)) s"
}

step_images() {
  build_image "$HARNESS_DIR/images/postgres" "$POSTGRES_IMAGE"
  build_image "$HARNESS_DIR/images/redis" "$REDIS_IMAGE"
  build_image "$HARNESS_DIR/images/proxy" "$PROXY_IMAGE"
}

# --- 6. backend images in the registry -------------------------------------------------------------
# Built under a private local name; the registry tags exist only in the registry (pushed through
# a temporary local tag that is removed again), so a deploy has to log in and pull them.
registry_digest() {
  curl -s -I --max-time 5 -u "$REGISTRY_USER:$REGISTRY_PASSWORD" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY_ADDR/v2/clicky/backend/manifests/$1" |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" {print $2}' || true
}

step_backend() {
  printf '%s' "$REGISTRY_PASSWORD" |
    docker login -u "$REGISTRY_USER" --password-stdin "$REGISTRY_ADDR" >"$LOG_DIR/docker-login.log" 2>&1 ||
    die "docker login $REGISTRY_ADDR failed, see $LOG_DIR/docker-login.log"
  local tag ref build id marker
  for tag in "${BACKEND_TAGS[@]}"; do
    ref="$BACKEND_REPO:$tag"
    build="$BACKEND_BUILD_REPO:$tag"
    build_image "$APP_DIR" "$build" "APP_VERSION=$tag"
    id="$(docker image inspect --format '{{.Id}}' "$build")"
    marker="$STATE_DIR/registry/pushed-$tag"
    if [[ -n $(registry_digest "$tag") && -f $marker && $(cat "$marker") == "$id" ]]; then
      log "registry: $ref already pushed"
      continue
    fi
    docker tag "$build" "$ref"
    docker push "$ref" >"$LOG_DIR/push-$tag.log" 2>&1 || die "docker push $ref failed, see $LOG_DIR/push-$tag.log"
    docker rmi "$ref" >/dev/null
    printf '%s\n' "$id" >"$marker"
    log "registry: pushed $ref ($(registry_digest "$tag"))"
  done
}

# --- 7. state.json ---------------------------------------------------------------------------------
step_state() {
  local compose_v2="" compose_v1="" tag digests=""
  # Asked as the deploy user, through a login shell: what a deploy script will find.
  compose_v2="$(env -u DOCKER_CONFIG runuser -l "$SSH_USER" -c 'docker compose version --short' 2>/dev/null || true)"
  compose_v1="$(env -u DOCKER_CONFIG runuser -l "$SSH_USER" -c 'docker-compose version --short' 2>/dev/null || true)"
  for tag in "${BACKEND_TAGS[@]}"; do
    digests+="$tag=$(registry_digest "$tag") "
  done
  E2E_STATE_DIR="$STATE_DIR" E2E_SSH_PORT="$SSH_PORT" E2E_SSH_USER="$SSH_USER" \
    E2E_REGISTRY="$REGISTRY_ADDR" E2E_REGISTRY_USER="$REGISTRY_USER" E2E_REGISTRY_PASSWORD="$REGISTRY_PASSWORD" \
    E2E_IMAGES="base=$BASE_IMAGE postgres=$POSTGRES_IMAGE redis=$REDIS_IMAGE proxy=$PROXY_IMAGE" \
    E2E_BACKEND_REPO="$BACKEND_REPO" E2E_BACKEND_BUILD_REPO="$BACKEND_BUILD_REPO" E2E_BACKEND_DIGESTS="$digests" \
    E2E_COMPOSE_V2="$compose_v2" E2E_COMPOSE_V1="$compose_v1" \
    E2E_DOCKER_SERVER="$(docker version --format '{{.Server.Version}}')" \
    E2E_DOCKER_CLIENT="$(docker version --format '{{.Client.Version}}')" \
    E2E_DOCKER_CLI_PATH="$(command -v docker)" \
    E2E_STORAGE_DRIVER="$(docker info --format '{{.Driver}}')" \
    node -e '
      const fs = require("node:fs");
      const e = process.env;
      const dir = e.E2E_STATE_DIR;
      const pairs = (s) => Object.fromEntries(s.trim().split(/\s+/).filter(Boolean).map((p) => p.split("=")));
      const hostPub = fs.readFileSync(dir + "/ssh/ssh_host_ed25519_key.pub", "utf8").trim().split(/\s+/);
      const clientPub = fs.readFileSync(dir + "/ssh/client_ed25519.pub", "utf8").trim().split(/\s+/);
      const digests = pairs(e.E2E_BACKEND_DIGESTS);
      const tags = {};
      for (const [tag, digest] of Object.entries(digests)) {
        if (!digest) throw new Error("no registry digest for backend tag " + tag);
        tags[tag] = {
          ref: e.E2E_BACKEND_REPO + ":" + tag,
          digest,
          pinned: e.E2E_BACKEND_REPO + "@" + digest,
          localBuild: e.E2E_BACKEND_BUILD_REPO + ":" + tag,
        };
      }
      const state = {
        schema: 1,
        stateDir: dir,
        ssh: {
          host: "127.0.0.1",
          port: Number(e.E2E_SSH_PORT),
          user: e.E2E_SSH_USER,
          privateKeyPath: dir + "/ssh/client_ed25519",
          clientPublicKey: clientPub[0] + " " + clientPub[1],
          hostPublicKey: hostPub[0] + " " + hostPub[1],
        },
        registry: { address: e.E2E_REGISTRY, user: e.E2E_REGISTRY_USER, password: e.E2E_REGISTRY_PASSWORD },
        images: { ...pairs(e.E2E_IMAGES), backend: { repository: e.E2E_BACKEND_REPO, tags } },
        docker: {
          serverVersion: e.E2E_DOCKER_SERVER,
          clientVersion: e.E2E_DOCKER_CLIENT,
          cliPath: e.E2E_DOCKER_CLI_PATH,
          storageDriver: e.E2E_STORAGE_DRIVER,
          composeV2: e.E2E_COMPOSE_V2 || null,
          composeV1: e.E2E_COMPOSE_V1 || null,
        },
        provisionedAt: new Date().toISOString(),
      };
      fs.writeFileSync(dir + "/state.json.tmp", JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
      fs.renameSync(dir + "/state.json.tmp", dir + "/state.json");
    '
  log "state: wrote $STATE_DIR/state.json (compose v2: ${compose_v2:-absent}, compose v1: ${compose_v1:-absent})"
}

log "state dir $STATE_DIR"
t=$SECONDS; step_packages; step_compose_v2; PKG_S=$((SECONDS - t))
t=$SECONDS; step_dockerd; DOCKERD_S=$((SECONDS - t))
t=$SECONDS; step_registry; step_user; step_sshd; SERVICES_S=$((SECONDS - t))
t=$SECONDS; step_base_image; BASE_S=$((SECONDS - t))
t=$SECONDS; step_images; step_backend; IMAGES_S=$((SECONDS - t))
step_state
log "done in $((SECONDS - START_SECONDS)) s (packages ${PKG_S}s, dockerd ${DOCKERD_S}s, registry+sshd ${SERVICES_S}s, base image ${BASE_S}s, images ${IMAGES_S}s)"
