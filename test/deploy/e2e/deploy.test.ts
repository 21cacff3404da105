/**
 * The deploy, end to end, against real parts: the harness's OpenSSH server (pinned host key),
 * Docker engine, compose, registry, PostgreSQL, nginx and the stand-in app's v1..v4 images.
 * Every deploy here runs the exact commands the program registers (rendered by running the
 * program under Pulumi's mocks), in Pulumi's order: prepare, copies, then the deploy script
 * with its stdin, over SSH as the command provider does.
 *
 * Scenarios, in order on one host: (a) first deploy, (b) upgrade with a schema change and a
 * restore of the backup into a scratch database, (c) a version whose health check never
 * passes, (d) a failing migration, (e) two deploys at once, (f) a rerun with nothing changed,
 * (g) rollback to v1 with the downgrade and live-restore runbooks, (h) a registry that refuses
 * the token, (i) a host whose proxy an earlier version started (without the routing module) is
 * upgraded; continuous requests through the proxy during (b), (c), (g) and (i), half of them on
 * reused keep-alive connections, every one counted.
 *
 * No secret in a log: the stack's secrets here hold URL-special characters, quotes, `$` and
 * non-ASCII text, and after every deploy no form of any of them (as is, percent-encoded,
 * base64, base64 of `user:token`) may be in what the command printed, in the error the
 * command provider would build from it, or in the host's deploy logs. A failure's error must
 * name the step, show lines of the host's log and stay short.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import {
  downgradeCommands,
  type RunbookContext,
  restoreLiveCommands,
  restoreToScratchCommands,
} from "../../../src/deploy/runbooks";
import { LOCK_BUSY_EXIT } from "../../../src/deploy/script";
import { databaseUrl } from "../../../src/deploy/stdin";
import {
  type CommandResult,
  cleanupProject,
  composeContainers,
  e2eSkip,
  ensureHarness,
  freePort,
  type Harness,
  harnessAvailability,
  httpGet,
  type LoadHandle,
  type LoadResult,
  prepareAndCopy,
  psqlInContainer,
  runAsProvider,
  runLocal,
  runOverSsh,
  startLoad,
} from "../../harness";
import {
  E2E_APP_DIR,
  E2E_COMPOSE,
  E2E_COMPOSE_COMMAND,
  E2E_PROJECT,
  e2eDeployConfig,
  e2eSecrets,
} from "../../support/e2e-config";
import { type RenderedHost, renderStack, TEST_SECRETS } from "../../support/render";
import { assertNoSecret, type LeakCheck } from "../../support/secrets";

/** The value of the app secret the e2e stack declares itself (`deploy.app.secrets`). */
const SENTRY_DSN = "https://k3y:s3cr3t p@ss$word@sentry.example/42";

const availability = harnessAvailability();
const skip = e2eSkip("deploy e2e");

interface Deployed {
  readonly host: RenderedHost;
  readonly result: CommandResult;
  /** The command provider's error for a failed run, built from `create` and the output. */
  readonly error?: string;
  readonly seconds: number;
}

/** A registry token the harness's registry refuses, with characters that need care. */
/** A literal for a regular expression. */
function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const WRONG_TOKEN = "wr0ng/t0ken+=?&%:#@ ü'\"$x";

