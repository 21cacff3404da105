import type { MockRun, RecordedResource } from "../../src/synth/engine";
import { COMMAND_TYPE, COPY_TYPE } from "../../src/synth/outputs";
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
