/**
 * The peer: docker-rollout (`bench/deploy/peer/docker-rollout`, vendored unmodified; its
 * README says from where), a public zero-downtime deploy plugin for docker compose, run by the
 * bench on the same harness, with the same images, load and writes as our deploy and the
 * spec's procedure.
 *
 * docker-rollout scales a service to twice its containers with the service's current compose
 * definition, waits for Docker to call the new ones healthy (or gives up after `--timeout`
 * polls, about a second each, stops and removes them and exits 1), then stops and removes the
 * old ones. It needs a proxy that routes to every container of the service. The adapter around
 * it, the most favourable we could give it with what the harness has (its README recommends
 * Traefik or nginx-proxy, and neither image can be pulled here):
 *
 * - the spec-shaped project of the baseline (`fastapi`, PostgreSQL, Redis), the app unpublished
 *   and without `container_name` (docker-rollout's two requirements), behind an nginx `proxy`
 *   published on the port the load uses;
 * - nginx resolves `fastapi` through Docker's DNS per request (`resolver 127.0.0.11 valid=1s`,
 *   a variable in `proxy_pass`), so it round-robins over every container of the service, and a
 *   request that finds a container gone, refusing, or answering 502 to 504 is passed to the next
 *   one (`proxy_next_upstream`). Docker's DNS lists a container whether it is healthy or not,
 *   so a new container gets requests as soon as it listens, also one that never gets healthy;
 *   a Traefik set-up would route to healthy containers only;
 * - the app's Docker health check every second (docker-rollout polls Docker's verdict once a
 *   second), so its wait is not stretched by the check's cadence;
 * - the deploy is its README's sample script with `compose pull fastapi` for the build (our
 *   images come from a registry) and no migration: the version is set in `.env`, the image
 *   pulled, then `docker rollout --timeout <T> fastapi`, with T the health timeout our stack has
 *   in the same bench. Like the baseline's, it has no backup (the tables are made once, at
 *   set-up).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { stringify } from "yaml";
import {
  cleanupProject,
  copyOverSsh,
  type Harness,
  runOverSsh,
  waitForHttp,
} from "../../test/harness";
import { type BaselineProject, projectPrelude, specEnv, specServices } from "./baseline";

/** The baseline's project, plus the proxy in front (the port is the proxy's). */
export interface PeerProject extends Omit<BaselineProject, "images"> {
  readonly images: BaselineProject["images"] & { readonly proxy: string };
  /**
   * docker-rollout's `--timeout`: how many times (about a second apart) it checks the new
   * containers' health before it rolls them back; default `PEER_HEALTH_TIMEOUT_SECONDS`.
   */
  readonly healthTimeoutSeconds?: number;
}

/** The health timeout our stack has in the bench (its `HEALTH_TIMEOUT_SECONDS`), seconds. */
export const PEER_HEALTH_TIMEOUT_SECONDS = 20;

/** The vendored plugin, and the upstream's own name for it. */
export const PEER_SCRIPT = path.join(__dirname, "peer", "docker-rollout");

/** The peer project's database password (its own, plain: nothing here is secret). */
const PEER_DB_PASSWORD = "bench-peer";

/** The app's Docker health check: every second, so docker-rollout's once-a-second poll sees it. */
const APP_HEALTH = { interval: "1s", timeout: "3s", retries: 3, start_period: "2s" };

/** The project's compose file: the baseline's services, the app unpublished, nginx in front. */
export function peerComposeFile(p: PeerProject): string {
  const doc = {
    services: {
      ...specServices({ images: p.images, appHealth: APP_HEALTH }),
      proxy: {
        image: p.images.proxy,
        restart: "unless-stopped",
        ports: [`127.0.0.1:${p.port}:80`],
        volumes: ["./nginx.conf:/etc/nginx/conf.d/peer.conf:ro"],
        depends_on: ["fastapi"],
      },
    },
    volumes: { pgdata: {}, redisdata: {} },
  };
  return stringify(doc, { lineWidth: 0, version: "1.1" });
}

/** The proxy's site: every container of `fastapi`, by Docker's DNS, re-resolved every second. */
export function peerNginxConf(): string {
  return `# The bench's peer: nginx in front of every container of the fastapi service.
resolver 127.0.0.11 valid=1s ipv6=off;
resolver_timeout 1s;
server {
    listen 80;
    location / {
        set $app http://fastapi:8000;
        proxy_pass $app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_connect_timeout 1s;
        proxy_next_upstream error timeout http_502 http_503 http_504;
        proxy_next_upstream_tries 3;
    }
}
`;
}

