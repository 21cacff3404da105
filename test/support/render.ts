import type { MockRun, RecordedResource } from "../../src/synth/engine";
import { COMMAND_TYPE, COPY_TYPE, LOCAL_COMMAND_TYPE } from "../../src/synth/outputs";
import { redact, reveal } from "../../src/synth/wire";
import { runProgram } from "./program";
import { HOSTILE_SECRETS } from "./secrets";

/** What the program registered for one host, in the order Pulumi would run it. */
export interface RenderedHost {
  /** Component name, e.g. `deploy-web-1`. */
  readonly name: string;
  readonly prepare: RecordedResource;
  /** Every file the host gets, in registration order: the compose project, then the script. */
  readonly copies: readonly { readonly remotePath: string; readonly text: string }[];
  readonly run: RecordedResource;
  /** The run command's `create` exactly as registered: the line that runs the copied script. */
  readonly script: string;
  /** The deploy script as copied to the host. */
  readonly deployScript: { readonly remotePath: string; readonly text: string };
  /** The run command's stdin in plain text (test secrets only). */
  readonly stdin: string;
}

export interface RenderedStack {
  readonly run: MockRun<unknown>;
  readonly hosts: readonly RenderedHost[];
}

/** Test secrets: fake values with characters that need care in a URL and in a shell. */
export const TEST_SECRETS = {
  sshPrivateKey:
    "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n",
  ...HOSTILE_SECRETS,
} as const;

/**
 * Runs the real program (index's `program()`) under Pulumi's mocks with the staging stack file,
 * the given `deploy` section and secrets, and returns what it registered for each host.
 */
export async function renderStack(opts: {
  readonly deploy: unknown;
  readonly secrets?: Readonly<Record<string, string>>;
  readonly stack?: string;
}): Promise<RenderedStack> {
  const run = await runProgram({
    stack: opts.stack ?? "staging",
    overrides: { deploy: opts.deploy },
    secrets: { ...TEST_SECRETS, ...opts.secrets },
    mode: "synth",
  });
  const byName = (type: string, name: string) => {
    const found = run.resources.find((r) => r.type === type && r.name === name);
    if (!found) throw new Error(`no ${type} named ${name}`);
    return found;
  };
  const components = run.resources.filter((r) => r.type === "clicky:deploy:RemoteDeploy");
  const hosts = components.map((component): RenderedHost => {
    const name = component.name;
    const runCommand = byName(COMMAND_TYPE, `${name}-run`);
    const copyOf = (r: RecordedResource) => {
      const source = redact(r.inputs.source) as { text: string };
      return { remotePath: String(r.inputs.remotePath), text: source.text };
    };
    const copies = run.resources
      .filter((r) => r.type === COPY_TYPE && r.parent === name)
      .map(copyOf);
    return {
      name,
      prepare: byName(COMMAND_TYPE, `${name}-prepare`),
      copies,
      run: runCommand,
      script: String(runCommand.inputs.create),
      deployScript: copyOf(byName(COPY_TYPE, `${name}-deploy-script`)),
      stdin: String(reveal(runCommand.inputs.stdin)),
    };
  });
  return { run, hosts };
}

/** What the program registered for one host of a fleet: prepare and copies, no run command. */
export interface RenderedFleetHost {
  /** Component name, e.g. `deploy-app1`. */
  readonly name: string;
  readonly prepare: RecordedResource;
  readonly copies: readonly { readonly remotePath: string; readonly text: string }[];
}

/** A fleet stack as registered: each host's files, then the rollout command. */
export interface RenderedFleet {
  readonly run: MockRun<unknown>;
  readonly hosts: readonly RenderedFleetHost[];
  readonly rollout: {
    readonly create: string;
    readonly environment: Readonly<Record<string, string>>;
    /** The rollout's stdin in plain text (JSON; test secrets only). */
    readonly stdin: string;
  };
}

/** Like {@link renderStack}, for a stack with `deploy.accessories` (a fleet). */
export async function renderFleet(opts: {
  readonly deploy: unknown;
  readonly secrets?: Readonly<Record<string, string>>;
}): Promise<RenderedFleet> {
  const run = await runProgram({
    stack: "staging",
    overrides: { deploy: opts.deploy },
    secrets: { ...TEST_SECRETS, ...opts.secrets },
    mode: "synth",
  });
  if (run.error) throw run.error;
  const hosts = run.resources
    .filter((r) => r.type === "clicky:deploy:FleetHost")
    .map((component): RenderedFleetHost => {
      const prepare = run.resources.find(
        (r) => r.type === COMMAND_TYPE && r.name === `${component.name}-prepare`,
      );
      if (!prepare) throw new Error(`no prepare command for ${component.name}`);
      const copies = run.resources
        .filter((r) => r.type === COPY_TYPE && r.parent === component.name)
        .map((r) => ({
          remotePath: String(r.inputs.remotePath),
          text: (redact(r.inputs.source) as { text: string }).text,
        }));
      return { name: component.name, prepare, copies };
    });
  const rollout = run.resources.find((r) => r.type === LOCAL_COMMAND_TYPE);
  if (!rollout) throw new Error("no rollout command was registered");
  return {
    run,
    hosts,
    rollout: {
      create: String(rollout.inputs.create),
      environment: reveal(rollout.inputs.environment) as Record<string, string>,
      stdin: String(reveal(rollout.inputs.stdin)),
    },
  };
}
