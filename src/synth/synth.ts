import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { SYNTH_ENV } from "../config/load";
import { hostKeyProblems } from "../config/host-keys";
import { decodeConfigMap } from "../config/raw";
import { PROJECT, parseStackConfig, requiredSecretKeys } from "../config/schema";
import { stackFilesProblems } from "../config/stacks-agree";
import { runUnderMocks } from "./engine";
import { buildOutputs } from "./outputs";
import { readStackFile } from "../config/stack-file";

export interface SynthOptions {
  readonly stack: string;
  /** Stack file to read; `Pulumi.<stack>.yaml` beside the program by default. */
  readonly stackFile?: string;
  /** Output folder; `out/<stack>` by default. */
  readonly out?: string;
  /** Folder of `index.ts`. */
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
 * Offline synth: validates the stack file, runs the real program under the SDK's mocks, and
 * writes the contract's outputs. On any problem it writes nothing: outputs go to a sibling
 * folder first and replace the old folder only when complete.
 */
export async function synth(opts: SynthOptions): Promise<SynthResult> {
  const stackFile = resolve(opts.stackFile ?? join(opts.programDir, `Pulumi.${opts.stack}.yaml`));
  if (!existsSync(stackFile)) {
    return { ok: false, problems: [`${stackFile}: stack file not found`] };
  }
  const fromFile = readStackFile(stackFile);
  const secretSet = new Set(fromFile.secretKeys);
  const decoded = decodeConfigMap(fromFile.config, (k) => secretSet.has(k), fromFile.file);
  const parsed = parseStackConfig(decoded.values, {
    stack: opts.stack,
    file: fromFile.file,
    secretKeys: decoded.secretKeys,
  });
  const problems = [...decoded.problems, ...(parsed.ok ? [] : parsed.problems)];
  if (!parsed.ok || problems.length > 0) return { ok: false, problems };
  // The project's own stack files must agree with each other; a stack file given from
  // elsewhere (`--stack-file`) is checked alone.
  if (dirname(stackFile) === resolve(opts.programDir)) {
    const disagree = stackFilesProblems(parsed.config, fromFile.file, opts.programDir);
    if (disagree.length > 0) return { ok: false, problems: disagree };
  }

  const unsetSecrets = requiredSecretKeys(parsed.config)
    .map((s) => s.key)
    .filter((k) => !parsed.secretKeysSet.includes(k));
  const unsetHostKeys = hostKeyProblems(opts.stack, parsed.config.deploy.hosts, fromFile.file, {
    mode: "synth",
  }).unset.map((u) => `${u.key} (${u.name}, ${u.host}${u.placeholder ? ": the placeholder" : ""})`);

  process.env[SYNTH_ENV] = "1";
  const indexPath = join(opts.programDir, "index.ts");
  const run = await runUnderMocks({
    project: PROJECT,
    stack: opts.stack,
    config: fromFile.config,
    secretKeys: fromFile.secretKeys,
    // index.ts is CommonJS (`export = program()`): its exports are the program's promise.
    program: async () => {
      const mod = (await import(indexPath)) as { default?: unknown };
      return await (mod.default ?? mod);
    },
  });
  if ("error" in run) {
    const err = run.error;
    return { ok: false, problems: [err instanceof Error ? err.message : String(err)] };
  }
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
