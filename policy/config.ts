import type { PolicyConfigSchema } from "@pulumi/policy";
import { DRIFT_ENVIRONMENT } from "../src/config/catalog";

/**
 * What the pack needs to know about the repository. Pulumi gives each policy its own config
 * (`--policy-pack-config` is `{ "<policy name>": { ... } }`), so every policy declares all of
 * these keys with the same defaults, and an override belongs under every policy's name.
 */
export interface PackConfig {
  /** GitHub environments whose jobs wait for production's reviewers. */
  readonly gatedEnvironments: readonly string[];
  /** Stacks that deploy production (the stack name of a resource's URN). */
  readonly gatedStacks: readonly string[];
  /** The drift job's environment: no reviewers, default branch only, changes nothing. */
  readonly driftEnvironment: string;
  /** The only branch allowed to deploy to the drift environment. */
  readonly defaultBranch: string;
}

export type PackConfigKey = keyof PackConfig;

/** This repository's values: `Pulumi.production.yaml` and `github.defaultBranch`. */
export const DEFAULT_PACK_CONFIG: PackConfig = {
  gatedEnvironments: ["production"],
  gatedStacks: ["production"],
  driftEnvironment: DRIFT_ENVIRONMENT,
  defaultBranch: "main",
};

const KEY_DESCRIPTIONS: Readonly<Record<PackConfigKey, string>> = {
  gatedEnvironments: "GitHub environments gated by production's reviewers",
  gatedStacks: "stacks that deploy production",
  driftEnvironment: "the drift workflow's environment (default branch only, changes nothing)",
  defaultBranch: "the only branch that may deploy to the drift environment",
};

/**
 * The config schema every policy of the pack declares; the engine fills in the defaults and
 * checks types before the pack sees the values.
 */
export function packConfigSchema(): PolicyConfigSchema {
  const list = (key: PackConfigKey, value: readonly string[]) => ({
    type: "array" as const,
    items: { type: "string" as const, minLength: 1 },
    minItems: 1,
    uniqueItems: true,
    default: [...value],
    description: KEY_DESCRIPTIONS[key],
  });
  const text = (key: PackConfigKey, value: string) => ({
    type: "string" as const,
    minLength: 1,
    default: value,
    description: KEY_DESCRIPTIONS[key],
  });
  const d = DEFAULT_PACK_CONFIG;
  return {
    properties: {
      gatedEnvironments: list("gatedEnvironments", d.gatedEnvironments),
      gatedStacks: list("gatedStacks", d.gatedStacks),
      driftEnvironment: text("driftEnvironment", d.driftEnvironment),
      defaultBranch: text("defaultBranch", d.defaultBranch),
    },
  };
}

/**
 * A policy's config (what `args.getConfig()` returns), defaults filled in and every value
 * checked here too: the policies also run without the engine (tests), and a typo such as
 * `gatedEnvironment` must not quietly fall back to the defaults.
 *
 * @example readPackConfig("gated-environment-approval", { gatedEnvironments: ["prod"] })
 *   // { gatedEnvironments: ["prod"], gatedStacks: ["production"], driftEnvironment: "drift", ... }
 */
export function readPackConfig(
  policy: string,
  given: Readonly<Record<string, unknown>>,
): PackConfig {
  const known = Object.keys(DEFAULT_PACK_CONFIG);
  const problems: string[] = [];
  for (const key of Object.keys(given)) {
    if (!known.includes(key))
      problems.push(`unknown key "${key}" (expected one of: ${known.join(", ")})`);
  }
  const list = (key: "gatedEnvironments" | "gatedStacks"): readonly string[] => {
    const value = given[key];
    if (value === undefined) return DEFAULT_PACK_CONFIG[key];
    const ok =
      Array.isArray(value) &&
      value.length > 0 &&
      value.every((v) => typeof v === "string" && v.length > 0);
    if (!ok)
      problems.push(`${key} must be a non-empty list of names, got ${JSON.stringify(value)}`);
    return ok ? (value as string[]) : DEFAULT_PACK_CONFIG[key];
  };
  const text = (key: "driftEnvironment" | "defaultBranch"): string => {
    const value = given[key];
    if (value === undefined) return DEFAULT_PACK_CONFIG[key];
    const ok = typeof value === "string" && value.length > 0;
    if (!ok) problems.push(`${key} must be a non-empty string, got ${JSON.stringify(value)}`);
    return ok ? value : DEFAULT_PACK_CONFIG[key];
  };
  const config: PackConfig = {
    gatedEnvironments: list("gatedEnvironments"),
    gatedStacks: list("gatedStacks"),
    driftEnvironment: text("driftEnvironment"),
    defaultBranch: text("defaultBranch"),
  };
  if (problems.length > 0) {
    throw new Error(`policy pack config of "${policy}": ${problems.join("; ")}`);
  }
  return config;
}
