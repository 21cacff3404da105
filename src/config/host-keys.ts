import type { DeployHost } from "./deploy";
import { PRODUCTION_STACK, PROJECT } from "./schema";

/**
 * Whether a host key line is a placeholder rather than a server's key: a well-formed blob whose
 * key material is all zero bytes, like the line a fresh `Pulumi.production.yaml` carries
 * (`ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI` followed by `A`s). No server has that key, so a
 * placeholder counts as a key that is not set.
 *
 * @example isPlaceholderHostKey(`ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${"A".repeat(43)}`) // true
 */
export function isPlaceholderHostKey(line: string): boolean {
  const [type, blob] = line.trim().split(/\s+/);
  if (type === undefined || blob === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) {
    return false;
  }
  const fields = sshStrings(Buffer.from(blob, "base64"));
  if (fields === undefined || fields[0]?.toString("latin1") !== type) return false;
  // The last field is the public key itself: ed25519's 32 bytes, ECDSA's point, RSA's modulus.
  const key = fields.length > 1 ? fields[fields.length - 1] : undefined;
  return (key?.length ?? 0) > 0 && (key?.every((byte) => byte === 0) ?? false);
}

/** The length-prefixed strings of an SSH public key blob, or `undefined` if it is not one. */
function sshStrings(bytes: Buffer): Buffer[] | undefined {
  const fields: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 4 > bytes.length) return undefined;
    const length = bytes.readUInt32BE(offset);
    if (offset + 4 + length > bytes.length) return undefined;
    fields.push(bytes.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return fields;
}

/** The host key the deploy pins: the configured line, unless it is unset or a placeholder. */
export function pinnedHostKey(host: Pick<DeployHost, "hostKey">): string | undefined {
  return host.hostKey !== undefined && !isPlaceholderHostKey(host.hostKey)
    ? host.hostKey
    : undefined;
}

/** A host whose key production needs but synth went on without (see {@link hostKeyProblems}). */
export interface UnsetHostKey {
  /** Key path without the namespace, e.g. `deploy.hosts[0].hostKey`. */
  readonly key: string;
  /** The host's `name`, e.g. `prod-1`. */
  readonly name: string;
  /** The address `ssh-keyscan` asks. */
  readonly host: string;
  /** True when the stack file holds the all-zero placeholder rather than nothing. */
  readonly placeholder: boolean;
}

export interface HostKeyProblems {
  /** Problems that stop `pulumi up` before anything is registered. */
  readonly errors: string[];
  /** Lines to log: hosts that trust whichever server answers. */
  readonly warnings: string[];
  /** Synth only: production hosts without a real key, listed like unset secrets. */
  readonly unset: UnsetHostKey[];
}

/**
 * The host key rules, checked before the program registers anything. A placeholder key counts
 * as not set. Production refuses a host without a real key (`errors`); other stacks deploy to it
 * with a warning, since the deploy then trusts any server that answers. Synth (offline, for
 * review) must work on a fresh clone whose production file still holds the placeholder, so in
 * `synth` mode production's missing keys are returned in `unset` instead of `errors`.
 *
 * @example hostKeyProblems("production", hosts, "Pulumi.production.yaml", { mode: "up" })
 */
export function hostKeyProblems(
  stack: string,
  hosts: readonly Pick<DeployHost, "host" | "port" | "name" | "hostKey">[],
  file = `Pulumi.${stack}.yaml`,
  opts: { readonly mode: "synth" | "up" } = { mode: "up" },
): HostKeyProblems {
  const result: HostKeyProblems = { errors: [], warnings: [], unset: [] };
  hosts.forEach((host, index) => {
    if (pinnedHostKey(host) !== undefined) return;
    const placeholder = host.hostKey !== undefined;
    const key = `deploy.hosts[${index}].hostKey`;
    const where = `${file}: ${PROJECT}:${key}`;
    const how = `pin it: ssh-keyscan -p ${host.port} -t ed25519 ${host.host}, checked against the host's console`;
    if (stack !== PRODUCTION_STACK) {
      const what = placeholder
        ? "is the all-zero placeholder, not the host's key, so it counts as not set:"
        : "not set, so";
      result.warnings.push(
        `${where}: ${what} the deploy to ${host.host} trusts any server that answers; ${how}`,
      );
    } else if (opts.mode === "synth") {
      result.unset.push({ key, name: host.name, host: host.host, placeholder });
    } else if (placeholder) {
      result.errors.push(
        `${where}: required in production, and the line there is the all-zero placeholder, not the host's key (${how})`,
      );
    } else {
      result.errors.push(`${where}: required in production (${how})`);
    }
  });
  return result;
}
