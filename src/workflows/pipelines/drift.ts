import { DRIFT_ENVIRONMENT } from "../../config/catalog";
import { environmentConfigSchema } from "../../config/environment";
import { WorkflowBuilder } from "../builder";
import { expr } from "../expr";
import type { RunStep, Workflow } from "../model";
import type { PipelineSettings } from "../settings";
import {
  inProgram,
  loginEnv,
  loginPermissions,
  loginSteps,
  POLICY_PACK,
  programSteps,
} from "../steps";

/** Id of the preview step, whose outcome decides whether the approval check runs. */
const PREVIEW_STEP = "preview";

/**
 * Drift detection (`drift.yml`), on a schedule and by hand, per stack, two checks that each
 * say what they saw:
 *
 * 1. "Preview with refresh (program against GitHub and hosts)": `pulumi preview --refresh
 *    --expect-no-changes --diff`, failing when GitHub or a host no longer matches the program;
 * 2. "Check the approval rules in GitHub": the environment's required reviewers, self-review,
 *    admin bypass and wait timer read straight from GitHub and compared with the stack's
 *    config ({@link approvalRulesScript}), because the refresh cannot see one drift that
 *    matters most: the removal of the last reviewer.
 *
 * The second runs even when the first failed (not when the run was cancelled or the preview
 * never ran), so one run reports both kinds of drift; either failing fails the job.
 *
 * The job runs in no environment: a scheduled job in `production` would wait for a reviewer.
 * Its credentials are the repository secret `PULUMI_DRIFT_TOKEN`, a Pulumi token that can read
 * (and so preview) the stacks but never update them, and the workflow's `GITHUB_TOKEN` with
 * `actions: read`, the permission GitHub documents for GET /repos/{owner}/{repo}/environments/
 * {environment_name} (github/docs, src/github-apps/data/fpt-2022-11-28/
 * fine-grained-pat-permissions.json: "Actions" repository permission, read). The deploy tokens
 * stay in their environments.
 */
export function driftPipeline(settings: PipelineSettings): Workflow {
  const pulumiEnv = { ...loginEnv(settings, "PULUMI_DRIFT_TOKEN"), STACK: expr.matrix("stack") };
  const preview: RunStep = {
    name: "Preview with refresh (program against GitHub and hosts)",
    id: PREVIEW_STEP,
    ...inProgram(settings),
    env: pulumiEnv,
    run: `pulumi preview --stack "$STACK" --refresh --expect-no-changes --diff --non-interactive ${POLICY_PACK}`,
  };
  const approvals: RunStep = {
    name: "Check the approval rules in GitHub",
    if: expr.and(expr.not(expr.cancelled()), expr.ne(expr.stepOutcome(PREVIEW_STEP), "skipped")),
    ...inProgram(settings),
    env: {
      ...pulumiEnv,
      GH_TOKEN: expr.github("token"),
      REPOSITORY: expr.github("repository"),
    },
    run: approvalRulesScript(),
  };
  return new WorkflowBuilder({
    file: "drift.yml",
    name: "Drift Detection",
    source: "src/workflows/pipelines/drift.ts",
    on: { schedule: [settings.driftCron], workflowDispatch: {} },
    permissions: {},
    concurrency: { group: "drift", cancelInProgress: false },
  })
    .addJob("drift", {
      name: "Drift",
      runsOn: "ubuntu-latest",
      timeoutMinutes: 30,
      // The drift token (Stack Read on every stack, so it decrypts their config) is a secret of
      // this environment only: default branch only, no reviewers (a scheduled job would wait
      // for one), managed by the approval-gated stack. A workflow pushed on any other branch
      // cannot read it.
      environment: { name: DRIFT_ENVIRONMENT },
      permissions: { contents: "read", actions: "read", ...loginPermissions(settings) },
      strategy: {
        failFast: false,
        matrix: { stack: [settings.staging.stack, settings.production.stack] },
      },
      steps: [...programSteps(settings), ...loginSteps(settings, "drift"), preview, approvals],
    })
    .build();
}

/**
 * The approval defaults of `clicky-delivery:environment.approval`, from its schema: a stack
 * file may leave any of these keys out, and the check must expect what the program applies.
 */
function approvalDefaults(): {
  preventSelfReview: boolean;
  waitTimerMinutes: number;
  adminsBypass: boolean;
} {
  return environmentConfigSchema.shape.approval.parse(undefined);
}

