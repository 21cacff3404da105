// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are bash, where ${...} is bash syntax
/**
 * What the deploy script prints, and the one place that prints it. Everything the script's
 * caller sees ends up in Pulumi's log, and through Pulumi Deployments in GitHub Actions logs,
 * where the engine masks a secret only verbatim (not percent-encoded in a URL, not inside
 * base64). So the script keeps three streams apart (see `script.ts`, `runLog`):
 *
 * - the **log** on the host (`<appDir>/logs/<time>-<pid>.log`, stdout and stderr of the script
 *   and of every command it runs): the whole detail, for whoever debugs on the host;
 * - **progress** (fd 3, the command's stdout): only the lines `log` writes, a few per step;
 * - the **report** (fd 4, the command's stderr): on failure, the last lines of the log and
 *   the step, reason, serving version and backup.
 *
 * Nothing reaches fd 3 or 4 but through `log` and `report`, which mask every secret first. The
 * first defence is that no command prints a secret (the script never echoes one, never traces,
 * never prints an env file or a compose config); the masking is the second: it replaces each
 * value read from stdin, and the forms a tool could print it in, with `***`.
 */

/** Lines of the host's log a failure report shows. */
export const LOG_TAIL_LINES = 40;
/** Bytes of one log line in a failure report (after masking); the rest is cut. */
export const LOG_TAIL_LINE_BYTES = 160;
/** Bytes of the whole log excerpt in a failure report: the oldest lines go first. */
export const LOG_TAIL_BYTES = 4096;
/** Bytes of one progress or report line (after masking). */
export const OUTPUT_LINE_BYTES = 600;
/** What a secret is replaced by. */
export const MASK = "***";

/** The stdin values the script masks. The registry user alone is an account name, not a credential. */
const MASKED_KEYS = ["POSTGRES_PASSWORD", "DATABASE_URL", "JWT_SECRET_KEY", "REGISTRY_TOKEN"];

function fn(name: string, body: readonly string[]): string[] {
  return [`${name}() {`, ...body.map((line) => (line === "" ? "" : `  ${line}`)), "}", ""];
}

/**
 * Bash functions that compute the forms of the secrets and mask text with them: `build_masks`
 * (after stdin is read; again when reporting, for what was read before a failure) and `mask`
 * (sets MASKED). The forms of each secret value, and of `<registry user>:<token>`:
 * - as is;
 * - percent-encoded, as encodeURIComponent and as RFC 3986 do it, in upper and lower case hex,
 *   and with `+` for a space (a DATABASE_URL, a URL in an error message, a form body);
 * - quoted for bash (`printf %q`) and for JSON (`\\`, `\"`, and Go's `\u003c`-style HTML escapes);
 * - inside base64, standard or URL-safe, at each of the three byte offsets it can start at
 *   (so also inside a longer encoded text, like `auth` of a docker config: base64 of
 *   `user:token`): the characters that only the secret's bytes determine.
 * Longest first, so a form inside a longer one does not leave the rest of it behind.
 */
