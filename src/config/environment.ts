import { z } from "zod";
import { baseUrl, githubLogin, githubTeamSlug, refNamePattern } from "./patterns";

/** GitHub's own limits for environment protection rules. */
export const MAX_REVIEWERS = 6;
export const MAX_WAIT_TIMER_MINUTES = 43_200;

const reviewersSchema = z.strictObject({
  /** GitHub logins; resolved to numeric ids at deploy time. */
  users: z.array(githubLogin).default([]),
  /** Team slugs of the repository owner's organization; resolved to numeric ids. */
  teams: z.array(githubTeamSlug).default([]),
});

const approvalSchema = z.strictObject({
  reviewers: reviewersSchema.default({ users: [], teams: [] }),
  /** Whoever triggered the deploy cannot approve it. */
  preventSelfReview: z.boolean().default(false),
  /** Delay before a job in this environment may start, in minutes. */
  waitTimerMinutes: z.number().int().min(0).max(MAX_WAIT_TIMER_MINUTES).default(0),
  /** Whether repository admins may skip the rules above. Off unless asked for. */
  adminsBypass: z.boolean().default(false),
});

/**
 * `clicky-delivery:environment`: the GitHub deployment environment this stack deploys to.
 *
 * The deployment policy lists the branch and tag patterns allowed to deploy; at least one is
 * required, since an environment open to every branch lets any pushed branch deploy.
 */
export const environmentConfigSchema = z
  .strictObject({
    /** Environment name as GitHub shows it, and as workflow jobs reference it. */
    name: z
      .string()
      .regex(
        /^[A-Za-z0-9._-]{1,255}$/,
        "expected an environment name (letters, digits, '.', '-', '_')",
      ),
    /** Public base URL of the app in this environment (no trailing slash). */
    url: baseUrl,
    approval: approvalSchema.default({
      reviewers: { users: [], teams: [] },
      preventSelfReview: false,
      waitTimerMinutes: 0,
      adminsBypass: false,
    }),
    /** Branch name patterns allowed to deploy, e.g. `main`. */
    deploymentBranches: z.array(refNamePattern).default(["main"]),
    /** Tag name patterns allowed to deploy, e.g. `v*.*.*`. */
    deploymentTags: z.array(refNamePattern).default([]),
  })
  .superRefine((env, ctx) => {
    const { users, teams } = env.approval.reviewers;
    if (users.length + teams.length > MAX_REVIEWERS) {
      ctx.addIssue({
        code: "custom",
        path: ["approval", "reviewers"],
        message: `GitHub allows at most ${MAX_REVIEWERS} reviewers (users and teams together), got ${users.length + teams.length}`,
      });
    }
    for (const [list, key, normalize] of [
      [users, "users", (u: string) => u.toLowerCase()],
      [teams, "teams", (t: string) => t],
    ] as const) {
      const seen = new Set<string>();
      list.forEach((item, index) => {
        if (seen.has(normalize(item))) {
          ctx.addIssue({
            code: "custom",
            path: ["approval", "reviewers", key, index],
            message: `"${item}" is listed twice`,
          });
        }
        seen.add(normalize(item));
      });
    }
    if (env.approval.preventSelfReview && users.length + teams.length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["approval", "preventSelfReview"],
        message: "needs at least one reviewer in approval.reviewers",
      });
    }
    if (env.deploymentBranches.length + env.deploymentTags.length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["deploymentBranches"],
        message:
          "list at least one branch or tag pattern: an environment open to every branch lets any pushed branch deploy",
      });
    }
  });

export type EnvironmentConfig = z.infer<typeof environmentConfigSchema>;
