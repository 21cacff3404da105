import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";

/** GitHub Actions' app id: a required check must come from it, not from a same-named status. */
export const GITHUB_ACTIONS_APP_ID = 15368;

export interface DefaultBranchRulesetArgs {
  readonly repository: string;
  /** Check contexts to require, computed from the PR pipeline's model. */
  readonly requiredContexts: readonly string[];
  readonly enforcement: "active" | "evaluate" | "disabled";
  readonly requiredApprovals: number;
}

/**
 * The ruleset's inputs: on the default branch, changes arrive through pull requests whose
 * required checks are exactly the PR pipeline's, reported by GitHub Actions, on a branch that
 * is up to date; the branch can be neither deleted nor force-pushed.
 */
export function rulesetInputs(args: DefaultBranchRulesetArgs): github.RepositoryRulesetArgs {
  if (args.requiredContexts.length === 0) {
    throw new Error("the default branch ruleset needs at least one required check");
  }
  return {
    repository: args.repository,
    name: "default branch (clicky-delivery)",
    target: "branch",
    enforcement: args.enforcement,
    conditions: { refName: { includes: ["~DEFAULT_BRANCH"], excludes: [] } },
    rules: {
      deletion: true,
      nonFastForward: true,
      pullRequest: {
        requiredApprovingReviewCount: args.requiredApprovals,
        dismissStaleReviewsOnPush: true,
      },
      requiredStatusChecks: {
        strictRequiredStatusChecksPolicy: true,
        requiredChecks: args.requiredContexts.map((context) => ({
          context,
          integrationId: GITHUB_ACTIONS_APP_ID,
        })),
      },
    },
  };
}

/** The default branch's ruleset (repository-owning stack only). */
export class DefaultBranchRuleset extends pulumi.ComponentResource {
  readonly ruleset: github.RepositoryRuleset;

  constructor(
    name: string,
    args: DefaultBranchRulesetArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("clicky:github:DefaultBranchRuleset", name, {}, opts);
    this.ruleset = new github.RepositoryRuleset(name, rulesetInputs(args), { parent: this });
    this.registerOutputs({ rulesetId: this.ruleset.rulesetId });
  }
}
