import type { z } from "zod";

/**
 * Turns a config path into the key path a user finds in `Pulumi.<stack>.yaml`,
 * e.g. `["environment", "approval", "reviewers", "users", 0]` becomes
 * `clicky-delivery:environment.approval.reviewers.users[0]`.
 */
export function formatKeyPath(namespace: string, path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? `${namespace}:` : `${namespace}:${out}`;
}

/**
 * One line per zod issue, `<file>: <key path>: <what is wrong>`. Unknown keys get one line
 * each, naming the key and the keys that are allowed there, so a typo is obvious.
 * Values of secret keys are never quoted: zod's messages for them say only what was expected.
 */
export function formatIssues(
  file: string,
  namespace: string,
  issues: readonly z.core.$ZodIssue[],
  allowedKeysAt: (path: readonly PropertyKey[]) => readonly string[] | undefined,
): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      const allowed = allowedKeysAt(issue.path);
      for (const key of issue.keys) {
        const hint = allowed ? ` (expected one of: ${allowed.join(", ")})` : "";
        lines.push(
          `${file}: ${formatKeyPath(namespace, [...issue.path, key])}: unknown key${hint}`,
        );
      }
      continue;
    }
    lines.push(`${file}: ${formatKeyPath(namespace, issue.path)}: ${describeIssue(issue)}`);
  }
  return lines;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  return issue.message
    .replace(/^Invalid input: /, "")
    .replace(/received undefined$/, "but the key is missing");
}
