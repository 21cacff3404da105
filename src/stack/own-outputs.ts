import * as pulumi from "@pulumi/pulumi";

/** What this stack recorded on its last successful update, by output name. */
export interface OwnOutputs {
  /** The stack's fully qualified name, for messages. */
  readonly stack: string;
  /** The recorded value of an output (plain or secret), `undefined` if it has none. */
  get(name: string): Promise<unknown>;
}

/**
 * Reads this stack's own outputs through one StackReference to itself, created on the first
 * read, so a run that needs none registers none. The values are those of the last update that
 * registered outputs: a failed update keeps the previous ones (see `deployedImage`).
 */
export function ownOutputs(): OwnOutputs {
  const stack = `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`;
  let ref: pulumi.StackReference | undefined;
  return {
    stack,
    get: async (name) => {
      ref ??= new pulumi.StackReference("last-deployed", { name: stack });
      const details = await ref.getOutputDetails(name);
      return details.value ?? details.secretValue;
    },
  };
}

/** A stand-in for a stack with no recorded outputs (offline synth, where there is no state). */
export const NO_OUTPUTS: OwnOutputs = { stack: "(none)", get: async () => undefined };
