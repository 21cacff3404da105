import { z } from "zod";

/**
 * GitHub user logins: 1 to 39 letters, digits or single hyphens, never at either end.
 * Checked here so a typo fails in config rather than as a 404 in the middle of `pulumi up`.
 */
export const githubLogin = z
  .string()
  .regex(
    /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/,
    "expected a GitHub login: 1-39 letters, digits or single hyphens, not starting or ending with a hyphen",
  );

/** Team slugs as GitHub makes them: lowercase letters, digits, `-` and `_`. */
export const githubTeamSlug = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]{0,99}$/,
    "expected a team slug (lowercase letters, digits, '-' or '_'), e.g. release-managers",
  );

/** Repository names: letters, digits, `.`, `-`, `_`, at most 100 characters. */
export const githubRepositoryName = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,100}$/, "expected a repository name (letters, digits, '.', '-', '_')")
  .refine((name) => name !== "." && name !== "..", "'.' and '..' are not repository names");

/**
 * Why a branch or tag name pattern is not usable, or `undefined` when it is.
 *
 * GitHub matches deployment policies with fnmatch-style globs (`*`, `**`, `?`, `[...]`) on the
 * short name (`main`, `v1.2.3`), so the checks are git's ref-name rules minus the glob
 * characters, plus a hint for the common mistake of writing the full ref.
 *
 * @example refNamePatternProblem("refs/heads/main") // "write the short name ..."
 */
export function refNamePatternProblem(pattern: string): string | undefined {
  if (pattern.length === 0) return "must not be empty";
  if (/^refs\//.test(pattern)) {
    return `write the short name ("${pattern.replace(/^refs\/(heads|tags)\//, "")}"), not the full ref`;
  }
  if (/\s/.test(pattern) || hasControlCharacter(pattern))
    return "must not contain spaces or control characters";
  if (/[~^:\\]/.test(pattern)) return "must not contain '~', '^', ':' or '\\'";
  if (pattern.includes("..")) return "must not contain '..'";
  if (pattern.includes("@{")) return "must not contain '@{'";
  if (pattern.includes("//")) return "must not contain '//'";
  if (/^[/.-]/.test(pattern)) return "must not start with '/', '.' or '-'";
  if (/[/.]$/.test(pattern) || pattern.endsWith(".lock")) {
    return "must not end with '/', '.' or '.lock'";
  }
  if ((pattern.match(/\[/g) ?? []).length !== (pattern.match(/\]/g) ?? []).length) {
    return "has an unbalanced '[' or ']'";
  }
  return undefined;
}

/** A branch or tag name pattern, checked by {@link refNamePatternProblem}. */
export const refNamePattern = z.string().superRefine((pattern, ctx) => {
  const problem = refNamePatternProblem(pattern);
  if (problem !== undefined) {
    ctx.addIssue({ code: "custom", message: `"${pattern}" ${problem}` });
  }
});

/** A plain branch name (no glob characters), e.g. the default branch. */
export const branchName = refNamePattern.refine(
  (name) => !/[*?[\]]/.test(name),
  "expected a branch name, not a pattern",
);

/** An http(s) URL without a trailing slash, so `${url}/health` is always well formed. */
export const baseUrl = z
  .string()
  .regex(/^https?:\/\/[^\s/$.?#][^\s]*$/, "expected an http(s) URL, e.g. https://api.example.org")
  .refine((url) => !url.endsWith("/"), "drop the trailing '/'");

function hasControlCharacter(text: string): boolean {
  return [...text].some((ch) => {
    const code = ch.charCodeAt(0);
    return code < 0x20 || code === 0x7f;
  });
}
