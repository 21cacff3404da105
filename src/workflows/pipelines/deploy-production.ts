import { WorkflowBuilder } from "../builder";
import { expr } from "../expr";
import type { Workflow } from "../model";
import type { PipelineSettings } from "../settings";
import { APP_URL_STEP, checkUrlsStep, deploySteps, loginPermissions } from "../steps";

/**
 * The production deploy (`deploy-prod.yml`), started by hand with the image tag to deploy and
 * whether to migrate. The deploy job runs in the `production` environment, so its required
 * reviewers approve it, and it deploys exactly `inputs.version` (the spec's job ignored it).
 * The verification job runs in no environment (a second job there would wait for a second
 * approval); it gets the URL from the deploy job's outputs. One production deploy at a time,
 * never cancelled by the next one.
 */
export function deployProductionPipeline(settings: PipelineSettings): Workflow {
  const target = settings.production;
  const appUrl = expr.step(APP_URL_STEP, "app-url");
  return new WorkflowBuilder({
    file: "deploy-prod.yml",
    name: "Deploy to Production",
    source: "src/workflows/pipelines/deploy-production.ts",
    on: {
      workflowDispatch: {
        inputs: {
          version: {
            type: "string",
            description:
              "Image tag to deploy: the commit SHA the main pipeline pushed (deploy-staging.yml)",
            required: true,
          },
          run_migrations: {
            type: "boolean",
            description: "Run database migrations",
            required: true,
            default: true,
          },
        },
      },
    },
    permissions: {},
    concurrency: { group: "deploy-production", cancelInProgress: false },
  })
    .addJob("deploy", {
      name: "Deploy to Production",
      runsOn: "ubuntu-latest",
      timeoutMinutes: 60,
      permissions: { contents: "read", ...loginPermissions(settings) },
      environment: { name: target.environment, url: appUrl },
      outputs: { "app-url": appUrl },
      steps: deploySteps(settings, target, {
        imageTag: expr.input("version"),
        runMigrations: expr.input("run_migrations"),
      }),
    })
    .addJob("verify", {
      name: "Post-Deploy Verification",
      runsOn: "ubuntu-latest",
      timeoutMinutes: 10,
      needs: ["deploy"],
      permissions: {},
      steps: [
        checkUrlsStep(
          "Check the production endpoints",
          expr.needs("deploy", "app-url"),
          target.checkPaths,
          settings.checkDeadlineSeconds,
        ),
      ],
    })
    .build();
}
