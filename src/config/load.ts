import * as pulumi from "@pulumi/pulumi";
import { hostKeyProblems, type UnsetHostKey } from "./host-keys";
import { decodeConfigMap } from "./raw";
import {
  PROJECT,
  parseStackConfig,
  requiredSecretKeys,
  requirementContext,
  type StackConfig,
} from "./schema";
import type { SecretKeySpec } from "./secret-keys";
import { stackFilesProblems } from "./stacks-agree";

/**
 * How the program runs: `up` under the Pulumi CLI (preview, up, refresh), `synth` offline
 * under the SDK's mocks, where a missing secret or production host key becomes a placeholder
 * that the synth report lists, and there is no stack state to read.
 */
export type RunMode = "up" | "synth";

/** Secret config values, each a secret Output; never a plain string. */
export type SecretValues = Readonly<Record<string, pulumi.Output<string>>>;

export interface LoadedStack {
  readonly mode: RunMode;
  readonly config: StackConfig;
  readonly secrets: SecretValues;
  /** Required secrets that are not set (only ever non-empty under synth). */
  readonly unsetSecrets: readonly SecretKeySpec[];
  /** Production hosts without a real host key (only ever non-empty under synth). */
  readonly unsetHostKeys: readonly UnsetHostKey[];
  /** Lines to log before anything is registered (hosts that trust any server). */
  readonly warnings: readonly string[];
}

export interface LoadOptions {
  readonly mode: RunMode;
  /** Folder of the project's stack files to compare with; none: no comparison. */
  readonly stackFilesDir?: string;
  /** The stack file's name in messages; `Pulumi.<stack>.yaml` by default. */
  readonly file?: string;
}

/** A config problem; Pulumi prints a RunError's message without a stack trace. */
export class StackConfigError extends pulumi.RunError {
  constructor(readonly problems: readonly string[]) {
    super(problems.join("\n"));
    this.name = "StackConfigError";
  }
}

/**
 * Reads this stack's whole config once from the engine, validates it, and returns the typed
 * config plus its secrets: the one reader of the program and of synth, and the one place every
 * rule that config alone decides is checked. Throws a {@link StackConfigError} listing every
 * problem, one line each, before the program registers any resource: config the schema
 * refuses, a disagreement with the project's other stack files (`stacks-agree.ts`), a host key
 * production needs (`host-keys.ts`) and, under `up`, a missing required secret, with the exact
 * command that sets it.
 */
export function loadStack(
  opts: LoadOptions = { mode: "up", stackFilesDir: process.cwd() },
): LoadedStack {
  const stack = pulumi.getStack();
  const file = opts.file ?? `Pulumi.${stack}.yaml`;
  const decoded = decodeConfigMap(pulumi.runtime.allConfig(), isConfigSecret, file);
  const parsed = parseStackConfig(decoded.values, { stack, file, secretKeys: decoded.secretKeys });
  const problems = [...decoded.problems, ...(parsed.ok ? [] : parsed.problems)];
  if (!parsed.ok || problems.length > 0) throw new StackConfigError(problems);

  const synth = opts.mode === "synth";
  // The CLI runs the program in the folder of Pulumi.yaml (the default `stackFilesDir`), beside
  // the other stack files. Synth compares only the project's own stack files (a file given with
  // `--stack-file` stands alone).
  if (opts.stackFilesDir !== undefined) {
    const disagreements = stackFilesProblems(parsed.config, file, opts.stackFilesDir);
    if (disagreements.length > 0) throw new StackConfigError(disagreements);
  }
  // Every problem at once: the missing secrets (with the commands that set them), then hosts.
  const hostKeys = hostKeyProblems(stack, parsed.config.deploy.hosts, file, { mode: opts.mode });
  const unset = requiredSecretKeys(parsed.config).filter(
    (spec) => !parsed.secretKeysSet.includes(spec.key),
  );
  const missing =
    unset.length > 0 && !synth ? missingSecretsMessage(unset, stack, file, parsed.config) : [];
  if (missing.length + hostKeys.errors.length > 0) {
    throw new StackConfigError([...missing, ...hostKeys.errors]);
  }
  const secrets: Record<string, pulumi.Output<string>> = {};
  for (const key of parsed.secretKeysSet) {
    const value = decoded.values[key];
    // A structured secret (`appSecrets`) travels as its JSON text.
    secrets[key] = pulumi.secret(typeof value === "string" ? value : JSON.stringify(value));
  }
  for (const spec of unset)
    secrets[spec.key] = pulumi.secret(unsetPlaceholder(spec, parsed.config));
  return {
    mode: opts.mode,
    config: parsed.config,
    secrets,
    unsetSecrets: unset,
    unsetHostKeys: hostKeys.unset,
    warnings: hostKeys.warnings,
  };
}

/**
 * Whether the engine marked a config key secret. The SDK exports this at runtime but keeps it
 * out of its type declarations (`@internal`), hence the narrow cast.
 */
function isConfigSecret(fullKey: string): boolean {
  const runtime = pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean };
  if (typeof runtime.isConfigSecret !== "function") {
    throw new Error(
      "@pulumi/pulumi no longer exports runtime.isConfigSecret; pin a version that does",
    );
  }
  return runtime.isConfigSecret(fullKey);
}

/** What synth holds for an unset secret: a marker, per name for a structured one. */
function unsetPlaceholder(spec: SecretKeySpec, config: StackConfig): string {
  const names = spec.names?.(requirementContext(config));
  return names
    ? JSON.stringify(Object.fromEntries(names.map((n) => [n, `unset:${spec.key}.${n}`])))
    : `unset:${spec.key}`;
}

/** One line per missing secret with the command that sets it (the value is prompted for). */
export function missingSecretsMessage(
  unset: readonly SecretKeySpec[],
  stack: string,
  file: string,
  config?: StackConfig,
): string[] {
  return [
    `${file}: ${unset.length} required secret${unset.length === 1 ? " is" : "s are"} not set; nothing was changed. Run:`,
    ...unset.flatMap((spec) =>
      spec.names && config
        ? spec
            .names(requirementContext(config))
            .map(
              (name) =>
                `  pulumi config set --secret --path '${spec.key}.${name}' --stack ${stack}   # ${spec.description}`,
            )
        : [`  pulumi config set --secret ${spec.key} --stack ${stack}   # ${spec.description}`],
    ),
    `(each prompts for its value, which keeps it out of your shell history; config namespace ${PROJECT})`,
  ];
}
