# shellcheck shell=bash
# What the deploy prints, and the one place that prints it (src/deploy/script-output.ts tells
# why). Three streams stay apart: the log on the host (stdout and stderr of the script and of
# every command it runs), progress (fd 3: only the lines `log` writes) and the failure report
# (fd 4: `report` and `report_log_tail`). Nothing reaches fd 3 or 4 but through these, and each
# masks every secret first, in every form a tool could print it in.

# Lines of the host's log a failure report shows, bytes of one such line and of all of them,
# bytes of one progress or report line, and what a secret is replaced by.
readonly LOG_TAIL_LINES=40 LOG_TAIL_LINE_BYTES=160 LOG_TAIL_BYTES=4096 OUTPUT_LINE_BYTES=600 MASK='***'

MASKS=() MASKED=''

# The bytes of $1 (LC_ALL=C: one character is one byte) as numbers 0 to 255, into BYTES.
# Forms are computed in this shell, without a subshell or a program per secret: the masks are
# built before the first step of every deploy.
bytes_of() {
  local i
  BYTES=()
  for ((i = 0; i < ${#1}; i++)); do
    printf -v 'BYTES[i]' '%d' "'${1:i:1}"
    # A bash that reads a byte above 127 as a signed char.
    if ((BYTES[i] < 0)); then BYTES[i]=$((BYTES[i] + 256)); fi
  done
}

# $1 percent-encoded four ways, into PERCENT: as encodeURIComponent with upper and lower case
# hex, then as RFC 3986 with upper and lower case hex.
percent_forms() {
  local i byte char hex
  local -a out=('' '' '' '')
  bytes_of "$1"
  for ((i = 0; i < ${#BYTES[@]}; i++)); do
    byte=${BYTES[i]} char=${1:i:1}
    printf -v hex '%02X' "$byte"
    if [[ $char == [A-Za-z0-9._~-] ]]; then
      out[0]+=$char out[1]+=$char out[2]+=$char out[3]+=$char
    elif [[ $char == [\!\'\(\)\*] ]]; then
      out[0]+=$char out[1]+=$char out[2]+="%$hex" out[3]+="%${hex,,}"
    else
      out[0]+="%$hex" out[1]+="%${hex,,}" out[2]+="%$hex" out[3]+="%${hex,,}"
    fi
  done
  PERCENT=("${out[@]}")
}

# The base64 of the numbers in BYTES (0 to 255), without padding, into BASE64.
base64_of_bytes() {
  local abc=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ i n=${#BYTES[@]} x
  BASE64=''
  for ((i = 0; i + 2 < n; i += 3)); do
    x=$(((BYTES[i] << 16) | (BYTES[i + 1] << 8) | BYTES[i + 2]))
    BASE64+=${abc:$((x >> 18)):1}${abc:$((x >> 12 & 63)):1}${abc:$((x >> 6 & 63)):1}${abc:$((x & 63)):1}
  done
  if ((n - i == 1)); then
    x=$((BYTES[i] << 16))
    BASE64+=${abc:$((x >> 18)):1}${abc:$((x >> 12 & 63)):1}
  elif ((n - i == 2)); then
    x=$(((BYTES[i] << 16) | (BYTES[i + 1] << 8)))
    BASE64+=${abc:$((x >> 18)):1}${abc:$((x >> 12 & 63)):1}${abc:$((x >> 6 & 63)):1}
  fi
}

# The parts of any base64 text holding $1 that only its bytes decide, at each offset (the text
# before it leaves 0, 1 or 2 bytes in its last group), standard and URL-safe.
base64_cores() {
  local shift b drop keep
  local -a value
  bytes_of "$1"
  value=("${BYTES[@]}")
  for shift in 0 1 2; do
    BYTES=()
    while ((${#BYTES[@]} < shift)); do BYTES+=(32); done
    BYTES+=("${value[@]}")
    base64_of_bytes
    drop=$(((shift * 8 + 5) / 6))
    keep=$(((shift + ${#1}) * 8 / 6 - drop))
    ((keep >= 4)) || continue
    b=${BASE64:drop:keep}
    printf '%s\n' "$b"
    b=${b//+/-}
    printf '%s\n' "${b//\//_}"
  done
}

# Every form of $1 that a tool could print: as is; percent-encoded (encodeURIComponent and
# RFC 3986, upper and lower case hex, `+` for a space); quoted for bash and for JSON (with Go's
# HTML escapes); inside base64, standard or URL-safe, at each of its three offsets.
secret_forms() {
  local v=$1 enc json bs=\\ dq=\"
  printf '%s\n' "$v"
  percent_forms "$v"
  for enc in "${PERCENT[@]}"; do
    printf '%s\n' "$enc" "${enc//%20/+}"
  done
  printf '%q\n' "$v"
  json=${v//"$bs"/"$bs$bs"}
  json=${json//"$dq"/"$bs$dq"}
  printf '%s\n' "$json"
  json=${json//'<'/'\u003c'}
  json=${json//'>'/'\u003e'}
  printf '%s\n' "${json//'&'/'\u0026'}"
  base64_cores "$v"
}

# MASKS: the forms of every secret read so far (the MASKED_KEYS of stdin, and the registry's
# `user:token` as a docker config holds it), longest first.
build_masks() {
  local v key
  local -a values=()
  for key in "${MASKED_KEYS[@]}"; do values+=("${SECRETS[$key]:-}"); done
  if [[ -n ${SECRETS[REGISTRY_USERNAME]:-} ]]; then
    values+=("${SECRETS[REGISTRY_USERNAME]}:${SECRETS[REGISTRY_TOKEN]:-}")
  fi
  MASKS=()
  mapfile -t MASKS < <(
    for v in "${values[@]}"; do
      if [[ -n $v ]]; then secret_forms "$v"; fi
    done | awk 'length($0) > 0 { print length($0) "\t" $0 }' | sort -rn | cut -f 2- | awk '!seen[$0]++'
  )
}

# MASKED: $1 with every form of every secret replaced.
mask() {
  local form
  MASKED=$1
  for form in ${MASKS[@]+"${MASKS[@]}"}; do
    MASKED=${MASKED//"$form"/"$MASK"}
  done
}

# A progress line: to this run's log and to the caller (fd 3), masked.
log() {
  local line
  printf -v line '[deploy %s] %s: %s' "$HOST_NAME" "$STEP" "$*"
  mask "$line"
  MASKED=${MASKED:0:OUTPUT_LINE_BYTES}
  printf '%s\n' "$MASKED"
  printf '%s\n' "$MASKED" >&3
}

# Lines of the failure report: to this run's log and to the caller (fd 4), masked.
report() {
  local line
  for line in "$@"; do
    mask "$line"
    MASKED=${MASKED:0:OUTPUT_LINE_BYTES}
    printf '%s\n' "$MASKED"
    printf '%s\n' "$MASKED" >&4
  done
}

# The last lines of this run's log (masked, control characters dropped, each cut to
# LOG_TAIL_LINE_BYTES, at most LOG_TAIL_BYTES in all) to the caller (fd 4).
report_log_tail() {
  local -a lines=() shown=()
  local i line bytes=0
  mapfile -t lines < <(tail -n "$LOG_TAIL_LINES" "$RUN_LOG.log" 2>/dev/null)
  for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
    mask "${lines[i]//$'\t'/ }"
    line=${MASKED//[[:cntrl:]]/}
    line="  ${line:0:LOG_TAIL_LINE_BYTES}"
    ((bytes + ${#line} + 1 <= LOG_TAIL_BYTES)) || break
    bytes=$((bytes + ${#line} + 1))
    shown=("$line" ${shown[@]+"${shown[@]}"})
  done
  ((${#shown[@]} > 0)) || return 0
  printf -- '--- the last %s lines of the log of this deploy on %s, %s:\n' "${#shown[@]}" "$HOST_NAME" "$RUN_LOG.log" >&4
  printf '%s\n' "${shown[@]}" >&4
  printf -- '---\n' >&4
}
