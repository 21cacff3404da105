# shellcheck shell=bash
# The deploy's first lines, before the settings: a check that bash runs this file (the settings
# use bash arrays, which another shell cannot parse), then the shell options every step relies on.
if [ -z "${BASH_VERSION:-}" ]; then
  echo "deploy: this script needs bash; run it as: bash <this file> image=... tag=... registry=... migrate=..." >&2
  exit 2
fi
set -Eeuo pipefail
umask 077
export LC_ALL=C
shopt -u patsub_replacement 2>/dev/null || true
# The file this runs from, empty when bash reads it other than from a file (`bash -c`, stdin).
SCRIPT_FILE=${BASH_SOURCE[0]:-}
readonly SCRIPT_FILE
