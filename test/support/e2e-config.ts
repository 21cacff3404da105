import { type Harness, harnessInstance } from "../harness";

/**
 * Which compose the e2e deploys with (`deploy.compose`): v2, the CLI plugin real hosts ship, by
 * default; v1 (`docker-compose`) when `E2E_COMPOSE=v1`, which the `*-compose-v1` test files set.
 * The harness provisions both.
 */
export const E2E_COMPOSE: "v1" | "v2" = process.env.E2E_COMPOSE === "v1" ? "v1" : "v2";

/** The command a test runs compose with on the host, the same one the deploy uses. */
export const E2E_COMPOSE_COMMAND = E2E_COMPOSE === "v2" ? "docker compose" : "docker-compose";

/**
 * Where the e2e deploys on the harness host, and what it calls things there: one per compose
 * and per checkout (`harnessInstance`), since checkouts share the host's user and Docker engine.
 */
export const E2E_APP_DIR = `/home/deploy/clicky-e2e-${harnessInstance()}${E2E_COMPOSE === "v1" ? "-v1" : ""}`;
export const E2E_PROJECT = `clickye2e${harnessInstance()}${E2E_COMPOSE === "v1" ? "v1" : ""}`;

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
    compose: E2E_COMPOSE,
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
    proxy: { bindAddress: "127.0.0.1", port: proxyPort },
    ...e2eHostSettings(h, 60),
    app: { env: { APP_ENV: "e2e" } },
    ...extra,
  };
}

/**
 * What every e2e stack sets the same way: the harness's locally built infrastructure images,
 * short health timings (`healthTimeoutSeconds` the gate's limit), drain, stop and backup.
 */
export function e2eHostSettings(h: Harness, healthTimeoutSeconds: number) {
  return {
    images: { postgres: h.images.postgres, redis: h.images.redis, proxy: h.images.proxy },
    health: {
      intervalSeconds: 1,
      probeTimeoutSeconds: 2,
      retries: 3,
      startPeriodSeconds: 2,
      timeoutSeconds: healthTimeoutSeconds,
    },
    drainSeconds: 2,
    stopTimeoutSeconds: 10,
    backup: { keep: 5, minFreeMiB: 10 },
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
