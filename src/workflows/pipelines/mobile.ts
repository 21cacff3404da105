import { tools } from "../actions";
import { WorkflowBuilder } from "../builder";
import { expr, type Value } from "../expr";
import type { Job, RunStep, Workflow } from "../model";
import type { PipelineSettings } from "../settings";
import {
  checkout,
  checkoutProgram,
  inProgram,
  installPulumi,
  loginEnv,
  loginPermissions,
  loginSteps,
  MOBILE_INSTALL,
  mobileSetupSteps,
  setupNode,
} from "../steps";
import { checkJobs } from "./checks";

const EAS = `npx --yes eas-cli@${tools.easCli}`;

/**
 * A mobile job: checkout, Node, `npm ci`, then EAS commands authenticated by `EXPO_TOKEN`.
 *
 * It runs in the production environment: `EXPO_TOKEN` can publish to production users (an OTA
 * update reaches every installed app), so it is a secret of that environment only, and each
 * job waits for production's reviewers. The environment's deployment policies already allow
 * the default branch and the release tags these workflows run on.
 */
function easJob(
  settings: PipelineSettings,
  name: string,
  step: { name: string; run: string; env?: Record<string, Value> },
): Job {
  return {
    ...gatedJob(settings, name),
    steps: [...mobileSetupSteps(settings.nodeVersion), MOBILE_INSTALL, easStep(step)],
  };
}

/** A job of the approval-gated environment, read-only on the repository; its steps to add. */
function gatedJob(settings: PipelineSettings, name: string): Omit<Job, "steps"> {
  return {
    name,
    runsOn: "ubuntu-latest",
    timeoutMinutes: 120,
    permissions: { contents: "read" },
    environment: { name: settings.production.environment },
  };
}

/** A step in `mobile/` that runs EAS CLI, logged in by `EXPO_TOKEN`. */
function easStep(step: {
  name: string;
  run: string;
  id?: string;
  env?: Record<string, Value>;
}): RunStep {
  return {
    name: step.name,
    ...(step.id === undefined ? {} : { id: step.id }),
    workingDirectory: "mobile",
    env: { EXPO_TOKEN: expr.secret("EXPO_TOKEN"), ...step.env },
    run: step.run,
  };
}

/**
 * Store builds (`mobile-build.yml`): EAS builds for iOS and Android on release tags `v*.*.*`,
 * each uploaded to TestFlight and to Google Play's internal track when
 * `workflows.mobile.submit` is on ({@link buildScript}). EAS CLI is run at an exact version with
 * `npx` and reads `EXPO_TOKEN` from the environment, so no third-party action sits between
 * the token and Expo.
 *
 * The job waits for the build and the upload (no `--no-wait`): only a job of the approval-gated
 * environment may read `EXPO_TOKEN`, which reading a build's status needs, and each such job
 * waits for its own approval; a later check would ask the reviewers a second time per release
 * (or hold the token without them). Waiting is what makes the run's result the release's
 * result. A build still queued when the job times out keeps running on EAS, and is uploaded.
 */
export function mobileBuildPipeline(settings: PipelineSettings): Workflow {
  const job = (platform: "ios" | "android", name: string, env: Record<string, Value>) =>
    easJob(settings, name, {
      name: settings.mobile.submit ? `Build and upload to ${STORE[platform]}` : "Build",
      env: settings.mobile.submit ? env : {},
      run: buildScript(settings, platform),
    });
  return new WorkflowBuilder({
    file: "mobile-build.yml",
    name: "Mobile Build (EAS)",
    source: "src/workflows/pipelines/mobile.ts",
    on: { push: { tags: ["v*.*.*"] } },
    permissions: {},
    concurrency: { group: expr.text`mobile-build-${expr.github("ref")}`, cancelInProgress: false },
  })
    .addJob(
      "build-ios",
      job("ios", "Build iOS (TestFlight)", {
        ASC_API_KEY_P8: expr.secret("ASC_API_KEY_P8"),
        ASC_API_KEY_ID: expr.secret("ASC_API_KEY_ID"),
        ASC_API_KEY_ISSUER_ID: expr.secret("ASC_API_KEY_ISSUER_ID"),
      }),
    )
    .addJob(
      "build-android",
      job("android", "Build Android (Internal Testing)", {
        GOOGLE_SERVICE_ACCOUNT_KEY: expr.secret("GOOGLE_SERVICE_ACCOUNT_KEY"),
      }),
    )
    .build();
}

