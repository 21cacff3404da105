import type {
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import { type GithubValueSpec, githubValues } from "../src/config/catalog";
import { isPlaceholderHostKey } from "../src/config/host-keys";
import { type PackConfig, packConfigSchema, readPackConfig } from "./config";
import {
  describeResource,
  list,
  type ResourceView,
  record,
  stackFileOf,
  stackOfUrn,
  TYPES,
} from "./resources";
import { jobSecretReads } from "./workflow-secrets";

/**
 * The policies of the pack, as plain data: `index.ts` serves them to the Pulumi engine, and the
 * tests call each `validateResource` / `validateStack` directly.
 *
 * They enforce "Who can read what" (docs/security.md): a credential that can read or change
 * production is readable only by jobs of an environment gated by production's reviewers, or of
 * the drift environment, limited to the default branch, whose job changes nothing. Which
 * secrets those are comes from the catalog the program itself uses (`reaches` in
 * `src/config/catalog.ts`).
 * Every message names the resource (type and name) and what to change where.
 */

/** The catalog entry of a secret name (GitHub secret names are case-insensitive). */
function secretSpec(name: unknown): GithubValueSpec | undefined {
  if (typeof name !== "string") return undefined;
  const upper = name.toUpperCase();
  return githubValues.find((spec) => spec.kind === "secret" && spec.name === upper);
}

/**
 * Whether a secret registered by `stack` can read or change production: a `production` secret
 * wherever it is, an `own-stack` secret when its stack deploys production.
 */
function reachesProduction(spec: GithubValueSpec, stack: string, config: PackConfig): boolean {
  return (
    spec.reaches === "production" ||
    (spec.reaches === "own-stack" && config.gatedStacks.includes(stack))
  );
}

function reachPhrase(spec: GithubValueSpec, stack: string): string {
  return spec.reaches === "production"
    ? "can read or change production"
    : `is the deploy credential of stack "${stack}", which deploys production`;
}

/** Where a secret that reaches production belongs, as a change of the catalog. */
function catalogFix(spec: GithubValueSpec): string {
  return spec.reaches === "own-stack"
    ? `keep ${spec.name} at scope "environment" in src/config/catalog.ts, in an environment gated by production's reviewers`
    : `set the scope of ${spec.name} in src/config/catalog.ts to "gated-environment" (or "drift-environment" for a read-only token of the drift job)`;
}

const gatedList = (config: PackConfig) => config.gatedEnvironments.join(", ");

/** 1. An approval-gated environment really waits for production's reviewers. */
export const gatedEnvironmentApproval: ResourceValidationPolicy = {
  name: "gated-environment-approval",
  description:
    "An approval-gated GitHub environment requires a reviewer, prevents self-review and lets no admin bypass it.",
  enforcementLevel: "mandatory",
  configSchema: packConfigSchema(),
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== TYPES.environment) return;
    const config = readPackConfig(gatedEnvironmentApproval.name, args.getConfig());
    const env = args.props.environment;
    if (typeof env !== "string" || !config.gatedEnvironments.includes(env)) return;
    const label = describeResource(args);
    const file = stackFileOf(args.urn);
    const stack = stackOfUrn(args.urn);
    const hasReviewer = list(args.props.reviewers).some((r) => {
      const reviewers = record(r);
      return list(reviewers?.users).length + list(reviewers?.teams).length > 0;
    });
    if (!hasReviewer) {
      const notProduction = config.gatedStacks.includes(stack)
        ? ""
        : `; or, since stack "${stack}" does not deploy production, give it an environment of its own (environment.name in ${file})`;
      reportViolation(
        `${label}: the approval-gated environment "${env}" requires no reviewer, so every job that names it runs, and reads its secrets, without an approval; list production's reviewers in environment.approval.reviewers.users (logins) or environment.approval.reviewers.teams (team slugs) in ${file}${notProduction}`,
      );
    }
    if (args.props.preventSelfReview !== true) {
      reportViolation(
        `${label}: the approval-gated environment "${env}" lets whoever started a deploy approve it; set environment.approval.preventSelfReview: true in ${file}`,
      );
    }
    if (args.props.canAdminsBypass !== false) {
      reportViolation(
        `${label}: the approval-gated environment "${env}" lets repository admins deploy without its reviewers${args.props.canAdminsBypass === undefined ? " (GitHub's default when canAdminsBypass is not set)" : ""}; set environment.approval.adminsBypass: false in ${file}`,
      );
    }
  },
};

