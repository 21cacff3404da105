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
  readonly driftCron: string;
  readonly driftAutoRemediate: boolean;
}

/** Where this program's `Pulumi.yaml` is expected, for the message when it is not there. */
export interface ProgramLocation {
  /** `owner/name` of the repository that holds the program. */
  readonly repository: string;
  /** Folder of `Pulumi.yaml` in that repository (`.` for its root). */
  readonly directory: string;
  /** The stack file whose `deployments.source` says so, e.g. `Pulumi.production.yaml`. */
  readonly stackFile: string;
}

/** Characters a value may have to be written into a script as is, quoted or not. */
const SCRIPT_SAFE = /^[A-Za-z0-9._/-]+$/;

/**
 * A shell command that fails, with a message naming the repository, the folder and the config
 * keys to fix, when `folder` (relative to the working directory) holds no `Pulumi.yaml`.
 *
 * Why: a wrong `deployments.source.repository` or `.directory` otherwise surfaces as an npm
 * error about a missing package.json, or as Pulumi's "no Pulumi.yaml project file found", far
 * from the setting that caused it. The same builder serves the deployment settings' pre-run
 * commands (`folder` `.`: they run in the source's `repoDir`, as `npm run typecheck` after it
 * also assumes; each is one line, and Pulumi's "Pre-run Commands" docs run each line in its
 * own shell, bash by default, so `||` and `{ }` work) and every
 * workflow job that works in the program's folder, so both say the same thing.
 *
 * The values are validated config (owner/name, a relative folder, a stack name); anything else
 * is refused here rather than quoted, so the message stays readable.
 *
 * @example pulumiProjectCheck({ repository: "o/r", directory: ".", stackFile: "Pulumi.s.yaml" })
 *   // 'test -f Pulumi.yaml || { echo "clicky-delivery: no Pulumi.yaml in o/r at this commit; ..." >&2; exit 1; }'
 */
export function pulumiProjectCheck(location: ProgramLocation, folder = "."): string {
  for (const value of [location.repository, location.directory, location.stackFile, folder]) {
    if (!SCRIPT_SAFE.test(value)) {
      throw new Error(`pulumiProjectCheck: "${value}" has characters a shell message cannot hold`);
    }
  }
  const file = folder === "." ? "Pulumi.yaml" : `${folder}/Pulumi.yaml`;
  const where =
    location.directory === "."
      ? location.repository
      : `${location.repository}/${location.directory}`;
  const message = `clicky-delivery: no Pulumi.yaml in ${where} at this commit; set deployments.source.repository and deployments.source.directory in ${location.stackFile}`;
  return `test -f ${file} || { echo "${message}" >&2; exit 1; }`;
}

/**
 * The pre-run commands of the stack's deployment settings, in order. The workflows'
 * `pulumi deployment run` passes them again (before its own config commands), because how
 * Pulumi Deployments combines a run's `preRunCommands` with the settings' is decided by the
 * service, not the CLI (pkg/cmd/pulumi/deployment/remote.go sends them as
 * `operation.preRunCommands` with `inheritSettings: true`): repeated, they run whichever wins.
 * One function for both, so they cannot diverge.
 *
 * 1. the program is where the settings say (fails in a second, naming the keys to fix);
 * 2. the program compiles (fails in seconds, before any provider is touched).
 */
export function deploymentPreRunCommands(location: ProgramLocation): string[] {
  return [pulumiProjectCheck(location), "npm run typecheck"];
}

/**
 * The deployment settings a Pulumi Deployments run of this stack uses.
 *
 * `deployCommits` stays off on purpose: a push to main must not start a deployment before the
 * main pipeline has pushed that commit's image. The pipeline starts the deployment itself, with
 * the image tag, once the push succeeded.
 *
 * Pull requests get no previews, on any stack: a preview runs the pull request's own code with
 * the stack's config decrypted, and every stack's config holds credentials that reach
 * production (production's own; staging's GitHub token, which can administer the repository
 * and so change production's reviewers). Anyone who can open a pull request could print them
 * without an approval. The PR pipeline's program checks and the offline synth show what a
 * change registers, with no secret. Secrets reach the operation through the stack's own encrypted config, so these settings
 * hold none. `vcs` with provider `github` needs the Pulumi GitHub App installed on the
 * repository (it is how Pulumi Cloud clones it and posts previews); without it deployments
 * cannot fetch the source.
 *
 * `skipIntermediateDeployments` lets a newer deployment supersede a queued one, which then ends
 * `skipped`: the workflows treat that as a failure of the run whose deployment it was.
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
      previewPullRequests: false,
      pullRequestTemplate: false,
    },
    operationContext: {
      preRunCommands: deploymentPreRunCommands({
        repository: args.repository,
        directory: args.directory,
        stackFile: `Pulumi.${args.stack}.yaml`,
      }),
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
    driftCron: deployments.driftCron,
    driftAutoRemediate: deployments.driftAutoRemediate,
  };
}
