import { join } from "node:path";
import { loadStack } from "../../src/config/load";
import { PROJECT, secretKeySpecs } from "../../src/config/schema";
import { readStackFile } from "../../src/config/stack-file";
import type { HostProber } from "../../src/deploy/host-probe";
import { program } from "../../src/program";
import {
  type MockRun,
  type MockRunOptions,
  type RecordedResource,
  runUnderMocks,
} from "../../src/synth/engine";
import { ED25519 } from "./keys";

export const REPO_ROOT = join(__dirname, "..", "..");

export interface RunProgramOptions
  extends Pick<MockRunOptions<unknown>, "callResult" | "newResource"> {
  /** Stack name; the stack file defaults to the committed `Pulumi.<stack>.yaml`. */
  readonly stack: string;
  readonly stackFile?: string;
  /** Secret config values to set (key without namespace -> plaintext), as `pulumi up` would. */
  readonly secrets?: Readonly<Record<string, string>>;
  /** Extra or replaced config values of our namespace (objects are JSON-encoded). */
  readonly overrides?: Readonly<Record<string, unknown>>;
  /** Run as synth does (missing secrets become placeholders) or as `pulumi up` (they stop it). */
  readonly mode: "synth" | "up";
  /**
   * Outputs StackReferences read (see `runUnderMocks`). By default the stack has deployed
   * before (its `deployedImage` names the configured repository), as a stack is on every run
   * but its first; `{}` is a never-deployed stack.
   */
  readonly stackOutputs?: MockRunOptions<unknown>["stackOutputs"];
  /**
   * Compare the stack with the project's other stack files in this folder, as `pulumi up` does
   * from the project folder. Off by default: most tests override config on purpose.
   */
  readonly stackFilesDir?: string;
  /** How the program reads hosts before planning; off unless a test is about hosts. */
  readonly hostProber?: HostProber | "off";
}

/** The mock runtime is process-global: runs must not overlap, so they queue here. */
let queue: Promise<unknown> = Promise.resolve();

/** Runs the real program under Pulumi's mocks with a stack file's config, one run at a time. */
export function runProgram(opts: RunProgramOptions): Promise<MockRun<unknown>> {
  const run = queue.then(() => runProgramNow(opts));
  queue = run.catch(() => undefined);
  return run;
}

async function runProgramNow(opts: RunProgramOptions): Promise<MockRun<unknown>> {
  const file = readStackFile(opts.stackFile ?? join(REPO_ROOT, `Pulumi.${opts.stack}.yaml`));
  const config: Record<string, string> = { ...file.config };
  const secretKeys = [...file.secretKeys];
  for (const [key, value] of Object.entries(opts.overrides ?? {})) {
    config[`${PROJECT}:${key}`] = typeof value === "string" ? value : JSON.stringify(value);
  }
  for (const [key, value] of Object.entries(opts.secrets ?? {})) {
    config[`${PROJECT}:${key}`] = value;
    secretKeys.push(`${PROJECT}:${key}`);
  }
  return await runUnderMocks({
    project: PROJECT,
    stack: opts.stack,
    config,
    secretKeys,
    program: () =>
      program(
        loadStack({
          mode: opts.mode,
          ...(opts.stackFilesDir === undefined ? {} : { stackFilesDir: opts.stackFilesDir }),
        }),
        { hostProber: opts.hostProber ?? "off" },
      ),
    stackOutputs: opts.stackOutputs ?? previouslyDeployed(opts.stack, config),
    ...(opts.callResult ? { callResult: opts.callResult } : {}),
    ...(opts.newResource ? { newResource: opts.newResource } : {}),
  });
}

/**
 * A stack's committed `deploy` section, changed, with every host pinned to a real-shaped key
 * (`pulumi up` of production refuses its stack file's all-zero placeholder), as an override.
 */
export function committedDeploy(
  stack: string,
  change: (deploy: Record<string, unknown>) => Record<string, unknown> = (d) => d,
): { deploy: Record<string, unknown> } {
  const file = readStackFile(join(REPO_ROOT, `Pulumi.${stack}.yaml`));
  const deploy = JSON.parse(file.config[`${PROJECT}:deploy`] ?? "{}") as Record<string, unknown>;
  const hosts = (deploy.hosts as Record<string, unknown>[]).map((h) => ({
    ...h,
    hostKey: ED25519,
  }));
  return { deploy: change({ ...deploy, hosts }) };
}

/** A stack's committed `deployments` section with the jobs' Pulumi login set, as an override. */
export function withLogin(
  stack: string,
  auth: "oidc" | "tokens",
): { deployments: Record<string, unknown> } {
  const file = readStackFile(join(REPO_ROOT, `Pulumi.${stack}.yaml`));
  const deployments = JSON.parse(file.config[`${PROJECT}:deployments`] ?? "{}") as object;
  return { deployments: { ...deployments, auth } };
}

/**
 * The secret config keys that hold stored Pulumi tokens: required with `auth: tokens`, not
 * with OIDC login. Derived from the keys' own rules, for the stack that needs the most.
 */
export const STORED_PULUMI_TOKEN_KEYS: readonly string[] = secretKeySpecs
  .filter((s) => {
    const ctx = { stack: "production", ownsRepository: true, approvalGated: true };
    return (
      s.requiredWhen({ ...ctx, tokenAuth: true }) && !s.requiredWhen({ ...ctx, tokenAuth: false })
    );
  })
  .map((s) => s.key);

/** `secrets` without the stored Pulumi tokens: what a stack with OIDC login holds. */
export function withoutStoredTokens(
  secrets: Readonly<Record<string, string>>,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(secrets).filter(([key]) => !STORED_PULUMI_TOKEN_KEYS.includes(key)),
  );
}

/** Test digest of the image a stack "deployed before". */
export const PREVIOUS_DIGEST = `sha256:${"0".repeat(64)}`;

function previouslyDeployed(
  stack: string,
  config: Record<string, string>,
): Record<string, Record<string, unknown>> {
  const deploy = JSON.parse(config[`${PROJECT}:deploy`] ?? "{}") as {
    image?: { repository?: string };
  };
  const repository = deploy.image?.repository ?? "ghcr.io/example/backend";
  return {
    [`organization/${PROJECT}/${stack}`]: {
      deployedImage: { repository, tag: "v0.9.0", digest: PREVIOUS_DIGEST, migrate: true },
    },
  };
}

/** The registrations of one resource type, e.g. `github:index/actionsSecret:ActionsSecret`. */
export function ofType(run: MockRun<unknown>, type: string): RecordedResource[] {
  return run.resources.filter((r) => r.type === type);
}

/** The one registration of this type and name, failing loudly when there is none or several. */
export function byName(run: MockRun<unknown>, type: string, name: string): RecordedResource {
  const found = run.resources.filter((r) => r.type === type && r.name === name);
  if (found.length !== 1) {
    throw new Error(
      `expected one resource named ${name}, found ${found.length}: ${run.resources.map((r) => r.name).join(", ")}`,
    );
  }
  return found[0] as RecordedResource;
}
