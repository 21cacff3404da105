import * as pulumi from "@pulumi/pulumi";
import * as pulumiservice from "@pulumi/pulumiservice";
import type { DeploymentsConfig } from "../config/deployments";

export interface StackDeploymentsArgs {
  /** Pulumi Cloud organization, project and stack this configures. */
  readonly organization: string;
  readonly project: string;
  readonly stack: string;
  /** `owner/name` of the repository that holds this program. */
  readonly repository: string;
  readonly branch: string;
  readonly directory: string;
  readonly previewPaths: readonly string[];
  readonly driftCron: string;
  readonly driftAutoRemediate: boolean;
}

/**
 * The deployment settings a Pulumi Deployments run of this stack uses.
 *
 * `deployCommits` stays off on purpose: a push to main must not start a deployment before the
 * main pipeline has pushed that commit's image. The pipeline starts the deployment itself, with
 * the image tag, once the push succeeded. Pull requests that touch the program get previews.
 * Secrets reach the operation through the stack's own encrypted config, so these settings
 * hold none.
 */
export function deploymentSettingsInputs(
  args: StackDeploymentsArgs,
): pulumiservice.DeploymentSettingsArgs {
  return {
    organization: args.organization,
    project: args.project,
    stack: args.stack,
    sourceContext: { git: { branch: `refs/heads/${args.branch}`, repoDir: args.directory } },
    vcs: {
      provider: "github",
      repository: args.repository,
      deployCommits: false,
      previewPullRequests: true,
      pullRequestTemplate: false,
      paths: [...args.previewPaths],
    },
    operationContext: {
      // Fail in seconds on a program that does not compile, before any provider is touched.
      preRunCommands: ["npm run typecheck"],
      environmentVariables: { PULUMI_SKIP_UPDATE_CHECK: "true" },
      options: { skipIntermediateDeployments: true },
    },
    cacheOptions: { enable: true },
  };
}

/** Pulumi Deployments for one stack: its settings and its drift schedule. */
export class StackDeployments extends pulumi.ComponentResource {
  readonly settings: pulumiservice.DeploymentSettings;
  readonly driftSchedule: pulumiservice.DriftSchedule;

  constructor(name: string, args: StackDeploymentsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("clicky:cloud:StackDeployments", name, {}, opts);
    this.settings = new pulumiservice.DeploymentSettings(name, deploymentSettingsInputs(args), {
      parent: this,
    });
    this.driftSchedule = new pulumiservice.DriftSchedule(
      name,
      {
        organization: args.organization,
        project: args.project,
        stack: args.stack,
        scheduleCron: args.driftCron,
        autoRemediate: args.driftAutoRemediate,
      },
      { parent: this, dependsOn: [this.settings] },
    );
    this.registerOutputs({});
  }
}

/** The component's arguments from the stack config, or `undefined` for a self-managed stack. */
export function stackDeploymentsArgs(
  deployments: DeploymentsConfig,
  ctx: { project: string; stack: string; owner: string; repository: string; defaultBranch: string },
): StackDeploymentsArgs | undefined {
  if (deployments.backend !== "cloud" || deployments.organization === undefined) return undefined;
  return {
    organization: deployments.organization,
    project: ctx.project,
    stack: ctx.stack,
    repository: deployments.source.repository ?? `${ctx.owner}/${ctx.repository}`,
    branch: deployments.source.branch ?? ctx.defaultBranch,
    directory: deployments.source.directory,
    previewPaths: deployments.previewPaths,
    driftCron: deployments.driftCron,
    driftAutoRemediate: deployments.driftAutoRemediate,
  };
}
