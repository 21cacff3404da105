import { tools } from "../actions";
import type { Expression } from "../expr";
import type { Job } from "../model";
import type { PipelineSettings } from "../settings";
import { checkout, MOBILE_INSTALL, mobileSetupSteps, setupPython, uploadCoverage } from "../steps";

/**
 * The test jobs of the spec's PR pipeline, defined once and used by both the PR pipeline and the
 * main pipeline (the spec's empty "same as PR pipeline" job). They are shared job definitions
 * rather than a `workflow_call` workflow on purpose: a job skipped inside a called workflow is
 * not documented to report its check, while a top-level job skipped by `if` reports success,
 * which is what keeps the required checks of a mobile-only pull request satisfiable.
 */
export type Area = "backend" | "mobile";

export interface CheckJob {
  readonly id: string;
  readonly area: Area;
  readonly job: Job;
}

export interface CheckJobOptions {
  /** Condition per area: the PR pipeline skips an area no changed file belongs to. */
  readonly when?: (area: Area) => Expression;
  /** Jobs every check job waits for (the PR pipeline's change detection). */
  readonly needs?: readonly string[];
}

const READ_ONLY = { contents: "read" } as const;

/** The backend tests' database: the PostgreSQL service creates it, the tests connect to it. */
const TEST_DB = { user: "test", password: "test", name: "clicky_test" } as const;

/**
 * A service container's Docker health options. The runner starts the job's steps once every
 * service is healthy (it polls every 2 s or more), so the check runs every 2 s, where a 10 s
 * interval kept every run waiting 10 s or more for the first probe; failures in the first 40 s
 * do not count, so a slow start has 50 s before it is called unhealthy, as before.
 */
function serviceHealth(command: string): string[] {
  return [
    `--health-cmd "${command}"`,
    "--health-interval 2s",
    "--health-timeout 5s",
    "--health-retries 5",
    "--health-start-period 40s",
  ];
}

export function checkJobs(settings: PipelineSettings, opts: CheckJobOptions = {}): CheckJob[] {
  const py = settings.pythonVersion;
  const node = settings.nodeVersion;
  const job = (id: string, area: Area, body: Omit<Job, "runsOn" | "permissions">): CheckJob => ({
    id,
    area,
    job: {
      ...body,
      runsOn: "ubuntu-latest",
      permissions: READ_ONLY,
      ...(opts.needs ? { needs: opts.needs } : {}),
      ...(opts.when ? { if: opts.when(area) } : {}),
    },
  });
  const mobileSetup = mobileSetupSteps(node);
  const npmCi = MOBILE_INSTALL;

  return [
    job("backend-lint", "backend", {
      name: "Backend Lint & Format",
      timeoutMinutes: 10,
      steps: [
        checkout(),
        setupPython(py, "backend/requirements*.txt"),
        { name: "Install ruff", run: `pip install ruff==${tools.ruff}` },
        { name: "Lint", run: "ruff check --output-format=github backend/" },
        { name: "Check formatting", run: "ruff format --check backend/" },
      ],
    }),
    job("backend-test", "backend", {
      name: "Backend Tests",
      timeoutMinutes: 30,
      services: {
        postgres: {
          image: "postgres:16",
          env: {
            POSTGRES_USER: TEST_DB.user,
            POSTGRES_PASSWORD: TEST_DB.password,
            POSTGRES_DB: TEST_DB.name,
          },
          ports: ["5432:5432"],
          // Over TCP, as the tests connect: on a fresh volume the image's entrypoint first runs
          // a server on the socket only, which a bare pg_isready calls ready.
          options: serviceHealth(`pg_isready -h 127.0.0.1 -U ${TEST_DB.user} -d ${TEST_DB.name}`),
        },
        redis: {
          image: "redis:7-alpine",
          ports: ["6379:6379"],
          options: serviceHealth("redis-cli ping"),
        },
      },
      env: {
        DATABASE_URL: `postgresql+asyncpg://${TEST_DB.user}:${TEST_DB.password}@localhost:5432/${TEST_DB.name}`,
        REDIS_URL: "redis://localhost:6379/0",
        JWT_SECRET_KEY: "test-secret-key-for-ci",
        APP_ENV: "testing",
      },
      steps: [
        checkout(),
        setupPython(py, "backend/requirements*.txt"),
        {
          name: "Install dependencies",
          run: "pip install -r backend/requirements.txt\npip install pytest pytest-asyncio pytest-cov httpx",
        },
        {
          name: "Migrate the test database",
          workingDirectory: "backend",
          run: "alembic upgrade head",
        },
        {
          name: "Test",
          workingDirectory: "backend",
          run: "pytest tests/ -v --cov=app --cov-report=xml",
        },
        uploadCoverage("backend/coverage.xml", "backend"),
      ],
    }),
    job("backend-audit", "backend", {
      name: "Backend Security Scan",
      timeoutMinutes: 10,
      steps: [
        checkout(),
        setupPython(py, "backend/requirements*.txt"),
        { name: "Install pip-audit", run: `pip install pip-audit==${tools.pipAudit}` },
        { name: "Audit dependencies", run: "pip-audit -r backend/requirements.txt" },
      ],
    }),
    job("mobile-lint", "mobile", {
      name: "Mobile Lint & Type Check",
      timeoutMinutes: 15,
      steps: [
        ...mobileSetup,
        npmCi,
        { name: "Lint", workingDirectory: "mobile", run: "npx eslint ." },
        { name: "Type check", workingDirectory: "mobile", run: "npx tsc --noEmit" },
      ],
    }),
    job("mobile-test", "mobile", {
      name: "Mobile Tests",
      timeoutMinutes: 20,
      steps: [
        ...mobileSetup,
        npmCi,
        { name: "Test", workingDirectory: "mobile", run: "npm test -- --coverage --ci" },
        uploadCoverage("mobile/coverage/lcov.info", "mobile"),
      ],
    }),
    job("mobile-audit", "mobile", {
      name: "Mobile Security Scan",
      timeoutMinutes: 10,
      // `npm audit` reads the lockfile; installing (and running install scripts) adds nothing.
      steps: [
        ...mobileSetup,
        {
          name: "Audit dependencies",
          workingDirectory: "mobile",
          run: "npm audit --audit-level=high",
        },
      ],
    }),
  ];
}