function nonEmpty(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** A problem of the drift environment, reported on the resource that has it. */
interface DriftProblem {
  readonly urn: string;
  readonly message: string;
}

/**
 * Why the drift environment of this stack does not count as "limited to the default branch":
 * its RepositoryEnvironment must allow custom branch policies only, and its only deployment
 * policy must be the branch pattern `defaultBranch`, with no tag patterns.
 */
function driftEnvironmentProblems(
  resources: readonly ResourceView[],
  config: PackConfig,
  holds: string,
): DriftProblem[] | "not-managed" {
  const drift = config.driftEnvironment;
  const environment = resources.find(
    (r) => r.type === TYPES.environment && r.props.environment === drift,
  );
  if (!environment) return "not-managed";
  const file = stackFileOf(environment.urn);
  const where = `the drift environment "${drift}", which holds ${holds}`;
  const branchesFrom = `the drift environment's branches come from github.defaultBranch in ${file} (src/program.ts driftEnvironmentConfig), and the pack config defaultBranch must name that branch`;
  const problems: DriftProblem[] = [];
  const branchPolicy = record(environment.props.deploymentBranchPolicy);
  if (branchPolicy?.customBranchPolicies !== true || branchPolicy.protectedBranches !== false) {
    problems.push({
      urn: environment.urn,
      message: `${describeResource(environment)}: ${where}, lets ${branchPolicy ? "every protected branch" : "every branch and tag"} deploy (deploymentBranchPolicy ${JSON.stringify(branchPolicy ?? null)}); it must allow custom branch policies only (customBranchPolicies true, protectedBranches false, as src/github/environment.ts sets them)`,
    });
  }
  const policies = resources.filter(
    (r) => r.type === TYPES.deploymentPolicy && r.props.environment === drift,
  );
  for (const policy of policies) {
    // A stack policy sees outputs, where the provider may record the unset pattern as "".
    const tagPattern = nonEmpty(policy.props.tagPattern);
    const branchPattern = nonEmpty(policy.props.branchPattern);
    if (tagPattern !== undefined) {
      problems.push({
        urn: policy.urn,
        message: `${describeResource(policy)}: lets tags "${tagPattern}" deploy to ${where}; only the default branch "${config.defaultBranch}" may: ${branchesFrom}`,
      });
    } else if (branchPattern !== config.defaultBranch) {
      problems.push({
        urn: policy.urn,
        message: `${describeResource(policy)}: lets branch "${String(branchPattern)}" deploy to ${where}; only the default branch "${config.defaultBranch}" may: ${branchesFrom}`,
      });
    }
  }
  const forDefaultBranch = (p: ResourceView) =>
    p.props.branchPattern === config.defaultBranch && nonEmpty(p.props.tagPattern) === undefined;
  if (!policies.some(forDefaultBranch)) {
    problems.push({
      urn: environment.urn,
      message: `${describeResource(environment)}: ${where}, has no deployment policy for the default branch "${config.defaultBranch}"; ${branchesFrom}`,
    });
  }
  return problems;
}

/**
 * 2. A secret that can read or change production lives only in an approval-gated environment,
 * or in the drift environment when the catalog puts it there and the environment is limited to
 * the default branch. A stack policy: the drift environment's rules are other resources.
 */
export const productionSecretPlacement: StackValidationPolicy = {
  name: "production-secret-placement",
  description:
    "A secret that can read or change production is a secret of an approval-gated environment, or of the drift environment limited to the default branch; never a repository secret.",
  enforcementLevel: "mandatory",
  configSchema: packConfigSchema(),
  validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) => {
    const config = readPackConfig(productionSecretPlacement.name, args.getConfig());
    const resources: readonly ResourceView[] = args.resources;
    const inDrift: { secret: ResourceView; spec: GithubValueSpec; stack: string }[] = [];
    for (const secret of resources) {
      if (secret.type !== TYPES.repositorySecret && secret.type !== TYPES.environmentSecret) {
        continue;
      }
      const spec = secretSpec(secret.props.secretName);
      const stack = stackOfUrn(secret.urn);
      if (!spec || !reachesProduction(spec, stack, config)) continue;
      const label = describeResource(secret);
      const reach = reachPhrase(spec, stack);
      if (secret.type === TYPES.repositorySecret) {
        reportViolation(
          `${label}: ${spec.name} ${reach}, but it is a repository secret, which every job of every workflow on every branch can read; ${catalogFix(spec)}`,
          secret.urn,
        );
        continue;
      }
      const env = secret.props.environment;
      if (typeof env === "string" && config.gatedEnvironments.includes(env)) continue;
      if (env === config.driftEnvironment && spec.scope === "drift-environment") {
        inDrift.push({ secret, spec, stack });
        continue;
      }
      const why =
        env === config.driftEnvironment
          ? `the drift environment "${env}", whose job runs without an approval and must change nothing (only the catalog's "drift-environment" secrets belong there)`
          : `environment "${String(env)}", which is neither approval-gated (pack config gatedEnvironments: ${gatedList(config)}) nor the drift environment "${config.driftEnvironment}"`;
      const fix =
        spec.reaches === "own-stack" && env !== config.driftEnvironment
          ? `set environment.name in ${stackFileOf(secret.urn)} to an approval-gated environment (${gatedList(config)}), or add "${String(env)}" to the pack config gatedEnvironments once it requires production's reviewers`
          : catalogFix(spec);
      reportViolation(
        `${label}: ${spec.name} ${reach}, but it is a secret of ${why}; ${fix}`,
        secret.urn,
      );
    }
    if (inDrift.length === 0) return;
    const holds = inDrift.map((d) => `${d.spec.name} (${reachPhrase(d.spec, d.stack)})`).join(", ");
    const problems = driftEnvironmentProblems(resources, config, holds);
    if (problems === "not-managed") {
      for (const { secret, spec } of inDrift) {
        reportViolation(
          `${describeResource(secret)}: ${spec.name} is a secret of the drift environment "${config.driftEnvironment}", but this stack does not manage that environment, so nothing here limits it to the default branch; the drift environment and its secrets belong to the approval-gated stack (pack config gatedStacks: ${config.gatedStacks.join(", ")})`,
          secret.urn,
        );
      }
      return;
    }
    for (const problem of problems) reportViolation(problem.message, problem.urn);
  },
};

