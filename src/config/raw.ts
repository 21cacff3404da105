import { PROJECT } from "./schema";

/** Config namespaces other than ours that a stack file may hold (provider settings). */
export const PROVIDER_NAMESPACES = [
  "github",
  "command",
  "docker",
  "pulumiservice",
  "pulumi",
] as const;

export interface DecodedConfig {
  /** Our keys without the namespace, values decoded from the engine's string form. */
  readonly values: Record<string, unknown>;
  /** Our keys whose values are secret. */
  readonly secretKeys: ReadonlySet<string>;
  /** Keys in namespaces nobody reads (usually a typo of ours), one line each. */
  readonly problems: readonly string[];
}

/**
 * Decodes the engine's flat config map (`namespace:key` -> string; objects and lists as JSON)
 * into the values of our namespace. Keys of namespaces that nothing reads are reported, since
 * `clicky-delivry:deploy` would otherwise be ignored without a word.
 */
export function decodeConfigMap(
  map: Readonly<Record<string, string>>,
  isSecret: (fullKey: string) => boolean,
  file: string,
): DecodedConfig {
  const values: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  const problems: string[] = [];
  for (const [fullKey, raw] of Object.entries(map)) {
    const colon = fullKey.indexOf(":");
    const namespace = colon === -1 ? "" : fullKey.slice(0, colon);
    const key = fullKey.slice(colon + 1);
    if (namespace !== PROJECT) {
      if (!(PROVIDER_NAMESPACES as readonly string[]).includes(namespace)) {
        problems.push(
          `${file}: ${fullKey}: unknown namespace "${namespace}" (expected ${PROJECT}: or a provider's: ${PROVIDER_NAMESPACES.join(", ")})`,
        );
      }
      continue;
    }
    values[key] = decodeValue(raw);
    if (isSecret(fullKey)) secretKeys.add(key);
  }
  return { values, secretKeys, problems };
}

/** Objects and lists arrive as JSON text; everything else stays the string it was. */
export function decodeValue(raw: string): unknown {
  const trimmed = raw.trimStart();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }
  return raw;
}
