import { parse } from "yaml";
import { githubValues } from "../../src/config/catalog";
import type { RecordedResource } from "../../src/synth/engine";
import { RESOURCE_TYPES } from "../../src/synth/resource-types";
import { reveal } from "../../src/synth/wire";

const {
  environment: ENV,
  deploymentPolicy: POLICY,
  environmentSecret: ENV_SECRET,
  repositorySecret: REPO_SECRET,
  repositoryFile: FILE,
  deploymentSettings: SETTINGS,
} = RESOURCE_TYPES;

/** One way a job can read a credential, from the synthesized resources and workflow files. */
export interface CredentialPath {
  readonly secret: string;
  /** `repository`, or the environment that holds it. */
  readonly scope: string;
  /** The stack that manages the secret (and so decides who may read it). */
  readonly managedBy: string;
  readonly reachesProduction: boolean;
  readonly branches: readonly string[];
  readonly tags: readonly string[];
  readonly reviewers: number;
  readonly preventSelfReview: boolean;
  readonly adminsBypass: boolean;
  /** `file: job` of every job that reads it. */
  readonly readers: readonly string[];
  /** Write permissions the reading jobs hold, and whether they run `pulumi up` or a deployment. */
  readonly readersChange: readonly string[];
}

export interface StackResources {
  readonly stack: string;
  readonly resources: readonly RecordedResource[];
}

/**
 * Every path to every managed secret: where it lives, which branches and tags can run a job
 * there, who must approve, and which generated jobs read it. Built from the registrations of
 * all stacks (the workflow files come from the repository-owning one).
 */
export function credentialPaths(
  stacks: readonly StackResources[],
  productionEnvironment: string,
): CredentialPath[] {
  const all = stacks.flatMap((s) => s.resources.map((r) => ({ stack: s.stack, r })));
  const input = (r: RecordedResource, key: string) => reveal(r.inputs[key]);
  const jobs = all
    .filter(({ r }) => r.type === FILE && String(input(r, "file")).startsWith(".github/workflows/"))
    .flatMap(({ r }) => {
      const doc = parse(String(input(r, "content"))) as {
        jobs: Record<
          string,
          {
            environment?: string | { name: string };
            permissions?: Record<string, string>;
            steps?: { run?: string }[];
          }
        >;
      };
      return Object.entries(doc.jobs).map(([id, job]) => ({
        name: `${String(input(r, "file")).replace(".github/workflows/", "")}: ${id}`,
        environment: typeof job.environment === "string" ? job.environment : job.environment?.name,
        text: JSON.stringify(job),
        writes: Object.entries(job.permissions ?? {})
          .filter(([, level]) => level === "write")
          .map(([scope]) => `${scope}: write`),
        // A command line, not a message that names one.
        changes: (job.steps ?? []).some((s) =>
          /^\s*pulumi (up|deployment run)\b/m.test(s.run ?? ""),
        ),
      }));
    });
  const secrets = all.filter(({ r }) => r.type === ENV_SECRET || r.type === REPO_SECRET);
  return secrets.map(({ stack, r }) => {
    const name = String(input(r, "secretName"));
    const environment = r.type === ENV_SECRET ? String(input(r, "environment")) : undefined;
    const spec = githubValues.find((v) => v.name === name);
    const reachesProduction =
      spec?.reaches === "production" ||
      (spec?.reaches === "own-stack" && environment === productionEnvironment) ||
      spec === undefined;
    const env = all.find(
      ({ r: e }) => e.type === ENV && input(e, "environment") === environment,
    )?.r;
    const policies = all
      .filter(({ r: p }) => p.type === POLICY && input(p, "environment") === environment)
      .map(({ r: p }) => p);
    const reviewers = (
      (env ? input(env, "reviewers") : []) as { users?: unknown[]; teams?: unknown[] }[]
    ).reduce((n, group) => n + (group.users?.length ?? 0) + (group.teams?.length ?? 0), 0);
    const readers = jobs.filter(
      (j) =>
        new RegExp(`secrets\\.${name}\\b|secrets: inherit`).test(j.text) &&
        (environment === undefined || j.environment === environment),
    );
    return {
      secret: name,
      scope: environment ?? "repository",
      managedBy: stack,
      reachesProduction,
      branches:
        environment === undefined
          ? ["*"]
          : policies
              .map((p) => input(p, "branchPattern"))
              .filter(Boolean)
              .map(String),
      tags:
        environment === undefined
          ? ["*"]
          : policies
              .map((p) => input(p, "tagPattern"))
              .filter(Boolean)
              .map(String),
      reviewers,
      preventSelfReview: env ? input(env, "preventSelfReview") === true : false,
      adminsBypass: env ? input(env, "canAdminsBypass") !== false : true,
      readers: readers.map((j) => j.name),
      readersChange: readers.flatMap((j) => [
        ...j.writes,
        ...(j.changes ? ["runs pulumi up or a deployment"] : []),
      ]),
    };
  });
}

/**
 * Why a path breaks the rule (docs/security.md, "Who can read what"), or `undefined` when it
 * holds: a credential that can read or change production is readable only by jobs of an
 * environment gated by production's reviewers (managed by the production stack, so changing the
 * gate needs an approval), or of an environment limited to the default branch whose jobs change
 * nothing.
 */
export function gateViolation(
  path: CredentialPath,
  ctx: { readonly productionStack: string; readonly defaultBranch: string },
): string | undefined {
  if (!path.reachesProduction) return undefined;
  if (path.scope === "repository")
    return "a repository secret: every branch's workflows can read it";
  if (path.managedBy !== ctx.productionStack) {
    return `managed by stack ${path.managedBy}, whose runs need no production approval`;
  }
  const gated = path.reviewers > 0 && path.preventSelfReview && !path.adminsBypass;
  if (gated) return undefined;
  const defaultBranchOnly =
    path.branches.length === 1 && path.branches[0] === ctx.defaultBranch && path.tags.length === 0;
  if (!defaultBranchOnly) {
    return `environment ${path.scope} has no approval gate and allows ${[...path.branches, ...path.tags.map((t) => `tag ${t}`)].join(", ") || "every branch"}`;
  }
  if (path.readersChange.length > 0) {
    return `environment ${path.scope} has no approval gate and its jobs change things (${[...new Set(path.readersChange)].join(", ")})`;
  }
  return undefined;
}

/** Whether a stack's Pulumi Deployments settings preview pull requests. */
export function previewsOfPullRequests(resources: readonly RecordedResource[]): boolean {
  return resources
    .filter((r) => r.type === SETTINGS)
    .some(
      (r) =>
        (reveal(r.inputs.vcs) as { previewPullRequests?: boolean }).previewPullRequests === true,
    );
}
