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
 *
 * Its fair variant (`baselineNoSleep`) is the same procedure with the fixed `sleep 10` and the
 * one `curl -f` replaced by `curl -fsS` of the health path every 0.2 s, up to 60 s: it ends as
 * soon as the new container answers, so the comparison does not charge the spec for its sleep.
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

/** The Docker health check timings of the spec-shaped project's services. */
const SPEC_HEALTH = { interval: "5s", timeout: "3s", retries: 5, start_period: "20s" };

/** What the spec-shaped services need: their images, and the app's published ports and health. */
export interface SpecServices {
  readonly images: { readonly backend: string; readonly postgres: string; readonly redis: string };
  /** The app's `ports` (none: it is reached through a proxy). */
  readonly appPorts?: readonly string[];
  /** The app's health check timings; default the other services'. */
  readonly appHealth?: Readonly<Record<string, string | number>>;
}

/**
 * The services of a spec-shaped project, shared by the baseline and the peer: `fastapi` (its
 * tag from `.env`, CLICKY_VERSION), PostgreSQL and Redis, each with its Docker health check.
 */
export function specServices(s: SpecServices) {
  return {
    fastapi: {
      image: `${s.images.backend}:\${CLICKY_VERSION:?}`,
      restart: "unless-stopped",
      ...(s.appPorts ? { ports: [...s.appPorts] } : {}),
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
        ...(s.appHealth ?? SPEC_HEALTH),
      },
    },
    postgres: {
      image: s.images.postgres,
      restart: "unless-stopped",
      environment: ["POSTGRES_USER=clicky", "POSTGRES_DB=clicky_db", "POSTGRES_PASSWORD"],
      volumes: ["pgdata:/var/lib/postgresql/data"],
      healthcheck: {
        test: ["CMD", "pg_isready", "-U", "clicky", "-d", "clicky_db"],
        ...SPEC_HEALTH,
      },
    },
    redis: {
      image: s.images.redis,
      restart: "unless-stopped",
      command: ["redis-server", "--appendonly", "yes"],
      volumes: ["redisdata:/data"],
      healthcheck: { test: ["CMD", "redis-cli", "ping"], ...SPEC_HEALTH },
    },
  };
}

/** The spec-shaped compose file: the app published on the host, as the spec checks it. */
export function baselineComposeFile(p: BaselineProject): string {
  const doc = {
    services: specServices({ images: p.images, appPorts: [`127.0.0.1:${p.port}:8000`] }),
    volumes: { pgdata: {}, redisdata: {} },
  };
  return stringify(doc, { lineWidth: 0, version: "1.1" });
}

/**
 * `.env` of a spec-shaped project (compose reads it from the working directory), with its own
 * plain database password and JWT key: nothing in a bench project is secret.
 */
export function specEnv(project: string, version: string, password: string, jwt: string): string {
  return [
    `COMPOSE_PROJECT_NAME=${project}`,
    `CLICKY_VERSION=${version}`,
    `POSTGRES_PASSWORD=${password}`,
    `DATABASE_URL=postgresql+asyncpg://clicky:${password}@postgres:5432/clicky_db`,
    `JWT_SECRET_KEY=${jwt}`,
    "",
  ].join("\n");
}

/** `.env` of the baseline project. */
export function baselineEnv(p: BaselineProject, version: string): string {
  return specEnv(p.project, version, BASELINE_DB_PASSWORD, "bench-baseline-jwt");
}

/**
 * Shell prelude of a project's commands: its directory, its own Docker config (registry login,
 * plugins), and `compose` as the host has it (`docker compose`, else `docker-compose`).
 */
export function projectPrelude(dir: string): string {
  return [
    `cd ${dir}`,
    `export DOCKER_CONFIG=${dir}/.docker`,
    'if docker compose version >/dev/null 2>&1; then compose() { docker compose "$@"; }; else compose() { docker-compose "$@"; }; fi',
    "",
  ].join("\n");
}

function prelude(p: BaselineProject): string {
  return projectPrelude(p.dir);
}

/**
 * How the procedure checks the new version: the spec's `sleep 10` then one `curl -f`, or the
 * fair variant's poll (`curl -fsS` every 0.2 s, up to 60 s).
 */
export type BaselineHealthCheck = "sleep" | "poll";

/** Seconds between two polls of the fair variant, and how long it polls at most. */
export const BASELINE_POLL = { intervalSeconds: 0.2, limitSeconds: 60 } as const;

function healthCheck(p: BaselineProject, check: BaselineHealthCheck): string {
  const url = `http://localhost:${p.port}/health`;
  if (check === "sleep") {
    return `# Health check
sleep 10
mark sleep
curl -f ${url} || exit 1
`;
  }
  const polls = Math.round(BASELINE_POLL.limitSeconds / BASELINE_POLL.intervalSeconds);
  return `# Health check (the fair variant: poll instead of a fixed sleep)
healthy=0
for _ in $(seq 1 ${polls}); do
  if curl -fsS -o /dev/null --max-time 1 ${url}; then healthy=1; break; fi
  sleep ${BASELINE_POLL.intervalSeconds}
done
((healthy)) || exit 1
`;
}

/**
 * The spec's deploy, as its ssh-action script runs it (one line after the other; only the
 * health check's `|| exit 1` stops it), with `docker compose` being the host's compose;
 * `check` "poll" gives the fair variant.
 */
export function baselineProcedure(
  p: BaselineProject,
  version: string,
  check: BaselineHealthCheck = "sleep",
): string {
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
${healthCheck(p, check)}mark done
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

/**
 * Creates the app's tables once at set-up (`alembic upgrade head` in the running container),
 * so the bench's writes have a table to go to; the spec's procedure itself migrates nothing.
 */
export function baselineMigrate(p: BaselineProject): string {
  return `${prelude(p)}set -euo pipefail
compose exec -T fastapi alembic upgrade head 2>&1
`;
}

/** Logs the deploy user in to the registry once, as a host of the spec's would be. */
export function baselineLogin(p: BaselineProject, registry: string, user: string): string {
  return `${prelude(p)}set -euo pipefail
mkdir -p -m 700 .docker
docker login --username ${user} --password-stdin ${registry} >/dev/null
`;
}

/**
 * The procedure's steps from its marks, seconds: `backup` (pg_dump), `pull`, `up` (up -d) and
 * `health` (the sleep and the curl, or the poll), e.g. marks at 0, 2, 3, 5 and 15.1 give
 * `{ backup: 2, pull: 1, up: 2, health: 10.1 }`. A step whose marks are missing is left out.
 */
export function baselineSteps(stdout: string): Record<string, number> {
  const marks = new Map<string, number>();
  for (const m of stdout.matchAll(/^bench-mark (\w+) ([\d.]+)$/gm)) {
    if (m[1] && m[2]) marks.set(m[1], Number(m[2]));
  }
  const steps: Record<string, number> = {};
  const order = ["start", "backup", "pull", "up", "done"] as const;
  for (let i = 1; i < order.length; i++) {
    const from = marks.get(order[i - 1] ?? "");
    const to = marks.get(order[i] ?? "");
    const name = order[i] === "done" ? "health" : (order[i] ?? "");
    if (from !== undefined && to !== undefined) steps[name] = Math.round((to - from) * 1000) / 1000;
  }
  return steps;
}
