import assert from "node:assert/strict";

/**
 * Secrets that a log must never show, in the forms a tool would print them, computed here
 * independently of the script's own masking (`src/deploy/script-output.ts`).
 */
export interface LeakCheck {
  /** What the secret is, for the assertion message (never the value). */
  readonly name: string;
  readonly value: string;
}

/** RFC 3986 percent-encoding: encodeURIComponent plus `!'()*`. */
function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * The characters of a base64 text that only `value`'s bytes decide, when `value` starts at
 * byte offset `shift` (0, 1 or 2) of the encoded data: what any base64 holding it contains.
 */
export function base64Core(value: string, shift: number): string {
  const bytes = Buffer.byteLength(value);
  const encoded = Buffer.concat([Buffer.alloc(shift, 0x20), Buffer.from(value)])
    .toString("base64")
    .replace(/=+$/, "");
  const drop = Math.ceil((shift * 8) / 6);
  return encoded.slice(drop, Math.floor(((shift + bytes) * 8) / 6));
}

/**
 * The forms of a secret a log could hold: as is, percent-encoded (encodeURIComponent and RFC
 * 3986, upper and lower case hex, `+` for a space), JSON-escaped, and base64 (standard and
 * URL-safe) at each of the three offsets it can start at inside a longer encoded text.
 */
export function secretForms(value: string): string[] {
  const forms = new Set<string>([value]);
  for (const encoded of [encodeURIComponent(value), rfc3986(value)]) {
    const lower = encoded.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase());
    for (const form of [encoded, lower]) {
      forms.add(form);
      forms.add(form.replaceAll("%20", "+"));
    }
  }
  forms.add(JSON.stringify(value).slice(1, -1));
  for (const shift of [0, 1, 2]) {
    const core = base64Core(value, shift);
    // Shorter cores would match by chance; the forms above cover short secrets.
    if (core.length < 8) continue;
    forms.add(core);
    forms.add(core.replaceAll("+", "-").replaceAll("/", "_"));
  }
  return [...forms];
}

/**
 * Asserts that no form of any secret is in `text`; the message names the secret and the kind
 * of form, never the value.
 */
export function assertNoSecret(text: string, secrets: readonly LeakCheck[], where: string): void {
  for (const secret of secrets) {
    for (const [i, form] of secretForms(secret.value).entries()) {
      assert.ok(!text.includes(form), `${where} shows ${secret.name} (form ${i})`);
    }
  }
}

/**
 * Test secrets with the characters that break naive handling: URL-special ones (`@ : / ? # % &
 * = +`), a space and non-ASCII in the password; `$`, both quotes, a backslash, a command
 * substitution and `<>&` in the JWT key.
 */
export const HOSTILE_SECRETS = {
  postgresPassword: "p@ss:w/rd?#%&=+ ü",
  jwtSecretKey: `jwt-$HOME-"double"-'single'-\`id\`-$(touch /tmp/pwned)-\\-<a&b>-ä`,
} as const;

/** The store keys `pulumi up` of the approval-gated stack needs with store uploads on. */
export const STORE_SECRETS = {
  ascApiKeyP8: "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----",
  ascApiKeyId: "AB12CD34EF",
  ascApiKeyIssuerId: "69a6de7a-1234-47e3-e053-5b8c7c11a4d1",
  googleServiceAccountKey: '{"type":"service_account"}',
} as const;