/**
 * Compares the stack's environment config (`pulumi config get --path environment --json`,
 * which the drift token can read) with the environment as GitHub has it
 * (`gh api repos/$REPOSITORY/environments/<name>`) and prints one `::error::` line per
 * difference: reviewer users and teams (missing and unexpected, by login or slug, ignoring
 * case), prevent self-review, admin bypass and wait timer. A stack with no reviewers expects
 * no `required_reviewers` rule at all.
 *
 * Why this exists: the github provider reads an environment's reviewers only while a
 * `required_reviewers` protection rule exists (integrations/terraform-provider-github#3609),
 * so after someone removes the last reviewer in GitHub's settings `pulumi preview --refresh`
 * reports no change, and production would deploy without approval unseen.
 *
 * Reads `$STACK`, `$REPOSITORY` and `$GH_TOKEN`; needs `pulumi`, `gh` and `jq`.
 */
export function approvalRulesScript(): string {
  const d = approvalDefaults();
  // `or_default` instead of jq's `//`, which also replaces `false`.
  const jqProgram = `def or_default(d): if . == null then d else . end;
def names: map(ascii_downcase) | unique;
def show: if length == 0 then "none" else join(", ") end;
def who($users; $teams): "users [\\($users | show)], teams [\\($teams | show)]";
($want.approval // {}) as $a
| ($a.reviewers.users // [] | names) as $wu
| ($a.reviewers.teams // [] | names) as $wt
| ([$live.protection_rules[]? | select(.type == "required_reviewers")] | first) as $rule
| ([$rule.reviewers[]? | select(.type == "User") | .reviewer.login] | names) as $gu
| ([$rule.reviewers[]? | select(.type == "Team") | .reviewer.slug] | names) as $gt
| (([$wu - $gu | .[] | "user \\(.)"] + [$wt - $gt | .[] | "team \\(.)"]) | show) as $missing
| (([$gu - $wu | .[] | "user \\(.)"] + [$gt - $wt | .[] | "team \\(.)"]) | show) as $extra
| ($wu + $wt | length > 0) as $expects_rule
| (
    if $expects_rule and $rule == null then
      "required reviewers: the stack expects \\(who($wu; $wt)), but GitHub has no required_reviewers rule (missing: \\($missing)); pulumi up cannot put a removed rule back (the github provider does not read reviewers without the rule: integrations/terraform-provider-github#3609), so add them again in Settings > Environments > \\($want.name) > Required reviewers"
    elif ($expects_rule | not) and $rule != null then
      "required reviewers: the stack expects none, but GitHub requires \\(who($gu; $gt))"
    elif $wu != $gu or $wt != $gt then
      "required reviewers: the stack expects \\(who($wu; $wt)), GitHub has \\(who($gu; $gt)) (missing in GitHub: \\($missing); not in the stack config: \\($extra))"
    else empty end
  ),
  (
    if $expects_rule and $rule != null then
      ($a.preventSelfReview | or_default(${d.preventSelfReview})) as $w
      | ($rule.prevent_self_review | or_default(false)) as $g
      | if $w != $g then "prevent self-review: the stack expects \\($w), GitHub has \\($g)" else empty end
    else empty end
  ),
  (
    ($a.adminsBypass | or_default(${d.adminsBypass})) as $w
    | ($live.can_admins_bypass | or_default(true)) as $g
    | if $w != $g then "admins bypass (can_admins_bypass): the stack expects \\($w), GitHub has \\($g)" else empty end
  ),
  (
    ($a.waitTimerMinutes | or_default(${d.waitTimerMinutes})) as $w
    | ([$live.protection_rules[]? | select(.type == "wait_timer") | .wait_timer] | first | or_default(0)) as $g
    | if $w != $g then "wait timer: the stack expects \\($w) minutes, GitHub has \\($g)" else empty end
  )`;
  return `set -euo pipefail
want=$(pulumi config get --stack "$STACK" --path environment --json | jq -c '.objectValue // (.value | fromjson)')
env_name=$(jq -r '.name' <<<"$want")
if ! live=$(gh api "repos/$REPOSITORY/environments/$env_name"); then
  echo "::error::stack $STACK: could not read environment \\"$env_name\\" of $REPOSITORY from GitHub (see the error above); pulumi up --stack $STACK creates it"
  exit 1
fi
# shellcheck disable=SC2016 # $want and $live are jq's variables, not the shell's
drift=$(jq -rn --argjson want "$want" --argjson live "$live" '${jqProgram}')
if [[ -z "$drift" ]]; then
  echo "environment \\"$env_name\\" of $REPOSITORY: approval rules match stack $STACK"
  exit 0
fi
while IFS= read -r line; do
  echo "::error::environment \\"$env_name\\" of $REPOSITORY drifted from stack $STACK: $line"
done <<<"$drift"
echo "::error::run pulumi up --stack $STACK to restore the other approval rules (or change the stack's environment.approval to what GitHub has)"
exit 1`;
}
