import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parse } from "yaml";
import { PROJECT } from "./schema";

/** A stack file turned into the engine's flat config form, without decrypting anything. */
export interface StackFileConfig {
  /** Name used in messages, e.g. `Pulumi.staging.yaml`. */
  readonly file: string;
  /** `namespace:key` -> string, objects as JSON, as the engine passes config to a program. */
  readonly config: Record<string, string>;
  /** Full keys whose values are (or contain) `secure:` values. */
  readonly secretKeys: string[];
}

/** What an encrypted value becomes under synth: a marker, never a decryption. */
export const ENCRYPTED_PLACEHOLDER = "[encrypted]";

/**
 * Reads `Pulumi.<stack>.yaml` like the CLI would hand it to the program, except that every
 * `secure:` value is replaced by a placeholder (synth has no key to decrypt with, and wants
 * none). Bare keys get the project namespace, as the CLI does.
 */
export function readStackFile(path: string): StackFileConfig {
  const file = basename(path);
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${file}: cannot read the stack file: ${(err as Error).message}`);
  }
  const root = (doc ?? {}) as Record<string, unknown>;
  if (typeof root !== "object" || Array.isArray(root)) {
    throw new Error(`${file}: expected a mapping with a "config" key`);
  }
  const section = root.config ?? {};
  if (typeof section !== "object" || section === null || Array.isArray(section)) {
    throw new Error(`${file}: config: expected a mapping of config keys`);
  }
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [rawKey, value] of Object.entries(section as Record<string, unknown>)) {
    const key = rawKey.includes(":") ? rawKey : `${PROJECT}:${rawKey}`;
    const { plain, secret } = replaceSecure(value);
    config[key] = typeof plain === "string" ? plain : JSON.stringify(plain);
    if (secret) secretKeys.push(key);
  }
  return { file, config, secretKeys };
}

function replaceSecure(value: unknown): { plain: unknown; secret: boolean } {
  if (Array.isArray(value)) {
    const items = value.map(replaceSecure);
    return { plain: items.map((i) => i.plain), secret: items.some((i) => i.secret) };
  }
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    if (keys.length === 1 && keys[0] === "secure")
      return { plain: ENCRYPTED_PLACEHOLDER, secret: true };
    let secret = false;
    const plain: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record)) {
      const inner = replaceSecure(v);
      plain[k] = inner.plain;
      secret ||= inner.secret;
    }
    return { plain, secret };
  }
  return { plain: value, secret: false };
}
