#!/usr/bin/env bash
# `npm test`: every test file, in two groups that run side by side because they share no host:
#   - the e2e suites on the harness's own host (test/deploy/e2e, test/ops/e2e, the harness's
#     self-test): one file at a time, their output as it comes;
#   - everything else: the unit and program suites, then the suites on the fleet's hosts
#     (network namespaces of their own: test/harness/hosts.test.ts, test/deploy/e2e/fleet*):
#     their output follows the first group's.
# Exit status: non-zero when either group failed. Extra arguments go to both `node --test`s.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

mapfile -t files < <(find test -name "*.test.ts" -not -path "*/node_modules/*" | sort)
host=() other=() fleet=()
for f in "${files[@]}"; do
  case $f in
    test/harness/hosts.test.ts | test/deploy/e2e/fleet*.test.ts) fleet+=("$f") ;;
    test/deploy/e2e/* | test/ops/e2e/* | test/harness/*) host+=("$f") ;;
    *) other+=("$f") ;;
  esac
done

side_log="$(mktemp)"
trap 'rm -f "$side_log"' EXIT
(node --import tsx --test --test-reporter=spec "$@" "${other[@]}" "${fleet[@]}" >"$side_log" 2>&1) &
side=$!
node --import tsx --test --test-reporter=spec "$@" "${host[@]}"
host_rc=$?
wait "$side"
side_rc=$?
printf '\n== unit, program and fleet suites (run beside the suites above)\n'
cat "$side_log"
if ((host_rc != 0 || side_rc != 0)); then
  printf '\nnpm test: FAILED (host e2e group exit %s, other group exit %s)\n' "$host_rc" "$side_rc"
  exit 1
fi
