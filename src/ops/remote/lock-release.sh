# shellcheck shell=bash
# `ops lock release --force` (src/ops/): clears the deploy lock's owner record when no live
# process holds the lock. A lock whose deploy still runs is never taken from it: the deploy
# releases it itself when it ends, success or undo. APP_DIR comes from the settings line before.
set -u
state="$APP_DIR/state"
lock="$state/deploy.lock"
owner=""
if [ -s "$state/deploy.lock.owner" ]; then owner=$(head -n 1 "$state/deploy.lock.owner" | cut -c 1-400); fi
pid=$(printf '%s\n' "$owner" | sed -n 's/.*, pid \([0-9][0-9]*\),.*/\1/p')
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  echo "refused: the deploy holding the lock is still running (pid $pid): $owner; it releases the lock when it ends"
  exit 3
fi
if [ -e "$lock" ] && ! flock -n "$lock" true 2>/dev/null; then
  holders=""
  for fd in /proc/[0-9]*/fd/*; do
    if [ "$(readlink "$fd" 2>/dev/null)" = "$lock" ]; then
      p=${fd#/proc/}
      holders="$holders ${p%%/*}"
    fi
  done
  if [ -z "$holders" ]; then holders=" none of this user (maybe another user)"; fi
  echo "refused: processes still hold $lock:$holders; end them first (leftovers of a deploy? ps -o pid,etime,args -p <pid>)"
  exit 3
fi
if [ -n "$owner" ]; then
  rm -f "$state/deploy.lock.owner"
  echo "released: no process held the lock; removed the owner record of a deploy that ended without clearing it: $owner"
else
  echo "free: no deploy holds the lock and no owner record is left; nothing to release"
fi
