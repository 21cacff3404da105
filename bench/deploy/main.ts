/**
 * `npm run bench:deploy`: our deploy against the floor of an upgrade, the spec's procedure (as
 * written, and with its `sleep 10` replaced by a poll) and the peer (docker-rollout), on the
 * e2e harness (real OpenSSH, Docker engine, registry, PostgreSQL), under reads and acknowledged
 * writes, at several database sizes and two image sizes.
 *
 * Per database size (each database grown to it, smallest first) and per run: the floor
 * (floor.ts); the spec's procedure v1 to v2, and its fair variant; our upgrade v1 to v2 with a
 * migration, our deploy of a version that never gets healthy (v3), our rollback to v1; the
 * peer's upgrade and failed deploy. At the smallest size, per larger image: the floor and the
 * upgrades again, with a v2 image that carries an extra incompressible layer, removed from the
 * host's engine before each so that the pull is real. It prints the tables and the targets,
 * writes the run's record (bench/results/<UTC time>.json) and renders docs/benchmarks.md and
 * its charts from that record (publish.ts), as `npm run bench:report` does from any record.
 *
 * Needs what the e2e needs (root, Docker; test/harness/provision.sh sets it up), installs
 * nothing. Progress goes to stderr, results to stdout. Options: `npm run bench:deploy -- --help`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { downgradeCommands } from "../../src/deploy/runbooks";
import { E2E_COMPOSE_COMMAND, e2eDeployConfig, e2eSecrets } from "../../test/support/e2e-config";
import { type RenderedHost, renderStack } from "../../test/support/render";
import {
  type CommandResult,
  cleanupProject,
  composeContainers,
  copyOverSsh,
  ensureHarness,
  freePort,
  type Harness,
  harnessAvailability,
  prepareAndCopy,
  REPO_ROOT,
  runLocal,
  runOverSsh,
  startLoad,
  startWriter,
  waitForHttp,
} from "../../test/harness";
import {
  type BaselineHealthCheck,
  type BaselineProject,
  baselineComposeFile,
  baselineEnv,
  baselineLogin,
  baselineMigrate,
  baselineProcedure,
  baselineSetVersion,
  baselineSteps,
  baselineUp,
} from "./baseline";
import { median } from "./cost";
import { dumpSize, fillDatabase, mustPostgres, postgresOf, psql } from "./database";
import { floorScript, parseFloorOutput } from "./floor";
import {
  LOAD_KEEP_ALIVE,
  type LoadedDeploy,
  type OnOutput,
  POST_ROLL_MS,
  PRE_ROLL_MS,
  REQUEST_TIMEOUT_MS,
  scriptSteps,
  underLoad,
} from "./load";
import { BENCH_USAGE, type BenchOptions, parseBenchArgs, UsageError } from "./options";
import * as peerModule from "./peer";
import type { PeerProject } from "./peer";
import { measureProbe } from "./probe";
import { recordName, writeReport } from "./publish";
import {
  type BenchRecord,
  type Floor,
  type Measurement,
  parseRecord,
  RECORD_KIND,
  RECORD_VERSION,
  recordFileName,
  type ScenarioId,
  type SizeStep,
  serializeRecord,
} from "./record";
import { costTable, floorTable, runLine, scenarioTitle } from "./report";
import { targetLine, targets } from "./targets";

/** Previews measured with and without the host probe. */
const PROBE_RUNS = 15;
/** Our stack's `deploy.health.timeoutSeconds`: the failed-health target is this + 5 s. */
const HEALTH_TIMEOUT_SECONDS = 20;
const APP_PORT = 8000;

const OURS_DIR = "/home/deploy/clicky-bench-ours";
const OURS_PROJECT = "clickybenchours";
const BASE_DIR = "/home/deploy/clicky-bench-baseline";
const BASE_PROJECT = "clickybenchbase";
const PEER_DIR = "/home/deploy/clicky-bench-peer";
const PEER_PROJECT = "clickybenchpeer";