/** 3. Every SSH connection of an approval-gated stack pins its host key. */
export const gatedHostKeyPinned: ResourceValidationPolicy = {
  name: "gated-stack-host-key-pinned",
  description:
    "Remote commands and copies of an approval-gated stack pin the host key of every host they connect to.",
  enforcementLevel: "mandatory",
  configSchema: packConfigSchema(),
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== TYPES.remoteCommand && args.type !== TYPES.copyToRemote) return;
    const config = readPackConfig(gatedHostKeyPinned.name, args.getConfig());
    const stack = stackOfUrn(args.urn);
    if (!config.gatedStacks.includes(stack)) return;
    const connection = record(args.props.connection);
    const hops = [
      { what: "connects to", connection },
      ...(record(connection?.proxy)
        ? [{ what: "jumps through", connection: record(connection?.proxy) }]
        : []),
    ];
    for (const { what, connection: hop } of hops) {
      const key = hop?.hostKey;
      const pinned = typeof key === "string" && key.trim() !== "" && !isPlaceholderHostKey(key);
      if (pinned) continue;
      const host = String(hop?.host ?? "(no host)");
      const port = hop?.port ?? 22;
      const state =
        typeof key === "string" && key.trim() !== "" ? "a placeholder host key" : "no host key";
      reportViolation(
        `${describeResource(args)}: ${what} ${host}:${String(port)} with ${state}, so production's deploy (its SSH key and the app's secrets on stdin) would go to whichever server answers; set deploy.hosts[].hostKey of host ${host} in ${stackFileOf(args.urn)} to the line of \`ssh-keyscan -p ${String(port)} -t ed25519 ${host}\`, checked against the host's console`,
      );
    }
  },
};

