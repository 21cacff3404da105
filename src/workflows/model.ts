import type { ActionRef } from "./actions";
import type { Expression, Value } from "./expr";

/**
 * The typed model of a GitHub Actions workflow: readonly, camelCase, only the parts the
 * pipelines use. `render.ts` maps it to GitHub's keys; `builder.ts` checks the rules.
 */
export interface Workflow {
  /** File name under `.github/workflows/`, e.g. `pr.yml`. */
  readonly file: string;
  readonly name: string;
  /** The module that defines it, named in the file's header. */
  readonly source: string;
  readonly on: Triggers;
  /** Default permissions of every job; `{}` grants nothing (jobs then declare their own). */
  readonly permissions: Permissions;
  readonly concurrency?: Concurrency;
  /** Jobs in the order they were added; ids are unique. */
  readonly jobs: readonly JobEntry[];
}

export interface JobEntry {
  readonly id: string;
  readonly job: Job;
}

export interface Triggers {
  readonly pullRequest?: { readonly branches: readonly string[] };
  readonly push?: {
    readonly branches?: readonly string[];
    readonly tags?: readonly string[];
    readonly paths?: readonly string[];
  };
  readonly workflowDispatch?: { readonly inputs?: Readonly<Record<string, DispatchInput>> };
  /** Cron expressions (UTC). */
  readonly schedule?: readonly string[];
}

export type DispatchInput =
  | {
      readonly type: "string";
      readonly description: string;
      readonly required: boolean;
      readonly default?: string;
    }
  | {
      readonly type: "boolean";
      readonly description: string;
      readonly required: boolean;
      readonly default?: boolean;
    }
  | {
      readonly type: "choice";
      readonly description: string;
      readonly required: boolean;
      readonly options: readonly string[];
      readonly default?: string;
    };

export type PermissionScope =
  | "actions"
  | "checks"
  | "contents"
  | "deployments"
  | "id-token"
  | "issues"
  | "packages"
  | "pull-requests"
  | "statuses";
export type PermissionLevel = "read" | "write";
/** Scopes not listed get no access; `{}` is no access at all. */
export type Permissions = Readonly<Partial<Record<PermissionScope, PermissionLevel>>>;

export interface Concurrency {
  readonly group: Value;
  readonly cancelInProgress: boolean;
}

export interface Job {
  /** Display name, and so the check's context: required checks are computed from it. */
  readonly name: string;
  readonly runsOn: string;
  readonly permissions: Permissions;
  readonly timeoutMinutes: number;
  readonly needs?: readonly string[];
  readonly if?: Expression;
  readonly environment?: { readonly name: string; readonly url?: Value };
  readonly concurrency?: Concurrency;
  readonly strategy?: Strategy;
  readonly services?: Readonly<Record<string, Service>>;
  readonly env?: Readonly<Record<string, Value>>;
  readonly outputs?: Readonly<Record<string, Value>>;
  readonly steps: readonly Step[];
}

export interface Strategy {
  /** One list of values per key; every combination is a job (no include/exclude). */
  readonly matrix: Readonly<Record<string, readonly (string | number)[]>>;
  readonly failFast?: boolean;
}

export interface Service {
  /** Image with an explicit tag, e.g. `postgres:16`. */
  readonly image: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly ports?: readonly string[];
  /** Options for `docker create`, e.g. a health check. */
  readonly options?: readonly string[];
}

interface StepBase {
  readonly name: string;
  readonly id?: string;
  readonly if?: Expression;
  readonly env?: Readonly<Record<string, Value>>;
}

/** A shell step. Its script is plain text: values reach it through `env`, never `${{ }}`. */
export interface RunStep extends StepBase {
  readonly run: string;
  readonly workingDirectory?: string;
}

export interface UsesStep extends StepBase {
  readonly uses: ActionRef;
  readonly with?: Readonly<Record<string, Value>>;
}

export type Step = RunStep | UsesStep;

export function isRunStep(step: Step): step is RunStep {
  return "run" in step;
}
