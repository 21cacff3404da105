import { RESOURCE_TYPES } from "../src/synth/resource-types";

/** The resource types the pack checks, as the engine names them (one table with synth's). */
export const TYPES = {
  environment: RESOURCE_TYPES.environment,
  deploymentPolicy: RESOURCE_TYPES.deploymentPolicy,
  repositorySecret: RESOURCE_TYPES.repositorySecret,
  environmentSecret: RESOURCE_TYPES.environmentSecret,
  remoteCommand: RESOURCE_TYPES.remoteCommand,
  copyToRemote: RESOURCE_TYPES.copyToRemote,
  deploymentSettings: RESOURCE_TYPES.deploymentSettings,
  repositoryFile: RESOURCE_TYPES.repositoryFile,
} as const;

/** What a policy reads of a resource; the engine's arguments have more. */
export interface ResourceView {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly props: Record<string, unknown>;
}

/**
 * How violation messages name a resource: its type and name, as `pulumi preview` lists it.
 *
 * @example describeResource({ type: "github:index/actionsSecret:ActionsSecret", name: "repository-expo-token" })
 *   // 'github:index/actionsSecret:ActionsSecret "repository-expo-token"'
 */
export function describeResource(r: Pick<ResourceView, "type" | "name">): string {
  return `${r.type} "${r.name}"`;
}

/**
 * The stack a resource belongs to, from its URN (`urn:pulumi:<stack>::<project>::<type>::<name>`).
 *
 * @example stackOfUrn("urn:pulumi:production::clicky-delivery::command:remote:Command::deploy-prod-1-run") // "production"
 */
export function stackOfUrn(urn: string): string {
  const match = /^urn:pulumi:([^:]+)::/.exec(urn);
  if (!match?.[1]) throw new Error(`"${urn}" is not a Pulumi URN (urn:pulumi:<stack>::...)`);
  return match[1];
}

/** The stack file whose config made a resource, for "change this key in that file". */
export function stackFileOf(urn: string): string {
  return `Pulumi.${stackOfUrn(urn)}.yaml`;
}

/** A value as a plain object, or `undefined`. */
export function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** A value as a list, or `[]`. */
export function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}
