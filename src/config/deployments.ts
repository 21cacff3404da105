import { z } from "zod";
import { branchName } from "./patterns";

/**
 * A five-field cron expression (minute hour day-of-month month day-of-week), the form Pulumi
 * Cloud's schedules and GitHub's `schedule` trigger both accept.
 */
export const cronExpression = z
  .string()
  .regex(
    /^(\S+\s+){4}\S+$/,
    'expected a five-field cron expression, e.g. "17 5 * * *" (05:17 UTC daily)',
  )
  .refine(
    (cron) => cron.split(/\s+/).every((field) => /^[\d*/,-]+$/.test(field)),
    "cron fields may use digits, '*', '/', ',' and '-' only",
  );

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
    /** Where this program's source lives; the app repository by default. */
    source: z
      .strictObject({
        /** `owner/name` of the repository holding `Pulumi.yaml`; default: the app repository. */
        repository: z
          .string()
          .regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/, "expected owner/name")
          .optional(),
        /** Branch deployments run from; default: `github.defaultBranch`. */
        branch: branchName.optional(),
        /** Folder of `Pulumi.yaml` inside that repository. */
        directory: z
          .string()
          .regex(
            /^(\.|[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*)$/,
            "expected a relative folder, e.g. infra/delivery",
          )
          .default("."),
      })
      .default({ directory: "." }),
    /** Pull requests that touch these paths get a `pulumi preview` of this stack. */
    previewPaths: z
      .array(z.string().min(1))
      .default(["Pulumi*.yaml", "index.ts", "src/**", "package*.json"]),
    /** When drift detection runs (UTC). */
    driftCron: cronExpression.default("17 5 * * *"),
    /** Whether detected drift is undone automatically (never in production). */
    driftAutoRemediate: z.boolean().default(false),
  })
  .superRefine((value, ctx) => {
    if (value.backend === "cloud" && value.organization === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["organization"],
        message: "is required when backend is cloud (your Pulumi Cloud organization)",
      });
    }
  });

/** Without a `deployments` section a stack is self-managed: no Pulumi Cloud resources. */
export const deploymentsSectionSchema = deploymentsConfigSchema.default({
  backend: "self-managed",
  source: { directory: "." },
  previewPaths: ["Pulumi*.yaml", "index.ts", "src/**", "package*.json"],
  driftCron: "17 5 * * *",
  driftAutoRemediate: false,
});

export type DeploymentsConfig = z.infer<typeof deploymentsConfigSchema>;
