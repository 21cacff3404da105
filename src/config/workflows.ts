import { z } from "zod";
import { branchName, refNamePattern } from "./patterns";

/** A URL path an HTTP check asks, e.g. `/api/v1/health`; safe to write into a script as is. */
const urlPath = z.string().regex(/^\/[A-Za-z0-9._~/-]*$/, "expected a URL path, e.g. /health");

/**
 * The oldest Pulumi CLI the workflows may install. Before 3.256.0 `pulumi deployment run`
 * exited 0 when the deployment it started failed (pulumi/pulumi CHANGELOG 3.256.0, #24155:
 * "Exit non-zero from remote operations ... when the deployment fails"), so a failed deploy
 * would have passed as a green job. The deploy step also runs `pulumi deployment get
 * <version> --output json` (pkg/cmd/pulumi/deployment/deployment_get.go, since 3.242.0).
 */
export const MINIMUM_PULUMI_CLI = "3.256.0";

/**
 * The CLI the jobs install unless configured: the version of the `@pulumi/pulumi` SDK that
 * package.json pins, written as a literal on purpose (the CLI need not move with the SDK, and
 * a CLI upgrade should be a visible change of the generated workflows).
 */
export const DEFAULT_PULUMI_CLI = "3.276.0";

/** `[major, minor, patch]` of an exact version `x.y.z`, or `undefined` for anything else. */
export function exactVersion(version: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

function atLeast(version: readonly number[], minimum: readonly number[]): boolean {
  for (let i = 0; i < 3; i++) {
    const a = version[i] ?? 0;
    const b = minimum[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/**
 * An exact Pulumi CLI version no older than {@link MINIMUM_PULUMI_CLI}. A range (`^3`, `3.x`,
 * `latest`) is refused: it admits CLIs older than the minimum, and it lets a new release change
 * what a deploy job does without a change here.
 */
const pulumiCliVersion = z.string().superRefine((version, ctx) => {
  const exact = exactVersion(version);
  if (exact === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `expected an exact Pulumi CLI version x.y.z, at least ${MINIMUM_PULUMI_CLI}, got "${version}": a range or tag could install a CLI older than ${MINIMUM_PULUMI_CLI}, whose \`pulumi deployment run\` exits 0 when the deployment fails`,
    });
    return;
  }
  const minimum = exactVersion(MINIMUM_PULUMI_CLI) as [number, number, number];
  if (!atLeast(exact, minimum)) {
    ctx.addIssue({
      code: "custom",
      message: `"${version}" is older than ${MINIMUM_PULUMI_CLI}: before it, \`pulumi deployment run\` exits 0 when the deployment fails (pulumi/pulumi#24155), so a failed deploy would pass`,
    });
  }
});

/** A stack and the GitHub environment its deploy job runs in. */
const deployTargetSchema = z.strictObject({
  /** Stack name, e.g. `staging` (qualified with the Pulumi organization when there is one). */
  stack: z.string().regex(/^[A-Za-z0-9._-]+$/, "expected a stack name, e.g. staging"),
  /** GitHub environment of the deploy job; its required reviewers gate the deploy. */
  environment: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,255}$/, "expected an environment name, e.g. staging"),
  /** Paths asked after the deploy (smoke test, post-deploy verification); each must answer 2xx. */
  checkPaths: z.array(urlPath).min(1, "list at least one path"),
});

/**
 * `clicky-delivery:workflows`: the GitHub Actions workflows the repository-owning stack commits,
 * and the ruleset whose required checks come from the pull-request pipeline.
 *
 * Every key has a default; the committed stack files need no `workflows` section.
 */
