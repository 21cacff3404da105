/**
 * Shell quoting, in one place: `quote` for one word, and the two writers of the deploy
 * script's settings preamble (`./settings.ts`). Config values reach a shell only through these.
 */

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