describe(`deploy over SSH, end to end (compose ${E2E_COMPOSE})`, { skip }, () => {
  let h: Harness;
  let port = 0;
  let ctx: RunbookContext;
  const timings: string[] = [];

  before(
    async () => {
      if (!availability.ok)
        throw new Error(`CI=true but e2e cannot run here: ${availability.reason}`);
      h = await ensureHarness();
      port = await freePort();
      ctx = {
        appDir: E2E_APP_DIR,
        project: E2E_PROJECT,
        database: { name: "clicky_db", user: "clicky", urlScheme: "postgresql+asyncpg" },
        compose: E2E_COMPOSE_COMMAND,
      };
      await cleanupProject(h, E2E_APP_DIR, E2E_PROJECT);
      // An empty host has none of the app's images: drop v1's local copy so that (a) really
      // logs in and pulls (best effort: another project may still be running it).
      const v1 = [imageRef("v1"), `${h.images.backend.repository}:v1`];
      await runLocal("docker", ["image", "rm", ...v1]).catch(() => undefined);
    },
    { timeout: 40 * 60_000 },
  );

  /** The reference a host pulls for a tag: the program resolves every tag to its digest. */
  function imageRef(tag: string): string {
    const digest = h.images.backend.tags[tag]?.digest;
    if (!digest) throw new Error(`the harness has no digest for ${tag}`);
    return `${h.images.backend.repository}@${digest}`;
  }

  /** {@link imageRef} as a regular expression source. */
  function ref(tag: string): string {
    return imageRef(tag).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }

  after(async () => {
    console.log(`# deploy e2e timings:\n${timings.map((t) => `#   ${t}`).join("\n")}`);
    if (h) await cleanupProject(h, E2E_APP_DIR, E2E_PROJECT);
  });

  /** The program's registrations for one deploy: the e2e stack with this image and extras. */
  async function render(
    tag: string,
    opts: { extra?: Record<string, unknown> } = {},
  ): Promise<RenderedHost> {
    const deploy = e2eDeployConfig(h, port, { tag }, opts.extra);
    // The stack's own app secret, declared as a user would: one name plus its value.
    deploy.app = { ...(deploy.app as object), secrets: ["SENTRY_DSN"] };
    const rendered = await renderStack({
      deploy,
      secrets: { ...e2eSecrets(h), appSecrets: JSON.stringify({ SENTRY_DSN }) },
    });
    assert.equal(rendered.run.error, undefined, String(rendered.run.error));
    const host = rendered.hosts[0];
    assert.ok(host, "the program registered a deploy for the e2e host");
    return host;
  }

  /** The run command as the provider runs it; every run is checked for leaked secrets. */
  async function runDeploy(host: RenderedHost): Promise<Deployed> {
    const started = Date.now();
    const { result, error } = await runAsProvider(h, host.script, {
      stdin: host.stdin,
      timeoutMs: 5 * 60_000,
    });
    const deployed = { host, result, seconds: (Date.now() - started) / 1000 };
    const run = error === undefined ? deployed : { ...deployed, error };
    await leaksNothing(run);
    return run;
  }

  async function deploy(
    label: string,
    tag: string,
    opts: { extra?: Record<string, unknown> } = {},
  ): Promise<Deployed> {
    const host = await render(tag, opts);
    await prepareAndCopy(h, host);
    const deployed = await runDeploy(host);
    timings.push(
      `${label}: deploy script ${deployed.seconds.toFixed(1)} s, exit ${deployed.result.code}`,
    );
    return deployed;
  }

  function output(d: Deployed): string {
    return `--- stdout\n${d.result.stdout}\n--- stderr\n${d.result.stderr}`;
  }

  function succeeded(d: Deployed): void {
    assert.equal(d.result.code, 0, output(d));
    assert.doesNotMatch(d.result.stdout + d.result.stderr, /deploy FAILED/);
  }

  /** Every secret a deploy here gets (and the wrong token of (h)), for the leak checks. */
  function leakChecks(): LeakCheck[] {
    const password = TEST_SECRETS.postgresPassword;
    const database = { name: "clicky_db", user: "clicky", urlScheme: "postgresql+asyncpg" };
    return [
      { name: "the database password", value: password },
      { name: "DATABASE_URL", value: databaseUrl(database, password) },
      { name: "the JWT key", value: TEST_SECRETS.jwtSecretKey },
      { name: "the app's own secret", value: SENTRY_DSN },
      { name: "the registry token", value: h.registry.password },
      { name: "user:token", value: `${h.registry.user}:${h.registry.password}` },
      { name: "the wrong registry token", value: WRONG_TOKEN },
      { name: "user:wrong token", value: `${h.registry.user}:${WRONG_TOKEN}` },
    ];
  }

  /**
   * No form of any secret in what the deploy printed, in the provider's error, or in the host's
   * deploy logs (nothing the script runs prints one: the masking is only the second defence).
   */
  async function leaksNothing(d: Deployed): Promise<void> {
    const checks = leakChecks();
    assertNoSecret(d.result.stdout, checks, "stdout");
    assertNoSecret(d.result.stderr, checks, "stderr");
    assertNoSecret(d.error ?? "", checks, "the provider's error");
    assertNoSecret(
      await onHost(`cat ${E2E_APP_DIR}/logs/* 2>/dev/null || true`),
      checks,
      "the host's deploy logs",
    );
  }

  /**
   * The provider's error of a failed deploy: the short run line (never the script), the step,
   * lines of the host's log and the path of that log (unless the run logged nothing before it
   * failed, as a deploy that meets the lock), in well under 8 KB.
   */
  function reportsFailure(d: Deployed, step: string, opts: { logged?: boolean } = {}): string {
    const error = d.error ?? "";
    assert.ok(error, `no provider error:\n${output(d)}`);
    assert.match(
      error,
      /^Process exited with status \d+: running "exec bash \S+\/releases\/[0-9a-f]{12}\/deploy-[0-9a-f]{16}\.sh image=\S+ tag=\S+ registry=\S+ migrate=[01]":\n/,
    );
    assert.ok(!error.includes("set -Eeuo pipefail"), "the script's text is not quoted");
    assert.match(error, new RegExp(`\ndeploy FAILED on e2e \\(stack staging\\) at step ${step}: `));
    if (opts.logged ?? true) {
      assert.match(
        error,
        new RegExp(
          `\\n--- the last \\d+ lines of the log of this deploy on e2e, ${escapeRegExp(E2E_APP_DIR)}/logs/\\d{8}T\\d{6}Z-\\d+\\.log:\\n( {2}.*\\n)+---\\n`,
        ),
      );
    }
    assert.ok(Buffer.byteLength(error) < 8192, `the error is ${Buffer.byteLength(error)} bytes`);
    return error;
  }

  const url = (path: string) => `http://127.0.0.1:${port}${path}`;

  async function serving(): Promise<{ version: string; slot: string }> {
    const answer = await httpGet(url("/version"));
    assert.equal(answer.status, 200, answer.body);
    return {
      version: (JSON.parse(answer.body) as { version: string }).version,
      slot: String(answer.headers["x-clicky-slot"]),
    };
  }

  async function onHost(script: string): Promise<string> {
    const r = await runOverSsh(h, `set -euo pipefail\n${script}`);
    assert.equal(r.code, 0, `${script}\n--- stderr\n${r.stderr}`);
    return r.stdout;
  }

  async function stateOf(file: "current" | "previous"): Promise<Record<string, string>> {
    const text = await onHost(`cat ${E2E_APP_DIR}/state/${file}`);
    return Object.fromEntries(
      text
        .trim()
        .split("\n")
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
  }

  async function backups(): Promise<string[]> {
    return (await onHost(`ls -1 ${E2E_APP_DIR}/backups`)).split("\n").filter(Boolean);
  }

  async function postgres(): Promise<string> {
    const [name] = await composeContainers(E2E_PROJECT, "postgres");
    assert.ok(name, "the postgres container exists");
    return name;
  }

  async function sql(query: string, database = "clicky_db"): Promise<string> {
    return psqlInContainer(await postgres(), query, { database });
  }

  async function itemColumns(database = "clicky_db"): Promise<string[]> {
    const out = await sql(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'items' ORDER BY ordinal_position",
      database,
    );
    return out.split("\n").filter(Boolean);
  }

  /** All containers of the project with their ids, for "nothing changed" checks. */
  async function containers(): Promise<string> {
    const r = await runLocal("docker", [
      "ps",
      "-a",
      "--no-trunc",
      "--format",
      "{{.ID}} {{.Names}} {{.Status}}",
      "--filter",
      `label=com.docker.compose.project=${E2E_PROJECT}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => line.replace(/ Up .*/, " Up"))
      .sort()
      .join("\n");
  }

  function backupPathIn(text: string): string {
    const match =
      /backup taken before this deploy: (\S+\.dump)/.exec(text) ??
      /database saved to (\S+\.dump)/.exec(text);
    assert.ok(match?.[1], `no backup path in:\n${text}`);
    return match[1];
  }

  function load(): LoadHandle {
    // Half the requests on reused connections, as mobile apps and HTTP libraries send them.
    return startLoad({
      url: url("/health"),
      ratePerSecond: 40,
      durationMs: 5 * 60_000,
      keepAlive: "mixed",
    });
  }

  /** Every request through the proxy got a 2xx answer, and there were plenty of them. */
  function noRequestDropped(label: string, r: LoadResult): void {
    timings.push(
      `${label}: ${r.sent} requests through the proxy, ${r.ok2xx} 2xx, ${r.non2xxTotal} non-2xx, ${r.errorsTotal} errors, versions ${JSON.stringify(r.versions)}`,
    );
    assert.ok(r.sent >= 200, `only ${r.sent} requests were sent`);
    assert.equal(r.inFlight, 0);
    assert.deepEqual(
      { non2xx: r.non2xx, errors: r.errors },
      { non2xx: {}, errors: {} },
      `failures: ${JSON.stringify(r.failures.slice(0, 10))}`,
    );
    assert.equal(r.ok2xx, r.sent);
  }

  test("(a) a first deploy on an empty host brings up the proxy, v1, PostgreSQL and Redis", async () => {
    const d = await deploy("(a) first deploy v1", "v1");
    succeeded(d);
    assert.match(
      d.result.stdout,
      new RegExp(`pull: pulled ${ref("v1")}`),
      "pulled with the registry login",
    );
    assert.match(d.result.stdout, /migrate: running alembic upgrade head/);
    assert.match(d.result.stdout, /finished: deployed v1/);
    assert.deepEqual(await serving(), { version: "v1", slot: "blue" });
    const items = await httpGet(url("/items"));
    assert.equal((JSON.parse(items.body) as unknown[]).length, 3);
    // The secrets arrived intact (spaces, quotes, $ and non-ASCII) through stdin and compose.
    const config = JSON.parse((await httpGet(url("/config"))).body) as Record<string, unknown>;
    assert.equal(
      config.jwt_secret_sha256_12,
      createHash("sha256").update(TEST_SECRETS.jwtSecretKey).digest("hex").slice(0, 12),
    );
    assert.equal(
      config.sentry_dsn_sha256_12,
      createHash("sha256").update(SENTRY_DSN).digest("hex").slice(0, 12),
      "the stack's own app secret reached the app as the JWT key does",
    );
    assert.equal(config.app_env, "e2e");
    assert.equal(config.redis_url_set, true);
    const names = (await composeContainers(E2E_PROJECT)).map((n) =>
      n.replace(new RegExp(`^${E2E_PROJECT}[-_]|[-_]1$`, "g"), ""),
    );
    assert.deepEqual(names.sort(), ["backend-blue", "postgres", "proxy", "redis"]);
    const current = await stateOf("current");
    assert.equal(current.slot, "blue");
    assert.equal(current.tag, "v1");
    assert.equal(current.digest, h.images.backend.tags.v1?.digest);
    assert.equal(
      await onHost(
        `stat -c '%a %U' ${E2E_APP_DIR}/env/blue.env ${E2E_APP_DIR}/env ${E2E_APP_DIR}/state`,
      ),
      "600 deploy\n700 deploy\n700 deploy\n",
    );
    assert.equal((await backups()).length, 1);
  });

  test("(b) an upgrade to v2 migrates the schema with zero dropped requests, and its backup restores v1's rows", async () => {
    const traffic = load();
    const d = await deploy("(b) upgrade v1 -> v2", "v2");
    const counted = await traffic.stop();
    succeeded(d);
    noRequestDropped("(b) during the upgrade", counted);
    assert.ok(
      (counted.versions.v1 ?? 0) > 0 && (counted.versions.v2 ?? 0) > 0,
      JSON.stringify(counted.versions),
    );
    assert.deepEqual(await serving(), { version: "v2", slot: "green" });
    assert.deepEqual(await itemColumns(), ["id", "name", "price_cents"]);
    assert.deepEqual(
      await composeContainers(E2E_PROJECT, "backend-blue"),
      [],
      "v1 was stopped and removed",
    );
    assert.equal((await stateOf("previous")).tag, "v1");
    // A migration is pending: the dump is kept before it runs, and before v2 starts.
    assert.match(
      d.result.stdout,
      /migrate: alembic current --check-heads exited 1 \(.*\): waiting for the backup, then migrating/,
    );
    const out = d.result.stdout;
    // PostgreSQL was healthy and took the password: the dump and the check began before nginx's
    // check of the site (start_early), each once.
    assert.ok(
      out.indexOf("backup: dumping") < out.indexOf("nginx accepts the site") &&
        out.indexOf("migrate: checking whether a migration is pending") <
          out.indexOf("nginx accepts the site"),
      out,
    );
    assert.equal(out.split("backup: dumping").length, 2, out);
    assert.equal(out.split("checking whether a migration is pending").length, 2, out);
    assert.ok(
      out.indexOf("database saved to") < out.indexOf("running alembic upgrade head") &&
        out.indexOf("running alembic upgrade head") < out.indexOf("start: started backend-green"),
      out,
    );

    const backup = backupPathIn(d.result.stdout);
    assert.match(backup, /\/backups\/staging-\d{8}T\d{6}Z-v2\.dump$/);
    const started = Date.now();
    await onHost(
      restoreToScratchCommands(ctx, backup.slice(backup.lastIndexOf("/") + 1)).join("\n"),
    );
    timings.push(
      `(b) restore runbook into a scratch database: ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    assert.equal(
      await sql("SELECT string_agg(name, ',' ORDER BY id) FROM items", "clicky_db_restore"),
      "alpha,beta,gamma",
    );
    assert.deepEqual(await itemColumns("clicky_db_restore"), ["id", "name"], "v1's schema");
    await sql("DROP DATABASE clicky_db_restore", "postgres");

    // Once kept, the dump is compressed in the background: each table's data file ends as
    // N.dat.gz, toc.dat stays, and nothing partial is left ((g) restores it live).
    const deadline = Date.now() + 60_000;
    let files: string[];
    for (;;) {
      files = (await onHost(`ls -1 ${backup}`)).split("\n").filter(Boolean);
      if (!files.some((f) => /^\d+\.dat$/.test(f))) break;
      assert.ok(Date.now() < deadline, `still raw after 60 s: ${files.join(" ")}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(files.includes("toc.dat"), files.join(" "));
    assert.ok(
      files.some((f) => /^\d+\.dat\.gz$/.test(f)),
      files.join(" "),
    );
    assert.ok(!files.some((f) => /\.gz\./.test(f)), files.join(" "));

    // A single-file dump (an older version's, an external database's) restores with the same
    // runbook.
    const old = "single-file.dump";
    await onHost(
      `cd ${E2E_APP_DIR}/current && ${ctx.compose} exec -T postgres pg_dump -U ${ctx.database.user} -d ${ctx.database.name} -Fc > ${E2E_APP_DIR}/backups/${old}`,
    );
    await onHost(restoreToScratchCommands(ctx, old).join("\n"));
    await onHost(`rm -f ${E2E_APP_DIR}/backups/${old}`);
    assert.equal(
      await sql("SELECT string_agg(name, ',' ORDER BY id) FROM items", "clicky_db_restore"),
      "alpha,beta,gamma",
    );
    await sql("DROP DATABASE clicky_db_restore", "postgres");
  });

  test("(c) a v3 that never gets healthy is removed after health.timeoutSeconds, not at Docker's verdict; v2 keeps serving every request", async () => {
    const traffic = load();
    // Docker marks it unhealthy after about 5 s (start period 2 s, 3 retries 1 s apart); the
    // wait lasts the 15 s the stack sets.
    const health = {
      ...(e2eDeployConfig(h, port, { tag: "v3" }).health as object),
      timeoutSeconds: 15,
    };
    const d = await deploy("(c) v3, health never passes", "v3", { extra: { health } });
    const counted = await traffic.stop();
    assert.equal(d.result.code, 1, output(d));
    // v3 has v2's migrations: nothing to migrate, so v3 started while the dump ran.
    assert.match(
      d.result.stdout,
      /migrate: nothing to migrate \(alembic current --check-heads exited 0 in [\d.]+ s\): the new version starts while the backup runs/,
    );
    const error = reportsFailure(d, "health");
    assert.match(
      error,
      /\n {2}\[deploy e2e\] undo: removing backend-blue /,
      "the log shows the undo",
    );
    console.log(`# the provider's error (${Buffer.byteLength(error)} bytes):\n${error}`);
    assert.match(
      d.result.stderr,
      /deploy FAILED on e2e \(stack staging\) at step health: backend-blue was not healthy after 15 s \(health.timeoutSeconds; Docker marked it unhealthy after \d+ s; last probe: .*503/,
    );
    assert.match(
      d.result.stderr,
      new RegExp(`the previous version keeps serving: ${ref("v2")} in backend-green`),
    );
    const backup = backupPathIn(d.result.stderr);
    assert.ok(
      (await backups()).includes(backup.slice(backup.lastIndexOf("/") + 1)),
      "the backup is kept",
    );
    noRequestDropped("(c) during the failed v3 deploy", counted);
    assert.deepEqual(Object.keys(counted.versions), ["v2"]);
    assert.deepEqual(await serving(), { version: "v2", slot: "green" });
    assert.deepEqual(await composeContainers(E2E_PROJECT, "backend-blue"), [], "v3 was removed");
    assert.equal((await stateOf("current")).tag, "v2");
  });

  test("(d) a failing migration aborts before any traffic moves: v2 serves, schema unchanged, backup kept", async () => {
    const d = await deploy("(d) v4, migration fails", "v4");
    assert.equal(d.result.code, 1, output(d));
    const error = reportsFailure(d, "migrate");
    // The migration's own output is no progress line: only the failure report shows it.
    assert.doesNotMatch(d.result.stdout, /migration 003/);
    assert.match(error, /\n {2}.*migration 003 failed and was rolled back/);
    console.log(`# the provider's error (${Buffer.byteLength(error)} bytes):\n${error}`);
    assert.match(
      d.result.stderr,
      new RegExp(
        `at step migrate: the migration \\(alembic upgrade head\\) failed with ${ref("v4")} \\(exit 1\\); no traffic was moved`,
      ),
    );
    assert.match(d.result.stdout + d.result.stderr, /migration 003 failed and was rolled back/);
    const backup = backupPathIn(d.result.stderr);
    assert.ok((await backups()).includes(backup.slice(backup.lastIndexOf("/") + 1)));
    assert.deepEqual(await serving(), { version: "v2", slot: "green" });
    assert.deepEqual(await itemColumns(), ["id", "name", "price_cents"]);
    assert.equal(await sql("SELECT to_regclass('audit_log') IS NULL"), "t");
    assert.equal(await sql("SELECT version_num FROM alembic_version"), "002");
    assert.deepEqual(await composeContainers(E2E_PROJECT, "backend-blue"), []);
  });

  let settled: RenderedHost;

  test("(e) a second deploy while one runs fails fast, naming who holds the lock and since when", async () => {
    settled = await render("v2", { extra: { app: { env: { APP_ENV: "e2e", FEATURE_X: "on" } } } });
    await prepareAndCopy(h, settled);
    const first = runDeploy(settled);
    const owner = `${E2E_APP_DIR}/state/deploy.lock.owner`;
    const deadline = Date.now() + 30_000;
    while (!(await onHost(`cat ${owner} 2>/dev/null || true`)).includes("pid")) {
      assert.ok(Date.now() < deadline, "the first deploy never took the lock");
      await new Promise((r) => setTimeout(r, 100));
    }
    const second = await runDeploy(settled);
    const firstDone = await first;
    timings.push(
      `(e) the second deploy failed after ${second.seconds.toFixed(1)} s; the first took ${firstDone.seconds.toFixed(1)} s`,
    );
    assert.equal(second.result.code, LOCK_BUSY_EXIT, output(second));
    reportsFailure(second, "lock", { logged: false });
    assert.ok(second.seconds < 10, `the second deploy took ${second.seconds} s`);
    assert.match(
      second.result.stderr,
      new RegExp(
        `at step lock: another deploy holds ${escapeRegExp(E2E_APP_DIR)}/state/deploy\\.lock: deploy of ${ref("v2")} \\(stack staging\\) by deploy from 127\\.0\\.0\\.1, pid \\d+, since \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ; this one changed nothing`,
      ),
    );
    succeeded(firstDone);
    assert.deepEqual(await serving(), { version: "v2", slot: "blue" });
    const config = JSON.parse((await httpGet(url("/config"))).body) as Record<string, unknown>;
    assert.equal(config.version, "v2");
    assert.equal(await onHost(`test -e ${owner} && echo held || echo free`), "free\n");
  });

  test("(f) a rerun with nothing changed changes nothing on the host", async () => {
    const again = await render("v2", {
      extra: { app: { env: { APP_ENV: "e2e", FEATURE_X: "on" } } },
    });
    // What Pulumi compares: the same script, stdin and triggers, so `pulumi up` would not even run it.
    assert.equal(again.script, settled.script);
    assert.equal(again.stdin, settled.stdin);
    assert.deepEqual(again.run.inputs.triggers, settled.run.inputs.triggers);

    const before = {
      containers: await containers(),
      backups: await backups(),
      state: await onHost(
        `cat ${E2E_APP_DIR}/state/current ${E2E_APP_DIR}/proxy/routing; ls -l --time-style=full-iso ${E2E_APP_DIR}/state ${E2E_APP_DIR}/env ${E2E_APP_DIR}/proxy`,
      ),
    };
    await prepareAndCopy(h, again);
    const d = await runDeploy(again);
    timings.push(`(f) rerun with nothing changed: ${d.seconds.toFixed(1)} s`);
    succeeded(d);
    assert.match(
      d.result.stdout,
      new RegExp(`nothing to do: v2 \\(${ref("v2")}\\) already serves from backend-blue`),
    );
    assert.doesNotMatch(d.result.stdout, /backup:|pull:|start:|switch:/);
    assert.deepEqual(
      {
        containers: await containers(),
        backups: await backups(),
        state: await onHost(
          `cat ${E2E_APP_DIR}/state/current ${E2E_APP_DIR}/proxy/routing; ls -l --time-style=full-iso ${E2E_APP_DIR}/state ${E2E_APP_DIR}/env ${E2E_APP_DIR}/proxy`,
        ),
      },
      before,
    );
  });

  test("(g) a rollback to v1's tag serves v1 without dropping a request; the runbooks downgrade and restore", async () => {
    const kept = await backups();
    assert.equal(kept.length, 5);
    const traffic = load();
    const d = await deploy("(g) rollback to v1", "v1", { extra: { migrate: false } });
    const counted = await traffic.stop();
    succeeded(d);
    noRequestDropped("(g) during the rollback", counted);
    assert.ok(
      (counted.versions.v1 ?? 0) > 0 && (counted.versions.v2 ?? 0) > 0,
      JSON.stringify(counted.versions),
    );
    assert.match(
      d.result.stdout,
      new RegExp(
        `pull: ${h.registry.address.replace(/\./g, "\\.")}/clicky/backend@sha256:[0-9a-f]{64} is already on this host`,
      ),
    );
    assert.match(
      d.result.stdout,
      /migrate: skipped: deploy\.migrate is false; the new version starts while the backup runs/,
    );
    // The dump ran beside v1's start; the commit waited for it (its wait is in the timings).
    assert.match(d.result.stdout, /timings: .*backup_wait [\d.]+ s/);
    assert.deepEqual(await serving(), { version: "v1", slot: "green" });
    assert.equal((await stateOf("previous")).tag, "v2");
    assert.equal((await stateOf("current")).tag, "v1");
    // Retention: the newest five backups stay; the oldest went.
    const now = await backups();
    assert.deepEqual(now.slice(0, 4), kept.slice(1));
    assert.equal(now.length, 5);

    // Runbook: alembic downgrade with the image that ran the migration (state/previous: v2).
    let started = Date.now();
    await onHost(downgradeCommands(ctx).join("\n"));
    timings.push(`(g) downgrade runbook: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.deepEqual(await itemColumns(), ["id", "name"]);
    assert.equal(await sql("SELECT version_num FROM alembic_version"), "001");
    assert.equal((await httpGet(url("/items"))).status, 200);

    // Runbook: restore a backup into the live database; what was written since is gone.
    const v1Backup = (await backups()).find((b) => b.endsWith("-v2.dump"));
    assert.ok(v1Backup, "the backup taken before v2 (v1's data, from (b)) is still kept");
    await sql("INSERT INTO items (name) VALUES ('written after the backup')");
    started = Date.now();
    await onHost(restoreLiveCommands(ctx, v1Backup).join("\n"));
    timings.push(`(g) live restore runbook: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(
      await sql("SELECT string_agg(name, ',' ORDER BY id) FROM items"),
      "alpha,beta,gamma",
    );
    assert.deepEqual(await itemColumns(), ["id", "name"]);
    assert.equal(await sql("SELECT version_num FROM alembic_version"), "001");
    const deadline = Date.now() + 60_000;
    while ((await httpGet(url("/health")).catch(() => ({ status: 0 }))).status !== 200) {
      assert.ok(Date.now() < deadline, "the app did not come back after the restore");
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.deepEqual(await serving(), { version: "v1", slot: "green" });
  });

  test("(h) a registry that refuses the token stops the deploy at the pull; the token shows nowhere", async () => {
    // An image the host does not have, in the harness's registry: the deploy must log in.
    const host = await renderStack({
      deploy: e2eDeployConfig(
        h,
        port,
        { tag: "v2" },
        {
          image: {
            repository: `${h.registry.address}/clicky/absent`,
            tag: "v2",
            digest: h.images.backend.tags.v2?.digest,
          },
        },
      ),
      secrets: { ...e2eSecrets(h), registryToken: WRONG_TOKEN },
    }).then((r) => {
      assert.equal(r.run.error, undefined, String(r.run.error));
      assert.ok(r.hosts[0]);
      return r.hosts[0];
    });
    await prepareAndCopy(h, host);
    const d = await runDeploy(host);
    timings.push(
      `(h) registry refuses the token: ${d.seconds.toFixed(1)} s, exit ${d.result.code}`,
    );
    assert.equal(d.result.code, 1, output(d));
    const error = reportsFailure(d, "pull");
    assert.match(
      error,
      new RegExp(
        `at step pull: login to ${h.registry.address.replace(/\./g, "\\.")} failed: .*(401|[Uu]nauthorized)`,
      ),
    );
    console.log(`# the provider's error (${Buffer.byteLength(error)} bytes):\n${error}`);
    assert.deepEqual(await serving(), { version: "v1", slot: "green" });
    assert.equal((await stateOf("current")).tag, "v1");
  });

  test("(i) a host an earlier version deployed (proxy without the routing module) is upgraded: the proxy is recreated once, then routes per request", async () => {
    // The host as the earlier version left it: its proxy runs nginx without `load_module`, and
    // routes by an upstream.conf that its site reads (the slot in upstream.conf's first line).
    const current = `${E2E_APP_DIR}/current`;
    const compose = parseYaml(await onHost(`cat ${current}/docker-compose.yml`)) as {
      services: Record<string, Record<string, unknown>>;
    };
    delete compose.services.proxy?.command;
    const oldSite = [
      "server {",
      "  listen 80 default_server;",
      "  resolver 127.0.0.11 valid=5s ipv6=off;",
      "  location / {",
      "    proxy_pass $clicky_backend;",
      "    add_header X-Clicky-Slot $clicky_slot always;",
      "  }",
      "}",
    ].join("\n");
    const oldUpstream = [
      "# Serving slot, written by the deploy script at each switch. slot=green",
      "map $host $clicky_backend { default http://backend-green:8000; }",
      "map $host $clicky_slot { default green; }",
    ].join("\n");
    await onHost(
      [
        `cat >${E2E_APP_DIR}/old-compose.yml <<'EOF'\n${stringifyYaml(compose, { version: "1.1" })}EOF`,
        `rm -f ${E2E_APP_DIR}/proxy/routing ${E2E_APP_DIR}/proxy/routing.js ${E2E_APP_DIR}/state/proxy-site`,
        `cat >${E2E_APP_DIR}/proxy/site.conf <<'EOF'\n${oldSite}\nEOF`,
        `cat >${E2E_APP_DIR}/proxy/upstream.conf <<'EOF'\n${oldUpstream}\nEOF`,
        `cd ${current} && ${E2E_COMPOSE_COMMAND} -p ${E2E_PROJECT} -f ${E2E_APP_DIR}/old-compose.yml --env-file .env up -d --no-deps --force-recreate proxy 2>&1`,
        `rm -f ${E2E_APP_DIR}/old-compose.yml`,
      ].join("\n"),
    );
    const proxyCommand = async () =>
      (
        await runLocal("docker", [
          "inspect",
          "-f",
          '{{join .Config.Cmd " "}}',
          (await composeContainers(E2E_PROJECT, "proxy"))[0] ?? "none",
        ])
      ).stdout.trim();
    assert.equal(await proxyCommand(), "nginx -g daemon off;");
    const deadline = Date.now() + 30_000;
    while ((await httpGet(url("/version")).catch(() => ({ status: 0 }))).status !== 200) {
      assert.ok(Date.now() < deadline, "the earlier version's proxy did not come up");
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(await serving(), { version: "v1", slot: "green" });

    const traffic = load();
    const d = await deploy("(i) upgrade from an earlier version's proxy, v1 -> v2", "v2");
    const counted = await traffic.stop();
    succeeded(d);
    assert.match(
      d.result.stdout,
      /switch: the proxy runs without the routing module \(started by an earlier version of clicky-delivery\): recreating it, once/,
    );
    assert.deepEqual(await serving(), { version: "v2", slot: "blue" });
    assert.match(
      await proxyCommand(),
      /^nginx -g daemon off; load_module \S+ngx_http_js_module\.so;$/,
    );
    assert.equal(
      await onHost(`ls ${E2E_APP_DIR}/proxy | sort | tr '\\n' ' '`),
      "routing routing.js site.conf ",
    );
    assert.match(await onHost(`cat ${E2E_APP_DIR}/proxy/routing`), /\nblue backend-blue:8000 /);
    // The one recreate refuses new connections for a moment; nothing else fails. What it cost
    // goes to the report (docs/deploy.md quotes it).
    const failedAt = counted.failures.map((f) => f.atMs);
    const span = failedAt.length ? Math.max(...failedAt) - Math.min(...failedAt) : 0;
    timings.push(
      `(i) during the one-time proxy recreate: ${counted.sent} requests, ${counted.ok2xx} 2xx, ${counted.non2xxTotal} non-2xx, ${counted.errorsTotal} errors within ${span} ms: ${JSON.stringify({ ...counted.non2xx, ...counted.errors })}`,
    );
    assert.ok(span <= 3000, `failures spread over ${span} ms: ${JSON.stringify(counted.failures)}`);
    // The count follows from the window: at 40 requests/s, at most 3 s of them (a fixed count of
    // 40 once failed a run whose window, 1.6 s, was well inside the bound).
    assert.ok(
      counted.ok2xx >= counted.sent - 40 * 3,
      JSON.stringify(counted.failures.slice(0, 10)),
    );

    // From now on a deploy switches without a reload: zero failed requests, keep-alive included.
    const traffic2 = load();
    const again = await deploy("(i) the next deploy, v2 -> v1", "v1", {
      extra: { migrate: false },
    });
    const counted2 = await traffic2.stop();
    succeeded(again);
    noRequestDropped("(i) the next deploy", counted2);
    assert.doesNotMatch(again.result.stdout, /reloading nginx|recreating it/);
  });
});