/** bench/deploy/peer.ts: the peer (docker-rollout) set up, deployed and removed. */
type PeerModule = typeof peerModule;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function say(text: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

async function must(what: string, r: Promise<CommandResult>): Promise<string> {
  const done = await r;
  if (done.code !== 0) {
    throw new Error(`${what} failed (exit ${done.code}):\n${done.stdout}\n${done.stderr}`);
  }
  return done.stdout;
}

/** A version of the backend as the registry has it. */
interface BackendImage {
  readonly tag: string;
  readonly digest: string;
  /** `repository@sha256:...` */
  readonly pinned: string;
  /** MB of incompressible layer on top of v2; 0 for the harness's own tags. */
  readonly imageMb: number;
}

interface Bench {
  readonly h: Harness;
  readonly options: BenchOptions;
  readonly oursPort: number;
  readonly baseline: BaselineProject;
  readonly peer: PeerProject | null;
  readonly peerModule: PeerModule | null;
}

function harnessImage(h: Harness, tag: string): BackendImage {
  const t = h.images.backend.tags[tag];
  if (!t) throw new Error(`the harness has no backend tag ${tag}`);
  return { tag, digest: t.digest, pinned: t.pinned, imageMb: 0 };
}

/** Our stack's `deploy` section for the bench's host: defaults, except where the harness differs. */
function oursDeploySection(b: Bench, image: BackendImage, extra: Record<string, unknown> = {}) {
  const harnessConfig = e2eDeployConfig(b.h, b.oursPort, { tag: "v1" });
  return {
    deploy: {
      appDir: OURS_DIR,
      composeProject: OURS_PROJECT,
      hosts: [{ ...(harnessConfig.hosts as Record<string, unknown>[])[0], name: "bench" }],
      image: { repository: b.h.images.backend.repository, tag: image.tag, digest: image.digest },
      images: harnessConfig.images,
      proxy: harnessConfig.proxy,
      health: { timeoutSeconds: HEALTH_TIMEOUT_SECONDS },
      app: { env: { APP_ENV: "bench" } },
      ...extra,
    },
  };
}

/** Our program's registrations for one deploy. */
async function renderOurs(b: Bench, image: BackendImage, extra: Record<string, unknown> = {}) {
  const { deploy } = oursDeploySection(b, image, extra);
  const rendered = await renderStack({ deploy, secrets: e2eSecrets(b.h) });
  if (rendered.run.error) throw new Error(String(rendered.run.error));
  const host = rendered.hosts[0];
  if (!host) throw new Error("the program registered no deploy");
  return host;
}

/** Prepare, copies and the deploy script, in Pulumi's order, over SSH. */
async function runOurs(b: Bench, host: RenderedHost, onOutput?: OnOutput): Promise<CommandResult> {
  await prepareAndCopy(b.h, host);
  return runOverSsh(b.h, host.script, {
    stdin: host.stdin,
    timeoutMs: 10 * 60_000,
    ...(onOutput ? { onOutput } : {}),
  });
}

/** The spec-shaped project, on v1 with the app's tables, its images in the registry like the backend's. */
async function setUpBaseline(b: Bench): Promise<void> {
  const { h, baseline } = b;
  await cleanupProject(h, baseline.dir, baseline.project);
  await must("baseline dir", runOverSsh(h, `mkdir -p -m 750 ${baseline.dir}`));
  await copyOverSsh(h, [
    { remotePath: `${baseline.dir}/docker-compose.yml`, content: baselineComposeFile(baseline) },
    { remotePath: `${baseline.dir}/.env`, content: baselineEnv(baseline, "v1"), mode: 0o600 },
  ]);
  await must(
    "baseline registry login",
    runOverSsh(h, baselineLogin(baseline, h.registry.address, h.registry.user), {
      stdin: h.registry.password,
    }),
  );
  await must("baseline first up", runOverSsh(h, baselineUp(baseline), { timeoutMs: 10 * 60_000 }));
  await waitForHttp(`http://127.0.0.1:${baseline.port}/health`, { timeoutMs: 120_000 });
  await must("baseline tables", runOverSsh(h, baselineMigrate(baseline)));
}

/** The baseline back on v1 (not measured). */
async function baselineBackToV1(b: Bench): Promise<void> {
  await must("baseline to v1", runOverSsh(b.h, baselineSetVersion(b.baseline, "v1")));
  await must("baseline up v1", runOverSsh(b.h, baselineUp(b.baseline), { timeoutMs: 10 * 60_000 }));
  await waitForHttp(`http://127.0.0.1:${b.baseline.port}/health`, { timeoutMs: 120_000 });
}

/** The Docker client config of the harness (its registry login) for pushes from this machine. */
function dockerClientEnv(h: Harness): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_CONFIG: path.join(h.stateDir, "docker-client") };
}

