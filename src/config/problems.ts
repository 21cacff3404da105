import { z } from "zod";
import { acceptsAbsence, unwrap, wrapped } from "./schema-walk";

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
 * What to write when a key is required and missing, registered on the key's schema:
 * `imageRepository.register(requiredHints, { hint: "the image ..., e.g. ghcr.io/..." })`.
 */
export const requiredHints = z.registry<{ readonly hint: string }>();

/** Finds the schema of a config path (for required keys and hints); `undefined` if unknown. */
export type SchemaAt = (path: readonly PropertyKey[]) => z.core.$ZodType | undefined;

/**
 * One line per zod issue, `<file>: <key path>: <what is wrong>`. Unknown keys get one line
 * each, naming the key and the keys that are allowed there, so a typo is obvious.
 *
 * A missing key, or one whose value is YAML null (`image:` with only comments under it), reads
 * "is required", never zod's "expected object, received null"; where the missing value is an
 * object, each of its required keys is named instead (`deploy.image.repository: is required:
 * <hint>`), since those are what the user has to write. A null where a key may be left out
 * says the key is empty. This needs `schemaAt`; without it a missing key is still "is required".
 * Parse with `reportInput: true` so issues carry their input; values are never quoted from it.
 * Values of secret keys are never quoted: zod's messages for them say only what was expected.
 */
export function formatIssues(
  file: string,
  namespace: string,
  issues: readonly z.core.$ZodIssue[],
  allowedKeysAt: (path: readonly PropertyKey[]) => readonly string[] | undefined,
  schemaAt?: SchemaAt,
): string[] {
  const lines: string[] = [];
  const line = (path: readonly PropertyKey[], text: string) =>
    `${file}: ${formatKeyPath(namespace, path)}: ${text}`;
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      const allowed = allowedKeysAt(issue.path);
      for (const key of issue.keys) {
        const hint = allowed ? ` (expected one of: ${allowed.join(", ")})` : "";
        lines.push(line([...issue.path, key], `unknown key${hint}`));
      }
      continue;
    }
    const absent = absentValue(issue);
    if (absent === "present") {
      lines.push(line(issue.path, describeIssue(issue)));
      continue;
    }
    const schema = schemaAt?.(issue.path);
    if (absent === null && schema !== undefined && acceptsAbsence(schema)) {
      lines.push(
        line(
          issue.path,
          "is empty (nothing but comments under it?); give it a value, or remove the key",
        ),
      );
      continue;
    }
    for (const [path, text] of requiredKeys(issue.path, schema)) lines.push(line(path, text));
  }
  return lines;
}

/**
 * `undefined` for a missing key, `null` for a key with nothing after it, `"present"` when the
 * issue is about a value that is there.
 */
function absentValue(issue: z.core.$ZodIssue): null | undefined | "present" {
  if (issue.code !== "invalid_type" && issue.code !== "invalid_value") return "present";
  if ("input" in issue) {
    return issue.input === null || issue.input === undefined ? issue.input : "present";
  }
  const received = / received (undefined|null)$/.exec(issue.message)?.[1];
  return received === "null" ? null : received === "undefined" ? undefined : "present";
}

/**
 * The lines for a required value that is not there: the key itself, with its hint when it has
 * one, or else each required key of the object it must be, recursively.
 */
function requiredKeys(
  path: readonly PropertyKey[],
  schema: z.core.$ZodType | undefined,
): [readonly PropertyKey[], string][] {
  if (schema === undefined) return [[path, "is required"]];
  const hint = hintOf(schema);
  if (hint !== undefined) return [[path, `is required: ${hint}`]];
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) {
    const required = Object.entries(inner.shape as Record<string, z.core.$ZodType>).filter(
      ([, child]) => !acceptsAbsence(child),
    );
    if (required.length > 0) {
      return required.flatMap(([key, child]) => requiredKeys([...path, key], child));
    }
  }
  return [[path, "is required"]];
}

function hintOf(schema: z.core.$ZodType): string | undefined {
  for (let current: z.core.$ZodType | undefined = schema; current; current = wrapped(current)) {
    const hint = requiredHints.get(current)?.hint;
    if (hint !== undefined) return hint;
  }
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  return issue.message.replace(/^Invalid input: /, "");
}
