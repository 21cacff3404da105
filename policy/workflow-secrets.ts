import { parse } from "yaml";
import { list, record } from "./resources";

/** Which secrets one job of a workflow file can read, and where it runs. */
export interface JobSecretReads {
  /** The job's id under `jobs:`. */
  readonly job: string;
  /** `environment` (a string, or `environment.name`) as written; `undefined` when none. */
  readonly environment: string | undefined;
  /** Names read through `secrets.NAME` or `secrets['NAME']`, upper case, sorted. */
  readonly secrets: readonly string[];
  /** Why the job can read every secret, when it can: `secrets: inherit` or the bare context. */
  readonly readsAll?: string;
}

/** A `${{ ... }}` expression; its body is group 1. */
const EXPRESSION = /\$\{\{([\s\S]*?)\}\}/g;

/**
 * A reference to the `secrets` context: `secrets.NAME`, `secrets['NAME']`, or the context itself
 * (`toJSON(secrets)`, `secrets.*`, `secrets[some_expression]`), which reads every secret.
 * Contexts are case-insensitive in GitHub's expression syntax.
 */
const SECRETS_REFERENCE =
  /(?<![\w.$-])secrets\b(?:\s*\.\s*([A-Za-z_][A-Za-z0-9_]*|\*)|\s*\[\s*'([^']*)'\s*\])?/gi;

/**
 * The secrets each job of a workflow file reads, from every expression it holds (`${{ }}` in
 * any value, and whole `if:` conditions, which GitHub evaluates without `${{ }}`), the
 * workflow-level `env` (evaluated for every job), and `secrets: inherit` of a job that calls a
 * reusable workflow (which passes every secret the caller can read).
 *
 * Throws the YAML parser's error when the file is not YAML.
 *
 * @example jobSecretReads("jobs:\n  drift:\n    environment: drift\n    steps:\n      - run: x\n        env: { T: '${{ secrets.PULUMI_DRIFT_TOKEN }}' }\n")
 *   // [{ job: "drift", environment: "drift", secrets: ["PULUMI_DRIFT_TOKEN"] }]
 */
export function jobSecretReads(content: string): JobSecretReads[] {
  const workflow = record(parse(content)) ?? {};
  const shared = secretReferences(expressionsIn(workflow.env));
  return Object.entries(record(workflow.jobs) ?? {}).map(([job, value]) => {
    const body = record(value) ?? {};
    const own = secretReferences(expressionsIn(body));
    const names = [...new Set([...shared.names, ...own.names])].sort();
    const readsAll =
      body.secrets === "inherit" ? "secrets: inherit" : (own.readsAll ?? shared.readsAll);
    return {
      job,
      environment: environmentName(body.environment),
      secrets: names,
      ...(readsAll === undefined ? {} : { readsAll }),
    };
  });
}

function environmentName(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  const name = record(value)?.name;
  return typeof name === "string" ? name : undefined;
}

/** Every expression body in a YAML value; `key` is the mapping key the value sits under. */
function expressionsIn(value: unknown, key?: string): string[] {
  if (typeof value === "string") {
    const found = [...value.matchAll(EXPRESSION)].map((m) => m[1] ?? "");
    return key === "if" && found.length === 0 ? [value] : found;
  }
  if (Array.isArray(value)) return list(value).flatMap((v) => expressionsIn(v));
  const object = record(value);
  if (object) return Object.entries(object).flatMap(([k, v]) => expressionsIn(v, k));
  return [];
}

function secretReferences(expressions: readonly string[]): {
  names: string[];
  readsAll?: string;
} {
  const names: string[] = [];
  let readsAll: string | undefined;
  for (const expression of expressions) {
    for (const match of expression.matchAll(SECRETS_REFERENCE)) {
      const name = match[1] ?? match[2];
      if (name === undefined || name === "*") {
        readsAll ??= `the whole secrets context (\${{${expression}}})`;
      } else {
        names.push(name.toUpperCase());
      }
    }
  }
  return readsAll === undefined ? { names } : { names, readsAll };
}
