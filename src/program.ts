import type * as pulumi from "@pulumi/pulumi";
import { type GithubValueSpec, githubValues } from "./config/catalog";
import { type LoadedStack, loadStack } from "./config/load";
import type { StackConfig } from "./config/schema";
import { DeploymentEnvironment, type ResolvedGithubValue } from "./github/environment";
import { RepositorySettings } from "./github/repository";

/**
 * The whole program: reads and validates the stack config once (throwing before any resource
 * is registered when it is wrong), then builds the components and returns the stack outputs.
 */
export async function program(loaded: LoadedStack = loadStack()) {
  const { config, secrets } = loaded;
  const repository = config.github.repository;

  const environment = new DeploymentEnvironment(config.environment.name, {
    repository,
    owner: config.github.owner,
    environment: config.environment,
    values: resolveValues(config, secrets, "environment"),
  });

  if (config.ownsRepository) {
    new RepositorySettings("repository", {
      repository,
      values: resolveValues(config, secrets, "repository"),
    });
  }

  return {
    repository: `${config.github.owner}/${repository}`,
    environment: environment.environment.environment,
    ownsRepositoryResources: config.ownsRepository,
  };
}

/** The catalog entries of one scope, each paired with its value from the stack config. */
export function resolveValues(
  config: StackConfig,
  secrets: Readonly<Record<string, pulumi.Output<string>>>,
  scope: GithubValueSpec["scope"],
): ResolvedGithubValue[] {
  return githubValues
    .filter((spec) => spec.scope === scope)
    .map((spec) => {
      if (spec.source.kind === "config")
        return { spec, value: spec.source.read(config.environment) };
      const value = secrets[spec.source.key];
      if (value === undefined) {
        throw new Error(`${spec.name}: secret config key "${spec.source.key}" was not loaded`);
      }
      return { spec, value };
    });
}
