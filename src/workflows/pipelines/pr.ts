import { actions } from "../actions";
import { WorkflowBuilder } from "../builder";
import { expr } from "../expr";
import type { Workflow } from "../model";
import type { PipelineSettings } from "../settings";
import { checkout } from "../steps";
import { type Area, checkJobs } from "./checks";

/** Paths whose change runs an area's checks; a changed workflow runs everything. */
export const AREA_PATHS: Readonly<Record<Area, readonly string[]>> = {
  backend: ["backend/", ".github/workflows/"],
  mobile: ["mobile/", ".github/workflows/"],
};

/** GitHub lists at most 3000 files of a pull request; at the cap, assume everything changed. */
const FILE_LIST_CAP = 3000;

/**
 * The PR pipeline (`pr.yml`): the spec's lint, test, scan and docker build checks, each skipped
 * when no changed file belongs to its area.
 *
 * Path filtering is done by a job (`changes`), not by `on.pull_request.paths`: a workflow that
 * does not run reports no checks and leaves required checks waiting forever, while a job
 * skipped by its `if` reports success. So a pull request that touches only `mobile/` runs the
 * mobile checks, skips the backend ones, and every required check resolves. Superseded runs of
 * the same pull request are cancelled.
 */
export function prPipeline(settings: PipelineSettings): Workflow {
  const changed = (area: Area) => expr.eq(expr.needs("changes", area), "true");
  const builder = new WorkflowBuilder({
    file: "pr.yml",
    name: "PR Pipeline",
    source: "src/workflows/pipelines/pr.ts",
    on: { pullRequest: { branches: settings.pullRequestBranches } },
    permissions: {},
    concurrency: {
      group: expr.text`pr-${expr.github("event.pull_request.number")}`,
      cancelInProgress: true,
    },
  });

  builder.addJob("changes", {
    name: "Detect Changes",
    runsOn: "ubuntu-latest",
    timeoutMinutes: 5,
    permissions: { contents: "read", "pull-requests": "read" },
    outputs: {
      backend: expr.step("areas", "backend"),
      mobile: expr.step("areas", "mobile"),
    },
    steps: [
      {
        name: "List the changed areas",
        id: "areas",
        env: {
          GH_TOKEN: expr.github("token"),
          REPOSITORY: expr.github("repository"),
          PR_NUMBER: expr.github("event.pull_request.number"),
        },
        run: changedAreasScript(),
      },
    ],
  });

  const checks = checkJobs(settings, { needs: ["changes"], when: changed });
  for (const { id, job } of checks) builder.addJob(id, job);

  builder.addJob("docker-build", {
    name: "Docker Build Check",
    runsOn: "ubuntu-latest",
    timeoutMinutes: 20,
    needs: ["changes"],
    if: changed("backend"),
    permissions: { contents: "read" },
    steps: [
      checkout(),
      { name: "Set up Docker Buildx", uses: actions.setupBuildx },
      {
        name: "Build the backend image",
        uses: actions.buildPush,
        with: {
          context: "./backend",
          push: false,
          tags: "clicky-backend:test",
          "cache-from": "type=gha",
        },
      },
    ],
  });
  return builder.build();
}

function changedAreasScript(): string {
  const areas = Object.entries(AREA_PATHS) as [Area, readonly string[]][];
  const lines = areas.map(([area, prefixes]) => {
    const pattern = `^(${prefixes.map((p) => p.replaceAll(".", "\\.")).join("|")})`;
    return `echo "${area}=$(changed '${pattern}')"`;
  });
  return `set -euo pipefail
files="$RUNNER_TEMP/changed-files"
gh api --paginate "repos/$REPOSITORY/pulls/$PR_NUMBER/files" --jq '.[].filename' > "$files"
count=$(wc -l < "$files")
echo "$count changed files"
changed() {
  if [ "$count" -ge ${FILE_LIST_CAP} ] || grep -qE "$1" "$files"; then echo true; else echo false; fi
}
{
${lines.map((l) => `  ${l}`).join("\n")}
} | tee -a "$GITHUB_OUTPUT"`;
}
