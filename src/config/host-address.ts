import { isIP } from "node:net";

/** RFC 1123 host name label: letters, digits and inner hyphens, 1 to 63 characters. */
const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const MAX_DNS_NAME = 253;

/**
 * Why a host address is not one the deploy can connect to over SSH, or `undefined` when it is:
 * a DNS name (RFC 1123 labels, at most 253 characters), an IPv4 address (four octets 0-255,
 * no leading zeros, which some resolvers read as octal) or an IPv6 address without brackets.
 * Digits and dots alone are always meant as IPv4, so `999.999.999.999` is refused rather than
 * looked up as a name.
 *
 * @example hostAddressProblem("10.0.0.5") // undefined
 * @example hostAddressProblem("999.999.999.999") // "\"999.999.999.999\" is not an IPv4 ..."
 */
export function hostAddressProblem(host: string): string | undefined {
  if (host.includes(":") || /^\[.*\]$/.test(host)) {
    if (/^\[.*\]$/.test(host))
      return `write the IPv6 address without brackets: ${host.slice(1, -1)}`;
    return isIP(host) === 6 ? undefined : `"${host}" is not an IPv6 address`;
  }
  if (/^[0-9.]+$/.test(host)) {
    return isIP(host) === 4
      ? undefined
      : `"${host}" is not an IPv4 address (four numbers 0-255 without leading zeros, e.g. 192.0.2.10)`;
  }
  if (host.length > MAX_DNS_NAME) {
    return `is ${host.length} characters long; a host name has at most ${MAX_DNS_NAME}`;
  }
  if (host.endsWith(".")) return `drop the trailing '.': ${host.slice(0, -1)}`;
  const bad = host.split(".").find((label) => !DNS_LABEL.test(label));
  if (bad !== undefined) {
    return bad === ""
      ? `"${host}" has an empty label (two dots in a row, or a leading dot)`
      : `"${host}" is not a host name: its label "${bad}" must be 1-63 letters, digits or inner hyphens`;
  }
  return undefined;
}