/** `.env` of the project (compose and docker-rollout read it from the working directory). */
export function peerEnv(p: PeerProject, version: string): string {
  checkVersion(version);
  return specEnv(p.project, version, PEER_DB_PASSWORD, "bench-peer-jwt");
}

/** A version goes into `.env` and a `sed` expression: an image tag, nothing to quote. */
function checkVersion(version: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(version)) {
    throw new Error(`Invalid version "${version}": an image tag is [A-Za-z0-9_][A-Za-z0-9_.-]*`);
  }
}

function prelude(p: PeerProject): string {
  return projectPrelude(p.dir);
}

/**
 * The peer's deploy of `version`, as docker-rollout's README scripts it (see the module's
 * comment), with `bench-mark <step> <time>` lines around each command (they change nothing).
 * Exits with docker-rollout's code: 0 once the old containers are gone, 1 when the new ones
 * were not healthy in time (it has removed them, the old ones still serve).
 */
export function peerDeployCommand(p: PeerProject, version: string): string {
  checkVersion(version);
  const timeout = p.healthTimeoutSeconds ?? PEER_HEALTH_TIMEOUT_SECONDS;
  return `${prelude(p)}set -euo pipefail
mark() { printf 'bench-mark %s %s\\n' "$1" "$(date +%s.%N)"; }
sed -i 's/^CLICKY_VERSION=.*/CLICKY_VERSION=${version}/' .env
mark start
compose pull --quiet fastapi
mark pull
code=0
docker rollout --timeout ${timeout} fastapi || code=$?
mark finished
exit "$code"
`;
}

/**
 * The peer's steps from its marks, seconds: `pull` and `rollout` (docker-rollout from its start
 * to its exit, whatever its code), e.g. marks at 0, 0.5 and 12.5 give `{ pull: 0.5, rollout: 12 }`.
 */
export function peerSteps(stdout: string): Record<string, number> {
  const marks = new Map<string, number>();
  for (const m of stdout.matchAll(/^bench-mark (\w+) ([\d.]+)$/gm)) {
    if (m[1] && m[2]) marks.set(m[1], Number(m[2]));
  }
  const steps: Record<string, number> = {};
  const between = (name: string, from: string, to: string) => {
    const a = marks.get(from);
    const b = marks.get(to);
    if (a !== undefined && b !== undefined) steps[name] = Math.round((b - a) * 1000) / 1000;
  };
  between("pull", "start", "pull");
  between("rollout", "pull", "finished");
  return steps;
}

/**
 * Sets the project up on the host and brings `version` up: the files, the registry login, the
 * plugin in the project's Docker config (`cli-plugins/docker-rollout`), the app's tables (its
 * migrations, once), and resolves once the proxy answers.
 */
export async function setUpPeer(h: Harness, p: PeerProject, version: string): Promise<void> {
  await cleanupPeer(h, p);
  await must(h, "peer dir", `mkdir -p -m 750 ${p.dir}/.docker/cli-plugins`);
  await copyOverSsh(h, [
    { remotePath: `${p.dir}/docker-compose.yml`, content: peerComposeFile(p) },
    { remotePath: `${p.dir}/nginx.conf`, content: peerNginxConf() },
    { remotePath: `${p.dir}/.env`, content: peerEnv(p, version), mode: 0o600 },
    {
      remotePath: `${p.dir}/.docker/cli-plugins/docker-rollout`,
      content: readFileSync(PEER_SCRIPT, "utf8"),
      mode: 0o755,
    },
  ]);
  const login = await runOverSsh(
    h,
    `${prelude(p)}set -euo pipefail\ndocker login --username ${h.registry.user} --password-stdin ${h.registry.address} >/dev/null`,
    { stdin: h.registry.password },
  );
  if (login.code !== 0) throw new Error(`peer registry login failed: ${login.stderr}`);
  await must(h, "peer first up", `${prelude(p)}set -euo pipefail\ncompose up -d 2>&1`, 10 * 60_000);
  await must(
    h,
    "peer's tables",
    `${prelude(p)}set -euo pipefail\ncompose exec -T fastapi alembic upgrade head 2>&1`,
  );
  await waitForHttp(`http://127.0.0.1:${p.port}/health`, { timeoutMs: 120_000 });
}

/** Removes the project: its containers, volumes and directory. */
export async function cleanupPeer(h: Harness, p: PeerProject): Promise<void> {
  await cleanupProject(h, p.dir, p.project);
}

async function must(h: Harness, what: string, script: string, timeoutMs = 120_000) {
  const r = await runOverSsh(h, script, { timeoutMs });
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
