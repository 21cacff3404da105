import { secretKeySpecs } from "../../src/config/schema";
import type { RecordedResource } from "../../src/synth/engine";
import { committedDeploy } from "./program";

/** Every secret the stacks need, none of the optional registry pair. */
export const SECRETS: Readonly<Record<string, string>> = Object.fromEntries(
  secretKeySpecs
    .filter((spec) => !spec.key.startsWith("registry") && !spec.names)
    .map((spec) => [spec.key, `${spec.key}-value`]),
);

/** The registry credentials of a private image. */
export const REGISTRY_SECRETS = { registryUsername: "ci-bot", registryToken: "ghp_registry" };

export const DIGESTS: Readonly<Record<string, string>> = {
  v1: `sha256:${"1".repeat(64)}`,
  v2: `sha256:${"2".repeat(64)}`,
  v3: `sha256:${"3".repeat(64)}`,
};

/** A stack's committed `deploy` section with changes and pinned hosts, as a config override. */
export const deployWith = committedDeploy;

/** The deploy section with an image tag set for the run, as the pipelines set it. */
export function tagged(stack: string, tag: string) {
  return deployWith(stack, (d) => ({ ...d, image: { ...(d.image as object), tag } }));
}

/** Registry answers: each known tag's digest. */
export function registryAnswers(token: string, args: Record<string, unknown>) {
  if (token !== "docker:index/getRegistryImage:getRegistryImage") return undefined;
  const tag = String(args.name).split(":").pop() ?? "";
  const digest = DIGESTS[tag];
  if (digest === undefined) throw new Error(`no such tag: ${String(args.name)}`);
  return { id: String(args.name), name: args.name, sha256Digest: digest };
}

/** Whether a registration is a host's deploy command for the given digest. */
export function isRunOf(r: RecordedResource, digest: string): boolean {
  return (
    r.type === "command:remote:Command" &&
    r.name.endsWith("-run") &&
    String(r.inputs.create).includes(digest)
  );
}

/** The steps that count as changes, one line each, for readable assertion messages. */
export function describeSteps(steps: readonly { op: string; type: string; name: string }[]) {
  return steps.map((s) => `${s.op} ${s.type} ${s.name}`).join("\n");
}
