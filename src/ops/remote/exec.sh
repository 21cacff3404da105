# shellcheck shell=bash
# `ops exec` (src/ops/): one command in a new container of the serving image, with the serving
# container's environment, on the project's network; never inside the serving container. The
# container is removed when the command ends. APP_DIR, PROJECT, INTERACTIVE and the CMD array
# come from the settings lines before it. Interactive: the container's stdin is this session's,
# and it gets a terminal when the session has one (ssh with a pty).
set -euo pipefail
slot=$(sed -n 's/^slot=//p' "$APP_DIR/state/current" 2>/dev/null || true)
if [[ -z $slot ]]; then
  echo "no deploy record ($APP_DIR/state/current): nothing serves here yet" >&2
  exit 3
fi
cid=$(docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=backend-$slot" --filter label=com.docker.compose.oneoff=False | head -n 1)
if [[ -z $cid ]]; then
  echo "the serving container backend-$slot of project $PROJECT is not running" >&2
  exit 3
fi
image=$(docker inspect -f '{{.Config.Image}}' "$cid")
umask 077
env_file=$(mktemp)
trap 'rm -f "$env_file"' EXIT
# The serving container's environment, as the app sees it (the image's own and the deploy's).
docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$cid" | grep -v '^$' >"$env_file"
echo "running in a new container of $image (backend-$slot's environment, network ${PROJECT}_default)" >&2
tty=()
if [[ $INTERACTIVE == 1 ]]; then
  tty=(-i)
  if [[ -t 0 ]]; then tty=(-i -t); fi
fi
status=0
docker run --rm "${tty[@]}" --name "$PROJECT-ops-exec-$$" --label "com.docker.compose.project=$PROJECT" \
  --label com.docker.compose.oneoff=True --network "${PROJECT}_default" --env-file "$env_file" \
  "$image" "${CMD[@]}" || status=$?
exit "$status"
