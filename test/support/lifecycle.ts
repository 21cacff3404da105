import { isDeepStrictEqual } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import type { MockRun, RecordedOptions, RecordedResource } from "../../src/synth/engine";
import { type RunProgramOptions, runProgram } from "./program";

/**
 * Successive `pulumi up` / `pulumi preview` runs of the real program under the SDK's mocks, with
 * a state store between runs that follows the engine's rules this program depends on. Mocks
 * record inputs and hide the engine; this layer puts back what the engine does across runs, so
 * a test can ask "what does the second, third and failed run do?".
 *
 * The rules, each from the engine or provider source it follows:
 *
 * - Diff (`pkg/resource/deploy/step_generator.go`): a registration with no state is a create;
 *   one whose inputs equal the state's is a same step; changed inputs are an update, or a
 *   replace when a changed key is one the provider replaces on (its `ForceNew` fields, below) or
 *   is listed in `replaceOnChanges`; a changed `replacementTrigger` replaces, and a null trigger
 *   on either side never does (`shouldTriggerReplace`); `ignoreChanges` keys are left out.
 *   The diff compares inputs, never outputs: a refresh changes outputs in state, not the diff.
 * - A same step keeps the state's outputs (`step.go` `SameStep.Apply`).
 * - A failed create is not recorded: the command provider returns a plain error, not a partial
 *   state (`pulumi-go-provider` v1.3.0 `infer/resource.go` `Create`; `pulumi-command` v1.2.1
 *   `remote/commandController.go`), so `step.go` `CreateStep.Apply` records nothing; a failed
 *   update keeps the old state.
 * - Replace is create-before-delete unless `deleteBeforeReplace` is set; the old resource is
 *   deleted after the new one exists (`step.go` `CreateStep.Apply` marks it pending delete).
 * - What a run stops registering is deleted after the program finishes, but only when no step
 *   failed (`deployment_executor.go`: a failed step cancels the run before `performPostSteps`);
 *   `retainOnDelete` and `deletedWith` skip the provider's delete (`step.go` `DeleteStep.Apply`);
 *   a delete that fails leaves the resource in state and fails the run.
 * - Explicit providers are resources (`pulumi:providers:*`): created, updated and deleted like
 *   any other, and each of those is a change for `--expect-no-changes`.
 * - Stack outputs: the SDK registers them once every output has resolved (`runtime/stack.js`
 *   `massage`); if one rejects, it registers `{}`. On a failed run the engine keeps the old
 *   outputs and overwrites only those registered (`step_executor.go`
 *   `executeRegisterResourceOutputs`, `finalizingStackOutputs && errored`); when the program
 *   itself throws, none are registered and the old ones stay (`SameStep.Apply`).
 */

/** One resource in state. Inputs and outputs are in wire form (secrets keep their wrapper). */
export interface StateEntry {
  readonly type: string;
  readonly name: string;
  readonly parent?: string;
  readonly custom: boolean;
  readonly id: string;
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly outputs: Readonly<Record<string, unknown>>;
  readonly options: RecordedOptions;
  /** The old half of a replace whose delete has not happened yet. */
  readonly pendingDelete?: boolean;
}

export interface StackState {
  readonly resources: readonly StateEntry[];
  readonly outputs: Readonly<Record<string, unknown>>;
}

export const EMPTY_STATE: StackState = { resources: [], outputs: {} };

export type Op = "same" | "create" | "update" | "replace" | "delete" | "read";

export interface Step {
  readonly op: Op;
  readonly type: string;
  readonly name: string;
  /** Inputs that differ from state (update/replace), `replacementTrigger` for a trigger. */
  readonly keys?: readonly string[];
  /** For deletes: whether the provider was asked (`deleted`) or not (`retained`, `deleted-with`). */
  readonly how?: "deleted" | "retained" | "deleted-with";
  readonly error?: string;
}

