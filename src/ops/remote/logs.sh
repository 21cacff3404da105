# shellcheck shell=bash
# `ops logs` (src/ops/): the serving container's logs, read with docker logs. APP_DIR, PROJECT,
# SINCE (empty: all), TAIL and FOLLOW (1 or 0) come from the settings lines before it.
set -u
slot=$(sed -n 's/^slot=//p' "$APP_DIR/state/current" 2>/dev/null)
if [ -z "$slot" ]; then
  echo "no deploy record ($APP_DIR/state/current): nothing serves here yet" >&2
  exit 3
fi
cid=$(docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=backend-$slot" --filter label=com.docker.compose.oneoff=False | head -n 1)
if [ -z "$cid" ]; then
  echo "the serving container backend-$slot of project $PROJECT is not running" >&2
  exit 3
fi
args=(logs --timestamps --tail "$TAIL")
if [ -n "$SINCE" ]; then args+=(--since "$SINCE"); fi
if [ "$FOLLOW" = 1 ]; then args+=(--follow); fi
exec docker "${args[@]}" "$cid" 2>&1
