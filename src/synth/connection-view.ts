/** Fields of a remote connection (and of its proxy) whose values are secrets. */
export const SECRET_CONNECTION_FIELDS = ["privateKey", "privateKeyPassword", "password"] as const;

/**
 * What synth and reviews may show of a remote command's connection. The command SDK marks the
 * whole connection secret (it holds the private key), which would hide where a deploy goes;
 * this keeps host, port, user and the pinned host key in view and masks only the secret
 * fields, also inside a bastion `proxy`. Takes the connection's plain (revealed) value.
 *
 * @example connectionView({ host: "h", privateKey: "-----BEGIN..." }) // { host: "h", privateKey: "[secret]" }
 */
export function connectionView(connection: unknown, mask = "[secret]"): unknown {
  if (connection === null || typeof connection !== "object" || Array.isArray(connection)) {
    return connection;
  }
  return Object.fromEntries(
    Object.entries(connection as Record<string, unknown>).map(([key, value]) => {
      if ((SECRET_CONNECTION_FIELDS as readonly string[]).includes(key) && value !== undefined) {
        return [key, mask];
      }
      return [key, key === "proxy" ? connectionView(value, mask) : value];
    }),
  );
}