/** What the outside world does when the engine calls a provider. */
export interface World {
  /** An error message makes the create fail. */
  readonly create?: (r: RecordedResource) => string | undefined;
  readonly update?: (r: RecordedResource, old: StateEntry) => string | undefined;
  readonly delete?: (old: StateEntry) => string | undefined;
  /** Outputs the provider computes beside the inputs (e.g. a secret's `updatedAt`). */
  readonly outputs?: (r: RecordedResource, old: StateEntry | undefined) => Record<string, unknown>;
  /** Answers to invokes (`getRepositoryFile`, `getActionsEnvironmentSecrets`, ...). */
  readonly callResult?: RunProgramOptions["callResult"];
}

export interface LifecycleOptions extends Omit<RunProgramOptions, "stackOutputs" | "callResult"> {
  readonly state: StackState;
  readonly world?: World;
  /** `preview` plans only: no provider is called and the state is not written. */
  readonly operation: "up" | "preview";
}

export interface LifecycleRun {
  readonly steps: readonly Step[];
  /** Steps other than `same` and `read`: what `--expect-no-changes` counts. */
  readonly changes: readonly Step[];
  readonly failed: boolean;
  readonly errors: readonly string[];
  /** The state after the run (the input state, unchanged, after a preview). */
  readonly state: StackState;
  readonly run: MockRun<unknown>;
}

/**
 * Resources a provider replaces rather than updates when these inputs change (its `ForceNew`
 * fields, or `replaceOnChanges` in its schema). Sources: `pulumi-command` v1.2.1
 * `common/inputs.go` (`triggers`, shared by the local and the remote command) and
 * `remote/copy.go` (`triggers`); `terraform-provider-github` v6.13.0
 * `resource_github_branch.go`, `resource_github_repository_file.go`,
 * `resource_github_repository_pull_request.go`, `resource_github_actions_environment_secret.go`,
 * `resource_github_actions_secret.go`, `resource_github_repository_environment.go`.
 */
export const PROVIDER_REPLACE_KEYS: Readonly<Record<string, readonly string[]>> = {
  "command:remote:Command": ["triggers"],
  "command:remote:CopyToRemote": ["triggers"],
  "command:local:Command": ["triggers"],
  "github:index/branch:Branch": ["repository", "sourceBranch", "sourceSha"],
  "github:index/repositoryFile:RepositoryFile": ["repository", "file", "branch"],
  "github:index/repositoryPullRequest:RepositoryPullRequest": [
    "owner",
    "baseRepository",
    "headRef",
  ],
  "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret": ["environment", "secretName"],
  "github:index/actionsSecret:ActionsSecret": ["secretName"],
  "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable": [
    "environment",
    "variableName",
  ],
  "github:index/actionsVariable:ActionsVariable": ["variableName"],
  "github:index/repositoryEnvironment:RepositoryEnvironment": ["environment"],
};

const READ_TYPES = new Set(["pulumi:pulumi:StackReference"]);

const keyOf = (r: { type: string; name: string }) => `${r.type}::${r.name}`;
const stateKey = (r: StateEntry) => `${keyOf(r)}${r.pendingDelete ? "::pending-delete" : ""}`;

