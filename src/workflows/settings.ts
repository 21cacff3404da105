import type { ProgramLocation } from "../cloud/deployments";
import { PROJECT, type StackConfig } from "../config/schema";
import { PROGRAM_NODE_VERSION } from "./node-version";

/** One stack a pipeline deploys: its qualified name, environment and post-deploy checks. */
export interface DeployTarget {
  /** Plain stack name, e.g. `production`. */
  readonly name: string;
  /** As the Pulumi CLI takes it: `org/project/stack` on Pulumi Cloud, else the plain name. */
  readonly stack: string;
  readonly environment: string;
  readonly checkPaths: readonly string[];
}

/** Where this Pulumi program's source is, for jobs that run it. */
export interface ProgramSource {
  /** `owner/name` when it is not the app repository itself. */
  readonly repository?: string;
  /** Branch to check out from that other repository. */
  readonly ref?: string;
  /** Where that other repository is checked out in the job's workspace. */
  readonly checkoutPath?: string;
  /** Folder of `Pulumi.yaml` in the job's workspace, e.g. `.` or `infra`. */
  readonly directory: string;
  /** Where `Pulumi.yaml` is in GitHub, and which stack file says so (for error messages). */
  readonly location: ProgramLocation;
}

/**
 * Everything the pipelines need, resolved once from the stack config (defaults filled in, the
 * two sections that speak about Pulumi read together). Pipelines take this, never the raw
 * config, so a pipeline is a pure function of it.
 */
export interface PipelineSettings {
  readonly owner: string;
  readonly repository: string;
  readonly defaultBranch: string;
  readonly pullRequestBranches: readonly string[];
  readonly pythonVersion: string;
  /** Node.js of the mobile jobs (`workflows.nodeVersion`). */
  readonly nodeVersion: string;
  /** Node.js of the jobs that run this program: the pinned Pulumi SDK's minimum (`engines.node`). */
  readonly programNodeVersion: string;
  readonly image: string;
  readonly deployMode: "pulumi-deployments" | "pulumi-up";
  readonly pulumiVersion: string;
  /**
   * How jobs log in to Pulumi: stored tokens (environment secrets), or OIDC: the job trades
   * its GitHub token for a short-lived token of a Pulumi team (`src/cloud/access.ts`).
   */
  readonly login:
    | { readonly kind: "tokens" }
    | { readonly kind: "oidc"; readonly organization: string };
  readonly staging: DeployTarget;
  readonly production: DeployTarget;
  readonly checkDeadlineSeconds: number;
  /** Deploy jobs post their result to the environment's `DEPLOY_WEBHOOK_URL` (`workflows.notify`). */
  readonly notify: boolean;
  readonly program: ProgramSource;
  readonly driftCron: string;
  readonly mobile: {
    readonly buildProfile: string;
    readonly updateBranch: string;
    readonly stagingUpdateBranch: string;
    readonly submit: boolean;
    readonly submitProfile?: string;
  };
}

/** Where another repository's checkout goes inside the job's workspace. */
export const PROGRAM_CHECKOUT_PATH = "delivery-program";

export function pipelineSettings(config: StackConfig): PipelineSettings {
  const { github, deployments, workflows } = config;
  const organization = deployments.backend === "cloud" ? deployments.organization : undefined;
  const qualify = (stack: string) =>
    organization === undefined ? stack : `${organization}/${PROJECT}/${stack}`;
  const target = (t: (typeof workflows.targets)["staging"]): DeployTarget => ({
    name: t.stack,
    stack: qualify(t.stack),
    environment: t.environment,
    checkPaths: t.checkPaths,
  });
  const appRepository = `${github.owner}/${github.repository}`;
  const location: ProgramLocation = {
    repository: deployments.source.repository ?? appRepository,
    directory: deployments.source.directory,
    stackFile: `Pulumi.${config.stack}.yaml`,
  };
  const otherRepository =
    deployments.source.repository !== undefined &&
    deployments.source.repository.toLowerCase() !== appRepository.toLowerCase()
      ? deployments.source.repository
      : undefined;
  return {
    owner: github.owner,
    repository: github.repository,
    defaultBranch: github.defaultBranch,
    pullRequestBranches: workflows.pullRequestBranches ?? [
      ...new Set([github.defaultBranch, "develop"]),
    ],
    pythonVersion: workflows.pythonVersion,
    nodeVersion: workflows.nodeVersion,
    programNodeVersion: PROGRAM_NODE_VERSION,
    image: workflows.image ?? `ghcr.io/${appRepository.toLowerCase()}/backend`,
    deployMode:
      workflows.deployMode ??
      (deployments.backend === "cloud" ? "pulumi-deployments" : "pulumi-up"),
    pulumiVersion: workflows.pulumiVersion,
    login:
      deployments.auth === "oidc" && organization !== undefined
        ? { kind: "oidc", organization }
        : { kind: "tokens" },
    staging: target(workflows.targets.staging),
    production: target(workflows.targets.production),
    checkDeadlineSeconds: workflows.checkDeadlineSeconds,
    program:
      otherRepository === undefined
        ? { directory: deployments.source.directory, location }
        : {
            repository: otherRepository,
            ref: deployments.source.branch ?? github.defaultBranch,
            checkoutPath: PROGRAM_CHECKOUT_PATH,
            directory: joinPath(PROGRAM_CHECKOUT_PATH, deployments.source.directory),
            location,
          },
    driftCron: deployments.driftCron,
    mobile: workflows.mobile,
    notify: workflows.notify,
  };
}

function joinPath(a: string, b: string): string {
  return b === "." ? a : `${a}/${b}`;
}