const STORE = { ios: "TestFlight", android: "Google Play (internal track)" } as const;

/**
 * The environment variables the app's `eas.json` submit profile names, which EAS CLI replaces
 * with their values (`$NAME`, in the fields `@expo/eas-json` evaluates: `ascApiKeyPath`,
 * `ascApiKeyId`, `ascApiKeyIssuerId`, `serviceAccountKeyPath`).
 */
export const SUBMIT_PROFILE_VARIABLES = {
  ios: ["ASC_API_KEY_PATH", "ASC_API_KEY_ID", "ASC_API_KEY_ISSUER_ID"],
  android: ["GOOGLE_SERVICE_ACCOUNT_KEY_PATH"],
} as const;

/**
 * `eas build` for one platform, and with store uploads the credentials for its submission: the
 * key is written to a file only the runner's user can read, in the job's temporary folder, for
 * the submit profile to name (`ascApiKeyPath: "$ASC_API_KEY_PATH"`, `serviceAccountKeyPath:
 * "$GOOGLE_SERVICE_ACCOUNT_KEY_PATH"`), and removed when the step ends. EAS CLI reads the file
 * and hands its content to EAS Submit, which uploads once the build is done
 * (`--auto-submit-with-profile`). A key that is not what the store expects is refused before
 * the build starts, without printing it.
 */
export function buildScript(settings: PipelineSettings, platform: "ios" | "android"): string {
  const { buildProfile, submit, submitProfile } = settings.mobile;
  const build = `${EAS} build --platform ${platform} --profile ${buildProfile} --non-interactive`;
  if (!submit) return build;
  const upload = `${build} \\
  --auto-submit-with-profile ${submitProfile ?? buildProfile}`;
  if (platform === "ios") {
    return `set -euo pipefail
umask 077
export ASC_API_KEY_PATH="$RUNNER_TEMP/asc-api-key.p8"
trap 'rm -f "$ASC_API_KEY_PATH"' EXIT
printf '%s\\n' "$ASC_API_KEY_P8" > "$ASC_API_KEY_PATH"
if ! grep -q -- "-----BEGIN PRIVATE KEY-----" "$ASC_API_KEY_PATH"; then
  echo "::error::the secret ASC_API_KEY_P8 is not an App Store Connect API key (.p8 file with a BEGIN PRIVATE KEY line)"
  exit 1
fi
if [[ ! "$ASC_API_KEY_ID" =~ ^[A-Z0-9]{1,30}$ ]]; then
  echo "::error::the secret ASC_API_KEY_ID is not an App Store Connect Key ID (upper-case letters and digits)"
  exit 1
fi
if [[ ! "$ASC_API_KEY_ISSUER_ID" =~ ^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$ ]]; then
  echo "::error::the secret ASC_API_KEY_ISSUER_ID is not an App Store Connect Issuer ID (a UUID)"
  exit 1
fi
${upload}`;
  }
  return `set -euo pipefail
umask 077
export GOOGLE_SERVICE_ACCOUNT_KEY_PATH="$RUNNER_TEMP/google-service-account.json"
trap 'rm -f "$GOOGLE_SERVICE_ACCOUNT_KEY_PATH"' EXIT
printf '%s\\n' "$GOOGLE_SERVICE_ACCOUNT_KEY" > "$GOOGLE_SERVICE_ACCOUNT_KEY_PATH"
if ! jq -e '.type == "service_account" and (.client_email | type == "string") and (.private_key | type == "string")' \\
  "$GOOGLE_SERVICE_ACCOUNT_KEY_PATH" > /dev/null 2>&1; then
  echo "::error::the secret GOOGLE_SERVICE_ACCOUNT_KEY is not a Google service account JSON key (type service_account, client_email, private_key)"
  exit 1
fi
${upload}`;
}

