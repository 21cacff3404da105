# shellcheck shell=bash
# `ops status` and `ops audit` (src/ops/): what a host serves, its deploy lock, its containers
# and its deploy runs, one fact per line. It only reads. APP_DIR and PROJECT come from the
# settings lines before it; RUNS is how many of the newest run logs to read.
set -u
state="$APP_DIR/state"
echo "ops 1"
for f in current previous; do
  if [ -r "$state/$f" ]; then sed "s/^/$f /" "$state/$f"; else echo "$f-missing"; fi
done
# The lock: held when flock cannot take it; the owner line names the deploy and its pid.
if [ ! -e "$state/deploy.lock" ]; then
  echo "lock free"
elif flock -n "$state/deploy.lock" true 2>/dev/null; then
  echo "lock free"
else
  echo "lock held"
fi
if [ -s "$state/deploy.lock.owner" ]; then
  owner=$(head -n 1 "$state/deploy.lock.owner" | cut -c 1-400)
  echo "lock-owner $owner"
  pid=$(printf '%s\n' "$owner" | sed -n 's/.*, pid \([0-9][0-9]*\),.*/\1/p')
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "lock-pid $pid alive"; elif [ -n "$pid" ]; then echo "lock-pid $pid gone"; fi
fi
# Every run log, newest first: its name (UTC start time and pid), its last progress line and the
# first line of its failure report.
if [ -d "$APP_DIR/logs" ]; then
  find "$APP_DIR/logs" -maxdepth 1 -name '*.out' -printf '%f\n' 2>/dev/null | sort -r | head -n "$RUNS" |
    while IFS= read -r name; do
      base="$APP_DIR/logs/${name%.out}"
      last=$(grep -v '^$' "$base.out" 2>/dev/null | tail -n 1 | cut -c 1-600)
      failed=$(grep -m 1 '^deploy FAILED' "$base.err" 2>/dev/null | cut -c 1-600)
      pid=${name%.out}
      pid=${pid##*-}
      alive=gone
      if kill -0 "$pid" 2>/dev/null; then alive=alive; fi
      printf 'run %s %s\n' "${name%.out}" "$alive"
      printf 'run-last %s\n' "$last"
      if [ -n "$failed" ]; then printf 'run-failed %s\n' "$failed"; fi
    done
fi
if [ -r "$state/history.log" ]; then tail -n 200 "$state/history.log" | sed 's/^/history /'; fi
if out=$(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" --filter label=com.docker.compose.oneoff=False --format '{{.Label "com.docker.compose.service"}}|{{.State}}|{{.Status}}' 2>&1); then
  if [ -n "$out" ]; then printf '%s\n' "$out" | sed 's/^/container /'; fi
else
  echo "docker-error $(printf '%s' "$out" | tail -n 1)"
fi
echo end
