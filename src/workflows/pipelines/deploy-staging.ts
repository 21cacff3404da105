import { actions } from "../actions";
import { WorkflowBuilder } from "../builder";
import { expr } from "../expr";
import type { Workflow } from "../model";
import type { PipelineSettings } from "../settings";
import { APP_URL_STEP, checkout, checkUrlsStep, deploySteps, loginPermissions } from "../steps";
import { checkJobs } from "./checks";

/**
 * The main pipeline (`deploy-staging.yml`), on every push to the default branch: the PR
 * pipeline's test jobs (the same definitions), then the backend image built once and pushed to
 * ghcr.io tagged with the commit SHA, then that exact tag deployed to staging by running the
 * staging stack, then a smoke test of `/health` and `/api/v1/health` with retries and a
 * deadline. Only the push job may write packages. Runs queue instead of cancelling each other:
 * a deploy is never stopped halfway.
 */
export function deployStagingPipeline(settings: PipelineSettings): Workflow {
  const target = settings.staging;
  const appUrl = expr.step(APP_URL_STEP, "app-url");
  const builder = new WorkflowBuilder({
    file: "deploy-staging.yml",
    name: "Deploy to Staging",
    source: "src/workflows/pipelines/deploy-staging.ts",
    on: { push: { branches: [settings.defaultBranch] } },
    permissions: {},
    concurrency: { group: "deploy-staging", cancelInProgress: false },
  });

  const checks = checkJobs(settings);
  for (const { id, job } of checks) builder.addJob(id, job);

  builder.addJob("image", {
    name: "Build & Push Backend Image",
    runsOn: "ubuntu-latest",
    timeoutMinutes: 30,
    needs: checks.map((c) => c.id),
    permissions: { contents: "read", packages: "write" },
    outputs: { tag: expr.github("sha") },
    steps: [
      checkout(),
      { name: "Set up Docker Buildx", uses: actions.setupBuildx },
      {
        name: "Log in to ghcr.io",
        uses: actions.dockerLogin,
        with: {
          registry: "ghcr.io",
          username: expr.github("actor"),
          password: expr.github("token"),
        },
      },
      {
        name: "Build and push the backend image",
        uses: actions.buildPush,
        with: {
          context: "./backend",
          push: true,
          tags: expr.text`${settings.image}:${expr.github("sha")}`,
          // `source` links the GHCR package to this repository on its first push, which is what
          // gives this workflow's GITHUB_TOKEN write access to it (a package created by hand is
          // linked to no repository, and the push is refused). `revision` says which commit.
          labels: expr.text`org.opencontainers.image.revision=${expr.github("sha")}
org.opencontainers.image.source=https://github.com/${settings.owner}/${settings.repository}`,
          "cache-from": "type=gha",
          "cache-to": "type=gha,mode=max",
        },
      },
    ],
  });

  builder.addJob("deploy", {
    name: "Deploy to Staging",
    runsOn: "ubuntu-latest",
    timeoutMinutes: 45,
    needs: ["image"],
    permissions: { contents: "read", ...loginPermissions(settings) },
    environment: { name: target.environment, url: appUrl },
    outputs: { "app-url": appUrl },
    steps: deploySteps(settings, target, { imageTag: expr.needs("image", "tag") }),
  });

  builder.addJob("smoke", {
    name: "Staging Smoke Test",
    runsOn: "ubuntu-latest",
    timeoutMinutes: 10,
    needs: ["deploy"],
    permissions: {},
    steps: [
      checkUrlsStep(
        "Check the health endpoints",
        expr.needs("deploy", "app-url"),
        target.checkPaths,
        settings.checkDeadlineSeconds,
      ),
    ],
  });
  return builder.build();
}
