import { z } from "zod";
import { cronProblems } from "./cron";
import { branchName } from "./patterns";

/**
 * A five-field cron expression (minute hour day-of-month month day-of-week, UTC), checked
 * field by field with the grammar of GitHub's `schedule` trigger (`./cron.ts`); the same
 * expression is the Pulumi Cloud drift schedule's.
 */
export const cronExpression = z.string().superRefine((cron, ctx) => {
  for (const problem of cronProblems(cron)) {
    ctx.addIssue({ code: "custom", message: `${problem} (in "${cron}")` });
  }
});

/** What each `source` key says, for the message when a `cloud` stack leaves it out. */
const CLOUD_SOURCE_KEYS = [
  ["repository", "the owner/name of the repository that holds this program's Pulumi.yaml"],
  ["directory", 'the folder of Pulumi.yaml inside that repository ("." for its root)'],
] as const;

/**
 * `clicky-delivery:deployments`: how this stack is run, by Pulumi Deployments (Pulumi Cloud)
 * or by `pulumi up` in GitHub Actions against a self-managed backend.
 */
export const deploymentsConfigSchema = z
  .strictObject({
    /**
     * `cloud`: the stack lives in Pulumi Cloud and is run by Pulumi Deployments (settings and
     * drift schedule are resources of this program). `self-managed`: a file/S3/... backend; the
     * workflows run `pulumi up` themselves.
     */
    backend: z.enum(["cloud", "self-managed"]),
    /** Pulumi Cloud organization that owns the stacks (`cloud` only). */
    organization: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "expected a Pulumi organization name")
      .optional(),
    /**
     * Where this program's source lives. Required with backend `cloud`: Pulumi Deployments runs
     * the program from this repository and folder, and would otherwise run the app
     * repository's root, which may not hold this program.
     */
    source: z
      .strictObject({
        /** `owner/name` of the repository holding `Pulumi.yaml` (self-managed: the app's). */
        repository: z
          .string()
          .regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/, "expected owner/name")
          .optional(),
        /** Branch deployments run from; default: `github.defaultBranch`. */
        branch: branchName.optional(),
        /** Folder of `Pulumi.yaml` inside that repository (self-managed default: `.`). */
        directory: z
          .string()
          .regex(
            /^(\.|[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*)$/,
            "expected a relative folder, e.g. infra/delivery",
          )
          .optional(),
      })
      .default({}),
    /** When drift detection runs (UTC). */
    driftCron: cronExpression.default("17 5 * * *"),
    /** Whether detected drift is undone automatically (never in production). */
    driftAutoRemediate: z.boolean().default(false),
    /**
     * How workflow jobs log in to Pulumi Cloud. `oidc` (backend `cloud`, recommended): each job
     * exchanges its GitHub OIDC token for a short-lived team token, granted only to jobs of its
     * environment; no Pulumi token is stored in GitHub. Team tokens need a Pulumi Cloud edition
     * that has them (Enterprise), which the program cannot see, hence not the default.
     * `tokens` (default): long-lived team tokens as environment secrets (`pulumiAccessToken`,
     * `pulumiDriftToken`); the only choice for a self-managed backend.
     */
    auth: z.enum(["oidc", "tokens"]).optional(),
  })
  .superRefine((value, ctx) => {
    if (value.backend === "cloud" && value.organization === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["organization"],
        message: "is required when backend is cloud (your Pulumi Cloud organization)",
      });
    }
    if (value.backend !== "cloud" && value.auth === "oidc") {
      ctx.addIssue({
        code: "custom",
        path: ["auth"],
        message:
          'is "oidc", which exchanges GitHub tokens with Pulumi Cloud: it needs backend "cloud"; use "tokens"',
      });
    }
    if (value.backend === "cloud") {
      for (const [key, what] of CLOUD_SOURCE_KEYS) {
        if (value.source[key] === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["source", key],
            message: `is required with backend "cloud": ${what}`,
          });
        }
      }
    }
  })
  .transform((value) => ({
    ...value,
    source: { ...value.source, directory: value.source.directory ?? "." },
    auth: value.auth ?? ("tokens" as const),
  }));

/** Without a `deployments` section a stack is self-managed: no Pulumi Cloud resources. */
export const deploymentsSectionSchema = deploymentsConfigSchema.default({
  backend: "self-managed",
  source: { directory: "." },
  driftCron: "17 5 * * *",
  driftAutoRemediate: false,
  auth: "tokens",
});

export type DeploymentsConfig = z.infer<typeof deploymentsConfigSchema>;
