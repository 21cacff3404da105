import type { DeploymentsConfig } from "./deployments";
import type { EnvironmentConfig } from "./environment";

/** What decides which catalog entries the stacks use. */
export interface GithubValueContext {
  readonly auth: DeploymentsConfig["auth"];
  /** Release builds are uploaded to the stores (`workflows.mobile.submit`). */
  readonly mobileSubmit: boolean;
  /** Deploy jobs post their result to a chat webhook (`workflows.notify`). */
  readonly notify?: boolean;
}

/** The context of a stack's config. */
export function githubValueContext(config: {
  readonly deployments: Pick<DeploymentsConfig, "auth">;
  readonly workflows: { readonly mobile: { readonly submit: boolean }; readonly notify: boolean };
}): GithubValueContext {
  return {
    auth: config.deployments.auth,
    mobileSubmit: config.workflows.mobile.submit,
    notify: config.workflows.notify,
  };
}

/** Pulumi tokens stored in GitHub exist only when the jobs do not log in with OIDC. */
function tokenAuth(ctx: GithubValueContext): boolean {
  return ctx.auth === "tokens";
}

/** Store credentials exist only when release builds are uploaded. */
function storeUploads(ctx: GithubValueContext): boolean {
  return ctx.mobileSubmit;
}

/**
 * Every GitHub Actions secret and variable this program manages: one table that feeds the
 * resources, the "Secrets and variables" table of docs/secrets.md, the workflow cross-checks and the
 * policy pack.
 *
 * Scope follows who may read the value (docs/security.md, "Who can read what"): a credential that can
 * read or change production is readable only by jobs of an environment gated by production's
 * reviewers, or of the drift environment, limited to the default branch and changing nothing.
 * - `repository`: every workflow of the repository, on any branch (set by the repository-owning
 *   stack): only values that reach nothing;
 * - `environment`: each stack's own environment (each stack sets its own value);
 * - `gated-environment`: only the environment of an approval-gated stack (production);
 * - `drift-environment`: the drift environment ({@link DRIFT_ENVIRONMENT}: default branch only,
 *   no reviewers, read-only jobs), managed by the approval-gated stack, so that changing who
 *   can read the value needs production's reviewers.
 */
export type GithubValueScope =
  | "repository"
  | "environment"
  | "gated-environment"
  | "drift-environment";

/**
 * What a value can reach: `production` wherever it is placed (it reads or changes production),
 * `own-stack` the stack whose environment holds it, `nothing` no deploy at all.
 */
export type GithubValueReach = "production" | "own-stack" | "nothing";

/** The environment of the drift workflow's job: default branch only, no reviewers. */
export const DRIFT_ENVIRONMENT = "drift";

/** Whether a stack's environment is approval-gated (production's must be). */
export function isApprovalGated(env: Pick<EnvironmentConfig, "approval">): boolean {
  const { users, teams } = env.approval.reviewers;
  return users.length + teams.length > 0;
}

export interface GithubValueSpec {
  /** Name as workflows reference it: `secrets.NAME` or `vars.NAME`. */
  readonly name: string;
  readonly kind: "secret" | "variable";
  readonly scope: GithubValueScope;
  readonly reaches: GithubValueReach;
  /** Whether the stacks use it (default: always), e.g. a token only without OIDC login. */
  readonly when?: (ctx: GithubValueContext) => boolean;
  /** Why it exists and who reads it. */
  readonly purpose: string;
  /** Where the value comes from in the stack config. */
  readonly source: GithubValueSource;
}

export type GithubValueSource =
  | { readonly kind: "secretKey"; readonly key: string }
  | {
      readonly kind: "config";
      /** Config key path, e.g. `environment.url`. */
      readonly path: string;
      readonly read: (env: EnvironmentConfig) => string;
    };