/** One `pulumi up` or `pulumi preview` against `state`. */
export async function lifecycleRun(opts: LifecycleOptions): Promise<LifecycleRun> {
  const { state, world = {}, operation } = opts;
  const apply = operation === "up";
  const live = state.resources.filter((r) => !r.pendingDelete);
  const old = new Map(live.map((r) => [keyOf(r), r]));
  const next = new Map(state.resources.map((r) => [stateKey(r), r]));
  const steps: Step[] = [];
  const errors: string[] = [];
  const seen = new Set<string>();

  const newResource = (r: RecordedResource) => {
    const key = keyOf(r);
    seen.add(key);
    const current = old.get(key);
    const step = planStep(r, current);
    steps.push(step);
    const fail = (error: string): never => {
      steps[steps.length - 1] = { ...step, error };
      errors.push(`${r.name}: ${error}`);
      throw new Error(error);
    };
    if (step.op === "read") return { id: r.name, state: r.inputs };
    if (step.op === "same" && current) return { id: current.id, state: { ...current.outputs } };
    const record = (id: string): { id: string; state: Record<string, unknown> } => {
      const outputs = { ...r.inputs, ...(world.outputs?.(r, current) ?? {}) };
      if (apply) {
        next.set(key, {
          type: r.type,
          name: r.name,
          ...(r.parent ? { parent: r.parent } : {}),
          custom: r.custom,
          id,
          inputs: r.inputs,
          outputs,
          options: r.options,
        });
      }
      return { id, state: outputs };
    };
    if (!apply || !r.custom) return record(current?.id ?? `${r.name}-id`);
    if (step.op === "create") {
      const error = world.create?.(r);
      if (error !== undefined) fail(error);
    } else if (step.op === "update" && current) {
      const error = world.update?.(r, current);
      if (error !== undefined) fail(error);
      return record(current.id);
    } else if (step.op === "replace" && current) {
      // The replaced resource's delete honours its own recorded `retainOnDelete`
      // (step.go `DeleteStep.Apply` reads `s.old.RetainOnDelete`, replacing or not).
      const remove = (old: StateEntry) =>
        old.options.retainOnDelete ? undefined : world.delete?.(old);
      if (r.options.deleteBeforeReplace) {
        const deleteError = remove(current);
        if (deleteError !== undefined) fail(`delete before replace: ${deleteError}`);
        next.delete(key);
        const error = world.create?.(r);
        if (error !== undefined) fail(error);
      } else {
        const error = world.create?.(r);
        if (error !== undefined) fail(error);
        const deleteError = remove(current);
        if (deleteError !== undefined) {
          const pending = { ...current, pendingDelete: true };
          next.set(stateKey(pending), pending);
          errors.push(`${r.name}: deleting the replaced resource: ${deleteError}`);
        }
      }
    }
    return record(`${r.name}-id`);
  };

  const run = await expectingFailedRegistrations(() =>
    runProgram({
      ...opts,
      stackOutputs: { [`organization/clicky-delivery/${opts.stack}`]: { ...state.outputs } },
      ...(world.callResult ? { callResult: world.callResult } : {}),
      newResource,
    }),
  );
  const programFailed = "error" in run;
  if (programFailed) errors.push(`program: ${errorText(run.error)}`);

  // Old halves of earlier replaces, then what this run no longer registers, newest first.
  const deletes = [
    ...state.resources.filter((r) => r.pendingDelete),
    ...live.filter((r) => !seen.has(keyOf(r))).reverse(),
  ];
  if (errors.length === 0) {
    const deleting = new Set(deletes.map((r) => r.name));
    for (const entry of deletes) {
      const how = entry.options.retainOnDelete
        ? "retained"
        : entry.options.deletedWith !== undefined && deleting.has(entry.options.deletedWith)
          ? "deleted-with"
          : "deleted";
      const error = apply && how === "deleted" && entry.custom ? world.delete?.(entry) : undefined;
      steps.push({
        op: "delete",
        type: entry.type,
        name: entry.name,
        how,
        ...(error !== undefined ? { error } : {}),
      });
      if (error !== undefined) errors.push(`${entry.name}: delete: ${error}`);
      else if (apply) next.delete(stateKey(entry));
    }
  }

  const failed = errors.length > 0;
  let outputs = state.outputs;
  if (apply && !programFailed) {
    const registered = await settle(run.result).catch(() => ({}));
    outputs = failed ? { ...state.outputs, ...registered } : registered;
  }
  return {
    steps,
    changes: steps.filter((s) => s.op !== "same" && s.op !== "read"),
    failed,
    errors,
    state: apply ? { resources: [...next.values()], outputs } : state,
    run,
  };
}

/** Several runs in a row, each starting from the state the previous one left. */
export async function lifecycleRuns<const T extends readonly Omit<LifecycleOptions, "state">[]>(
  first: StackState,
  runs: T,
): Promise<{ -readonly [K in keyof T]: LifecycleRun }> {
  const results: LifecycleRun[] = [];
  let state = first;
  for (const opts of runs) {
    const result = await lifecycleRun({ ...opts, state });
    results.push(result);
    state = result.state;
  }
  return results as { -readonly [K in keyof T]: LifecycleRun };
}