/**
 * The infrastructure images, pushed to the harness registry under the bench's own names, so
 * that the spec's `docker compose pull` pulls every service of the project, as on a real host.
 */
async function pushInfraImages(h: Harness): Promise<{ postgres: string; redis: string }> {
  const env = dockerClientEnv(h);
  const out = { postgres: "", redis: "" };
  for (const [name, local] of [
    ["postgres", h.images.postgres],
    ["redis", h.images.redis],
  ] as const) {
    const ref = `${h.registry.address}/clicky-bench/${name}:${local.split(":")[1] ?? "latest"}`;
    await must(`docker tag ${ref}`, runLocal("docker", ["tag", local, ref], { env }));
    await must(
      `docker push ${ref}`,
      runLocal("docker", ["push", ref], { env, timeoutMs: 10 * 60_000 }),
    );
    out[name] = ref;
  }
  return out;
}

/**
 * v2 with an extra layer of `mb` MB from /dev/urandom (incompressible: the pull moves every
 * byte), pushed to the harness registry as `v2-plus<mb>mb` and removed from this engine.
 */
async function buildLargerImage(h: Harness, mb: number): Promise<BackendImage> {
  const env = dockerClientEnv(h);
  const v2 = harnessImage(h, "v2");
  const tag = `v2-plus${mb}mb`;
  const ref = `${h.images.backend.repository}:${tag}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-image-"));
  try {
    writeFileSync(
      path.join(dir, "Dockerfile"),
      `FROM ${h.images.backend.tags.v2?.localBuild ?? v2.pinned}\nUSER root\nRUN head -c ${mb}M /dev/urandom > /opt/bench-incompressible && chmod 444 /opt/bench-incompressible\nUSER app\n`,
    );
    await must(
      `docker build ${tag}`,
      runLocal("docker", ["build", "--quiet", "-t", ref, dir], { env, timeoutMs: 20 * 60_000 }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const pushed = await must(
    `docker push ${ref}`,
    runLocal("docker", ["push", ref], { env, timeoutMs: 20 * 60_000 }),
  );
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1];
  if (!digest) throw new Error(`docker push ${ref} printed no digest:\n${pushed}`);
  const image = {
    tag,
    digest,
    pinned: `${h.images.backend.repository}@${digest}`,
    imageMb: mb,
  };
  await removeImage(image);
  return image;
}

/** Removes an image from the host's engine (every tag and digest of it), so the next pull is real. */
async function removeImage(image: BackendImage): Promise<void> {
  const refs = [`${image.pinned}`, image.pinned.replace(/@sha256:.*$/, `:${image.tag}`)];
  const id = (
    await runLocal("docker", ["image", "inspect", "-f", "{{.Id}}", refs[0] ?? ""])
  ).stdout.trim();
  const tagged = (
    await runLocal("docker", ["image", "inspect", "-f", "{{.Id}}", refs[1] ?? ""])
  ).stdout.trim();
  for (const target of new Set([id, tagged].filter(Boolean))) {
    await runLocal("docker", ["image", "rm", "-f", target]);
  }
  for (const ref of refs) {
    if ((await runLocal("docker", ["image", "inspect", ref ?? ""])).code === 0) {
      say(
        `  warning: ${ref} is still on the host (a container uses it); its pull will not be real`,
      );
    }
  }
}

/** The floor on our project, which serves v1: pull, start until healthy, switch. */
async function measureFloor(
  b: Bench,
  image: BackendImage,
  run: number,
  databaseGib: number,
): Promise<Floor> {
  if (image.imageMb > 0) await removeImage(image);
  // Under the same load as the deploys, so that every ratio compares like with like.
  const base = `http://127.0.0.1:${b.oursPort}`;
  const load = startLoad({
    url: `${base}/health`,
    ratePerSecond: b.options.ratePerSecond,
    durationMs: 10 * 60_000,
    maxInFlight: 1024,
    keepAlive: LOAD_KEEP_ALIVE,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  const writer = startWriter({
    url: `${base}/items`,
    ratePerSecond: b.options.writesPerSecond,
    prefix: `bench-floor-${run}-${Date.now().toString(36)}`,
    durationMs: 10 * 60_000,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  await sleep(PRE_ROLL_MS);
  const out = await must(
    "the floor",
    runOverSsh(
      b.h,
      floorScript({
        appDir: OURS_DIR,
        project: OURS_PROJECT,
        proxyPort: b.oursPort,
        appPort: APP_PORT,
        image: image.pinned,
        registry: { address: b.h.registry.address, user: b.h.registry.user },
      }),
      { stdin: b.h.registry.password, timeoutMs: 10 * 60_000 },
    ),
  );
  await Promise.all([load.stop(), writer.stop()]);
  const parts = parseFloorOutput(out);
  say(
    `  floor: pull ${parts.pullSeconds.toFixed(2)} s + healthy ${parts.healthySeconds.toFixed(2)} s + switch ${parts.switchSeconds.toFixed(2)} s = ${parts.totalSeconds.toFixed(2)} s`,
  );
  return { run, databaseGib, imageMb: image.imageMb, ...parts };
}

const BASELINE_MILESTONES = [
  [/^bench-mark backup /, "Backup done"],
  [/^bench-mark pull /, "Pulled"],
  [/^bench-mark up /, "Up -d done"],
  [/^bench-mark sleep /, "Slept 10 s"],
] as const;

const OUR_MILESTONES = [
  [/backup: database saved/, "Backup done"],
  [/migrate: /, "Migrate"],
  [/health: backend-\w+ is healthy/, "Healthy"],
  [/switch: the proxy sends traffic/, "Switched"],
  [/watch: backend-\w+ stayed up/, "Watched"],
  [/drain: stopped/, "Old stopped"],
] as const;

/**
 * What every measured deploy shares: the scenario's identity and the bench's reads and writes,
 * sent to that procedure's port and checked in its project's PostgreSQL.
 */
function loadOf(
  b: Bench,
  scenario: ScenarioId,
  run: number,
  databaseGib: number,
  imageMb: number,
  port: number,
  project: string,
): Pick<
  LoadedDeploy,
  | "scenario"
  | "run"
  | "databaseGib"
  | "imageMb"
  | "port"
  | "ratePerSecond"
  | "writesPerSecond"
  | "postgres"
> {
  return {
    scenario,
    run,
    databaseGib,
    imageMb,
    port,
    ratePerSecond: b.options.ratePerSecond,
    writesPerSecond: b.options.writesPerSecond,
    postgres: () => postgresOf(project),
  };
}

/** One run of the spec's procedure (or its fair variant) from v1 to `image`, then back to v1. */
async function measureBaseline(
  b: Bench,
  check: BaselineHealthCheck,
  image: BackendImage,
  run: number,
  databaseGib: number,
): Promise<Measurement> {
  const { h, baseline } = b;
  const scenario = check === "sleep" ? "baseline" : "baselineNoSleep";
  if (image.imageMb > 0) await removeImage(image);
  await must("baseline to v2", runOverSsh(h, baselineSetVersion(baseline, image.tag)));
  say(`run ${run}, ${databaseGib} GiB, ${image.tag}: ${scenarioTitle(scenario)}`);
  const { measurement, output } = await underLoad({
    ...loadOf(b, scenario, run, databaseGib, image.imageMb, baseline.port, BASE_PROJECT),
    deploy: (onOutput) =>
      runOverSsh(h, baselineProcedure(baseline, image.tag, check), {
        timeoutMs: 10 * 60_000,
        onOutput,
      }),
    expectExit: (code) => code === 0,
    milestones: BASELINE_MILESTONES,
    steps: baselineSteps,
  });
  const steps = baselineSteps(output.stdout);
  const dump = /^bench-backup (\S+)$/m.exec(output.stdout)?.[1];
  const m: Measurement = {
    ...measurement,
    backupSeconds: steps.backup ?? null,
    backupBytes: dump ? await fileSize(h, `${BASE_DIR}/${dump}`) : null,
  };
  say(`  ${runLine(m)}`);
  await baselineBackToV1(b);
  return m;
}

/** One deploy of ours under the load. */
async function measureOurs(
  b: Bench,
  scenario: "deploy" | "failedHealth" | "rollback",
  image: BackendImage,
  run: number,
  databaseGib: number,
): Promise<Measurement> {
  const host = await renderOurs(b, image, scenario === "rollback" ? { migrate: false } : {});
  if (image.imageMb > 0) await removeImage(image);
  say(`run ${run}, ${databaseGib} GiB, ${image.tag}: ${scenarioTitle(scenario)}`);
  const { measurement, output } = await underLoad({
    ...loadOf(b, scenario, run, databaseGib, image.imageMb, b.oursPort, OURS_PROJECT),
    deploy: (onOutput) => runOurs(b, host, onOutput),
    expectExit: (code) => code === (scenario === "failedHealth" ? 1 : 0),
    milestones: OUR_MILESTONES,
    steps: scriptSteps,
  });
  const saved = /database saved to (\S+) \(\d+ KiB in ([\d.]+) s/.exec(output.stdout);
  const m: Measurement = {
    ...measurement,
    backupSeconds: saved?.[2] ? Number(saved[2]) : null,
    backupBytes: saved?.[1] ? await dumpSize(b.h, saved[1]) : null,
  };
  say(`  ${runLine(m)}`);
  if (!m.expectedExit) {
    say(output.stdout.split("\n").slice(-15).join("\n"));
    say(output.stderr.split("\n").slice(-15).join("\n"));
  }
  return m;
}

/** Our project back on v1 at schema 001 (a rollback and the downgrade runbook; not measured). */
async function oursBackToV1(b: Bench, fromV2: boolean): Promise<void> {
  if (fromV2) {
    const back = await runOurs(b, await renderOurs(b, harnessImage(b.h, "v1"), { migrate: false }));
    if (back.code !== 0)
      throw new Error(`our rollback to v1 failed:\n${back.stdout}\n${back.stderr}`);
  }
  const ctx = {
    appDir: OURS_DIR,
    project: OURS_PROJECT,
    database: { name: "clicky_db", user: "clicky", urlScheme: "postgresql+asyncpg" },
    compose: b.h.docker.composeV2 ? "docker compose" : "docker-compose",
  };
  await must(
    "downgrade runbook",
    runOverSsh(b.h, `set -euo pipefail\n${downgradeCommands(ctx).join("\n")}`),
  );
}

/** One deploy of the peer under the load. */
async function measurePeer(
  b: Bench,
  { peerDeployCommand }: PeerModule,
  peer: PeerProject,
  scenario: "peer" | "peerFailed",
  version: string,
  run: number,
  databaseGib: number,
): Promise<Measurement> {
  say(`run ${run}, ${databaseGib} GiB, ${version}: ${scenarioTitle(scenario)}`);
  const { measurement, output } = await underLoad({
    ...loadOf(b, scenario, run, databaseGib, 0, peer.port, peer.project),
    deploy: (onOutput) =>
      runOverSsh(b.h, peerDeployCommand(peer, version), { timeoutMs: 10 * 60_000, onOutput }),
    expectExit: (code) => (scenario === "peer" ? code === 0 : code !== 0),
    milestones: [],
    steps: peerModule.peerSteps,
  });
  say(`  ${runLine(measurement)}`);
  if (!measurement.expectedExit) {
    say(output.stdout.split("\n").slice(-15).join("\n"));
    say(output.stderr.split("\n").slice(-15).join("\n"));
  }
  return measurement;
}

/** `du -sb DIR | cut -f 1` and a count of files, one a line, as the record keeps them. */
function sizeAndCount(stdout: string): { bytes: number; dumps: number } {
  const [bytes, dumps] = stdout.trim().split("\n");
  return { bytes: Number(bytes ?? 0), dumps: Number(dumps ?? 0) };
}

async function fileSize(h: Harness, file: string): Promise<number> {
  return Number((await must(`stat ${file}`, runOverSsh(h, `stat -c %s ${file}`))).trim());
}

/** The command line's options; prints the help, or what is wrong with it, and exits. */
function commandLine(): BenchOptions {
  try {
    const parsed = parseBenchArgs(process.argv.slice(2));
    if (parsed.help) {
      console.log(BENCH_USAGE);
      process.exit(0);
    }
    return parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`bench:deploy: ${err.message}\nRun with --help for the options.`);
    process.exit(2);
  }
}

async function main(options: BenchOptions): Promise<void> {
  const availability = harnessAvailability();
  if (!availability.ok) {
    console.error(`bench:deploy cannot run here: ${availability.reason}`);
    process.exit(2);
  }
  const load1 = os.loadavg()[0] ?? 0;
  const machine: BenchRecord["machine"] = {
    cpuModel: os.cpus()[0]?.model.trim() ?? "unknown CPU",
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    kernel: `${os.type()} ${os.release()}`,
    loadAverage: load1,
    node: process.version,
  };
  say(
    `load average ${load1.toFixed(2)} on ${os.cpus().length} cores${load1 > 0.5 ? " (not quiet: results will be noisier)" : ""}`,
  );
  const h = await ensureHarness({ progress: process.stderr });
  const started = new Date();
  say("pushing the infrastructure images to the registry for the baseline's `compose pull`");
  const infra = await pushInfraImages(h);
  const b: Bench = {
    h,
    options,
    oursPort: await freePort(),
    baseline: {
      dir: BASE_DIR,
      project: BASE_PROJECT,
      port: await freePort(),
      images: { backend: h.images.backend.repository, ...infra },
    },
    peer: options.peer
      ? {
          dir: PEER_DIR,
          project: PEER_PROJECT,
          port: await freePort(),
          images: {
            backend: h.images.backend.repository,
            ...infra,
            proxy: h.images.proxy,
          },
          healthTimeoutSeconds: HEALTH_TIMEOUT_SECONDS,
        }
      : null,
    peerModule: options.peer ? peerModule : null,
  };
  const larger: BackendImage[] = [];
  for (const mb of options.imageMb.filter((mb) => mb > 0)) {
    say(`building v2 with ${mb} MB more (incompressible) and pushing it to the registry`);
    larger.push(await buildLargerImage(h, mb));
  }

  say(`setting up the baseline project ${BASE_PROJECT} (port ${b.baseline.port})`);
  await setUpBaseline(b);
  say(`setting up our project ${OURS_PROJECT} (port ${b.oursPort}): first deploy of v1`);
  await cleanupProject(h, OURS_DIR, OURS_PROJECT);
  const first = await runOurs(b, await renderOurs(b, harnessImage(h, "v1")));
  if (first.code !== 0)
    throw new Error(`our first deploy failed:\n${first.stdout}\n${first.stderr}`);
  if (b.peer && b.peerModule) {
    say(`setting up the peer ${PEER_PROJECT} (port ${b.peer.port}): first up of v1`);
    await b.peerModule.setUpPeer(h, b.peer, "v1");
  }

  // The host probe on a deployed host, before the load and the big databases (it reads files
  // and `docker ps`, neither of which the database's size changes).
  say(`the host probe: ${PROBE_RUNS} previews without it and with it, interleaved`);
  const probe = await measureProbe(
    h,
    oursDeploySection(b, harnessImage(h, "v1")).deploy,
    e2eSecrets(h),
    PROBE_RUNS,
  );
  say(
    `preview median ${median(probe.previewWithoutProbeMs).toFixed(0)} ms without the probe, ${median(probe.previewWithProbeMs).toFixed(0)} ms with it; SSH floor ${median(probe.sshFloorMs).toFixed(0)} ms`,
  );

  const oursPostgres = await mustPostgres(OURS_PROJECT);
  const postgresVersion = await psql(oursPostgres, "SHOW server_version");
  const [proxyName] = await composeContainers(OURS_PROJECT, "proxy");
  const nginxVersion = (await runLocal("docker", ["exec", proxyName ?? "", "nginx", "-v"])).stderr
    .trim()
    .replace(/^nginx version: /, "");

  // The plain v2 on the host before its floor ("already present"), as a release's image is
  // once a pipeline pulled it; the larger images are removed before each of their deploys.
  await must(
    "docker pull v2",
    runLocal("docker", ["pull", "--quiet", harnessImage(h, "v2").pinned], {
      env: dockerClientEnv(h),
      timeoutMs: 10 * 60_000,
    }),
  );
  const sizes: SizeStep[] = [];
  const floors: Floor[] = [];
  const measurements: Measurement[] = [];
  const v1 = harnessImage(h, "v1");
  const v2 = harnessImage(h, "v2");
  const v3 = harnessImage(h, "v3");
  for (const [sizeIndex, databaseGib] of options.databaseGib.entries()) {
    say(`growing every database to at least ${databaseGib} GiB`);
    const peerPostgres = b.peer ? await postgresOf(b.peer.project) : null;
    if (b.peer && !peerPostgres) say("  the peer has no postgres container to grow");
    sizes.push({
      databaseGib,
      bytes: {
        ours: await fillDatabase("ours", oursPostgres, databaseGib, say),
        baseline: await fillDatabase(
          "baseline",
          await mustPostgres(BASE_PROJECT),
          databaseGib,
          say,
        ),
        peer: peerPostgres ? await fillDatabase("peer", peerPostgres, databaseGib, say) : null,
      },
    });
    const images = sizeIndex === 0 ? [v2, ...larger] : [v2];
    for (const image of images) {
      for (let run = 1; run <= options.runs; run++) {
        say(`run ${run}, ${databaseGib} GiB, ${image.tag}: the floor`);
        floors.push(await measureFloor(b, image, run, databaseGib));
        measurements.push(await measureBaseline(b, "sleep", image, run, databaseGib));
        measurements.push(await measureBaseline(b, "poll", image, run, databaseGib));
        measurements.push(await measureOurs(b, "deploy", image, run, databaseGib));
        if (image.imageMb > 0) {
          await oursBackToV1(b, true);
          continue;
        }
        measurements.push(await measureOurs(b, "failedHealth", v3, run, databaseGib));
        measurements.push(await measureOurs(b, "rollback", v1, run, databaseGib));
        await oursBackToV1(b, false);
        if (b.peer && b.peerModule) {
          const peer = b.peer;
          const { peerDeployCommand } = b.peerModule;
          measurements.push(
            await measurePeer(b, b.peerModule, peer, "peer", "v2", run, databaseGib),
          );
          measurements.push(
            await measurePeer(b, b.peerModule, peer, "peerFailed", "v3", run, databaseGib),
          );
          say(`run ${run}: the peer back to v1 (not measured)`);
          await must(
            "the peer back to v1",
            runOverSsh(h, peerDeployCommand(peer, "v1"), { timeoutMs: 10 * 60_000 }),
          );
        }
      }
    }
  }

  const baselineDir = await must(
    "baseline dir size",
    runOverSsh(
      h,
      `du -sb ${BASE_DIR} | cut -f 1; ls -1 ${BASE_DIR} | grep -c '^backup_.*\\.sql$' || true`,
    ),
  );
  const oursBackups = await must(
    "our backups",
    runOverSsh(
      h,
      `du -sb ${OURS_DIR}/backups | cut -f 1; ls -1 ${OURS_DIR}/backups | grep -c '\\.dump$' || true`,
    ),
  );
  // What nginx logged about Docker's DNS over the whole bench (its error log is the container's).
  const proxyLog = await runLocal("docker", ["logs", proxyName ?? ""]);
  const dnsTimeouts = (proxyLog.stdout + proxyLog.stderr)
    .split("\n")
    .filter((line) => /could not be resolved \(110: Operation timed out\)/.test(line)).length;

  const measured = {
    kind: RECORD_KIND,
    version: RECORD_VERSION,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    settings: {
      runs: options.runs,
      ratePerSecond: options.ratePerSecond,
      writesPerSecond: options.writesPerSecond,
      databaseGib: [...options.databaseGib],
      imageMb: [...options.imageMb],
      preRollMs: PRE_ROLL_MS,
      postRollMs: POST_ROLL_MS,
      keepAlive: LOAD_KEEP_ALIVE,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      healthTimeoutSeconds: HEALTH_TIMEOUT_SECONDS,
      peer: b.peer !== null,
    },
    machine,
    software: {
      docker: h.docker.serverVersion,
      composeV1: h.docker.composeV1,
      composeV2: h.docker.composeV2,
      composeCommand: E2E_COMPOSE_COMMAND,
      postgres: postgresVersion.trim(),
      postgresImage: h.images.postgres,
      nginx: nginxVersion,
      proxyImage: h.images.proxy,
    },
    sizes,
    backupsLeft: { baseline: sizeAndCount(baselineDir), ours: sizeAndCount(oursBackups) },
    dnsTimeouts,
    floors,
    measurements,
    probe,
  } satisfies BenchRecord;
  const recordFile = path.join(REPO_ROOT, "bench", "results", recordFileName(started));
  mkdirSync(path.dirname(recordFile), { recursive: true });
  writeFileSync(recordFile, serializeRecord(measured));
  say(`wrote ${recordName(recordFile)}`);
  // Written first, checked second: a value the schema refuses (a NaN, say) fails the bench
  // naming the field, and the run's measurements are still on disk.
  const record = parseRecord(measured, recordName(recordFile));
  console.log(`\n${floorTable(record)}\n\n${costTable(record)}\n`);
  for (const t of targets(record)) console.log(targetLine(t));
  if (options.writeDocs) {
    const written = await writeReport(record, recordName(recordFile), path.join(REPO_ROOT, "docs"));
    say(`wrote ${written.map((file) => path.relative(REPO_ROOT, file)).join(", ")}`);
  }
  await cleanupProject(h, OURS_DIR, OURS_PROJECT);
  await cleanupProject(h, BASE_DIR, BASE_PROJECT);
  if (b.peer && b.peerModule) await b.peerModule.cleanupPeer(h, b.peer);
  for (const image of larger) await removeImage(image);
  say(`done in ${((Date.now() - started.getTime()) / 60_000).toFixed(1)} min`);
}

main(commandLine()).catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
