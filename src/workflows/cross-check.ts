import type { GithubValueScope, GithubValueSource, GithubValueSpec } from "../config/catalog";
import type { Workflow } from "./model";
import { renderJob } from "./render";

/** Secrets every job has without anyone managing them. */
const BUILT_IN_SECRETS = new Set(["GITHUB_TOKEN"]);

/** One `secrets.X` or `vars.X` a job's expressions read. */
export interface ValueReference {
  readonly file: string;
  readonly job: string;
  /** The environment the job runs in, if any: it decides which environment values it sees. */
  readonly environment?: string;
  readonly kind: "secret" | "variable";
  readonly name: string;
}

/** Every `secrets.X` / `vars.X` in the expressions of each job (scripts hold none by rule). */
export function valueReferences(workflows: readonly Workflow[]): ValueReference[] {
  const refs: ValueReference[] = [];
  for (const workflow of workflows) {
    for (const { id, job } of workflow.jobs) {
      const seen = new Set<string>();
      for (const text of expressionsIn(renderJob(job))) {
        for (const m of text.matchAll(/\b(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
          const kind = m[1] === "secrets" ? "secret" : "variable";
          const name = m[2] ?? "";
          if (seen.has(`${kind}:${name}`)) continue;
          seen.add(`${kind}:${name}`);
          refs.push({
            file: workflow.file,
            job: id,
            ...(job.environment ? { environment: job.environment.name } : {}),
            kind,
            name,
          });
        }
      }
    }
  }
  return refs;
}

/** The texts of all expressions in a rendered job: each `${{ ... }}` and every `if`. */
function expressionsIn(value: unknown, key?: string): string[] {
  if (typeof value === "string") {
    if (key === "if") return [value];
    return [...value.matchAll(/\$\{\{(.*?)\}\}/g)].map((m) => m[1] ?? "");
  }
  if (Array.isArray(value)) return value.flatMap((v) => expressionsIn(v));
  if (value !== null && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => expressionsIn(v, k));
  }
  return [];
}

/**
 * One problem of the workflow plan: the config key a user would change to fix it (as a path
 * under `clicky-delivery:`), and what is wrong. `planWorkflows` writes it the way config
 * problems are written: `Pulumi.<stack>.yaml: clicky-delivery:<key path>: <message>`.
 */
export interface WorkflowProblem {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/** The config key that feeds a catalog value: its secret key, or its config path. */
function sourceKeyPath(source: GithubValueSource): PropertyKey[] {
  return source.kind === "secretKey" ? [source.key] : source.path.split(".");
}

/**
 * The secrets cross-check, both ways, one problem per finding naming both sides:
 * - every `secrets.X` / `vars.X` a job reads is a managed value it can see: a repository value,
 *   or a value of the environment the job runs in (`environments` maps each managed
 *   environment to the catalog scopes its stack fills in it);
 * - every managed secret is read by some job that can see it (an unused secret is a credential
 *   kept for nothing); an environment secret, by a job of every environment that holds it.
 * Variables are not held to the second rule: a variable grants nothing.
 *
 * Each problem's key path is the setting to change: the deploy targets for a job in an
 * unmanaged environment, the catalog value's config key for a value (`workflows` when the
 * value is in no catalog entry at all: the fix is then in src/config/catalog.ts).
 */
export function crossCheckValues(
  workflows: readonly Workflow[],
  catalog: readonly GithubValueSpec[],
  environments: ReadonlyMap<string, readonly GithubValueScope[]>,
): WorkflowProblem[] {
  const problems: WorkflowProblem[] = [];
  const refs = valueReferences(workflows);
  const names = [...environments.keys()];
  const scopesOf = (environment: string | undefined): readonly GithubValueScope[] => [
    "repository",
    ...(environment === undefined ? [] : (environments.get(environment) ?? [])),
  ];
  const has = (scopes: readonly GithubValueScope[], kind: ValueReference["kind"], name: string) =>
    catalog.some((v) => scopes.includes(v.scope) && v.kind === kind && v.name === name);
  const listOf = (scopes: readonly GithubValueScope[]) =>
    catalog
      .filter((v) => scopes.includes(v.scope))
      .map((v) => `${v.kind} ${v.name}`)
      .join(", ") || "none";

  for (const ref of refs) {
    const where = `${ref.file}: job "${ref.job}"`;
    if (ref.environment !== undefined && !environments.has(ref.environment)) {
      problems.push({
        path: ["workflows", "targets"],
        message: `${where} runs in environment "${ref.environment}", which no stack manages (managed: ${names.join(", ")})`,
      });
      continue;
    }
    if (ref.kind === "secret" && BUILT_IN_SECRETS.has(ref.name)) continue;
    if (!has(scopesOf(ref.environment), ref.kind, ref.name)) {
      const visible =
        ref.environment === undefined
          ? `repository values: ${listOf(["repository"])}; the job runs in no environment`
          : `repository values: ${listOf(["repository"])}; environment "${ref.environment}" values: ${listOf(environments.get(ref.environment) ?? [])}`;
      const entry = catalog.find((v) => v.kind === ref.kind && v.name === ref.name);
      problems.push({
        path: entry ? sourceKeyPath(entry.source) : ["workflows"],
        message: `${where} reads ${ref.kind === "secret" ? "secrets" : "vars"}.${ref.name}, which no managed resource provides to it (src/config/catalog.ts; ${visible})`,
      });
    }
  }

  for (const value of catalog.filter((v) => v.kind === "secret")) {
    const reads = refs.filter((r) => r.kind === value.kind && r.name === value.name);
    const label = `src/config/catalog.ts: ${value.scope} ${value.kind} ${value.name}`;
    const path = sourceKeyPath(value.source);
    if (value.scope === "repository") {
      if (reads.length === 0)
        problems.push({ path, message: `${label} is read by no workflow job` });
      continue;
    }
    const holders = names.filter((e) => environments.get(e)?.includes(value.scope));
    for (const environment of holders) {
      if (!reads.some((r) => r.environment === environment)) {
        problems.push({
          path,
          message: `${label} is read by no job of environment "${environment}"`,
        });
      }
    }
  }
  return problems;
}
