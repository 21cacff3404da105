import {
  activeGithubValues,
  DRIFT_ENVIRONMENT,
  type GithubValueScope,
  type GithubValueSpec,
  githubValueContext,
} from "../config/catalog";
import { formatKeyPath } from "../config/problems";
import { PROJECT, type StackConfig } from "../config/schema";
import { requiredContexts } from "./contexts";
import { crossCheckValues, type WorkflowProblem } from "./cross-check";
import type { Workflow } from "./model";
import { deployProductionPipeline } from "./pipelines/deploy-production";
import { deployStagingPipeline } from "./pipelines/deploy-staging";
import { driftPipeline } from "./pipelines/drift";
import { mobileBuildPipeline, mobileOtaPipeline, mobileUpdatePipeline } from "./pipelines/mobile";
import { prPipeline } from "./pipelines/pr";
import { type PipelineSettings, pipelineSettings } from "./settings";
import { type WorkflowFile, writeWorkflow } from "./writer";

/** What the repository-owning stack commits and enforces. */
export interface WorkflowPlan {
  readonly files: readonly WorkflowFile[];
  /** Status check contexts the default branch's ruleset requires (from the PR pipeline). */
  readonly requiredContexts: readonly string[];
}

/**
 * A workflow plan that breaks a rule. `problems` has one line each, naming both sides, written
 * like config problems (`Pulumi.<stack>.yaml: clicky-delivery:<key path>: <what is wrong>`) so
 * that synth and `pulumi up` report them the same way and each names the setting to change.
 */
export class WorkflowPlanError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join("\n"));
    this.name = "WorkflowPlanError";
  }
}

/** Every pipeline, in a stable order. */
export function buildWorkflows(settings: PipelineSettings): Workflow[] {
  return [
    prPipeline(settings),
    deployStagingPipeline(settings),
    deployProductionPipeline(settings),
    mobileBuildPipeline(settings),
    mobileUpdatePipeline(settings),
    mobileOtaPipeline(settings),
    driftPipeline(settings),
  ];
}

/**
 * The files and required checks of this stack's config, after every check that can fail
 * before a resource exists: the secrets cross-check against the catalog, and the match between
 * this stack's environment and the environment its pipeline deploys to. Pure; throws a
 * {@link WorkflowPlanError} listing every problem.
 */
export function planWorkflows(
  config: StackConfig,
  catalog: readonly GithubValueSpec[] = activeGithubValues(githubValueContext(config)),
  file = `Pulumi.${config.stack}.yaml`,
): WorkflowPlan {
  const settings = pipelineSettings(config);
  const workflows = buildWorkflows(settings);
  const problems = [
    ...environmentProblems(config),
    ...crossCheckValues(workflows, catalog, environmentScopes(settings)),
  ];
  if (problems.length > 0) {
    throw new WorkflowPlanError(
      problems.map((p) => `${file}: ${formatKeyPath(PROJECT, p.path)}: ${p.message}`),
    );
  }
  const pr = workflows[0] as Workflow;
  return { files: workflows.map(writeWorkflow), requiredContexts: requiredContexts(pr) };
}

/**
 * The environments the stacks manage, each with the catalog scopes filled in it: every deploy
 * target's environment holds its stack's `environment` values; production's (the
 * approval-gated one) also the `gated-environment` ones; the drift environment the
 * `drift-environment` ones.
 */
export function environmentScopes(
  settings: PipelineSettings,
): ReadonlyMap<string, readonly GithubValueScope[]> {
  return new Map<string, readonly GithubValueScope[]>([
    [settings.staging.environment, ["environment"]],
    [settings.production.environment, ["environment", "gated-environment"]],
    [DRIFT_ENVIRONMENT, ["drift-environment"]],
  ]);
}

/** A deploy job must run in the environment that this stack's config creates. */
function environmentProblems(config: StackConfig): WorkflowProblem[] {
  const targets = config.workflows.targets;
  return (["staging", "production"] as const).flatMap((key) => {
    const target = targets[key];
    if (target.stack !== config.stack || target.environment === config.environment.name) return [];
    return [
      {
        path: ["workflows", "targets", key, "environment"],
        message: `is "${target.environment}" but stack ${config.stack} creates environment "${config.environment.name}" (clicky-delivery:environment.name)`,
      },
    ];
  });
}