/** Id of the job that publishes each push's update to the staging branch. */
export const OTA_STAGING_JOB = "ota-staging";

/**
 * OTA updates to testers (`mobile-update.yml`), on every push to the default branch that
 * changes `mobile/`: the mobile checks (the PR pipeline's job definitions), then `eas update`
 * to the staging branch (`workflows.mobile.stagingUpdateBranch`), never to production: an
 * update reaches production users only through {@link mobileOtaPipeline}'s promote.
 *
 * The publish job runs in the approval-gated environment: `EXPO_TOKEN` can publish to any
 * branch of the project (Expo tokens are not scoped to a branch or channel), and `eas update`
 * runs the app's own code (its config and bundler) with the token in its environment, so a
 * job without reviewers holding it would be a path to production users around them. The
 * commit message reaches `eas update` as an environment variable, quoted by the shell (the
 * spec put it into the script: script injection).
 */
export function mobileUpdatePipeline(settings: PipelineSettings): Workflow {
  const branch = settings.mobile.stagingUpdateBranch;
  const builder = new WorkflowBuilder({
    file: "mobile-update.yml",
    name: "Mobile Update (EAS)",
    source: "src/workflows/pipelines/mobile.ts",
    on: { push: { branches: [settings.defaultBranch], paths: ["mobile/**"] } },
    permissions: {},
    concurrency: { group: "mobile-update", cancelInProgress: false },
  });
  const checks = checkJobs(settings).filter((c) => c.area === "mobile");
  for (const { id, job } of checks) builder.addJob(id, job);
  builder.addJob(OTA_STAGING_JOB, {
    ...easJob(settings, `OTA Update (${branch})`, {
      name: `Publish the update to the ${branch} branch`,
      env: {
        COMMIT_MESSAGE: expr.github("event.head_commit.message"),
        BRANCH: branch,
        PRODUCTION_BRANCH: settings.mobile.updateBranch,
      },
      run: `set -euo pipefail
out="$RUNNER_TEMP/update.json"
${EAS} update --branch "$BRANCH" --message "$COMMIT_MESSAGE" --non-interactive --json > "$out"
group=$(jq -r '.[0].group // empty' "$out")
if [[ -z "$group" ]]; then
  echo "::error::eas update printed no update group"
  exit 1
fi
{
  echo "Published update group $group to the EAS Update branch $BRANCH (testers)."
  echo "Production ($PRODUCTION_BRANCH) gets it only when promoted: run the workflow Mobile OTA (production) with action promote and group $group."
} | tee -a "$GITHUB_STEP_SUMMARY"`,
    }),
    needs: checks.map((c) => c.id),
  });
  return builder.build();
}

/** Ids of the jobs of the production OTA workflow. */
export const OTA_PROMOTE_JOB = "promote";
export const OTA_ROLLBACK_JOB = "rollback";

/**
 * Production OTA (`mobile-ota.yml`), started by hand; both jobs run in the approval-gated
 * environment, so production's reviewers approve each change users get:
 *
 * - `promote` republishes an update group of the staging branch (the newest by default) to the
 *   production branch: the exact bundle testers ran (`eas update:republish`). It first checks
 *   that production serves the backend the update needs ({@link backendServedScript}).
 * - `rollback` rolls the production branch back to the update group before its newest one, or
 *   to the update embedded in the build when there is none (`eas update:rollback <group>`;
 *   the spec's `eas update --branch production --rollback` is not an EAS CLI command).
 */
