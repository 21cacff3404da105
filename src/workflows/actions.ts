/**
 * Every action the workflows use, pinned in this one module. A commit SHA cannot be moved by
 * whoever controls the action's repository, a tag can; the version stays beside it as a
 * comment in the generated file. Only `pulumi/actions` is pinned to an exact tag: its release
 * commit could not be verified here, and an unverified SHA is worse than an honest tag.
 */
export interface ActionRef {
  /** `owner/repo` (or `owner/repo/path`). */
  readonly action: string;
  /** Full commit SHA, or an exact release tag where no SHA could be verified. */
  readonly ref: string;
  /** The release the ref is, written as a comment after a SHA. */
  readonly version: string;
}

function pin(action: string, ref: string, version: string): ActionRef {
  return { action, ref, version };
}

export const actions = {
  checkout: pin("actions/checkout", "11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
  setupPython: pin("actions/setup-python", "a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
  setupNode: pin("actions/setup-node", "49933ea5288caeca8642d1e84afbd3f7d6820020", "v4.4.0"),
  codecov: pin("codecov/codecov-action", "18283e04ce6e62d37312384ff67231eb8fd56d24", "v5.4.3"),
  setupBuildx: pin(
    "docker/setup-buildx-action",
    "e468171a9de216ec08956ac3ada2f0791b6bd435",
    "v3.11.1",
  ),
  dockerLogin: pin("docker/login-action", "74a5d142397b4f367a81961eba4e8cd7edddf772", "v3.4.0"),
  buildPush: pin("docker/build-push-action", "263435318d21b8e681c14492fe198d362a7d2c83", "v6.18.0"),
  pulumi: pin("pulumi/actions", "v6.6.1", "v6.6.1"),
  pulumiAuth: pin("pulumi/auth-actions", "141415910c3beb54e03b48e9057c204c97b956f2", "v2.1.0"),
} as const satisfies Record<string, ActionRef>;

/**
 * Command-line tools the jobs install by exact version, so a new release cannot change what a
 * check means overnight (a new ruff reformats; a new eas-cli changes flags).
 */
export const tools = {
  ruff: "0.17.5",
  pipAudit: "2.10.1",
  easCli: "24.8.0",
} as const;

/** `owner/repo@ref`, as `uses:` takes it. */
export function actionUses(ref: ActionRef): string {
  return `${ref.action}@${ref.ref}`;
}

/** Whether the ref is a full commit SHA (the alternative is an exact tag). */
export function isShaPinned(ref: ActionRef): boolean {
  return /^[0-9a-f]{40}$/.test(ref.ref);
}
