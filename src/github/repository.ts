import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import { type ResolvedGithubValue, secretLifecycle } from "./environment";

export interface RepositorySettingsArgs {
  readonly repository: string;
  /** Repository-scoped values of the catalog with their values. */
  readonly values: readonly ResolvedGithubValue[];
  /** Each secret's replacement trigger (`./secret-drift.ts`), by secret name. */
  readonly secretTriggers?: ReadonlyMap<string, string>;
}

/**
 * Repository-wide secrets and variables. Created only by the stack that owns the repository
 * (`github.repositoryStack`), so the two stacks never overwrite each other's values.
 */
export class RepositorySettings extends pulumi.ComponentResource {
  /** The repository's secrets by name, for the record of when Pulumi wrote them. */
  readonly secrets = new Map<string, github.ActionsSecret>();

  constructor(name: string, args: RepositorySettingsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("clicky:github:RepositorySettings", name, {}, opts);
    for (const { spec, value } of args.values) {
      const childName = `${name}-${spec.name.toLowerCase().replaceAll("_", "-")}`;
      if (spec.kind === "secret") {
        const secret = new github.ActionsSecret(
          childName,
          { repository: args.repository, secretName: spec.name, value },
          { parent: this, ...secretLifecycle(args.secretTriggers?.get(spec.name)) },
        );
        this.secrets.set(spec.name, secret);
      } else {
        new github.ActionsVariable(
          childName,
          { repository: args.repository, variableName: spec.name, value },
          { parent: this },
        );
      }
    }
    this.registerOutputs({});
  }
}