export function mobileOtaPipeline(settings: PipelineSettings): Workflow {
  const target = settings.production;
  const action = (name: string) => expr.eq(expr.input("action"), name);
  const mobileEnv = {
    STAGING_BRANCH: settings.mobile.stagingUpdateBranch,
    PRODUCTION_BRANCH: settings.mobile.updateBranch,
    GROUP: expr.input("group"),
  };
  const group = { GROUP_ID: expr.step("group", "id"), UPDATE_COMMIT: expr.step("group", "commit") };
  return new WorkflowBuilder({
    file: "mobile-ota.yml",
    name: "Mobile OTA (production)",
    source: "src/workflows/pipelines/mobile.ts",
    on: {
      workflowDispatch: {
        inputs: {
          action: {
            type: "choice",
            description: `promote: an update of the ${settings.mobile.stagingUpdateBranch} branch to ${settings.mobile.updateBranch}; rollback: ${settings.mobile.updateBranch} to its previous update`,
            required: true,
            options: ["promote", "rollback"],
          },
          group: {
            type: "string",
            description: `Update group ID (default: the newest of the ${settings.mobile.stagingUpdateBranch} branch to promote, of ${settings.mobile.updateBranch} to roll back)`,
            required: false,
            default: "",
          },
        },
      },
    },
    permissions: {},
    concurrency: { group: "mobile-ota-production", cancelInProgress: false },
  })
    .addJob(OTA_PROMOTE_JOB, {
      ...gatedJob(settings, "Promote to production"),
      if: action("promote"),
      timeoutMinutes: 30,
      permissions: { contents: "read", ...loginPermissions(settings) },
      steps: [
        checkout(),
        ...(settings.program.repository === undefined ? [] : [checkoutProgram(settings)]),
        setupNode(settings.nodeVersion, "mobile/package-lock.json"),
        MOBILE_INSTALL,
        easStep({
          name: "Find the update group",
          id: "group",
          env: mobileEnv,
          run: findGroupScript("STAGING_BRANCH"),
        }),
        installPulumi(settings),
        ...loginSteps(settings, target.name),
        {
          name: "Check that production serves the backend the update needs",
          id: "served",
          ...inProgram(settings),
          env: {
            ...loginEnv(settings, "PULUMI_ACCESS_TOKEN"),
            STACK: target.stack,
            GH_TOKEN: expr.github("token"),
            REPOSITORY: expr.github("repository"),
            ...group,
          },
          run: backendServedScript(),
        },
        easStep({
          name: "Republish the update group to the production branch",
          env: { ...mobileEnv, UPDATE_COMMIT: group.UPDATE_COMMIT, GROUP_ID: group.GROUP_ID },
          run: `set -euo pipefail
${EAS} update:republish --group "$GROUP_ID" --destination-branch "$PRODUCTION_BRANCH" \\
  --message "Promoted from $STAGING_BRANCH (GitHub run $GITHUB_RUN_ID)" --non-interactive
echo "Update group $GROUP_ID (commit $UPDATE_COMMIT) is now the newest on $PRODUCTION_BRANCH." | tee -a "$GITHUB_STEP_SUMMARY"`,
        }),
      ],
    })
    .addJob(OTA_ROLLBACK_JOB, {
      ...easJob(settings, "Roll back production", {
        name: "Roll back the production branch",
        env: mobileEnv,
        run: `set -euo pipefail
${findGroupScript("PRODUCTION_BRANCH", false)}
${EAS} update:rollback "$group" --non-interactive \\
  --message "Roll back $group (GitHub run $GITHUB_RUN_ID)"
echo "Rolled $PRODUCTION_BRANCH back from update group $group to the group before it (or to the update embedded in the build when it was the only one)." | tee -a "$GITHUB_STEP_SUMMARY"`,
      }),
      if: action("rollback"),
      timeoutMinutes: 30,
    })
    .build();
}

