/**
 * Wire-form values as the engine sees them: secrets, assets and archives arrive as objects
 * tagged with the SDK's signature key (`@pulumi/pulumi/runtime/rpc`). These helpers turn them
 * into what synth writes, never letting a secret's plaintext through by accident.
 */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17";
export const ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7";
export const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** What a secret becomes in everything synth writes or prints. */
export const SECRET_MASK = "[secret]";

function signature(value: unknown): string | undefined {
  if (value !== null && typeof value === "object" && SIG_KEY in value) {
    return String((value as Record<string, unknown>)[SIG_KEY]);
  }
  return undefined;
}

export function isSecret(value: unknown): boolean {
  return signature(value) === SECRET_SIG;
}

/**
 * A copy with every secret replaced by `[secret]`, assets by their text or path, resource
 * references by their URN and unknowns by `[unknown]`.
 */
export function redact(value: unknown): unknown {
  if (value === UNKNOWN) return "[unknown]";
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== "object") return value;
  const record = value as Record<string, unknown>;
  switch (signature(value)) {
    case SECRET_SIG:
      return SECRET_MASK;
    case ASSET_SIG:
      return "text" in record
        ? { asset: "string", text: record.text }
        : { asset: "file", path: record.path };
    case ARCHIVE_SIG:
      return { archive: redact(record.assets ?? record.path) };
    case RESOURCE_SIG:
      return { resource: record.urn };
    default:
      return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, redact(v)]));
  }
}

/**
 * A copy with secrets unwrapped to their plain values: only for synth's own use in deriving
 * names (e.g. the keys of a dotenv stdin), never for writing.
 */
export function reveal(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reveal);
  if (value === null || typeof value !== "object") return value;
  const record = value as Record<string, unknown>;
  if (signature(value) === SECRET_SIG) return reveal(record.value);
  if (signature(value) !== undefined) return value;
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, reveal(v)]));
}
