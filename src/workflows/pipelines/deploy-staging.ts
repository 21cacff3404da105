import { actions } from "../actions";
import { WorkflowBuilder } from "../builder";
import { expr } from "../expr";
import type { Workflow } from "../model";
import type { PipelineSettings } from "../settings";
import { APP_URL_STEP, checkout, checkUrlsStep, deploySteps, loginPermissions } from "../steps";
import { checkJobs } from "./checks";
import { areaPaths, pathRegex } from "./pr";

/** Id of the job that decides whether the backend is built and deployed. */
export const STAGING_CHANGES_JOB = "changes";

/**
 * The main pipeline (`deploy-staging.yml`), on every push to the default branch: the PR
 * pipeline's test jobs (the same definitions), then the backend image built once and pushed to
 * ghcr.io tagged with the commit SHA, then that exact tag deployed to staging by running the
 * staging stack, then a smoke test of `/health` and `/api/v1/health` with retries and a
 * deadline. Only the push job may write packages. Runs queue instead of cancelling each other:
 * a deploy is never stopped halfway.
 *
 * The backend is built and deployed only when it can differ from what staging serves: a push
 * that changes nothing under `backend/`, this program or the workflows (a mobile-only push)
 * skips the image, the deploy and the smoke test, and the run's summary says so
 * ({@link backendChangesScript}). A run started by hand (`workflow_dispatch`) always deploys.
 */
export function deployStagingPipeline(settings: PipelineSettings): Workflow {
  const target = settings.staging;
  const appUrl = expr.step(APP_URL_STEP, "app-url");
  const builder = new WorkflowBuilder({
    file: "deploy-staging.yml",
    name: "Deploy to Staging",
    source: "src/workflows/pipelines/deploy-staging.ts",
    on: { push: { branches: [settings.defaultBranch] }, workflowDispatch: {} },
    permissions: {},
    concurrency: { group: "deploy-staging", cancelInProgress: false },
  });

  builder.addJob(STAGING_CHANGES_JOB, {
    name: "Detect Backend Changes",
    runsOn: "ubuntu-latest",
    timeoutMinutes: 5,
    permissions: { contents: "read", deployments: "read" },
    outputs: { backend: expr.step("backend", "backend") },
    steps: [
      {
        name: "Compare with the commit staging serves",
        id: "backend",
        env: {
          GH_TOKEN: expr.github("token"),
          REPOSITORY: expr.github("repository"),
          HEAD_SHA: expr.github("sha"),
          EVENT: expr.github("event_name"),
          ENVIRONMENT: target.environment,
        },
        run: backendChangesScript(settings),
      },
    ],
  });
  const backendChanged = expr.eq(expr.needs(STAGING_CHANGES_JOB, "backend"), "true");

  const checks = checkJobs(settings);
  for (const { id, job } of checks) builder.addJob(id, job);

  builder.addJob("image", {
    name: "Build & Push Backend Image",
    runsOn: "ubuntu-latest",
    timeoutMinutes: 30,
    needs: [STAGING_CHANGES_JOB, ...checks.map((c) => c.id)],
    if: backendChanged,
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

/** The files whose change can change what staging runs: the backend area and this program's. */
export function backendPatterns(settings: PipelineSettings): readonly string[] {
  const paths = areaPaths(settings);
  return [...new Set([...(paths.backend ?? []), ...(paths.program ?? [])])];
}

/**
 * Decides whether this run builds and deploys the backend, and says why in the run's summary.
 *
 * The comparison is with what staging serves, not with the previous push: the newest (highest
 * id) GitHub deployment of the staging environment whose latest status is `success` is the commit of the
 * last deploy job that passed (a failed, cancelled or superseded run leaves none), so a push
 * after a failed deploy still deploys. Both commits' trees are read through the API
 * (`git/trees?recursive=1`, no checkout) and the files of {@link backendPatterns} compared by
 * blob SHA: exact and symmetric, so a force push or a run of an older commit is seen as a
 * difference. Anything it cannot be sure of deploys: no successful deployment yet, a tree too
 * large for one answer (`truncated`), an API error, a run started by hand.
 */
export function backendChangesScript(settings: PipelineSettings): string {
  const patterns = backendPatterns(settings);
  const files = pathRegex(patterns).replace(/^\^/, "^[0-9a-f]{40} ");
  return `set -euo pipefail
deploy() {
  echo "backend=true" >> "$GITHUB_OUTPUT"
  echo "Backend: built and deployed: $1" | tee -a "$GITHUB_STEP_SUMMARY"
  exit 0
}
[[ "$EVENT" != workflow_dispatch ]] || deploy "the run was started by hand"
list="$RUNNER_TEMP/deployments"
gh api -X GET "repos/$REPOSITORY/deployments" -f environment="$ENVIRONMENT" -f per_page=30 \\
  --jq 'sort_by(.id) | reverse | .[] | "\\(.id) \\(.sha)"' > "$list" || deploy "GitHub did not list the deployments of $ENVIRONMENT"
base=""
while read -r id sha; do
  state=$(gh api "repos/$REPOSITORY/deployments/$id/statuses?per_page=1" --jq '.[0].state // ""') ||
    deploy "GitHub did not answer for deployment $id of $ENVIRONMENT"
  if [[ "$state" == success ]]; then
    base=$sha
    break
  fi
done < "$list"
[[ "$base" =~ ^[0-9a-f]{40}$ ]] || deploy "no successful deployment of $ENVIRONMENT among its last 30"
tree() {
  gh api "repos/$REPOSITORY/git/trees/$1?recursive=1" \\
    --jq 'if .truncated then "truncated" else (.tree[] | select(.type != "tree") | "\\(.sha) \\(.path)") end' > "$2" || return 1
  ! grep -qx truncated "$2"
}
tree "$base" "$RUNNER_TEMP/served" || deploy "the files of $base, which $ENVIRONMENT serves, could not be listed in one answer"
tree "$HEAD_SHA" "$RUNNER_TEMP/this" || deploy "the files of $HEAD_SHA could not be listed in one answer"
# diff exits 1 when the lists differ: that is the answer, not an error.
changed=$({ diff <(grep -E '${files}' "$RUNNER_TEMP/served" || true) \\
  <(grep -E '${files}' "$RUNNER_TEMP/this" || true) || true; } |
  sed -nE 's/^[<>] [0-9a-f]{40} //p' | sort -u)
if [[ -n "$changed" ]]; then
  deploy "changed since $base, which $ENVIRONMENT serves: $(head -n 20 <<<"$changed" | paste -sd ' ')"
fi
echo "backend=false" >> "$GITHUB_OUTPUT"
echo "Backend: not built or deployed: nothing under ${patterns.join(", ")} differs from $base, which $ENVIRONMENT serves" | tee -a "$GITHUB_STEP_SUMMARY"`;
}