/**
 * Resolves the update group to act on: `$GROUP` when given, else the newest group of the branch
 * named by `$branchVar`. Checks that it belongs to that branch, and (to promote) reads the
 * commit it was published from. With `outputs`, writes `id` and `commit` as step outputs.
 */
function findGroupScript(branchVar: string, outputs = true): string {
  const head = outputs ? "set -euo pipefail\n" : "";
  return `${head}branch="$${branchVar}"
group="\${GROUP:-}"
if [[ -z "$group" ]]; then
  group=$(${EAS} update:list --branch "$branch" --limit 1 --json --non-interactive | jq -r '.currentPage[0].group // empty')
  if [[ -z "$group" ]]; then
    echo "::error::the EAS Update branch $branch has no update group"
    exit 1
  fi
fi
if [[ ! "$group" =~ ^[A-Za-z0-9-]{1,64}$ ]]; then
  echo "::error::the group input must be an update group ID (letters, digits and '-')"
  exit 1
fi
view="$RUNNER_TEMP/group.json"
${EAS} update:view "$group" --json > "$view"
on=$(jq -r '.[0].branch // empty' "$view")
if [[ "$on" != "$branch" ]]; then
  echo "::error::update group $group is on the branch '$on', not $branch"
  exit 1
fi${
    outputs
      ? `
commit=$(jq -r '.[0].gitCommitHash // empty' "$view")
echo "id=$group" >> "$GITHUB_OUTPUT"
echo "commit=$commit" >> "$GITHUB_OUTPUT"
echo "update group $group of $branch, published from commit \${commit:-unknown}"`
      : ""
  }`;
}

/**
 * Refuses to promote an update whose commit changed the backend beyond what production serves.
 * Production's backend is the stack's `deployedImage` output (what its last successful deploy
 * put on every host), whose tag is the commit the main pipeline built it from. GitHub's
 * compare `<served>...<update commit>` lists what the update's commit changed since the two
 * histories met: when nothing under `backend/` is in it, the served backend has every backend
 * change the update was built with (the update's commit is older, the same, or only changed
 * other files). Refused when it cannot tell: an update published without a commit, a served
 * tag that is not a commit, more than 300 changed files (GitHub's cap per compare).
 */
export function backendServedScript(): string {
  return `set -euo pipefail
if [[ ! "$UPDATE_COMMIT" =~ ^[0-9a-f]{40}$ ]]; then
  echo "::error::update group $GROUP_ID records no git commit, so which backend it needs is unknown; publish it from the main pipeline (mobile-update.yml)"
  exit 1
fi
served=$(pulumi stack output deployedImage --stack "$STACK" --json | jq -r '.tag // empty')
if [[ ! "$served" =~ ^[0-9a-f]{40}$ ]]; then
  echo "::error::$STACK serves the image tag '\${served:-none}', not a commit of the main pipeline, so whether it has the backend of $UPDATE_COMMIT is unknown"
  exit 1
fi
compare="$RUNNER_TEMP/compare.json"
gh api "repos/$REPOSITORY/compare/$served...$UPDATE_COMMIT" > "$compare"
count=$(jq '.files | length' "$compare")
if ((count >= 300)); then
  echo "::error::$UPDATE_COMMIT changed $count or more files since $served; GitHub lists at most 300, so backend changes cannot be ruled out: deploy the backend of $UPDATE_COMMIT or newer to production first"
  exit 1
fi
backend=$(jq -r '.files[].filename | select(startswith("backend/"))' "$compare")
if [[ -n "$backend" ]]; then
  echo "::error::production serves the backend of $served, but the update was published from $UPDATE_COMMIT, which changed the backend since: $(head -n 10 <<<"$backend" | paste -sd ' '). Deploy production (deploy-prod.yml) with a version that has these changes, then run this again."
  exit 1
fi
echo "production serves the backend of $served, which has every backend change of $UPDATE_COMMIT"`;
}
