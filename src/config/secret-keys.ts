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
  /**
   * A JSON document kept whole (a key file). Pulumi hands the program every config value as
   * text and cannot tell a JSON string set with `pulumi config set` from an object set with
   * `--path`, so it arrives parsed; it is passed on as JSON text again.
   */
  readonly jsonDocument?: boolean;
}

export interface SecretRequirementContext {
  readonly stack: string;
  readonly ownsRepository: boolean;
  /** The stack's environment requires reviewers (it holds the production-reaching secrets). */
  readonly approvalGated: boolean;
  /** Jobs log in to Pulumi with stored tokens, not OIDC (`deployments.auth`). */
  readonly tokenAuth: boolean;
  /** Release builds are uploaded to the stores (`workflows.mobile.submit`). */
  readonly mobileSubmit?: boolean;
  /** Deploy jobs post their result to a chat webhook (`workflows.notify`). */
  readonly notify?: boolean;
  /** The app's own secrets the stack declares (`deploy.app.secrets`). */
  readonly appSecretNames?: readonly string[];
  /** PostgreSQL and Redis are outside the stack (`deploy.accessories.external`). */
  readonly externalDatabase?: boolean;
}

/** Store credentials exist only on the approval-gated stack, and only when builds are uploaded. */
function storeUploads({ approvalGated, mobileSubmit }: SecretRequirementContext): boolean {
  return approvalGated && mobileSubmit === true;
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
    key: "ascApiKeyP8",
    description:
      "App Store Connect API key for TestFlight uploads: the .p8 file's contents (App Store Connect > Users and Access > Integrations); a secret of the approval-gated environment; only with workflows.mobile.submit",
    requiredWhen: storeUploads,
  },
  {
    key: "ascApiKeyId",
    description:
      "The App Store Connect API key's Key ID (10 characters, beside the key in App Store Connect); only with workflows.mobile.submit",
    requiredWhen: storeUploads,
  },
  {
    key: "ascApiKeyIssuerId",
    description:
      "The App Store Connect API key's Issuer ID (a UUID, above the keys in App Store Connect); only with workflows.mobile.submit",
    requiredWhen: storeUploads,
  },
  {
    key: "googleServiceAccountKey",
    jsonDocument: true,
    description:
      "Google Play service account key for internal-track uploads: the JSON key file's contents (Google Cloud > IAM > service accounts, given access in Play Console > Users and permissions); only with workflows.mobile.submit",
    requiredWhen: storeUploads,
  },
  {
    key: "deployWebhookUrl",
    description:
      "Chat webhook URL the deploy jobs post each deploy's result to (a Slack incoming webhook, or any that takes Slack's {\"text\": ...} payload); each stack its own; only with workflows.notify",
    requiredWhen: ({ notify }) => notify === true,
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
