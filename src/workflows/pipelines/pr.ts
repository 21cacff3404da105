import { actions } from "../actions";
import { WorkflowBuilder } from "../builder";
import { expr } from "../expr";
import type { Job, Workflow } from "../model";
import type { PipelineSettings } from "../settings";
import { checkout, checkoutProgramSteps, inProgram, programLockfile, setupNode } from "../steps";
import { type Area, checkJobs } from "./checks";

/** An area of the repository whose changes run its own checks. */
export type PrArea = Area | "program";

/** Files whose change runs every check: the workflows themselves. */
const WORKFLOWS = ".github/workflows/";

/**
 * This Pulumi program's own files, relative to its folder: the project and stack files, the
 * code, the tests, the benchmarks and everything that decides how they install, build, lint
 * and format.
 */
export const PROGRAM_FILES: readonly string[] = [
  "Pulumi*.yaml",
  "index.ts",
  "src/",
  "test/",
  "bench/",
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  "biome.json",
];

/**
 * The path patterns of each area, relative to the repository root: a folder (`backend/`,
 * every file under it), a file, or a file glob whose `*` stays inside one folder
 * (`Pulumi*.yaml`). The `program` area exists only when this program lives in the app
 * repository; kept in another repository, its changes are that repository's to check.
 */
export function areaPaths(settings: PipelineSettings): Partial<Record<PrArea, readonly string[]>> {
  const { program } = settings;
  const inFolder = (path: string) =>
    program.directory === "." ? path : `${program.directory}/${path}`;
  return {
    backend: ["backend/", WORKFLOWS],
    mobile: ["mobile/", WORKFLOWS],
    ...(program.repository === undefined
      ? { program: [...PROGRAM_FILES.map(inFolder), WORKFLOWS] }
      : {}),
  };
}

/**
 * An extended regular expression (`grep -E`) that matches a changed file's path when it is
 * one of `patterns`.
 *
 * @example pathRegex(["backend/", "Pulumi*.yaml"]) // "^(backend/.*|Pulumi[^/]*\\.yaml)$"
 */
export function pathRegex(patterns: readonly string[]): string {
  const alternatives = patterns.map((pattern) => {
    if (!/^[A-Za-z0-9._*/-]+$/.test(pattern)) {
      throw new Error(`path pattern "${pattern}": only letters, digits, '.', '_', '-', '/', '*'`);
    }
    const body = pattern.replaceAll(".", "\\.").replaceAll("*", "[^/]*");
    return pattern.endsWith("/") ? `${body}.*` : body;
  });
  return `^(${alternatives.join("|")})$`;
}

/** GitHub lists at most 3000 files of a pull request; at the cap, assume everything changed. */
const FILE_LIST_CAP = 3000;

/**
 * The PR pipeline (`pr.yml`): the spec's lint, test, scan and docker build checks, and the
 * checks of this Pulumi program when it lives in the app repository, each skipped when no
 * changed file belongs to its area.
 *
 * Path filtering is done by a job (`changes`), not by `on.pull_request.paths`: a workflow that
 * does not run reports no checks and leaves required checks waiting forever, while a job
 * skipped by its `if` reports success. So a pull request that touches only `mobile/` runs the
 * mobile checks, skips the backend ones, and every required check resolves. Superseded runs of
 * the same pull request are cancelled.
 */
export function prPipeline(settings: PipelineSettings): Workflow {
  const changed = (area: PrArea) => expr.eq(expr.needs("changes", area), "true");
  const paths = areaPaths(settings);
  const areas = Object.keys(paths) as PrArea[];
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
    outputs: Object.fromEntries(areas.map((area) => [area, expr.step("areas", area)])),
    steps: [
      {
        name: "List the changed areas",
        id: "areas",
        env: {
          GH_TOKEN: expr.github("token"),
          REPOSITORY: expr.github("repository"),
          PR_NUMBER: expr.github("event.pull_request.number"),
        },
        run: changedAreasScript(paths),
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

  if (paths.program !== undefined) {
    builder.addJob(PROGRAM_CHECKS_JOB, {
      ...programChecksJob(settings),
      needs: ["changes"],
      if: changed("program"),
    });
  }
  return builder.build();
}

/** Id of the job that checks this Pulumi program in pull requests. */
export const PROGRAM_CHECKS_JOB = "program-checks";

/**
 * The checks of this Pulumi program, the same ones its own CI runs (typecheck, lint, format,
 * tests), so a change to the program or to a stack file cannot merge unchecked: the job's name
 * is a required check of the ruleset like every PR job's. It gets no secret and only read
 * access: a pull request's code runs here.
 *
 * `npm test` runs with `CI=false`: under `CI=true` (which GitHub sets) the end-to-end suites
 * fail instead of skipping when their harness cannot start (`e2eSkip` in
 * test/harness/), and it needs root, a Docker engine and an SSH server that a
 * hosted runner's unprivileged user does not get. With `CI=false` they skip and say why; every
 * other test runs (shellcheck and jq are on GitHub's Ubuntu runners).
 */
export function programChecksJob(settings: PipelineSettings): Job {
  const npm = (name: string, script: string) => ({
    name,
    ...inProgram(settings),
    run: `npm run ${script}`,
  });
  return {
    name: "Pulumi Program Checks",
    runsOn: "ubuntu-latest",
    timeoutMinutes: 30,
    permissions: { contents: "read" },
    steps: [
      ...checkoutProgramSteps(settings),
      setupNode(settings.programNodeVersion, programLockfile(settings)),
      {
        name: "Install dependencies",
        ...inProgram(settings),
        run: "npm ci --no-audit --no-fund",
      },
      npm("Type check", "typecheck"),
      npm("Lint", "lint"),
      npm("Check formatting", "format:check"),
      {
        name: "Test (end-to-end suites skip: no root, Docker or sshd here)",
        ...inProgram(settings),
        env: { CI: "false" },
        run: "npm test",
      },
    ],
  };
}

function changedAreasScript(paths: Partial<Record<PrArea, readonly string[]>>): string {
  const lines = (Object.entries(paths) as [PrArea, readonly string[]][]).map(
    ([area, patterns]) => `echo "${area}=$(changed '${pathRegex(patterns)}')"`,
  );
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