/** 4. No pull request preview runs an approval-gated stack. */
export const gatedNoPullRequestPreviews: ResourceValidationPolicy = {
  name: "gated-stack-no-pull-request-previews",
  description:
    "Pulumi Deployments settings of an approval-gated stack run no pull request previews: a preview runs the pull request's code with the stack's config decrypted.",
  enforcementLevel: "mandatory",
  configSchema: packConfigSchema(),
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== TYPES.deploymentSettings) return;
    const config = readPackConfig(gatedNoPullRequestPreviews.name, args.getConfig());
    const stack = args.props.stack;
    if (typeof stack !== "string" || !config.gatedStacks.includes(stack)) return;
    for (const key of ["vcs", "github"] as const) {
      const settings = record(args.props[key]);
      // The provider's default is true (pulumiservice `deploymentSettings*ArgsProvideDefaults`).
      if (!settings || settings.previewPullRequests === false) continue;
      reportViolation(
        `${describeResource(args)}: ${key}.previewPullRequests is ${String(settings.previewPullRequests ?? "not set (true by default)")} for stack "${stack}", so anyone who opens a pull request runs its code with production's config decrypted; set ${key}.previewPullRequests: false where the settings are built (src/cloud/deployments.ts deploymentSettingsInputs; no stack config key turns previews on)`,
      );
    }
  },
};

/** The model a generated workflow says it was rendered from, for "change it there". */
function workflowSource(content: string, file: string): string {
  const match = /^# Generated by clicky-delivery from (\S+\.ts)/m.exec(content);
  return match?.[1] ?? `the workflow model of ${file} (src/workflows/pipelines/)`;
}

/** 5. A job that reads a production-reaching secret runs in an environment allowed to hold it. */
export const workflowSecretEnvironment: ResourceValidationPolicy = {
  name: "workflow-secret-environment",
  description:
    "A workflow job that reads a secret that can read or change production runs in an approval-gated environment, or in the drift environment for the secrets placed there.",
  enforcementLevel: "mandatory",
  configSchema: packConfigSchema(),
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== TYPES.repositoryFile) return;
    const file = args.props.file;
    if (typeof file !== "string" || !/^\.github\/workflows\/[^/]+\.ya?ml$/.test(file)) return;
    const config = readPackConfig(workflowSecretEnvironment.name, args.getConfig());
    const content = String(args.props.content ?? "");
    const label = describeResource(args);
    let jobs: ReturnType<typeof jobSecretReads>;
    try {
      jobs = jobSecretReads(content);
    } catch (err) {
      reportViolation(
        `${label}: ${file} is not valid YAML (${err instanceof Error ? err.message : String(err)}), so which secrets its jobs read cannot be checked; fix ${workflowSource(content, file)}`,
      );
      return;
    }
    // Only `reaches: "production"` secrets: an `own-stack` secret is read from the job's own
    // environment, and the placement policy keeps production's copy in a gated one.
    const production = githubValues.filter(
      (s) => s.kind === "secret" && s.reaches === "production",
    );
    const allowed = (env: string | undefined, spec: GithubValueSpec) =>
      env !== undefined &&
      (config.gatedEnvironments.includes(env) ||
        (env === config.driftEnvironment && spec.scope === "drift-environment"));
    for (const job of jobs) {
      const read = job.readsAll
        ? production
        : production.filter((spec) => job.secrets.includes(spec.name));
      const denied = read.filter((spec) => !allowed(job.environment, spec));
      if (denied.length === 0) continue;
      const names = denied.map((s) => s.name).join(", ");
      const reads = job.readsAll
        ? `reads every secret (${job.readsAll}), among them ${names}`
        : `reads ${names}`;
      const where =
        job.environment === undefined
          ? "but runs in no environment, so a run of this workflow on any branch can read it"
          : job.environment.includes("${{")
            ? `in environment "${job.environment}", an expression that cannot be checked before the run`
            : job.environment === config.driftEnvironment
              ? `in the drift environment "${job.environment}", which holds only the drift job's read-only token`
              : `in environment "${job.environment}", which is not approval-gated (pack config gatedEnvironments: ${gatedList(config)})`;
      const driftToo = denied.every((s) => s.scope === "drift-environment")
        ? ` (or "${config.driftEnvironment}")`
        : "";
      reportViolation(
        `${label}: job "${job.job}" of ${file} ${reads} (can read or change production) ${where}; give the job environment "${config.gatedEnvironments[0]}"${driftToo} in ${workflowSource(content, file)}, or stop reading the secret there`,
      );
    }
  },
};

/** Every policy of the pack, in the order of DESIGN's rule. */
export const policies: readonly (ResourceValidationPolicy | StackValidationPolicy)[] = [
  gatedEnvironmentApproval,
  productionSecretPlacement,
  gatedHostKeyPinned,
  gatedNoPullRequestPreviews,
  workflowSecretEnvironment,
];
