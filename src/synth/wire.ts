import {
  specialArchiveSig,
  specialAssetSig,
  specialResourceSig,
  specialSecretSig,
  specialSigKey,
  unknownValue,
} from "@pulumi/pulumi/runtime/rpc";

/**
 * Wire-form values as the engine sees them: secrets, assets and archives arrive as objects
 * tagged with the SDK's signature key. The constants are the SDK's own
 * (`@pulumi/pulumi/runtime/rpc`), not copies. These helpers turn such values into what synth
 * writes, never letting a secret's plaintext through by accident.
 */
export const SIG_KEY = specialSigKey;
export const SECRET_SIG = specialSecretSig;
export const ASSET_SIG = specialAssetSig;
export const ARCHIVE_SIG = specialArchiveSig;
export const RESOURCE_SIG = specialResourceSig;
export const UNKNOWN = unknownValue;

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
