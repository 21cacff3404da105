import { tools } from "../actions";
import { WorkflowBuilder } from "../builder";
import { expr } from "../expr";
import type { Job, Workflow } from "../model";
import type { PipelineSettings } from "../settings";
import { checkout, setupNode } from "../steps";

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
  step: { name: string; run: string; env?: Record<string, ReturnType<typeof expr.github>> },
): Job {
  return {
    name,
    runsOn: "ubuntu-latest",
    timeoutMinutes: 120,
    permissions: { contents: "read" },
    environment: { name: settings.production.environment },
    steps: [
      checkout(),
      setupNode(settings.nodeVersion, "mobile/package-lock.json"),
      { name: "Install dependencies", workingDirectory: "mobile", run: "npm ci" },
      {
        name: step.name,
        workingDirectory: "mobile",
        env: { EXPO_TOKEN: expr.secret("EXPO_TOKEN"), ...step.env },
        run: step.run,
      },
    ],
  };
}

/**
 * Store builds (`mobile-build.yml`): EAS builds for iOS and Android on release tags `v*.*.*`.
 * EAS CLI is run at an exact version with `npx` and reads `EXPO_TOKEN` from the environment,
 * so no third-party action sits between the token and Expo.
 */
export function mobileBuildPipeline(settings: PipelineSettings): Workflow {
  const build = (platform: "ios" | "android") =>
    `${EAS} build --platform ${platform} --profile ${settings.mobile.buildProfile} --non-interactive`;
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
      easJob(settings, "Build iOS (TestFlight)", { name: "Build", run: build("ios") }),
    )
    .addJob(
      "build-android",
      easJob(settings, "Build Android (Internal Testing)", {
        name: "Build",
        run: build("android"),
      }),
    )
    .build();
}

/**
 * OTA updates (`mobile-update.yml`) on every push to the default branch that changes `mobile/`.
 * The spec's job ran only on tags yet was skipped on tags, so it could never run; it also put
 * the commit message into the script (script injection). Here the message reaches
 * `eas update` as an environment variable, quoted by the shell.
 */
export function mobileUpdatePipeline(settings: PipelineSettings): Workflow {
  return new WorkflowBuilder({
    file: "mobile-update.yml",
    name: "Mobile Update (EAS)",
    source: "src/workflows/pipelines/mobile.ts",
    on: { push: { branches: [settings.defaultBranch], paths: ["mobile/**"] } },
    permissions: {},
    concurrency: { group: "mobile-update", cancelInProgress: false },
  })
    .addJob(
      "ota-update",
      easJob(settings, "OTA Update (Expo Updates)", {
        name: "Publish the update",
        env: { COMMIT_MESSAGE: expr.github("event.head_commit.message") },
        run: `${EAS} update --branch ${settings.mobile.updateBranch} --message "$COMMIT_MESSAGE" --non-interactive`,
      }),
    )
    .build();
}
