import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { type LoadedStack, loadStack, StackConfigError } from "../config/load";
import { PROJECT } from "../config/schema";
import { readStackFile } from "../config/stack-file";
import { program } from "../program";
import { runUnderMocks } from "./engine";
import { buildOutputs } from "./outputs";

export interface SynthOptions {
  readonly stack: string;
  /** Stack file to read; `Pulumi.<stack>.yaml` beside the program by default. */
  readonly stackFile?: string;
  /** Output folder; `out/<stack>` by default. */
  readonly out?: string;
  /** Folder of `Pulumi.yaml` and the project's stack files. */
  readonly programDir: string;
}

export type SynthResult =
  | {
      readonly ok: true;
      readonly out: string;
      readonly counts: ReadonlyMap<string, number>;
      readonly written: readonly string[];
      readonly unsetSecrets: readonly string[];
      /** Production hosts without a real host key (key path, host), which `pulumi up` refuses. */
      readonly unsetHostKeys: readonly string[];
      readonly lookups: readonly string[];
    }
  | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Offline synth: runs the real program (which validates the stack file) under the SDK's mocks,
 * and writes the contract's outputs. On any problem it writes nothing: outputs go to a sibling
 * folder first and replace the old folder only when complete.
 */
export async function synth(opts: SynthOptions): Promise<SynthResult> {
  const stackFile = resolve(opts.stackFile ?? join(opts.programDir, `Pulumi.${opts.stack}.yaml`));
  if (!existsSync(stackFile)) {
    return { ok: false, problems: [`${stackFile}: stack file not found`] };
  }
  const fromFile = readStackFile(stackFile);
  // The program's own reader validates the stack file, once (`../config/load.ts`): the project's
  // stack files are compared with each other; a stack file given from elsewhere stands alone.
  const inProject = dirname(stackFile) === resolve(opts.programDir);
  let loaded: LoadedStack | undefined;
  const run = await runUnderMocks({
    project: PROJECT,
    stack: opts.stack,
    config: fromFile.config,
    secretKeys: fromFile.secretKeys,
    program: () => {
      loaded = loadStack({
        mode: "synth",
        file: fromFile.file,
        ...(inProject ? { stackFilesDir: resolve(opts.programDir) } : {}),
      });
      return program(loaded);
    },
  });
  if ("error" in run) {
    const err = run.error;
    if (err instanceof StackConfigError) return { ok: false, problems: err.problems };
    return { ok: false, problems: [err instanceof Error ? err.message : String(err)] };
  }
  if (!loaded) return { ok: false, problems: ["synth: the program did not load the stack"] };
  const unsetSecrets = loaded.unsetSecrets.map((s) => s.key);
  const unsetHostKeys = loaded.unsetHostKeys.map(
    (u) => `${u.key} (${u.name}, ${u.host}${u.placeholder ? ": the placeholder" : ""})`,
  );
  const outputs = buildOutputs(run.resources);

  const out = resolve(opts.out ?? join(opts.programDir, "out", opts.stack));
  const staging = `${out}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  for (const [rel, content] of outputs.files) {
    const path = join(staging, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
  mkdirSync(staging, { recursive: true });
  rmSync(out, { recursive: true, force: true });
  mkdirSync(dirname(out), { recursive: true });
  renameSync(staging, out);

  const counts = new Map<string, number>();
  for (const r of run.resources) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
  return {
    ok: true,
    out,
    counts,
    written: [...outputs.files.keys()],
    unsetSecrets,
    unsetHostKeys,
    lookups: [...new Set(run.calls.map((c) => `${c.token} ${JSON.stringify(c.args)}`))],
  };
}
