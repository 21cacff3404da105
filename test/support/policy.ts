import type {
  PolicyResource,
  PolicyResourceOptions,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import { unknownCheckingProxy } from "@pulumi/policy";
import { isMap, parseDocument } from "yaml";
import { policies } from "../../policy/policies";
import type { ResourceView } from "../../policy/resources";
import { PROJECT, secretKeySpecs } from "../../src/config/schema";
import type { MockRun } from "../../src/synth/engine";
import { reveal } from "../../src/synth/wire";
import { committedDeploy, runProgram } from "./program";

export type Policy = ResourceValidationPolicy | StackValidationPolicy;

/** One reported violation, with the policy that reported it. */
export interface Violation {
  readonly policy: string;
  readonly message: string;
  /** The resource a stack policy named, when it named one. */
  readonly urn?: string;
}

/** A value for every secret key, so `up` runs register every secret. */
export const UP_SECRETS: Readonly<Record<string, string>> = Object.fromEntries(
  secretKeySpecs.filter((spec) => !spec.names).map((spec) => [spec.key, `${spec.key}-policy-test`]),
);

/**
 * A run's registrations in the shape the engine gives policies: type, name, URN and props,
 * secrets revealed (the policy SDK unwraps them too) and unknowns left as the SDK's sentinels.
 * The URN carries the stack and project as the engine's does; its type has no parent chain,
 * which no policy reads.
 */
export function policyResources(run: MockRun<unknown>, stack: string): ResourceView[] {
  if (run.error !== undefined) throw new Error(`the program failed: ${String(run.error)}`);
  return run.resources.map((r) => ({
    type: r.type,
    name: r.name,
    urn: `urn:pulumi:${stack}::${PROJECT}::${r.type}::${r.name}`,
    props: reveal(r.inputs) as Record<string, unknown>,
  }));
}

/** The committed staging stack, as synth registers it (it owns the workflow files). */
export async function stagingSynth(): Promise<ResourceView[]> {
  return policyResources(await runProgram({ stack: "staging", mode: "synth" }), "staging");
}

/** The committed production stack, as synth registers it: its placeholder host key unpinned. */
export async function productionSynth(): Promise<ResourceView[]> {
  return policyResources(await runProgram({ stack: "production", mode: "synth" }), "production");
}

/**
 * The committed production stack as `pulumi up` registers it, every secret set and every host
 * pinned (the committed file's key is a placeholder), with optional config overrides.
 */
export async function productionUp(
  overrides: Readonly<Record<string, unknown>> = {},
): Promise<ResourceView[]> {
  const run = await runProgram({
    stack: "production",
    mode: "up",
    secrets: UP_SECRETS,
    overrides: { ...committedDeploy("production"), ...overrides },
  });
  return policyResources(run, "production");
}

const OPTIONS: PolicyResourceOptions = {
  protect: false,
  ignoreChanges: [],
  aliases: [],
  customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
  additionalSecretOutputs: [],
};

class NotApplicable extends Error {}

function notApplicable(reason?: string): never {
  throw new NotApplicable(reason);
}

/**
 * Runs policies as the engine's analyzer does: each resource policy on every resource, each
 * stack policy once over all of them, props behind the SDK's unknown-checking proxy, each
 * policy's config from `config[policy name]`. A policy that reads a value unknown at preview
 * throws here (the engine would quietly downgrade it to advisory).
 */
export async function runPolicies(
  resources: readonly ResourceView[],
  opts: {
    readonly only?: readonly Policy[];
    readonly config?: Readonly<Record<string, Record<string, unknown>>>;
  } = {},
): Promise<Violation[]> {
  const violations: Violation[] = [];
  for (const policy of opts.only ?? policies) {
    const getConfig = <T extends object>() => (opts.config?.[policy.name] ?? {}) as T;
    const report = (message: string, urn?: string) =>
      violations.push({ policy: policy.name, message, ...(urn ? { urn } : {}) });
    try {
      if ("validateStack" in policy) {
        const args: StackValidationArgs = {
          resources: resources.map(asPolicyResource),
          stackTags: new Map(),
          getConfig,
          notApplicable,
        };
        await policy.validateStack(args, report);
        continue;
      }
      const validations = [policy.validateResource ?? []].flat();
      for (const r of resources) {
        const props = unknownCheckingProxy(r.props);
        const args: ResourceValidationArgs = {
          type: r.type,
          name: r.name,
          urn: r.urn,
          props,
          opts: OPTIONS,
          stackTags: new Map(),
          isType: () => false,
          asType: () => undefined,
          getConfig,
          notApplicable,
        };
        for (const validate of validations) await validate(args, report);
      }
    } catch (err) {
      if (err instanceof NotApplicable) continue;
      throw new Error(`policy ${policy.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return violations;
}

function asPolicyResource(r: ResourceView): PolicyResource {
  return {
    type: r.type,
    name: r.name,
    urn: r.urn,
    props: unknownCheckingProxy(r.props),
    opts: OPTIONS,
    dependencies: [],
    propertyDependencies: {},
    isType: () => false,
    asType: () => undefined,
  };
}

/** The one resource of this type and name, failing loudly when there is none or several. */
export function find(resources: readonly ResourceView[], type: string, name: string): ResourceView {
  const found = resources.filter((r) => r.type === type && r.name === name);
  if (found.length !== 1) {
    throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
  }
  return found[0] as ResourceView;
}

/** A copy of the resources with one resource's props changed. */
export function withProps(
  resources: readonly ResourceView[],
  target: ResourceView,
  change: (props: Record<string, unknown>) => Record<string, unknown>,
): ResourceView[] {
  return resources.map((r) =>
    r === target ? { ...r, props: change(structuredClone(r.props)) } : r,
  );
}

/** A workflow file's content with one job changed; comments (the generated header) are kept. */
export function withJob(
  content: string,
  job: string,
  change: (job: Record<string, unknown>) => Record<string, unknown>,
): string {
  const doc = parseDocument(content);
  const body = doc.getIn(["jobs", job]);
  if (!isMap(body)) throw new Error(`no job ${job} in the workflow`);
  doc.setIn(["jobs", job], doc.createNode(change(body.toJSON() as Record<string, unknown>)));
  return doc.toString({ lineWidth: 0 });
}
