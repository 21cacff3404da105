#!/usr/bin/env bash
# Multi-host extension of the e2e harness (README.md, "Several hosts"): "hosts" on this machine,
# each a network namespace and a mount (and UTS) namespace of its own with its own Docker engine
# and its own sshd, on a bridge in the root namespace, so that a test can deploy to several
# machines. Called by hosts.ts; usable by hand:
#
#   hosts.sh up [--first-index N] [--registry-port P] [--client-key 'ssh-ed25519 AAAA...']
#               [--images 'img ...'] [--prime-ref REF] NAME...
#                                                   start (or reuse) hosts; prints one line each:
#                                                   host<TAB>name<TAB>index<TAB>address<TAB>host key
#                                                   --prime-ref: pull REF once per engine and remove
#                                                   it again (credentials in E2E_REGISTRY_USER and
#                                                   E2E_REGISTRY_PASSWORD), so that later pulls find
#                                                   the base layer the loaded images share
#   hosts.sh down [--wipe] [NAME...]                stop hosts (all of them without NAMEs, and then
#                                                   the bridge and its iptables rules too);
#                                                   --wipe also deletes their engines' data, /opt, home
#   hosts.sh reset [--images] NAME...               a clean machine again, while running: no
#                                                   containers, volumes, networks, /opt, home, /tmp
#                                                   (--images: and no image but the loaded ones)
#   hosts.sh exec NAME [--] CMD...                  run CMD as root inside host NAME
#   hosts.sh status                                 one line per known host
#
# Host NAME with index I (1..240): address 10.231.0.(10+I) on bridge clkfleet0 (10.231.0.1/24),
# network namespace clk-NAME, root-side veth clkv-NAME, engine socket /run/clicky-e2e-NAME.sock
# (a link to /run/clkfleet/NAME/docker.sock), state in /var/lib/clicky-e2e-hosts/NAME, pids in
# /run/clkfleet/NAME. Idempotent; a crashed earlier run (dead processes, stale pid files, a
# leftover namespace) is torn down and brought up again. Locks: one per host (two processes that
# ensure the same host take turns; different hosts come up in parallel), and fleet.lock, held
# shared while hosts come up and taken exclusively to remove the bridge with the last host.
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
FLEET_DIR=/var/lib/clicky-e2e-hosts
RUN_DIR=/run/clkfleet
BRIDGE=clkfleet0
NET_PREFIX=10.231.0
GATEWAY=$NET_PREFIX.1
SUBNET=$NET_PREFIX.0/24
TAG=clicky-e2e-fleet
SSH_USER=deploy
DEFAULT_IMAGES="clicky-e2e/base:bookworm clicky-e2e/postgres:16 clicky-e2e/redis:7 clicky-e2e/proxy:1"
NAME_RE='^[a-z][a-z0-9]{0,9}$'

START_MS=$(date +%s%3N)
log() {
  local ms=$(($(date +%s%3N) - START_MS))
  printf '[hosts %2d.%01ds] %s\n' "$((ms / 1000))" "$((ms % 1000 / 100))" "$*" >&2
}
die() {
  printf '[hosts] ERROR: %s\n' "$*" >&2
  exit 1
}

# Sets the H_* names of host $1.
host_vars() {
  H_NAME=$1
  [[ $H_NAME =~ $NAME_RE ]] || die "invalid host name '$H_NAME' (want $NAME_RE: it becomes part of an interface name)"
  H_NETNS=clk-$H_NAME
  H_VETH=clkv-$H_NAME
  H_DIR=$FLEET_DIR/$H_NAME
  H_RUN=$RUN_DIR/$H_NAME
  H_SOCK=$H_RUN/docker.sock
  H_SOCK_LINK=/run/clicky-e2e-$H_NAME.sock
  H_CGROUP=clicky-e2e-$H_NAME
  H_HOME="$(getent passwd "$SSH_USER" | cut -d: -f6)"
  [[ -n $H_HOME ]] || die "user $SSH_USER missing: run provision.sh first"
}

# The netns inode of host $H_NAME, or nothing when it has no namespace.
netns_inode() {
  if [[ -e /run/netns/$H_NETNS ]]; then
    stat -L -c %i "/run/netns/$H_NETNS" 2>/dev/null || true
  fi
}

