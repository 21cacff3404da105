/**
 * What Pulumi's command provider makes of a remote command's end, so tests can check exactly
 * the text that reaches Pulumi's log (and, under Pulumi Deployments, GitHub Actions).
 *
 * pulumi-command v1.2.1, provider/pkg/provider/remote/commandOutputs.go `run`: stdout and
 * stderr each go to their own buffer and, in arrival order, to one shared buffer and to the
 * log (one Pulumi log line per line, `logging: stdoutAndStderr`); when `session.Run` fails the
 * error is `fmt.Errorf("%w: running %q:\n%s", err, cmd, stdouterrbuf.String())`, where `err`
 * for a non-zero exit is golang.org/x/crypto/ssh's `ExitError`, whose text is
 * `Waitmsg.String()`: `Process exited with status <n>` (plus ` from signal <s>` and
 * `. Reason was: <msg>` when set).
 */

/** Go's `%q` of a string (strconv.Quote), for the characters a command line can hold. */
export function goQuote(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** The error text of a failed remote command, as the provider builds it. */
export function commandProviderError(
  create: string,
  exit: { code: number | null },
  output: string,
): string {
  // A command that ended without an exit status is ssh's ExitMissingError.
  const status =
    exit.code === null
      ? "wait: remote command exited without exit status or exit signal"
      : `Process exited with status ${exit.code}`;
  return `${status}: running ${goQuote(create)}:\n${output}`;
}