/**
 * A refresh: each resource's outputs replaced by what the world reports; inputs untouched, so
 * the program's next diff is unchanged (`step.go` `RefreshStep`). A resource the world no longer
 * has (`undefined`) leaves the state, as a provider's Read of a 404 does.
 */
export function refresh(
  state: StackState,
  read: (entry: StateEntry) => Record<string, unknown> | undefined | "unchanged",
): StackState {
  const resources: StateEntry[] = [];
  for (const entry of state.resources) {
    const live = read(entry);
    if (live === "unchanged") resources.push(entry);
    else if (live !== undefined)
      resources.push({ ...entry, outputs: { ...entry.outputs, ...live } });
  }
  return { ...state, resources };
}

function planStep(r: RecordedResource, old: StateEntry | undefined): Step {
  const base = { type: r.type, name: r.name };
  if (READ_TYPES.has(r.type)) return { ...base, op: "read" };
  if (old === undefined) return { ...base, op: "create" };
  const ignored = new Set(r.options.ignoreChanges);
  const names = new Set([...Object.keys(old.inputs), ...Object.keys(r.inputs)]);
  const keys = [...names].filter(
    (k) => !ignored.has(k) && !isDeepStrictEqual(old.inputs[k], r.inputs[k]),
  );
  const trigger = triggersReplace(r.options.replacementTrigger, old.options.replacementTrigger);
  if (keys.length === 0 && !trigger) return { ...base, op: "same" };
  const replaceKeys = new Set([
    ...(PROVIDER_REPLACE_KEYS[r.type] ?? []),
    ...r.options.replaceOnChanges,
  ]);
  const replace = trigger || keys.some((k) => replaceKeys.has(k));
  return {
    ...base,
    op: replace ? "replace" : "update",
    keys: trigger ? [...keys, "replacementTrigger"] : keys,
  };
}

/** `step_generator.go` `shouldTriggerReplace`: null on either side never replaces. */
function triggersReplace(next: unknown, previous: unknown): boolean {
  if (next === undefined || next === null || previous === undefined || previous === null) {
    return false;
  }
  return !isDeepStrictEqual(unwrapSecret(next), unwrapSecret(previous));
}

function unwrapSecret(value: unknown): unknown {
  if (value !== null && typeof value === "object" && "value" in value) {
    return (value as { value: unknown }).value;
  }
  return value;
}

/**
 * The program's stack outputs as the SDK registers them: every Output awaited, depth first
 * (`runtime/stack.js` `massage`). Rejects when one of them rejects.
 */
export async function settle(value: unknown): Promise<Record<string, unknown>> {
  return (await settleValue(value)) as Record<string, unknown>;
}

async function settleValue(value: unknown): Promise<unknown> {
  if (value instanceof Promise) return settleValue(await value);
  if (pulumi.Output.isInstance(value)) {
    const inner = (value as unknown as { promise(): Promise<unknown> }).promise();
    return settleValue(await inner);
  }
  if (pulumi.Resource.isInstance(value)) return settleValue(value.urn);
  if (Array.isArray(value)) return Promise.all(value.map(settleValue));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await settleValue(v);
    return out;
  }
  return value;
}

/**
 * Runs `fn` while the outputs of resources whose registration failed reject with nobody
 * listening, as they do in a real run (the language host reports the failure once); any other
 * unhandled rejection still reaches the listeners installed before (the test runner's).
 */
async function expectingFailedRegistrations<T>(fn: () => Promise<T>): Promise<T> {
  const saved = process.listeners("unhandledRejection");
  process.removeAllListeners("unhandledRejection");
  const listener = (reason: unknown, promise: Promise<unknown>) => {
    if (/failed to register new resource/.test(errorText(reason))) return;
    for (const l of saved) l.call(process, reason, promise);
  };
  process.on("unhandledRejection", listener);
  try {
    return await fn();
  } finally {
    // The rejections surface on later turns of the event loop.
    await new Promise((resolve) => setTimeout(resolve, 20));
    process.off("unhandledRejection", listener);
    for (const l of saved) process.on("unhandledRejection", l);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
