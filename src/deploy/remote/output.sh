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

# Percent-encodes $1: $2 js (as encodeURIComponent) or rfc (RFC 3986), $3 upper|lower hex.
percent_encode() {
  local hex i byte keep out=''
  hex="$(printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n')"
  for ((i = 0; i < ${#hex}; i += 2)); do
    byte=${hex:i:2}
    case $byte in
      3[0-9] | 4[1-9a-f] | 5[0-9a] | 6[1-9a-f] | 7[0-9a] | 2d | 2e | 5f | 7e) keep=1 ;;
      21 | 27 | 28 | 29 | 2a) if [[ $2 == js ]]; then keep=1; else keep=0; fi ;;
      *) keep=0 ;;
    esac
    if ((keep)); then
      printf -v byte '%b' "\\x$byte"
      out+=$byte
    elif [[ $3 == upper ]]; then
      out+="%${byte^^}"
    else
      out+="%$byte"
    fi
  done
  printf '%s\n' "$out"
}

# The parts of any base64 text holding $1 that only its bytes decide, at each offset.
base64_cores() {
  local shift b drop keep
  for shift in 0 1 2; do
    b="$(printf '%*s%s' "$shift" '' "$1" | base64 | tr -d '\n=')"
    drop=$(((shift * 8 + 5) / 6))
    keep=$(((shift + ${#1}) * 8 / 6 - drop))
    ((keep >= 4)) || continue
    b=${b:drop:keep}
    printf '%s\n' "$b"
    b=${b//+/-}
    printf '%s\n' "${b//\//_}"
  done
}

# Every form of $1 that a tool could print: as is; percent-encoded (encodeURIComponent and
# RFC 3986, upper and lower case hex, `+` for a space); quoted for bash and for JSON (with Go's
# HTML escapes); inside base64, standard or URL-safe, at each of its three offsets.
secret_forms() {
  local v=$1 enc style hexcase json bs=\\ dq=\"
  printf '%s\n' "$v"
  for style in js rfc; do
    for hexcase in upper lower; do
      enc="$(percent_encode "$v" "$style" "$hexcase")"
      printf '%s\n' "$enc" "${enc//%20/+}"
    done
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
