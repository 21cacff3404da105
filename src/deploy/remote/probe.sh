# shellcheck shell=sh
# The host probe (src/deploy/host-probe.ts): what the host serves and holds, one fact per line,
# for the program to compare with the stack on every preview and update. It only reads.
# APP_DIR, PROJECT, RELEASE_DIR, FILES, SITE and ROUTING come from the settings lines before it.
set -u
hash_of() {
  if [ -f "$1" ]; then sha256sum <"$1" | cut -c 1-64; else echo missing; fi
}
echo "probe 1"
if [ -r "$APP_DIR/state/current" ]; then
  sed 's/^/record /' "$APP_DIR/state/current"
else
  echo "record-missing"
fi
for f in $FILES; do echo "file $f $(hash_of "$RELEASE_DIR/$f")"; done
for f in $SITE; do echo "site $f $(hash_of "$APP_DIR/proxy/$f")"; done
slot=$(awk '$0 !~ /^#/ && NF { print $1; exit }' "$APP_DIR/proxy/$ROUTING" 2>/dev/null || true)
echo "routing ${slot:-none}"
if out=$(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" --filter label=com.docker.compose.oneoff=False --format '{{.Label "com.docker.compose.service"}}|{{.State}}|{{.Status}}' 2>&1); then
  if [ -n "$out" ]; then printf '%s\n' "$out" | sed 's/^/container /'; fi
else
  echo "docker-error $(printf '%s' "$out" | tail -n 1)"
fi
echo end
