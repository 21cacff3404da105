/**
 * Secret config keys: top-level keys of `Pulumi.<stack>.yaml` that must be set with
 * `pulumi config set --secret`. Their values never appear in a stack file, a command string,
 * a log line or an error message.
 */
export interface SecretKeySpec {
  /** Key without the project namespace, e.g. `codecovToken`. */
  readonly key: string;
  /** What the value is and where to get it (shown when it is missing). */
  readonly description: string;
  /** Whether this stack needs it; `ownsRepository` is true for the repository-owning stack. */
  readonly requiredWhen: (ctx: SecretRequirementContext) => boolean;
  /**
   * For a structured secret (an object of named values, set with `--path`): the names this
   * stack needs. Each is set on its own: `pulumi config set --secret --path '<key>.<name>'`.
   */
  readonly names?: (ctx: SecretRequirementContext) => readonly string[];
}

export interface SecretRequirementContext {
  readonly stack: string;
  readonly ownsRepository: boolean;
  /** The stack's environment requires reviewers (it holds the production-reaching secrets). */
  readonly approvalGated: boolean;
  /** Jobs log in to Pulumi with stored tokens, not OIDC (`deployments.auth`). */
  readonly tokenAuth: boolean;
  /** The app's own secrets the stack declares (`deploy.app.secrets`). */
  readonly appSecretNames?: readonly string[];
}

/** Secrets that feed GitHub secrets (see `catalog.ts`). */
export const githubSecretKeys: readonly SecretKeySpec[] = [
  {
    key: "codecovToken",
    description: "Codecov upload token of the repository (codecov.io > repository settings)",
    requiredWhen: ({ ownsRepository }) => ownsRepository,
  },
  {
    key: "expoToken",
    description:
      "Expo access token for EAS builds and updates (expo.dev > access tokens); a secret of the approval-gated environment",
    requiredWhen: ({ approvalGated }) => approvalGated,
  },
  {
    key: "pulumiAccessToken",
    description:
      "Pulumi access token that may update this stack (app.pulumi.com > access tokens); only with deployments.auth tokens",
    requiredWhen: ({ tokenAuth }) => tokenAuth,
  },
  {
    key: "pulumiDriftToken",
    description:
      "Read-only Pulumi token for the drift workflow: a team token whose team has Stack Read on every stack (app.pulumi.com > teams); set on the approval-gated stack, which manages the drift environment; only with deployments.auth tokens",
    requiredWhen: ({ approvalGated, tokenAuth }) => approvalGated && tokenAuth,
  },
];
