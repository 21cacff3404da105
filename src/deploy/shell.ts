/**
 * Shell commands as data, after Kamal's command builders: a command is a list of tokens, built
 * by pure functions and joined by small combinators; `quote` is the only place that knows
 * shell quoting. Nothing here runs anything.
 *
 * A token is either a literal word (quoted when rendered, so any value is safe) or a raw
 * fragment of shell code (`raw`, `v`) that is written as is: variable references, operators,
 * redirections. Raw fragments are always written by this program, never taken from config.
 */

/** Shell code written as is. */
export interface Raw {
  readonly raw: string;
}

export type Token = string | Raw;
/** One command line, as tokens. */
export type Cmd = readonly Token[];

/** A raw shell fragment: `raw("2>/dev/null")`. */
export function raw(code: string): Raw {
  return { raw: code };
}

/** A double-quoted variable reference: `v("APP_DIR")` renders `"$APP_DIR"`. */
export function v(name: string): Raw {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a variable name: "${name}"`);
  return raw(`"$${name}"`);
}

/** All elements of a bash array, each one word: `"${NAME[@]}"`. */
export function all(name: string): Raw {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not an array name: "${name}"`);
  return raw(`"\${${name}[@]}"`);
}

/**
 * Quotes one word for bash. Words of only safe characters stay bare, so scripts read well;
 * anything else is single-quoted, with `'` written as `'\''`. The empty string is `''`.
 * Non-ASCII text is kept as is inside quotes (bash passes the bytes through).
 *
 * @example quote("a b") // "'a b'"
 * @example quote("it's") // "'it'\\''s'"
 */
export function quote(word: string): string {
  if (word === "") return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Renders one command: literal tokens quoted, raw tokens as written, joined by spaces. */
export function render(cmd: Cmd): string {
  return cmd.map((t) => (typeof t === "string" ? quote(t) : t.raw)).join(" ");
}

function join(operator: string, cmds: readonly Cmd[]): Cmd {
  const out: Token[] = [];
  cmds.forEach((cmd, i) => {
    if (i > 0) out.push(raw(operator));
    out.push(...cmd);
  });
  return out;
}

/** `a && b && c`: each runs only if the one before succeeded. */
export function combine(...cmds: readonly Cmd[]): Cmd {
  return join("&&", cmds);
}

/** `a; b; c`: each runs regardless. */
export function chain(...cmds: readonly Cmd[]): Cmd {
  return join(";", cmds);
}

/** `a | b | c`. */
export function pipe(...cmds: readonly Cmd[]): Cmd {
  return join("|", cmds);
}

/** `a || b`: b runs only when a fails. */
export function any(...cmds: readonly Cmd[]): Cmd {
  return join("||", cmds);
}

/** The command with its output discarded: `cmd >/dev/null 2>&1`. */
export function quiet(cmd: Cmd): Cmd {
  return [...cmd, raw(">/dev/null 2>&1")];
}

/** `$(cmd)` as one raw token, for use inside a double-quoted assignment. */
export function capture(cmd: Cmd): Raw {
  return raw(`"$(${render(cmd)})"`);
}

/** `NAME=value` as a bash assignment of a literal value. */
export function assign(name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a variable name: "${name}"`);
  return `${name}=${quote(value)}`;
}

/** `NAME=(a b c)` as a bash array of literal words. */
export function assignArray(name: string, words: readonly string[]): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a variable name: "${name}"`);
  return `${name}=(${words.map(quote).join(" ")})`;
}
