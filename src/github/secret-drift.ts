import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";

/**
 * A GitHub Actions secret changed outside Pulumi (in the UI, with `gh secret set`) is invisible
 * to the github provider's diff. Its Read stores the new time in `remoteUpdatedAt` but keeps
 * `updatedAt`, and its CustomizeDiff looks for a change of `remoteUpdatedAt` between the
 * refreshed state and the plan, which is never there since the program does not set it
 * (terraform-provider-github v6.13.0 resource_github_actions_environment_secret.go `Read`,
 * util_diff.go `diffSecret`). So `pulumi preview --refresh --expect-no-changes` passes and
 * `pulumi up` never puts the configured value back.
 *
 * The program therefore compares, before it registers the secrets, GitHub's own "last updated"
 * time of each secret (one list call per scope) with the time Pulumi last wrote it (recorded in
 * the stack's `githubSecrets` output). A secret updated after Pulumi wrote it gets a new
 * `replacementTrigger`, so the plan shows a replace (the drift check fails, naming it) and
 * `up` writes the configured value again. Secrets are replaced delete-first: the new one has
 * the same name, and a create-before-delete replace would delete the value it just wrote.
 */

/** The stack output that records, per secret resource, when Pulumi wrote it and its trigger. */
export const SECRETS_OUTPUT = "githubSecrets";

const secretRecordSchema = z.object({
  writtenAt: z.string().optional(),
  trigger: z.string(),
});
export type SecretRecord = z.infer<typeof secretRecordSchema>;
export type SecretRecords = Readonly<Record<string, SecretRecord>>;

/** The records in a stack output value; anything unreadable counts as no record. */
export function parseSecretRecords(value: unknown): SecretRecords {
  const parsed = z.record(z.string(), secretRecordSchema).safeParse(value);
  return parsed.success ? parsed.data : {};
}

/** The trigger of a secret never rewritten for drift. */
export const INITIAL_TRIGGER = "written-by-pulumi";

/**
 * GitHub's and the provider's clocks: a secret whose "updated" time is within this much of the
 * time Pulumi recorded is the value Pulumi wrote (the provider reads the time back right after
 * its write, and GitHub's API is eventually consistent).
 */
export const CLOCK_SLACK_MS = 60_000;

/** What the program decides for one secret. */
export interface SecretDecision {
  readonly trigger: string;
  /** Set when GitHub says the secret changed after Pulumi wrote it. */
  readonly drift?: { readonly changedAt: string; readonly writtenAt: string };
}

/**
 * The trigger of a secret this run, from its record and GitHub's "updated" time of it.
 *
 * @example secretDecision({ writtenAt: "2026-11-01 10:00:00 +0000 UTC", trigger: "written-by-pulumi" },
 *   "2026-11-20 08:00:00 +0000 UTC") // { trigger: "rewritten-after:2026-11-20 08:00:00 +0000 UTC", drift: {...} }
 */
export function secretDecision(
  record: SecretRecord | undefined,
  liveUpdatedAt: string | undefined,
): SecretDecision {
  const trigger = record?.trigger ?? INITIAL_TRIGGER;
  const writtenAt = record?.writtenAt;
  if (writtenAt === undefined || writtenAt === "" || liveUpdatedAt === undefined) {
    return { trigger };
  }
  const live = parseGithubTime(liveUpdatedAt);
  const written = parseGithubTime(writtenAt);
  const changed =
    live !== undefined && written !== undefined
      ? live - written > CLOCK_SLACK_MS
      : liveUpdatedAt !== writtenAt;
  if (!changed) return { trigger };
  return {
    trigger: `rewritten-after:${liveUpdatedAt}`,
    drift: { changedAt: liveUpdatedAt, writtenAt },
  };
}

/**
 * A time as the github provider prints it (Go's `time.Time.String()`, e.g.
 * `2026-11-20 08:00:00 +0000 UTC`) or ISO 8601, in milliseconds; `undefined` if neither.
 */
export function parseGithubTime(text: string): number | undefined {
  const go = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) ([+-]\d\d)(\d\d)(?: \S+)?$/.exec(text);
  const iso = go ? `${go[1]}T${go[2]}${go[3]}:${go[4]}` : text;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The secrets of one scope with their "updated" times, as GitHub lists them. */
export type LiveSecretTimes = ReadonlyMap<string, string>;

/**
 * Lists the secrets of a scope (the repository, or one of its environments) with GitHub's
 * "updated" time of each. A missing environment or repository is an empty list (the refresh
 * then drops the secrets from state and the run recreates them); any other error stops the run:
 * read as "nothing changed", an outage would hide drift.
 */
export async function listSecretTimes(
  scope: { readonly repository: string; readonly environment?: string },
  opts: pulumi.InvokeOptions,
): Promise<LiveSecretTimes> {
  try {
    const secrets =
      scope.environment === undefined
        ? (await github.getActionsSecrets({ name: scope.repository }, opts)).secrets
        : (
            await github.getActionsEnvironmentSecrets(
              { name: scope.repository, environment: scope.environment },
              opts,
            )
          ).secrets;
    return new Map((secrets ?? []).map((s) => [s.name, s.updatedAt]));
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    if (/\b404\b/.test(text)) return new Map();
    const where =
      scope.environment === undefined
        ? `repository ${scope.repository}`
        : `environment ${scope.environment} of ${scope.repository}`;
    throw new pulumi.RunError(
      `could not list the Actions secrets of ${where} to check them for changes made outside Pulumi: ${text}`,
    );
  }
}

/** The record key of a secret: its scope and name, e.g. `environment:production/PULUMI_ACCESS_TOKEN`. */
export function secretKey(
  scope: { readonly repository: string; readonly environment?: string },
  name: string,
): string {
  return scope.environment === undefined
    ? `repository/${name}`
    : `environment:${scope.environment}/${name}`;
}

/**
 * The decisions for the secrets of one scope. GitHub is asked only when Pulumi has written one
 * of them before (on a first run there is nothing to compare, and the environment may not
 * exist yet). Each drift is logged as a warning that names the secret and both times.
 */
export async function decideSecrets(
  scope: { readonly repository: string; readonly environment?: string },
  names: readonly string[],
  records: SecretRecords,
  opts: pulumi.InvokeOptions,
): Promise<ReadonlyMap<string, SecretDecision>> {
  const recorded = names.some((n) => records[secretKey(scope, n)]?.writtenAt);
  const live = recorded ? await listSecretTimes(scope, opts) : new Map<string, string>();
  const decisions = new Map<string, SecretDecision>();
  for (const name of names) {
    const decision = secretDecision(records[secretKey(scope, name)], live.get(name));
    if (decision.drift) {
      const what =
        scope.environment === undefined
          ? `repository secret ${name}`
          : `secret ${name} of environment ${scope.environment}`;
      pulumi.log.warn(
        `drift: the GitHub ${what} was changed outside Pulumi at ${decision.drift.changedAt} (Pulumi wrote it at ${decision.drift.writtenAt}); this update writes the configured value again`,
      );
    }
    decisions.set(name, decision);
  }
  return decisions;
}
