import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import { loginTeams, PulumiCloudLogin } from "./cloud/access";
import { StackDeployments, stackDeploymentsArgs } from "./cloud/deployments";
import {
  activeGithubValues,
  DRIFT_ENVIRONMENT,
  type GithubValueScope,
  githubValueContext,
  isApprovalGated,
} from "./config/catalog";
import type { EnvironmentConfig } from "./config/environment";
import { type LoadedStack, loadStack, StackConfigError } from "./config/load";
import type { StackConfig } from "./config/schema";
import { type HostProber, sshProber } from "./deploy/host-probe";
import { deployStack, hostProbeState, resolveStackImage } from "./deploy/stack";
import { DeploymentEnvironment, type ResolvedGithubValue } from "./github/environment";
import { RepositorySettings } from "./github/repository";
import { DefaultBranchRuleset } from "./github/ruleset";
import {
  decideSecrets,
  parseSecretRecords,
  SECRETS_OUTPUT,
  type SecretRecord,
  type SecretRecords,
  secretKey,
} from "./github/secret-drift";
import { filesToCommit, readBranchFiles, WorkflowFiles } from "./github/workflow-files";
import { NO_OUTPUTS, ownOutputs } from "./stack/own-outputs";
import { planWorkflows, WorkflowPlanError } from "./workflows";

/**
 * The whole program: reads and validates the stack config once (throwing before any resource
 * is registered when it is wrong), then builds the components and returns the stack outputs.
 */
/** What the program reaches outside the engine, replaceable in tests. */
export interface ProgramDeps {
  /**
   * How hosts are read before planning (`./deploy/host-probe.ts`): over SSH by default, never
   * under offline synth; `off` plans without reading them (tests that are not about hosts).
   */
  readonly hostProber?: HostProber | "off";
}

export async function program(loaded: LoadedStack = loadStack(), deps: ProgramDeps = {}) {
  const { config, secrets, mode } = loaded;
  for (const warning of loaded.warnings) pulumi.log.warn(warning);
  // The workflows and their secrets cross-check, before any resource is registered.
  const workflows = config.ownsRepository ? planWorkflowsOrStop(config) : undefined;
  // What this stack recorded last time; offline synth has no state to read.
  const own = mode === "synth" ? NO_OUTPUTS : ownOutputs();
  // The image of this run, before any managed resource: a run that cannot name one changes nothing.
  const image = await resolveStackImage(config, secrets, own, mode);
  const repository = config.github.repository;
  const githubProvider = githubProviderFor(config);
  const githubOpts = { providers: { github: githubProvider } };
  const secretRecords = parseSecretRecords(await own.get(SECRETS_OUTPUT));
  const written: WrittenSecret[] = [];

  const scopeValues = (kinds: readonly GithubValueScope[], scope: SecretScope) =>
    valuesWithDecisions(config, secrets, kinds, scope, secretRecords, githubProvider);
  const gated = isApprovalGated(config.environment);

  const environmentScope = { repository, environment: config.environment.name };
  const environmentValues = await scopeValues(
    gated ? ["environment", "gated-environment"] : ["environment"],
    environmentScope,
  );
  const environment = new DeploymentEnvironment(
    config.environment.name,
    {
      repository,
      owner: config.github.owner,
      environment: config.environment,
      values: environmentValues.values,
      secretTriggers: environmentValues.triggers,
    },
    githubOpts,
  );
  written.push(...writtenSecrets(environmentScope, environment.secrets, environmentValues));

  if (gated) {
    // The drift job's environment, managed by the approval-gated stack: its token reads every
    // stack's config, so who may read it (the branch policy, the secret) changes only through
    // a run that production's reviewers approved.
    const driftScope = { repository, environment: DRIFT_ENVIRONMENT };
    const driftValues = await scopeValues(["drift-environment"], driftScope);
    const drift = new DeploymentEnvironment(
      DRIFT_ENVIRONMENT,
      {
        repository,
        owner: config.github.owner,
        environment: driftEnvironmentConfig(config),
        values: driftValues.values,
        secretTriggers: driftValues.triggers,
      },
      githubOpts,
    );
    written.push(...writtenSecrets(driftScope, drift.secrets, driftValues));
  }

  if (config.ownsRepository) {
    const repositoryScope = { repository };
    const repositoryValues = await scopeValues(["repository"], repositoryScope);
    const settings = new RepositorySettings(
      "repository",
      { repository, values: repositoryValues.values, secretTriggers: repositoryValues.triggers },
      githubOpts,
    );
    written.push(...writtenSecrets(repositoryScope, settings.secrets, repositoryValues));
    if (workflows) {
      const mode = config.workflows.commit.mode;
      const defaultBranch = config.github.defaultBranch;
      // In pull-request mode only what differs from the default branch goes into a new pull
      // request; direct mode commits (and refreshes) every file on the default branch itself.
      const pending =
        mode === "pull-request"
          ? filesToCommit(
              workflows.files,
              await readBranchFiles(
                repository,
                defaultBranch,
                workflows.files.map((f) => f.path),
                { provider: githubProvider },
              ),
            )
          : workflows.files;
      const files =
        pending.length > 0
          ? new WorkflowFiles(
              "workflows",
              {
                repository,
                defaultBranch,
                files: pending,
                mode,
                branchPrefix: config.workflows.commit.branchPrefix,
              },
              githubOpts,
            )
          : undefined;
      new DefaultBranchRuleset(
        "default-branch",
        {
          repository,
          requiredContexts: workflows.requiredContexts,
          enforcement: config.workflows.ruleset.enforcement,
          requiredApprovals: config.workflows.ruleset.requiredApprovals,
        },
        { ...githubOpts, ...(files ? { dependsOn: [files] } : {}) },
      );
    }
  }

  const cloud = stackDeploymentsArgs(config.deployments, {
    project: pulumi.getProject(),
    stack: config.stack,
    owner: config.github.owner,
    repository,
    defaultBranch: config.github.defaultBranch,
  });
  if (cloud) new StackDeployments(config.stack, cloud);
  // Short-lived logins for the workflows, managed where changing them needs an approval.
  if (cloud && gated && config.deployments.auth === "oidc") {
    new PulumiCloudLogin("github-actions", {
      organization: cloud.organization,
      project: cloud.project,
      repository: `${config.github.owner}/${repository}`,
      teams: loginTeams(cloud.project, config.workflows.targets, DRIFT_ENVIRONMENT),
    });
  }

  const prober = deps.hostProber ?? sshProber;
  const probe =
    mode === "synth" || prober === "off" ? undefined : await hostProbeState(own, prober);
  const deploy = deployStack(config, secrets, image, probe);

  return {
    repository: `${config.github.owner}/${repository}`,
    environment: environment.environment.environment,
    ownsRepositoryResources: config.ownsRepository,
    [SECRETS_OUTPUT]: secretRecordsOutput(written),
    ...deploy,
  };
}

