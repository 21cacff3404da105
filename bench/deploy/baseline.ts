/**
 * The baseline: the deploy procedure of the user's pipeline specification (deploy-prod.yml,
 * section 4), run for real over SSH on a compose project shaped like the spec's: one `fastapi`
 * service published on the host (the spec health-checks `http://localhost:8000/health`),
 * PostgreSQL and Redis, the same images as ours, every image pulled from the registry.
 *
 * The procedure is the spec's lines, verbatim but for the port, with marks around each
 * command (`bench-mark <step>`) so the bench can time the steps; marks change nothing else.
 * The migration line (`docker compose exec -T fastapi alembic upgrade head`, which runs in
 * the old container) is left out, as the benchmark's issue lists the procedure; that makes
 * the baseline faster, not slower.
 */
import { stringify } from "yaml";

export interface BaselineProject {
  readonly dir: string;
  readonly project: string;
  readonly port: number;
  readonly images: {
    readonly backend: string;
    readonly postgres: string;
    readonly redis: string;
  };
}

/** The database password of the baseline project (its own, plain: nothing here is secret). */
export const BASELINE_DB_PASSWORD = "bench-baseline";

/** The spec-shaped compose file: the backend image's tag comes from `.env` (CLICKY_VERSION). */
export function baselineComposeFile(p: BaselineProject): string {
  const health = { interval: "5s", timeout: "3s", retries: 5, start_period: "20s" };
  const doc = {
    services: {
      fastapi: {
        image: `${p.images.backend}:\${CLICKY_VERSION:?}`,
        restart: "unless-stopped",
        ports: [`127.0.0.1:${p.port}:8000`],
        environment: [
          "APP_ENV=bench",
          "REDIS_URL=redis://redis:6379/0",
          "DATABASE_URL",
          "JWT_SECRET_KEY",
        ],
        depends_on: {
          postgres: { condition: "service_healthy" },
          redis: { condition: "service_healthy" },
        },
        healthcheck: {
          test: [
            "CMD",
            "python3",
            "-c",
            "import sys, urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3); sys.exit(0)",
          ],
          ...health,
        },
      },
      postgres: {
        image: p.images.postgres,
        restart: "unless-stopped",
        environment: ["POSTGRES_USER=clicky", "POSTGRES_DB=clicky_db", "POSTGRES_PASSWORD"],
        volumes: ["pgdata:/var/lib/postgresql/data"],
        healthcheck: { test: ["CMD", "pg_isready", "-U", "clicky", "-d", "clicky_db"], ...health },
      },
      redis: {
        image: p.images.redis,
        restart: "unless-stopped",
        command: ["redis-server", "--appendonly", "yes"],
        volumes: ["redisdata:/data"],
        healthcheck: { test: ["CMD", "redis-cli", "ping"], ...health },
      },
    },
    volumes: { pgdata: {}, redisdata: {} },
  };
  return stringify(doc, { lineWidth: 0, version: "1.1" });
}

/** `.env` of the project (compose reads it from the working directory). */
export function baselineEnv(p: BaselineProject, version: string): string {
  return [
    `COMPOSE_PROJECT_NAME=${p.project}`,
    `CLICKY_VERSION=${version}`,
    `POSTGRES_PASSWORD=${BASELINE_DB_PASSWORD}`,
    `DATABASE_URL=postgresql+asyncpg://clicky:${BASELINE_DB_PASSWORD}@postgres:5432/clicky_db`,
    "JWT_SECRET_KEY=bench-baseline-jwt",
    "",
  ].join("\n");
}

/** Shell prelude: the project dir, its registry login, and `docker compose` as the host has it. */
function prelude(p: BaselineProject): string {
  return [
    `cd ${p.dir}`,
    `export DOCKER_CONFIG=${p.dir}/.docker`,
    'if docker compose version >/dev/null 2>&1; then compose() { docker compose "$@"; }; else compose() { docker-compose "$@"; }; fi',
    "",
  ].join("\n");
}

/**
 * The spec's deploy, as its ssh-action script runs it (one line after the other; only the
 * health check's `|| exit 1` stops it), with `docker compose` being the host's compose.
 */
export function baselineProcedure(p: BaselineProject, version: string): string {
  return `${prelude(p)}mark() { printf 'bench-mark %s %s\\n' "$1" "$(date +%s.%N)"; }
mark start
# Backup database before deploy
compose exec -T postgres pg_dump -U clicky clicky_db > backup_$(date +%Y%m%d_%H%M%S).sql
mark backup
printf 'bench-backup %s\\n' "$(ls -1t backup_*.sql | head -n 1)"
# Pull new images
compose pull
mark pull
# Deploy with zero downtime
compose up -d --remove-orphans
mark up
# Health check
sleep 10
mark sleep
curl -f http://localhost:${p.port}/health || exit 1
mark done
echo "Deployment successful: ${version}"
`;
}

/** Names the version the next `up` deploys (what a release changes; not measured). */
export function baselineSetVersion(p: BaselineProject, version: string): string {
  return `${prelude(p)}set -euo pipefail
sed -i 's/^CLICKY_VERSION=.*/CLICKY_VERSION=${version}/' .env
`;
}

/** Brings the project up as `.env` says (first start, and back to v1 between runs). */
export function baselineUp(p: BaselineProject): string {
  return `${prelude(p)}set -euo pipefail
compose up -d --remove-orphans 2>&1
`;
}

/** Logs the deploy user in to the registry once, as a host of the spec's would be. */
export function baselineLogin(p: BaselineProject, registry: string, user: string): string {
  return `${prelude(p)}set -euo pipefail
mkdir -p -m 700 .docker
docker login --username ${user} --password-stdin ${registry} >/dev/null
`;
}
