/**
 * The backend tests' service containers, end to end: each service of the generated `Backend
 * Tests` job is created on the harness's Docker engine as the GitHub runner creates it (its
 * `options` string split into arguments the way the runner's process launcher splits a command
 * line, its `env` as `-e`), from the harness's local images (nothing can be pulled here; the
 * harness's PostgreSQL image holds the entrypoint's socket-only temporary server for 2 s, as a
 * slow first start does). The runner starts the job's steps once every service reports
 * `healthy` (actions/runner, src/Runner.Worker/ContainerOperationProvider.cs, polling while the
 * status is `starting`), so whatever `healthy` means must already be what the steps need:
 * PostgreSQL answering over TCP with the test database, Redis answering PING.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import { planWorkflows } from "../../../src/workflows";
import { e2eSkip, ensureHarness, type Harness, harnessAvailability, runLocal } from "../../harness";
import { stackConfig } from "../../support/workflows";

const skip = e2eSkip("the backend tests' service containers");
const availability = harnessAvailability();

interface Service {
  image: string;
  env?: Record<string, string>;
  ports?: string[];
  options?: string;
}

/**
 * A command line's arguments as the runner's launcher (.NET's Process on Linux) reads them:
 * whitespace separates, double quotes group, a backslash escapes a double quote.
 */
function splitOptions(line: string): string[] {
  const args: string[] = [];
  let current = "";
  let quoted = false;
  let started = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === "\\" && line[i + 1] === '"') {
      current += '"';
      started = true;
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      started = true;
    } else if (/\s/.test(c) && !quoted) {
      if (started) args.push(current);
      current = "";
      started = false;
    } else {
      current += c;
      started = true;
    }
  }
  assert.ok(!quoted, `unbalanced quotes in ${line}`);
  if (started) args.push(current);
  return args;
}

const jobServices = (): Record<string, Service> => {
  const pr = planWorkflows(stackConfig("staging")).files.find((f) => f.path.endsWith("/pr.yml"));
  assert.ok(pr, "no pr.yml");
  const doc = parse(pr.content) as { jobs: Record<string, { services?: Record<string, Service> }> };
  const services = doc.jobs["backend-test"]?.services;
  assert.ok(services, "the backend-test job has no services");
  return services;
};

async function docker(args: string[]): Promise<string> {
  const r = await runLocal("docker", args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `docker ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

describe("the backend tests' service containers, as the runner creates them", { skip }, () => {
  let h: Harness;
  const created: string[] = [];

  before(
    async () => {
      if (!availability.ok)
        throw new Error(`CI=true but e2e cannot run here: ${availability.reason}`);
      h = await ensureHarness();
    },
    { timeout: 40 * 60_000 },
  );

  after(async () => {
    for (const name of created) await runLocal("docker", ["rm", "-f", "-v", name]);
  });

  /** Creates and starts service `name` from `image`; returns the container's name. */
  async function start(name: string, service: Service, image: string): Promise<string> {
    const container = `clicky-svc-${process.pid}-${name}`;
    await runLocal("docker", ["rm", "-f", "-v", container]);
    const env = Object.entries(service.env ?? {}).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    // The ports are left out: the health check runs inside the container either way, and the
    // test publishes nothing on this machine.
    await docker([
      "create",
      "--name",
      container,
      ...splitOptions(service.options ?? ""),
      ...env,
      image,
    ]);
    created.push(container);
    await docker(["start", container]);
    return container;
  }

  /** Waits until Docker calls the container healthy; returns the seconds it took. */
  async function healthy(container: string): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const status = await docker(["inspect", "-f", "{{.State.Health.Status}}", container]);
      if (status === "healthy") return (Date.now() - t0) / 1000;
      assert.notEqual(status, "unhealthy", `${container} turned unhealthy`);
      assert.ok(Date.now() - t0 < 120_000, `${container} not healthy within 120 s (${status})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test("PostgreSQL: healthy only once the test database answers over TCP, as the tests connect", async () => {
    const service = jobServices().postgres;
    assert.ok(service, "no postgres service");
    assert.equal(service.image, "postgres:16");
    const container = await start("postgres", service, h.images.postgres);
    // What the options set reached Docker as meant (a misquoted --health-cmd would not).
    const check = JSON.parse(
      await docker(["inspect", "-f", "{{json .Config.Healthcheck}}", container]),
    ) as { Test: string[]; Interval: number; StartPeriod: number };
    assert.deepEqual(check.Test, ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U test -d clicky_test"]);
    const seconds = await healthy(container);
    const env = service.env ?? {};
    const answer = await runLocal("docker", [
      "exec",
      "-e",
      `PGPASSWORD=${env.POSTGRES_PASSWORD}`,
      container,
      "psql",
      "-h",
      "127.0.0.1",
      "-U",
      String(env.POSTGRES_USER),
      "-d",
      String(env.POSTGRES_DB),
      "-Atc",
      "SELECT 1",
    ]);
    assert.equal(answer.code, 0, `the first TCP connection once healthy: ${answer.stderr}`);
    assert.equal(answer.stdout.trim(), "1");
    console.log(
      `# postgres healthy after ${seconds.toFixed(1)} s (interval ${check.Interval / 1e9} s, start period ${check.StartPeriod / 1e9} s)`,
    );
  });

  test("Redis: healthy once it answers PING", async () => {
    const service = jobServices().redis;
    assert.ok(service, "no redis service");
    assert.equal(service.image, "redis:7-alpine");
    const container = await start("redis", service, h.images.redis);
    const seconds = await healthy(container);
    assert.equal(await docker(["exec", container, "redis-cli", "ping"]), "PONG");
    console.log(`# redis healthy after ${seconds.toFixed(1)} s`);
  });
});