# True when pid $1 is alive and in host $H_NAME's network namespace.
pid_in_host() {
  local pid=$1 ino
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  ino="$(netns_inode)"
  [[ -n $ino ]] || return 1
  [[ $(readlink "/proc/$pid/ns/net" 2>/dev/null) == "net:[$ino]" ]]
}

pidfile_pid() {
  cat "$1" 2>/dev/null || true
}

# The pid of host $H_NAME's namespace holder when it is alive, or nothing.
holder_pid() {
  local pid
  pid="$(pidfile_pid "$H_RUN/holder.pid")"
  if pid_in_host "$pid" && [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == "clkfleet-holder-$H_NAME "* ]]; then
    echo "$pid"
  fi
}

# Runs a command inside host $H_NAME (its network, mount and UTS namespaces).
in_host() {
  nsenter -t "$HP" -n -m -u -- "$@"
}

engine_ok() {
  [[ $(curl -s --max-time 3 --unix-socket "$H_SOCK" http://engine/_ping 2>/dev/null || true) == OK ]]
}

docker_h() {
  docker -H "unix://$H_SOCK" "$@"
}

# --- the bridge in the root namespace ----------------------------------------------------------
# Rules are tagged with a comment, so that teardown finds all of them. The machine's own dockerd
# sets FORWARD's policy to DROP and br_netfilter passes bridged frames through it: without the
# ACCEPT, hosts could not talk to each other across the bridge.
ipt_ensure() {
  local table=$1 chain=$2
  shift 2
  iptables -w -t "$table" -C "$chain" "$@" -m comment --comment "$TAG" 2>/dev/null ||
    iptables -w -t "$table" -I "$chain" 1 "$@" -m comment --comment "$TAG"
}

ensure_bridge() {
  exec 6>"$FLEET_DIR/bridge.lock"
  flock -w 60 6 || die "another hosts.sh held $FLEET_DIR/bridge.lock for a minute"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    log "bridge: created $BRIDGE"
  fi
  ip -4 addr show dev "$BRIDGE" | grep -q "inet $GATEWAY/24" || ip addr add "$GATEWAY/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The registry listens on 127.0.0.1: hosts reach it through a DNAT to loopback, which the
  # kernel routes only with route_localnet on the incoming interface.
  sysctl -qw "net.ipv4.conf.$BRIDGE.route_localnet=1"
  [[ $(cat /proc/sys/net/ipv4/ip_forward) == 1 ]] || sysctl -qw net.ipv4.ip_forward=1
  local chain=FORWARD
  iptables -w -n -L DOCKER-USER >/dev/null 2>&1 && chain=DOCKER-USER
  ipt_ensure filter "$chain" -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  ipt_ensure filter "$chain" -i "$BRIDGE" -j ACCEPT
  # Hosts reach what this machine reaches (its DNS resolver, for one), as docker0's containers do.
  ipt_ensure nat POSTROUTING -s "$SUBNET" ! -o "$BRIDGE" -j MASQUERADE
  [[ -z $REGISTRY_PORT ]] || ensure_registry_forward "$REGISTRY_PORT"
  exec 6>&-
}

ensure_registry_forward() {
  local port=$1
  ipt_ensure nat PREROUTING -i "$BRIDGE" -d "$GATEWAY" -p tcp --dport "$port" -j DNAT --to-destination "127.0.0.1:$port"
}

remove_bridge() {
  local table line
  for table in filter nat; do
    { iptables -w -t "$table" -S | grep -- "--comment $TAG" || true; } | while read -r line; do
      local rule
      read -ra rule <<<"${line/#-A /-D }"
      iptables -w -t "$table" "${rule[@]}" || true
    done
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE"
    log "bridge: removed $BRIDGE and its iptables rules"
  fi
}

# --- one host ------------------------------------------------------------------------------------
init_host_dir() {
  local index=$1 address=$2
  mkdir -p "$H_DIR"/{logs,ssh,docker,etc-docker,tmp}
  chmod 700 "$H_DIR/ssh"
  chmod 1777 "$H_DIR/tmp"
  printf 'INDEX=%s\nADDRESS=%s\n' "$index" "$address" >"$H_DIR/host.env"
  # /opt as root's, but the deploy user may create its app dir there (as on the single host,
  # where it creates it in its home); sticky, so it cannot remove what it does not own.
  if [[ ! -d $H_DIR/opt ]]; then
    install -d -m 1775 -o root -g "$SSH_USER" "$H_DIR/opt"
  fi
  if [[ ! -d $H_DIR/home ]]; then
    install -d -m 755 -o "$SSH_USER" -g "$SSH_USER" "$H_DIR/home"
    cp -a /etc/skel/. "$H_DIR/home/"
    chown -R "$SSH_USER:$SSH_USER" "$H_DIR/home"
  fi
  install -d -m 700 -o "$SSH_USER" -g "$SSH_USER" "$H_DIR/home/.ssh"
  touch "$H_DIR/home/.ssh/authorized_keys"
  chown "$SSH_USER:$SSH_USER" "$H_DIR/home/.ssh/authorized_keys"
  chmod 600 "$H_DIR/home/.ssh/authorized_keys"
  printf '127.0.0.1\tlocalhost\n%s\t%s\n' "$address" "$H_NAME" >"$H_DIR/hosts"
  [[ -s $H_DIR/ssh/ssh_host_ed25519_key ]] ||
    ssh-keygen -q -t ed25519 -N '' -C "clicky-e2e-$H_NAME" -f "$H_DIR/ssh/ssh_host_ed25519_key"
  [[ -s $H_DIR/daemon.json ]] || echo '{}' >"$H_DIR/daemon.json"
}

authorize_key() {
  local key=$1
  [[ -n $key ]] || return 0
  grep -qxF "$key" "$H_DIR/home/.ssh/authorized_keys" || printf '%s\n' "$key" >>"$H_DIR/home/.ssh/authorized_keys"
}

create_network() {
  local address=$1
  ip netns add "$H_NETNS"
  ip link add "$H_VETH" type veth peer name eth0 netns "$H_NETNS"
  ip link set "$H_VETH" master "$BRIDGE" up
  ip -n "$H_NETNS" link set lo up
  ip -n "$H_NETNS" addr add "$address/24" dev eth0
  ip -n "$H_NETNS" link set eth0 up
  ip -n "$H_NETNS" route add default via "$GATEWAY"
}

# Runs in the new namespaces (`hosts.sh holder NAME`): makes this host's mounts, then sleeps as
# the process that keeps the namespaces alive. The mounts are private to this host.
holder_main() {
  host_vars "$1"
  hostname "$H_NAME"
  # Copies of the root namespace's mounts this host must not pin: the main engine's overlays and
  # container namespaces, other hosts' /run/netns entries.
  local m
  { awk '{print $5}' /proc/self/mountinfo | grep -E '^(/run/.+|/var/lib/docker(/.*)?)$' || true; } | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  # A sysfs of this network namespace (/sys/class/net shows its own interfaces), with the
  # machine's cgroup hierarchies kept under it (dockerd needs them).
  mkdir -p "$H_DIR/.cgroup"
  mount --rbind /sys/fs/cgroup "$H_DIR/.cgroup"
  umount -l /sys
  mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
  mount --move "$H_DIR/.cgroup" /sys/fs/cgroup
  # A /run of its own (the engine's /run/docker.sock and exec root, /run/sshd, xtables.lock),
  # except /run/clkfleet, shared with the root namespace (pid files, the socket tests use).
  mkdir -p "$H_DIR/.fleetrun" /etc/docker
  mount --bind "$RUN_DIR" "$H_DIR/.fleetrun"
  mount -t tmpfs -o mode=0755,nosuid,nodev,size=256m "clkfleet-$H_NAME-run" /run
  mkdir -p "$RUN_DIR" /run/sshd /run/lock
  chmod 1777 /run/lock
  mount --move "$H_DIR/.fleetrun" "$RUN_DIR"
  mount --bind "$H_DIR/opt" /opt
  mount --bind "$H_DIR/home" "$H_HOME"
  mount --bind "$H_DIR/etc-docker" /etc/docker
  mount --bind "$H_DIR/tmp" /tmp
  mount --bind "$H_DIR/hosts" /etc/hosts
  echo $$ >"$H_RUN/holder.pid.tmp"
  mv "$H_RUN/holder.pid.tmp" "$H_RUN/holder.pid"
  exec -a "clkfleet-holder-$H_NAME" sleep infinity
}

start_holder() {
  mkdir -p "$H_RUN"
  rm -f "$H_RUN/holder.pid"
  setsid nsenter --net="/run/netns/$H_NETNS" -- unshare --mount --uts --propagation private -- \
    bash "$SELF" holder "$H_NAME" </dev/null >>"$H_DIR/logs/holder.log" 2>&1 7>&- 8>&- 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do
    HP="$(holder_pid)"
    [[ -n $HP ]] && return 0
    sleep 0.1
  done
  tail -n 20 "$H_DIR/logs/holder.log" >&2
  die "$H_NAME: the namespace holder did not start, see $H_DIR/logs/holder.log"
}

start_dockerd() {
  local pid
  pid="$(pidfile_pid "$H_RUN/dockerd.pid")"
  if pid_in_host "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]; then
    log "$H_NAME: dockerd (pid $pid) does not answer: restarting it"
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone 20 "$pid" || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$H_RUN/dockerd.pid" "$H_SOCK"
  # --exec-root is in the host's own /run; the cgroup parent groups its containers (teardown
  # finds every container process there); /etc/docker is the host's (its own key.json, so its
  # own engine ID). The registry is reached on the bridge's address, over plain HTTP.
  setsid nsenter -t "$HP" -n -m -u -- dockerd \
    --config-file "$H_DIR/daemon.json" \
    --data-root "$H_DIR/docker" \
    --exec-root /run/docker \
    --pidfile "$H_RUN/dockerd.pid" \
    -H unix:///run/docker.sock -H "unix://$H_SOCK" \
    --storage-driver "$STORAGE_DRIVER" \
    --insecure-registry "$SUBNET" \
    --cgroup-parent "/$H_CGROUP" \
    </dev/null >>"$H_DIR/logs/dockerd.log" 2>&1 7>&- 8>&- 9>&- &
  local i
  for ((i = 0; i < 300; i++)); do
    engine_ok && return 0
    sleep 0.1
  done
  tail -n 30 "$H_DIR/logs/dockerd.log" >&2
  die "$H_NAME: dockerd did not answer in 30 s, see $H_DIR/logs/dockerd.log"
}

write_sshd_config() {
  local address=$1 dir=$H_DIR/ssh
  cat >"$dir/sshd_config.new" <<CONF
# clicky-e2e fleet host $H_NAME (hosts.sh); modelled on provision.sh's sshd
Port 22
ListenAddress $address
HostKey $dir/ssh_host_ed25519_key
PidFile $H_RUN/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $SSH_USER
UsePAM no
UseDNS no
StrictModes yes
X11Forwarding no
PrintMotd no
AcceptEnv LANG LC_*
MaxStartups 64:30:128
MaxSessions 32
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
  /usr/sbin/sshd -t -f "$dir/sshd_config.new" || die "$H_NAME: sshd rejected $dir/sshd_config.new"
  if [[ -f $dir/sshd_config ]] && cmp -s "$dir/sshd_config" "$dir/sshd_config.new"; then
    rm "$dir/sshd_config.new"
    return 1
  fi
  mv "$dir/sshd_config.new" "$dir/sshd_config"
}

served_host_key() {
  ssh-keyscan -T 2 -p 22 -t ed25519 "$1" 2>/dev/null | awk '{print $2" "$3}'
}

ensure_sshd() {
  local address=$1 changed=0 pid pinned i
  write_sshd_config "$address" && changed=1
  pid="$(pidfile_pid "$H_RUN/sshd.pid")"
  if pid_in_host "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == sshd ]]; then
    if ((changed)); then
      kill -HUP "$pid"
      log "$H_NAME: sshd config changed, reloaded"
      sleep 0.3
    fi
  else
    rm -f "$H_RUN/sshd.pid"
    in_host /usr/sbin/sshd -f "$H_DIR/ssh/sshd_config" -E "$H_DIR/logs/sshd.log" </dev/null >/dev/null 2>&1 7>&- 8>&- 9>&-
  fi
  pinned="$(awk '{print $1" "$2}' "$H_DIR/ssh/ssh_host_ed25519_key.pub")"
  for ((i = 0; i < 50; i++)); do
    [[ $(served_host_key "$address") == "$pinned" ]] && return 0
    sleep 0.1
  done
  tail -n 20 "$H_DIR/logs/sshd.log" >&2
  die "$H_NAME: sshd on $address:22 does not serve $H_DIR/ssh/ssh_host_ed25519_key, see $H_DIR/logs/sshd.log"
}

# Waits until none of the pids is alive, at most $1 seconds.
wait_gone() {
  local secs=$1 i pid alive
  shift
  for ((i = 0; i < secs * 10; i++)); do
    alive=0
    for pid in "$@"; do
      [[ -d /proc/$pid ]] && alive=1
    done
    ((alive)) || return 0
    sleep 0.1
  done
  return 1
}

# Every process of host $H_NAME: in its network namespace, or in its containers' cgroup.
host_pids() {
  local f
  if [[ -e /run/netns/$H_NETNS ]]; then
    ip netns pids "$H_NETNS" 2>/dev/null || true
  fi
  for f in /sys/fs/cgroup/pids/"$H_CGROUP"/*/cgroup.procs /sys/fs/cgroup/pids/"$H_CGROUP"/cgroup.procs; do
    [[ -r $f ]] && cat "$f"
  done
  true
}

# Tears host $H_NAME down, whatever state it is in: containers first, then dockerd (and its
# containerd), sshd, whatever else runs in it, its namespaces, veth and pid files.
host_down() {
  local pid pids
  if engine_ok; then
    local ids
    ids="$(docker_h ps -aq 2>/dev/null || true)"
    # shellcheck disable=SC2086
    [[ -z $ids ]] || timeout 60 docker -H "unix://$H_SOCK" rm -f $ids >/dev/null 2>&1 || true
  fi
  pid="$(pidfile_pid "$H_RUN/dockerd.pid")"
  if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] &&
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"--pidfile $H_RUN/dockerd.pid"* ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone 20 "$pid" || kill -KILL "$pid" 2>/dev/null || true
  fi
  pid="$(pidfile_pid "$H_RUN/sshd.pid")"
  if pid_in_host "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  pids="$(host_pids | sort -un | tr '\n' ' ')"
  if [[ -n ${pids// /} ]]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    wait_gone 3 $pids || kill -KILL $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    wait_gone 5 $pids || log "$H_NAME: processes still alive after SIGKILL: $pids"
  fi
  local cg
  for cg in /sys/fs/cgroup/*/"$H_CGROUP"; do
    [[ -d $cg ]] || continue
    find "$cg" -depth -mindepth 1 -type d -exec rmdir {} + 2>/dev/null || true
    rmdir "$cg" 2>/dev/null || true
  done
  ip link del "$H_VETH" 2>/dev/null || true
  if [[ -e /run/netns/$H_NETNS ]]; then
    ip netns del "$H_NETNS" 2>/dev/null || { umount -l "/run/netns/$H_NETNS" 2>/dev/null || true; rm -f "/run/netns/$H_NETNS"; }
  fi
  # Mounts of this host that leaked into the root namespace (none when it ran as designed).
  local m
  { awk '{print $5}' /proc/self/mountinfo | grep -E "^($H_DIR|$H_RUN)(/|\$)" || true; } | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$H_RUN"
  rmdir "$H_DIR/.fleetrun" "$H_DIR/.cgroup" 2>/dev/null || true
  rm -f "$H_SOCK_LINK"
}

host_has_leftovers() {
  [[ -e /run/netns/$H_NETNS || -d $H_RUN || -L $H_SOCK_LINK ]] || ip link show "$H_VETH" >/dev/null 2>&1
}

# Brings host $1 (index $2) up, or checks that it is up; repairs what is missing.
host_up() {
  host_vars "$1"
  local index=$2 address="$NET_PREFIX.$((10 + $2))" t0
  exec 8>"$FLEET_DIR/$H_NAME.lock"
  flock -w 900 8 || die "$H_NAME: another hosts.sh held $FLEET_DIR/$H_NAME.lock for 15 minutes"
  t0=$(date +%s%3N)
  init_host_dir "$index" "$address"
  authorize_key "$CLIENT_KEY"
  HP="$(holder_pid)"
  if [[ -z $HP ]]; then
    if host_has_leftovers; then
      log "$H_NAME: leftovers of an earlier run without a live namespace holder: tearing them down"
      host_down
    fi
    create_network "$address"
    start_holder
    log "$H_NAME: namespaces up ($address, holder pid $HP)"
  else
    if ! ip link show "$H_VETH" >/dev/null 2>&1; then
      die "$H_NAME: its veth $H_VETH is gone while the host runs; run hosts.sh down $H_NAME"
    fi
    # A host made unreachable (setHostReachable) comes back when it is ensured again.
    ip link set "$H_VETH" master "$BRIDGE" up
  fi
  if ! engine_ok; then
    start_dockerd
    log "$H_NAME: dockerd up"
  fi
  ln -sfn "clkfleet/$H_NAME/docker.sock" "$H_SOCK_LINK"
  ensure_sshd "$address"
  ensure_images
  [[ -z $PRIME_REF ]] || prime_registry "$PRIME_REF"
  log "$H_NAME: ready in $(($(date +%s%3N) - t0)) ms"
}

# Loads the images into host $H_NAME's engine unless it has them (the same image IDs). The
# images are saved once per invocation, by the first host that needs them, for all of them.
ensure_images() {
  local have t0
  # shellcheck disable=SC2086
  have="$(docker_h image inspect -f '{{.Id}}' $IMAGES 2>/dev/null || true)"
  [[ $have != "$WANT_IDS" ]] || return 0
  t0=$(date +%s%3N)
  (
    flock -w 600 7 || die "$H_NAME: waited 10 minutes for $IMAGES_TAR"
    if [[ ! -s $IMAGES_TAR ]]; then
      # shellcheck disable=SC2086
      docker save -o "$IMAGES_TAR.tmp" $IMAGES || die "docker save $IMAGES failed"
      mv "$IMAGES_TAR.tmp" "$IMAGES_TAR"
      log "images: saved $IMAGES ($(du -m "$IMAGES_TAR" | cut -f1) MB) in $(($(date +%s%3N) - t0)) ms"
    fi
  ) 7>"$IMAGES_TAR.lock"
  docker_h load -q -i "$IMAGES_TAR" >"$H_DIR/logs/load.log" 2>&1 || die "$H_NAME: docker load failed, see $H_DIR/logs/load.log"
  log "$H_NAME: images loaded in $(($(date +%s%3N) - t0)) ms"
}

# A fresh engine does not know that the registry's compressed base layer is the one it already
# has (loaded): its first pull downloads and unpacks it again (~7 s). One pull per engine, removed
# again, teaches it; the deploys' own pulls then take about a second.
prime_registry() {
  local ref=$1 registry=${1%%/*} cfg t0 had=0
  [[ $(cat "$H_DIR/primed" 2>/dev/null || true) != "$registry" ]] || return 0
  [[ -n ${E2E_REGISTRY_USER:-} && -n ${E2E_REGISTRY_PASSWORD:-} ]] || die "--prime-ref needs E2E_REGISTRY_USER and E2E_REGISTRY_PASSWORD"
  t0=$(date +%s%3N)
  cfg="$(mktemp -d)"
  docker_h image inspect "$ref" >/dev/null 2>&1 && had=1
  if ! printf '%s' "$E2E_REGISTRY_PASSWORD" | DOCKER_CONFIG=$cfg docker_h login -u "$E2E_REGISTRY_USER" --password-stdin "$registry" >/dev/null 2>&1; then
    rm -rf "$cfg"
    die "$H_NAME: docker login $registry failed (is the registry forwarded? hosts.sh up --registry-port)"
  fi
  if ! DOCKER_CONFIG=$cfg docker_h pull -q "$ref" >/dev/null 2>"$H_DIR/logs/prime.log"; then
    rm -rf "$cfg"
    die "$H_NAME: docker pull $ref failed, see $H_DIR/logs/prime.log"
  fi
  rm -rf "$cfg"
  ((had)) || docker_h rmi "$ref" >/dev/null
  printf '%s\n' "$registry" >"$H_DIR/primed"
  log "$H_NAME: pulled $ref once in $(($(date +%s%3N) - t0)) ms (removed again)"
}

known_hosts() {
  {
    for d in "$FLEET_DIR"/*/host.env; do [[ -e $d ]] && basename "$(dirname "$d")"; done
    for d in "$RUN_DIR"/*/; do [[ -d $d ]] && basename "$d"; done
    ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^clk-//p'
  } | sort -u | grep -E "$NAME_RE" || true
}

# fleet.lock: shared while hosts come up (the bridge must stay), exclusive to remove the bridge.
lock_fleet_shared() {
  mkdir -p "$FLEET_DIR" "$RUN_DIR"
  exec 9>"$FLEET_DIR/fleet.lock"
  flock -s -w 900 9 || die "another hosts.sh held $FLEET_DIR/fleet.lock for 15 minutes"
}

# Runs "$@" for host $1 in the background, under that host's lock.
with_host_lock() {
  local name=$1
  shift
  (
    exec 8>"$FLEET_DIR/$name.lock"
    flock -w 900 8 || die "$name: another hosts.sh held $FLEET_DIR/$name.lock for 15 minutes"
    "$@"
  ) &
}

# --- commands ------------------------------------------------------------------------------------
cmd_up() {
  local first=1 names=()
  CLIENT_KEY="" IMAGES="$DEFAULT_IMAGES" REGISTRY_PORT="" PRIME_REF=""
  while (($#)); do
    case $1 in
      --first-index) first=$2; shift 2 ;;
      --registry-port) REGISTRY_PORT=$2; shift 2 ;;
      --client-key) CLIENT_KEY=$2; shift 2 ;;
      --images) IMAGES=$2; shift 2 ;;
      --prime-ref) PRIME_REF=$2; shift 2 ;;
      -*) die "up: unknown option $1" ;;
      *) names+=("$1"); shift ;;
    esac
  done
  ((${#names[@]} > 0)) || die "up: no host names"
  if ! [[ $first =~ ^[0-9]+$ ]] || ((first < 1 || first + ${#names[@]} - 1 > 240)); then
    die "up: --first-index $first: the indexes must be within 1..240"
  fi
  lock_fleet_shared
  STORAGE_DRIVER="$(docker info --format '{{.Driver}}' 2>/dev/null || true)"
  [[ -n $STORAGE_DRIVER ]] || die "the main Docker engine does not answer: run provision.sh first"
  # A host's index is its address: refuse one that another running host already has.
  local i name index other
  for ((i = 0; i < ${#names[@]}; i++)); do
    name=${names[i]}
    index=$((first + i))
    host_vars "$name"
    if [[ -n $(holder_pid) && -s $H_DIR/host.env ]] && [[ $(sed -n 's/^INDEX=//p' "$H_DIR/host.env") != "$index" ]]; then
      die "host $name runs with index $(sed -n 's/^INDEX=//p' "$H_DIR/host.env"), not $index: stop it first (hosts.sh down $name)"
    fi
    for other in $(known_hosts); do
      [[ $other == "$name" ]] && continue
      host_vars "$other"
      if [[ -n $(holder_pid) ]] && [[ $(sed -n 's/^INDEX=//p' "$H_DIR/host.env" 2>/dev/null) == "$index" ]]; then
        die "index $index ($NET_PREFIX.$((10 + index))) belongs to running host $other; give $name another index"
      fi
    done
  done
  # shellcheck disable=SC2086
  WANT_IDS="$(docker image inspect -f '{{.Id}}' $IMAGES)" || die "images missing in the main engine ($IMAGES): run provision.sh"
  IMAGES_TAR="$FLEET_DIR/images.$$.tar"
  trap 'rm -f "$IMAGES_TAR" "$IMAGES_TAR.tmp" "$IMAGES_TAR.lock"' EXIT
  ensure_bridge
  local pids=() rc=0 pid
  for ((i = 0; i < ${#names[@]}; i++)); do
    host_up "${names[i]}" "$((first + i))" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  ((rc == 0)) || die "up: a host failed to start (see above)"
  for name in "${names[@]}"; do
    host_vars "$name"
    printf 'host\t%s\t%s\t%s\t%s\n' "$name" "$(sed -n 's/^INDEX=//p' "$H_DIR/host.env")" \
      "$(sed -n 's/^ADDRESS=//p' "$H_DIR/host.env")" "$(awk '{print $1" "$2}' "$H_DIR/ssh/ssh_host_ed25519_key.pub")"
  done
  log "up: ${names[*]} ready"
}

down_one() {
  host_vars "$1"
  host_down
  if (($2)) && [[ -d $H_DIR ]]; then
    find "$H_DIR" -mindepth 1 -maxdepth 1 ! -name ssh -exec rm -rf --one-file-system {} +
    log "$H_NAME: down, wiped (kept its host key)"
  else
    log "$H_NAME: down"
  fi
}

cmd_down() {
  local wipe=0 names=() all=0
  while (($#)); do
    case $1 in
      --wipe) wipe=1; shift ;;
      -*) die "down: unknown option $1" ;;
      *) names+=("$1"); shift ;;
    esac
  done
  mkdir -p "$FLEET_DIR" "$RUN_DIR"
  if ((${#names[@]} == 0)); then
    all=1
    mapfile -t names < <(known_hosts)
  fi
  local name pids=() pid
  for name in "${names[@]}"; do
    with_host_lock "$name" down_one "$name" "$wipe"
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  # The bridge goes with the last host, unless hosts are coming up right now (fleet.lock shared).
  exec 9>"$FLEET_DIR/fleet.lock"
  flock -n -x 9 || return 0
  if [[ -z $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^clk-' || true) ]]; then
    if ((all)); then
      local fronts
      fronts="$(docker ps -aq --filter label=clicky-e2e.front 2>/dev/null || true)"
      # shellcheck disable=SC2086
      [[ -z $fronts ]] || docker rm -f $fronts >/dev/null 2>&1 || true
    fi
    remove_bridge
  fi
}

cmd_reset() {
  local images=0 names=()
  while (($#)); do
    case $1 in
      --images) images=1; shift ;;
      -*) die "reset: unknown option $1" ;;
      *) names+=("$1"); shift ;;
    esac
  done
  IMAGES="$DEFAULT_IMAGES"
  mkdir -p "$FLEET_DIR"
  local name pids=() pid rc=0
  for name in "${names[@]}"; do
    (
      exec 8>"$FLEET_DIR/$name.lock"
      flock -w 900 8 || die "$name: another hosts.sh held $FLEET_DIR/$name.lock for 15 minutes"
      host_vars "$name"
      engine_ok || die "reset: host $name is not running"
      local ids keep img
      ids="$(docker_h ps -aq)"
      # shellcheck disable=SC2086
      [[ -z $ids ]] || docker_h rm -f -v $ids >/dev/null
      ids="$(docker_h volume ls -q)"
      # shellcheck disable=SC2086
      [[ -z $ids ]] || docker_h volume rm -f $ids >/dev/null
      docker_h network prune -f >/dev/null
      if ((images)); then
        # shellcheck disable=SC2086
        keep=" $(docker_h image inspect -f '{{.Id}}' $IMAGES 2>/dev/null | tr '\n' ' ') "
        for img in $(docker_h image ls -q --no-trunc | sort -u); do
          [[ $keep == *" $img "* ]] || docker_h rmi -f "$img" >/dev/null 2>&1 || true
        done
      fi
      find "$H_DIR/opt" -mindepth 1 -maxdepth 1 ! -name containerd -exec rm -rf --one-file-system {} +
      find "$H_DIR/home" -mindepth 1 -maxdepth 1 ! -name .ssh -exec rm -rf --one-file-system {} +
      cp -a /etc/skel/. "$H_DIR/home/"
      chown -R "$SSH_USER:$SSH_USER" "$H_DIR/home"
      find "$H_DIR/tmp" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
      ip link set "$H_VETH" up
      log "$name: reset"
    ) &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  ((rc == 0)) || die "reset failed (see above)"
}

cmd_exec() {
  host_vars "$1"
  shift
  [[ ${1:-} == -- ]] && shift
  HP="$(holder_pid)"
  [[ -n $HP ]] || die "host $H_NAME is not running"
  exec nsenter -t "$HP" -n -m -u -- "$@"
}

cmd_status() {
  local name
  for name in $(known_hosts); do
    host_vars "$name"
    local address="" state=down
    [[ -s $H_DIR/host.env ]] && address="$(sed -n 's/^ADDRESS=//p' "$H_DIR/host.env")"
    if [[ -n $(holder_pid) ]]; then
      state="up engine=$(engine_ok && echo ok || echo down) link=$(ip -br link show "$H_VETH" 2>/dev/null | awk '{print $2}')"
    elif host_has_leftovers; then
      state="stale"
    fi
    printf '%s\t%s\t%s\n' "$name" "${address:--}" "$state"
  done
}

[[ $(id -u) -eq 0 ]] || die "must run as root (it creates namespaces and starts dockerd and sshd)"
cmd=${1:-}
shift || true
case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  reset) cmd_reset "$@" ;;
  exec) cmd_exec "$@" ;;
  status) cmd_status ;;
  holder) holder_main "$1" ;;
  *) die "usage: hosts.sh up|down|reset|exec|status ... (see the top of $SELF)" ;;
esac