/** A managed secret with the trigger it was registered with. */
interface WrittenSecret {
  readonly key: string;
  readonly updatedAt: pulumi.Output<string>;
  readonly trigger: string;
}

/** Where a set of Actions secrets lives: the repository, or one of its environments. */
type SecretScope = { readonly repository: string; readonly environment?: string };

/** A scope's catalog values, and each secret's trigger from the drift check (`./github/secret-drift.ts`). */
interface ScopeValues {
  readonly values: ResolvedGithubValue[];
  readonly triggers: ReadonlyMap<string, string>;
}

async function valuesWithDecisions(
  config: StackConfig,
  secrets: Readonly<Record<string, pulumi.Output<string>>>,
  kinds: readonly GithubValueScope[],
  scope: SecretScope,
  records: SecretRecords,
  provider: github.Provider,
): Promise<ScopeValues> {
  const values = resolveValues(config, secrets, kinds);
  const names = values.filter((v) => v.spec.kind === "secret").map((v) => v.spec.name);
  const decisions = await decideSecrets(scope, names, records, { provider });
  return { values, triggers: new Map([...decisions].map(([name, d]) => [name, d.trigger])) };
}

function writtenSecrets(
  scope: SecretScope,
  resources: ReadonlyMap<string, { readonly updatedAt: pulumi.Output<string> }>,
  { triggers }: ScopeValues,
): WrittenSecret[] {
  return [...resources].map(([name, resource]) => ({
    key: secretKey(scope, name),
    updatedAt: resource.updatedAt,
    trigger: triggers.get(name) ?? "",
  }));
}

/**
 * The `githubSecrets` output: per secret, when Pulumi wrote it (the provider's `updatedAt`) and
 * the trigger it carries, for the next run's comparison with GitHub (`./github/secret-drift.ts`).
 */
function secretRecordsOutput(
  written: readonly WrittenSecret[],
): pulumi.Output<Record<string, SecretRecord>> {
  return pulumi.all(written.map((w) => w.updatedAt)).apply((times) =>
    Object.fromEntries(
      written.map((w, i) => {
        const at = times[i];
        return [w.key, { ...(at ? { writtenAt: at } : {}), trigger: w.trigger }];
      }),
    ),
  );
}

/**
 * One explicit GitHub provider whose owner comes from our config, so resources land in the
 * configured organization whatever account the token belongs to. The token is `github:token`
 * (secret config) when set, else the provider reads `GITHUB_TOKEN` from the environment.
 */
export function githubProviderFor(config: StackConfig): github.Provider {
  const token = new pulumi.Config("github").getSecret("token");
  return new github.Provider("github", {
    owner: config.github.owner,
    ...(token ? { token } : {}),
  });
}

/**
 * The drift environment: no reviewers (a scheduled job would wait for one), deployments from
 * the default branch only, so a workflow pushed on any other branch never sees its secrets.
 */
export function driftEnvironmentConfig(config: StackConfig): EnvironmentConfig {
  return {
    name: DRIFT_ENVIRONMENT,
    url: config.environment.url,
    approval: {
      reviewers: { users: [], teams: [] },
      preventSelfReview: false,
      waitTimerMinutes: 0,
      adminsBypass: false,
    },
    deploymentBranches: [config.github.defaultBranch],
    deploymentTags: [],
  };
}

/** The catalog entries of these scopes, each paired with its value from the stack config. */
export function resolveValues(
  config: StackConfig,
  secrets: Readonly<Record<string, pulumi.Output<string>>>,
  scopes: readonly GithubValueScope[],
): ResolvedGithubValue[] {
  return activeGithubValues(githubValueContext(config))
    .filter((spec) => scopes.includes(spec.scope))
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

/** {@link planWorkflows}, its problems reported like config problems (one line each, no trace). */
function planWorkflowsOrStop(config: StackConfig) {
  try {
    return planWorkflows(config);
  } catch (err) {
    if (err instanceof WorkflowPlanError) throw new StackConfigError(err.problems);
    throw err;
  }
}