export const githubValues: readonly GithubValueSpec[] = [
  {
    name: "CODECOV_TOKEN",
    kind: "secret",
    scope: "repository",
    reaches: "nothing",
    purpose: "Coverage upload of the backend and mobile test jobs (codecov-action v4 needs it)",
    source: { kind: "secretKey", key: "codecovToken" },
  },
  {
    name: "EXPO_TOKEN",
    kind: "secret",
    scope: "gated-environment",
    reaches: "production",
    purpose:
      "EAS builds on release tags, OTA updates to the staging branch on main, and the production promote and rollback: it can publish to any branch, production users included, so only jobs of the approval-gated environment see it",
    source: { kind: "secretKey", key: "expoToken" },
  },
  {
    name: "ASC_API_KEY_P8",
    kind: "secret",
    scope: "gated-environment",
    reaches: "production",
    when: storeUploads,
    purpose:
      "Uploads iOS release builds to TestFlight (with ASC_API_KEY_ID and ASC_API_KEY_ISSUER_ID): an App Store Connect API key acts on the app's store listing, so only the approved build job sees it",
    source: { kind: "secretKey", key: "ascApiKeyP8" },
  },
  {
    name: "ASC_API_KEY_ID",
    kind: "secret",
    scope: "gated-environment",
    reaches: "production",
    when: storeUploads,
    purpose: "Key ID of the App Store Connect API key (the iOS build job)",
    source: { kind: "secretKey", key: "ascApiKeyId" },
  },
  {
    name: "ASC_API_KEY_ISSUER_ID",
    kind: "secret",
    scope: "gated-environment",
    reaches: "production",
    when: storeUploads,
    purpose: "Issuer ID of the App Store Connect API key (the iOS build job)",
    source: { kind: "secretKey", key: "ascApiKeyIssuerId" },
  },
  {
    name: "GOOGLE_SERVICE_ACCOUNT_KEY",
    kind: "secret",
    scope: "gated-environment",
    reaches: "production",
    when: storeUploads,
    purpose:
      "Uploads Android release builds to Google Play's internal track: the service account's JSON key, which can release to the app's tracks, so only the approved build job sees it",
    source: { kind: "secretKey", key: "googleServiceAccountKey" },
  },
  {
    name: "DEPLOY_WEBHOOK_URL",
    kind: "secret",
    scope: "environment",
    reaches: "nothing",
    when: (ctx) => ctx.notify === true,
    purpose:
      "The chat webhook each deploy job posts its result to (workflows.notify); it can post to that channel and reaches no deploy. Each stack sets its own environment's, so only that environment's deploy job reads it",
    source: { kind: "secretKey", key: "deployWebhookUrl" },
  },
  {
    name: "PULUMI_ACCESS_TOKEN",
    kind: "secret",
    scope: "environment",
    reaches: "own-stack",
    when: tokenAuth,
    purpose:
      "Lets the environment's deploy job run this stack; only jobs of that environment see it",
    source: { kind: "secretKey", key: "pulumiAccessToken" },
  },
  {
    name: "PULUMI_DRIFT_TOKEN",
    kind: "secret",
    scope: "drift-environment",
    reaches: "production",
    when: tokenAuth,
    purpose:
      "Scheduled drift checks (`pulumi preview --refresh`) of every stack: a Pulumi token with Stack Read, which decrypts the stacks' config, so only the drift job, on the default branch, sees it",
    source: { kind: "secretKey", key: "pulumiDriftToken" },
  },
];

/** The catalog entries the stacks use with this config. */
export function activeGithubValues(
  ctx: GithubValueContext,
  catalog: readonly GithubValueSpec[] = githubValues,
): GithubValueSpec[] {
  return catalog.filter((v) => v.when?.(ctx) ?? true);
}

/** The config key that feeds a value, as docs/secrets.md shows it. */
export function describeSource(source: GithubValueSource): string {
  return source.kind === "secretKey" ? `${source.key} (secret)` : source.path;
}

/**
 * Where each secret of the spec's "Required Secrets" table went. SSH credentials are no longer
 * GitHub secrets at all: Pulumi runs the deploy over SSH, so they live in the stack config.
 */
export const specSecretFates: readonly { readonly spec: string; readonly now: string }[] = [
  { spec: "STAGING_HOST", now: "`deploy.hosts[].host` in `Pulumi.staging.yaml`" },
  { spec: "STAGING_USER", now: "`deploy.hosts[].user` in `Pulumi.staging.yaml`" },
  { spec: "STAGING_SSH_KEY", now: "secret config `sshPrivateKey` of the staging stack" },
  {
    spec: "STAGING_URL",
    now: "`environment.url` in `Pulumi.staging.yaml`; deploy jobs read it from the stack",
  },
  { spec: "PROD_HOST", now: "`deploy.hosts[].host` in `Pulumi.production.yaml`" },
  { spec: "PROD_USER", now: "`deploy.hosts[].user` in `Pulumi.production.yaml`" },
  { spec: "PROD_SSH_KEY", now: "secret config `sshPrivateKey` of the production stack" },
  {
    spec: "PROD_URL",
    now: "`environment.url` in `Pulumi.production.yaml`; deploy jobs read it from the stack",
  },
  {
    spec: "EXPO_TOKEN",
    now: "secret `EXPO_TOKEN` of the production environment (mobile workflows, approved jobs only)",
  },
  { spec: "CODECOV_TOKEN", now: "repository secret `CODECOV_TOKEN` (test jobs)" },
];
