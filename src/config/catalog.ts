import type { EnvironmentConfig } from "./environment";

/**
 * Every GitHub Actions secret and variable this program manages: one table that feeds the
 * resources, the README's "Secrets and variables" table and the workflow cross-checks.
 *
 * Scope follows least privilege: a value only one environment's jobs need is a secret of that
 * environment (each stack sets its own), and only values every pipeline needs are
 * repository-wide (set by the repository-owning stack).
 */
export type GithubValueScope = "repository" | "environment";

export interface GithubValueSpec {
  /** Name as workflows reference it: `secrets.NAME` or `vars.NAME`. */
  readonly name: string;
  readonly kind: "secret" | "variable";
  readonly scope: GithubValueScope;
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
    purpose: "Coverage upload of the backend and mobile test jobs (codecov-action v4 needs it)",
    source: { kind: "secretKey", key: "codecovToken" },
  },
  {
    name: "EXPO_TOKEN",
    kind: "secret",
    scope: "repository",
    purpose: "EAS builds on release tags and OTA updates on main",
    source: { kind: "secretKey", key: "expoToken" },
  },
  {
    name: "PULUMI_ACCESS_TOKEN",
    kind: "secret",
    scope: "environment",
    purpose:
      "Lets the environment's deploy job run this stack; only jobs of that environment see it",
    source: { kind: "secretKey", key: "pulumiAccessToken" },
  },
  {
    name: "PULUMI_DRIFT_TOKEN",
    kind: "secret",
    scope: "repository",
    purpose:
      "Scheduled drift checks (`pulumi preview --refresh`) of every stack; a read-only Pulumi token, so no job needs an environment's approval for it",
    source: { kind: "secretKey", key: "pulumiDriftToken" },
  },
];

/** The config key that feeds a value, as the README shows it. */
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
  { spec: "EXPO_TOKEN", now: "repository secret `EXPO_TOKEN` (mobile workflows)" },
  { spec: "CODECOV_TOKEN", now: "repository secret `CODECOV_TOKEN` (test jobs)" },
];