export function maskFunctions(): string[] {
  const values = MASKED_KEYS.map((k) => `"\${${k}:-}"`).join(" ");
  return [
    "# Percent-encodes $1: $2 js (as encodeURIComponent) or rfc (RFC 3986), $3 upper|lower hex.",
    ...fn("percent_encode", [
      "local hex i byte keep out=''",
      "hex=\"$(printf '%s' \"$1\" | od -An -v -tx1 | tr -d ' \\n')\"",
      "for ((i = 0; i < ${#hex}; i += 2)); do",
      "  byte=${hex:i:2}",
      "  case $byte in",
      "    3[0-9] | 4[1-9a-f] | 5[0-9a] | 6[1-9a-f] | 7[0-9a] | 2d | 2e | 5f | 7e) keep=1 ;;",
      "    21 | 27 | 28 | 29 | 2a) if [[ $2 == js ]]; then keep=1; else keep=0; fi ;;",
      "    *) keep=0 ;;",
      "  esac",
      "  if ((keep)); then",
      "    printf -v byte '%b' \"\\\\x$byte\"",
      "    out+=$byte",
      "  elif [[ $3 == upper ]]; then",
      '    out+="%${byte^^}"',
      "  else",
      '    out+="%$byte"',
      "  fi",
      "done",
      "printf '%s\\n' \"$out\"",
    ]),
    "# The parts of any base64 text holding $1 that only its bytes decide, at each offset.",
    ...fn("base64_cores", [
      "local shift b drop keep",
      "for shift in 0 1 2; do",
      "  b=\"$(printf '%*s%s' \"$shift\" '' \"$1\" | base64 | tr -d '\\n=')\"",
      "  drop=$(((shift * 8 + 5) / 6))",
      "  keep=$(((shift + ${#1}) * 8 / 6 - drop))",
      "  ((keep >= 4)) || continue",
      "  b=${b:drop:keep}",
      "  printf '%s\\n' \"$b\"",
      "  b=${b//+/-}",
      "  printf '%s\\n' \"${b//\\//_}\"",
      "done",
    ]),
    "# Every form of $1 that a tool could print (see src/deploy/script-output.ts).",
    ...fn("secret_forms", [
      'local v=$1 enc style hexcase json bs=\\\\ dq=\\"',
      "printf '%s\\n' \"$v\"",
      "for style in js rfc; do",
      "  for hexcase in upper lower; do",
      '    enc="$(percent_encode "$v" "$style" "$hexcase")"',
      '    printf \'%s\\n\' "$enc" "${enc//%20/+}"',
      "  done",
      "done",
      "printf '%q\\n' \"$v\"",
      'json=${v//"$bs"/"$bs$bs"}',
      'json=${json//"$dq"/"$bs$dq"}',
      "printf '%s\\n' \"$json\"",
      "json=${json//'<'/'\\u003c'}",
      "json=${json//'>'/'\\u003e'}",
      "printf '%s\\n' \"${json//'&'/'\\u0026'}\"",
      'base64_cores "$v"',
    ]),
    "# MASKS: the forms of every secret read so far, longest first.",
    ...fn("build_masks", [
      "local v",
      "MASKS=()",
      "mapfile -t MASKS < <(",
      `  for v in ${values} "\${REGISTRY_USERNAME:+\${REGISTRY_USERNAME}:\${REGISTRY_TOKEN:-}}"; do`,
      '    if [[ -n $v ]]; then secret_forms "$v"; fi',
      "  done | awk 'length($0) > 0 { print length($0) \"\\t\" $0 }' | sort -rn | cut -f 2- | awk '!seen[$0]++'",
      ")",
    ]),
    "# MASKED: $1 with every form of every secret replaced.",
    ...fn("mask", [
      "local form",
      "MASKED=$1",
      'for form in ${MASKS[@]+"${MASKS[@]}"}; do',
      `  MASKED=\${MASKED//"$form"/"${MASK}"}`,
      "done",
    ]),
  ];
}

/**
 * Bash functions that print: `log` (a progress line: to the host's log and to fd 3),
 * `report` (report lines: to the host's log and to fd 4) and `report_log_tail` (the last
 * lines of the host's log, to fd 4 only). Each masks, then cuts.
 */
export function outputFunctions(): string[] {
  return [
    "# A progress line: to this run's log and to the caller (fd 3), masked.",
    ...fn("log", [
      "local line",
      'printf -v line \'[deploy %s] %s: %s\' "$HOST_NAME" "$STEP" "$*"',
      'mask "$line"',
      `MASKED=\${MASKED:0:${OUTPUT_LINE_BYTES}}`,
      "printf '%s\\n' \"$MASKED\"",
      "printf '%s\\n' \"$MASKED\" >&3",
    ]),
    "# Lines of the failure report: to this run's log and to the caller (fd 4), masked.",
    ...fn("report", [
      "local line",
      'for line in "$@"; do',
      '  mask "$line"',
      `  MASKED=\${MASKED:0:${OUTPUT_LINE_BYTES}}`,
      "  printf '%s\\n' \"$MASKED\"",
      "  printf '%s\\n' \"$MASKED\" >&4",
      "done",
    ]),
    `# The last lines of this run's log (masked, control characters dropped, each cut to`,
    `# ${LOG_TAIL_LINE_BYTES} bytes, at most ${LOG_TAIL_BYTES} bytes in all) to the caller (fd 4).`,
    ...fn("report_log_tail", [
      "local -a lines=() shown=()",
      "local i line bytes=0",
      `mapfile -t lines < <(tail -n ${LOG_TAIL_LINES} "$RUN_LOG.log" 2>/dev/null)`,
      "for ((i = ${#lines[@]} - 1; i >= 0; i--)); do",
      "  mask \"${lines[i]//$'\\t'/ }\"",
      "  line=${MASKED//[[:cntrl:]]/}",
      `  line="  \${line:0:${LOG_TAIL_LINE_BYTES}}"`,
      `  ((bytes + \${#line} + 1 <= ${LOG_TAIL_BYTES})) || break`,
      "  bytes=$((bytes + ${#line} + 1))",
      '  shown=("$line" ${shown[@]+"${shown[@]}"})',
      "done",
      "((${#shown[@]} > 0)) || return 0",
      'printf -- \'--- the last %s lines of the log of this deploy on %s, %s:\\n\' "${#shown[@]}" "$HOST_NAME" "$RUN_LOG.log" >&4',
      "printf '%s\\n' \"${shown[@]}\" >&4",
      "printf -- '---\\n' >&4",
    ]),
  ];
}
