import type { Harness } from "../../e2e/harness/harness";

/** Where the e2e deploys on the harness host, and what it calls things there. */
export const E2E_APP_DIR = "/home/deploy/clicky-e2e";
export const E2E_PROJECT = "clickye2e";

/**
 * The `deploy` section the e2e stack uses: the harness's SSH server with its pinned host key,
 * its registry and locally built infrastructure images, short health and drain timings.
 */
export function e2eDeployConfig(
  h: Harness,
  proxyPort: number,
  image: { tag: string },
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const backend = h.images.backend;
  const tag = backend.tags[image.tag];
  if (!tag) throw new Error(`the harness has no backend tag ${image.tag}`);
  return {
    appDir: E2E_APP_DIR,
    composeProject: E2E_PROJECT,
    hosts: [
      {
        name: "e2e",
        host: h.ssh.host,
        port: h.ssh.port,
        user: h.ssh.user,
        hostKey: h.ssh.hostPublicKey,
      },
    ],
    image: {
      repository: backend.repository,
      tag: image.tag,
      // The program resolves a tag to its digest with the registry; the harness already knows
      // it (it pushed the image), so the e2e passes it as a pipeline run would find it.
      digest: tag.digest,
    },
    images: { postgres: h.images.postgres, redis: h.images.redis, proxy: h.images.proxy },
    proxy: { bindAddress: "127.0.0.1", port: proxyPort },
    health: {
      intervalSeconds: 1,
      probeTimeoutSeconds: 2,
      retries: 3,
      startPeriodSeconds: 2,
      timeoutSeconds: 60,
    },
    drainSeconds: 2,
    stopTimeoutSeconds: 10,
    backup: { keep: 5, minFreeMiB: 10 },
    app: { env: { APP_ENV: "e2e" } },
    ...extra,
  };
}

/** The registry credentials of the harness as the stack's secrets. */
export function e2eSecrets(h: Harness): Record<string, string> {
  return {
    sshPrivateKey: h.privateKey,
    registryUsername: h.registry.user,
    registryToken: h.registry.password,
  };
}
