import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import type { GithubValueSpec } from "../config/catalog";
import type { EnvironmentConfig } from "../config/environment";
import { githubNumericId } from "./ids";

export interface DeploymentEnvironmentArgs {
  /** Repository name (without owner). */
  readonly repository: string;
  /** The repository owner's organization, for team lookups. */
  readonly owner: string;
  readonly environment: EnvironmentConfig;
  /** Environment-scoped values of the catalog with their values. */
  readonly values: readonly ResolvedGithubValue[];
  /** Each secret's replacement trigger (`./secret-drift.ts`), by secret name. */
  readonly secretTriggers?: ReadonlyMap<string, string>;
}

/** A catalog entry paired with its value (secret values stay secret Outputs). */
export interface ResolvedGithubValue {
  readonly spec: GithubValueSpec;
  readonly value: pulumi.Input<string>;
}

/**
 * The stack's GitHub deployment environment: approval rules, deployment policies, and its
 * secrets and variables. Reviewers are given by login or team slug in config and resolved to
 * GitHub's numeric ids here, at deploy time.
 */
export class DeploymentEnvironment extends pulumi.ComponentResource {
  readonly environment: github.RepositoryEnvironment;
  /** The environment's secrets by name, for the record of when Pulumi wrote them. */
  readonly secrets = new Map<string, github.ActionsEnvironmentSecret>();

  constructor(
    name: string,
    args: DeploymentEnvironmentArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("clicky:github:DeploymentEnvironment", name, {}, opts);
    const env = args.environment;
    const { users, teams } = env.approval.reviewers;
    const lookupOpts = { parent: this };
    const userIds = users.map((username) =>
      pulumi
        .output(github.getUser({ username }, lookupOpts))
        .apply((user) => githubNumericId(user.id)),
    );
    const teamIds = teams.map((slug) =>
      pulumi
        .output(github.getTeam({ slug, summaryOnly: true }, lookupOpts))
        .apply((team) => githubNumericId(team.id)),
    );
    const hasReviewers = users.length + teams.length > 0;

    this.environment = new github.RepositoryEnvironment(
      name,
      {
        repository: args.repository,
        environment: env.name,
        waitTimer: env.approval.waitTimerMinutes,
        canAdminsBypass: env.approval.adminsBypass,
        preventSelfReview: env.approval.preventSelfReview,
        reviewers: hasReviewers ? [{ users: userIds, teams: teamIds }] : [],
        deploymentBranchPolicy: { protectedBranches: false, customBranchPolicies: true },
      },
      { parent: this },
    );
    const childOpts = { parent: this, dependsOn: [this.environment] };

    for (const pattern of env.deploymentBranches) {
      new github.RepositoryEnvironmentDeploymentPolicy(
        `${name}-branch-${slugify(pattern)}`,
        { repository: args.repository, environment: env.name, branchPattern: pattern },
        childOpts,
      );
    }
    for (const pattern of env.deploymentTags) {
      new github.RepositoryEnvironmentDeploymentPolicy(
        `${name}-tag-${slugify(pattern)}`,
        { repository: args.repository, environment: env.name, tagPattern: pattern },
        childOpts,
      );
    }
    for (const { spec, value } of args.values) {
      const childName = `${name}-${spec.name.toLowerCase().replaceAll("_", "-")}`;
      if (spec.kind === "secret") {
        const secret = new github.ActionsEnvironmentSecret(
          childName,
          { repository: args.repository, environment: env.name, secretName: spec.name, value },
          { ...childOpts, ...secretLifecycle(args.secretTriggers?.get(spec.name)) },
        );
        this.secrets.set(spec.name, secret);
      } else {
        new github.ActionsEnvironmentVariable(
          childName,
          { repository: args.repository, environment: env.name, variableName: spec.name, value },
          childOpts,
        );
      }
    }
    this.registerOutputs({ environment: this.environment.environment });
  }
}

/**
 * Options of a managed Actions secret: replaced when its trigger changes (a change made outside
 * Pulumi, `./secret-drift.ts`), and replaced delete-first, because the new secret has the same
 * name and a create-before-delete replace would end by deleting the value it just wrote
 * (pkg/resource/deploy/step_generator.go: replace is create-before-delete unless
 * `deleteBeforeReplace`).
 */
export function secretLifecycle(trigger: string | undefined): pulumi.CustomResourceOptions {
  return {
    deleteBeforeReplace: true,
    ...(trigger === undefined ? {} : { replacementTrigger: trigger }),
  };
}

/**
 * A readable, stable, resource-name-safe form of a ref pattern; distinct patterns stay
 * distinct because each glob character has its own word.
 *
 * @example slugify("v*.*.*") // "v-star-.-star-.-star"
 * @example slugify("release/*") // "release-slash-star"
 */
export function slugify(pattern: string): string {
  return pattern
    .replaceAll("**", "-globstar-")
    .replaceAll("*", "-star-")
    .replaceAll("?", "-any-")
    .replaceAll("/", "-slash-")
    .replace(/[^A-Za-z0-9.]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .replace(/-{2,}/g, "-");
}