export const workflowsConfigSchema = z
  .strictObject({
    /** How the generated files reach the default branch. */
    commit: z
      .strictObject({
        /**
         * `pull-request`: commit to a branch and open a pull request (needed whenever the default
         * branch is protected, which the ruleset below does). `direct`: commit to the default
         * branch itself (only when nothing protects it).
         */
        mode: z.enum(["pull-request", "direct"]).default("pull-request"),
        /** Branch name prefix in `pull-request` mode; a hash of the files is appended. */
        branchPrefix: branchName.default("clicky-delivery/workflows"),
      })
      .default({ mode: "pull-request", branchPrefix: "clicky-delivery/workflows" }),
    /**
     * How deploy jobs run a stack: `pulumi-deployments` starts a Pulumi Deployments update,
     * `pulumi-up` runs `pulumi up` in the job. Default: Deployments for a `cloud` backend
     * (`deployments.backend`), `pulumi up` otherwise.
     */
    deployMode: z.enum(["pulumi-deployments", "pulumi-up"]).optional(),
    /** Python version of the backend jobs. */
    pythonVersion: z
      .string()
      .regex(/^3\.\d+(\.\d+)?$/, "expected a Python 3 version, e.g. 3.11")
      .default("3.11"),
    /**
     * Node.js version of the mobile jobs. Jobs that run this program use the version the
     * pinned Pulumi SDK declares instead (`engines.node` of `@pulumi/pulumi`).
     */
    nodeVersion: z
      .string()
      .regex(/^\d+(\.\d+){0,2}$/, "expected a Node.js version, e.g. 20")
      .default("20"),
    /** Backend image repository the main pipeline pushes; default `ghcr.io/<owner>/<repo>/backend`. */
    image: z
      .string()
      .regex(
        /^ghcr\.io\/[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)+$/,
        "expected a lowercase ghcr.io repository, e.g. ghcr.io/clicky-foundation/clicky-foundation/backend",
      )
      .optional(),
    /** Branches whose pull requests run the PR pipeline; default: the default branch and `develop`. */
    pullRequestBranches: z.array(refNamePattern).min(1).optional(),
    /**
     * Pulumi CLI version the jobs install: an exact `x.y.z`, at least
     * {@link MINIMUM_PULUMI_CLI}; default {@link DEFAULT_PULUMI_CLI}.
     */
    pulumiVersion: pulumiCliVersion.default(DEFAULT_PULUMI_CLI),
    /** The stacks the pipelines deploy, each with its environment and the paths checked after. */
    targets: z
      .strictObject({
        staging: deployTargetSchema.default({
          stack: "staging",
          environment: "staging",
          checkPaths: ["/health", "/api/v1/health"],
        }),
        production: deployTargetSchema.default({
          stack: "production",
          environment: "production",
          checkPaths: ["/health", "/health/db"],
        }),
      })
      .default({
        staging: {
          stack: "staging",
          environment: "staging",
          checkPaths: ["/health", "/api/v1/health"],
        },
        production: {
          stack: "production",
          environment: "production",
          checkPaths: ["/health", "/health/db"],
        },
      }),
    /** How long the smoke test and the post-deploy verification retry before failing. */
    checkDeadlineSeconds: z.number().int().min(10).max(1800).default(180),
    /**
     * Each deploy job posts its result (version, environment, duration, a link to the run) to a
     * chat webhook (a Slack-compatible `{"text": ...}` payload): each stack's `deployWebhookUrl`,
     * a secret of its own environment.
     */
    notify: z.boolean().default(false),
    /** EAS build profile of release builds and EAS Update branch of the OTA updates. */
    mobile: z
      .strictObject({
        buildProfile: z
          .string()
          .regex(/^[A-Za-z0-9._-]+$/, "expected an EAS build profile name")
          .default("production"),
        /** The EAS Update branch production builds read (their channel points at it). */
        updateBranch: z
          .string()
          .regex(/^[A-Za-z0-9._/-]+$/, "expected an EAS Update branch name")
          .default("production"),
        /**
         * The EAS Update branch every push to the default branch publishes to, after the mobile
         * checks: testers' builds read it; production gets an update only when it is promoted.
         */
        stagingUpdateBranch: z
          .string()
          .regex(/^[A-Za-z0-9._/-]+$/, "expected an EAS Update branch name")
          .default("staging"),
        /**
         * Whether release builds are uploaded to TestFlight and Google Play (`eas build
         * --auto-submit-with-profile`), with the store credentials of the approval-gated stack.
         */
        submit: z.boolean().default(true),
        /** The `eas.json` submit profile; default: the build profile's name. */
        submitProfile: z
          .string()
          .regex(/^[A-Za-z0-9._-]+$/, "expected an EAS submit profile name")
          .optional(),
      })
      .refine((m) => m.stagingUpdateBranch !== m.updateBranch, {
        message:
          "stagingUpdateBranch and updateBranch must differ: an update reaches production only when promoted",
        path: ["stagingUpdateBranch"],
      })
      .default({
        buildProfile: "production",
        updateBranch: "production",
        stagingUpdateBranch: "staging",
        submit: true,
      }),
    /** The default branch's ruleset: pull requests plus the PR pipeline's checks. */
    ruleset: z
      .strictObject({
        /** `active` enforces it; `disabled` keeps it without effect (`evaluate` needs Enterprise). */
        enforcement: z.enum(["active", "evaluate", "disabled"]).default("active"),
        /** Approving reviews a pull request needs (0: a pull request, no approval). */
        requiredApprovals: z.number().int().min(0).max(10).default(0),
      })
      .default({ enforcement: "active", requiredApprovals: 0 }),
  })
  .superRefine((value, ctx) => {
    if (value.commit.mode === "direct" && value.ruleset.enforcement === "active") {
      ctx.addIssue({
        code: "custom",
        path: ["commit", "mode"],
        message:
          'is "direct" but the active ruleset requires pull requests on the default branch, so every commit after the first would be refused; use "pull-request" (or ruleset.enforcement: disabled)',
      });
    }
    if (value.targets.staging.environment === value.targets.production.environment) {
      ctx.addIssue({
        code: "custom",
        path: ["targets", "production", "environment"],
        message: "must differ from the staging environment",
      });
    }
  });

/** Without a `workflows` section every default applies. */
export const workflowsSectionSchema = workflowsConfigSchema.default(
  workflowsConfigSchema.parse({}),
);

export type WorkflowsConfig = z.infer<typeof workflowsConfigSchema>;
