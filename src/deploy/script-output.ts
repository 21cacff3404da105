import { remoteConstant } from "./script";

/**
 * What the deploy script prints, and the one place that prints it. Everything the script's
 * caller sees ends up in Pulumi's log, and through Pulumi Deployments in GitHub Actions logs,
 * where the engine masks a secret only verbatim (not percent-encoded in a URL, not inside
 * base64). So the script keeps three streams apart (`remote/main.sh`, `detach`):
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
export const LOG_TAIL_LINES = Number(remoteConstant("LOG_TAIL_LINES"));
/** Bytes of one log line in a failure report (after masking); the rest is cut. */
export const LOG_TAIL_LINE_BYTES = Number(remoteConstant("LOG_TAIL_LINE_BYTES"));
/** Bytes of the whole log excerpt in a failure report: the oldest lines go first. */
export const LOG_TAIL_BYTES = Number(remoteConstant("LOG_TAIL_BYTES"));
/** Bytes of one progress or report line (after masking). */
export const OUTPUT_LINE_BYTES = Number(remoteConstant("OUTPUT_LINE_BYTES"));
/** What a secret is replaced by. */
export const MASK = remoteConstant("MASK");

/*
 * The bash that does it is `remote/output.sh`: `build_masks` computes the forms of each
 * secret the settings' MASKED_KEYS name (and of `<registry user>:<token>`): as is;
 * percent-encoded, as encodeURIComponent and as RFC 3986 do it, in upper and lower case hex,
 * and with `+` for a space; quoted for bash (`printf %q`) and for JSON (with Go's `\u003c`-style
 * HTML escapes); inside base64, standard or URL-safe, at each of the three byte offsets it can
 * start at. `mask` replaces them, longest first; `log`, `report` and `report_log_tail` mask,
 * then cut, then print.
 */
