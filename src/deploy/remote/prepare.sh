# shellcheck shell=sh
# The prepare command: lays out APP_DIR before files are copied into it (the copy needs the
# release directory to exist). POSIX sh, so it runs under any login shell, and idempotent.
# APP_DIR and RELEASE_DIR come from the two settings lines before it (src/deploy/prepare.ts).
# When the deploy user cannot create APP_DIR, it says the one command an admin must run.
set -eu
if ! mkdir -p "$APP_DIR" 2>/dev/null || [ ! -w "$APP_DIR" ]; then
  echo "prepare: $(id -un) cannot write $APP_DIR; an admin runs once: sudo install -d -o $(id -un) -g $(id -gn) -m 750 $APP_DIR" >&2
  exit 1
fi
# Shared: any local user may list them (the proxy container reads proxy/).
mkdir -p "$APP_DIR/releases" "$RELEASE_DIR" "$APP_DIR/proxy"
chmod 755 "$APP_DIR/releases" "$RELEASE_DIR" "$APP_DIR/proxy"
# Private: secrets, state and backups, the deploy user's only.
mkdir -p "$APP_DIR/backups" "$APP_DIR/env" "$APP_DIR/state"
chmod 700 "$APP_DIR/backups" "$APP_DIR/env" "$APP_DIR/state"
echo "prepare: $RELEASE_DIR ready"
