// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected strings are bash, where ${...} is bash syntax
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { DeployConfig } from "../../src/config/deploy";
import { buildPrepareScript } from "../../src/deploy/prepare";
import {
  buildDeployScript,
  DEPLOY_STEPS,
  imageReference,
  LOCK_BUSY_EXIT,
  proxyUrl,
  REMOTE_PARTS,
  remotePart,
  USAGE_EXIT,
} from "../../src/deploy/script";
import { parseDeploy } from "../support/deploy-config";

function config(patch: Record<string, unknown> = {}): DeployConfig {
  return parseDeploy({
    hosts: [{ name: "web-1", host: "web-1.example.org" }],
    image: { repository: "ghcr.io/o/r/backend", tag: "v1.2.3" },
    ...patch,
  });
}

function script(patch: Record<string, unknown> = {}, stack = "staging"): string {
  const deploy = config(patch);
  const host = deploy.hosts[0];
  assert.ok(host);
  return buildDeployScript({
    stack,
    host,
    deploy,
    release: { id: "0123456789ab", files: new Map([["docker-compose.yml", "services: {}\n"]]) },
  });
}

function settingLines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => /^[A-Z_]+=/.test(line));
}

describe("the deploy script's settings", () => {
  test("are the config's values, one readonly variable each", () => {
    const lines = settingLines(script());
    for (const expected of [
      "STACK=staging",
      "HOST_NAME=web-1",
      "APP_DIR=/opt/clicky-foundation",
      "PROJECT=clicky",
      "RELEASE=0123456789ab",
      "COMPOSE_PREFERENCE=auto",
      "MIGRATION_COMMAND=(alembic upgrade head)",
      "DB_NAME=clicky_db",
      "DB_USER=clicky",
      "BACKUP_KEEP=10",
      "BACKUP_MIN_FREE_MIB=1024",
      "BACKUP_COMPRESSION=1",
      "BACKUP_CPU_SHARES=128",
      "BACKUP_TIMEOUT=3600",
      "VERIFY_PATHS=(/health /api/v1/health)",
      "PROXY_URL=http://127.0.0.1:80",
      "HEALTH_TIMEOUT=180",
      "HEALTH_RETRIES=5",
      "WATCH_SECONDS=5",
      "DRAIN_SECONDS=10",
      "STOP_TIMEOUT=30",
      "POSTGRES_IMAGE=postgres:16",
      "REDIS_IMAGE=redis:7-alpine",
      "PROXY_IMAGE=nginx:1.27-alpine",
    ]) {
      assert.ok(lines.includes(expected), `missing ${expected}`);
    }
    assert.match(script(), /^readonly STACK HOST_NAME APP_DIR .* MASKED_KEYS APP_SECRETS$/m);
  });

  test("the health probe the script runs itself is the container's health check", () => {
    assert.ok(
      settingLines(script({ app: { port: 9000, healthPath: "/healthz" } })).includes(
        `HEALTH_PROBE=(python3 -c 'import sys, urllib.request; urllib.request.urlopen('\\''http://127.0.0.1:9000/healthz'\\'', timeout=3); sys.exit(0)')`,
      ),
    );
  });

  test("hold no image, tag, registry or migrate flag: the same file serves every run of a config", () => {
    const digest = `sha256:${"a".repeat(64)}`;
    const base = script();
    for (const patch of [
      { image: { repository: "ghcr.io/o/r/backend", tag: "v2", digest } },
      { image: { repository: "registry.example.org/other/backend", tag: "v9" } },
      { registry: "registry.example.org:5000" },
      { migrate: false },
    ]) {
      assert.equal(script(patch), base, JSON.stringify(patch));
    }
    assert.doesNotMatch(base, /v1\.2\.3|ghcr\.io/);
  });

  test("a migration command with spaces, quotes and non-ASCII text is quoted word by word", () => {
    const lines = settingLines(
      script({ migrationCommand: ["python", "-c", "print('héllo wörld')", "$HOME"] }),
    );
    assert.ok(
      lines.includes(`MIGRATION_COMMAND=(python -c 'print('\\''héllo wörld'\\'')' '$HOME')`),
      lines.join("\n"),
    );
  });

  test("compose v1 or v2 can be forced", () => {
    assert.ok(settingLines(script({ compose: "v1" })).includes("COMPOSE_PREFERENCE=v1"));
    assert.ok(settingLines(script({ compose: "v2" })).includes("COMPOSE_PREFERENCE=v2"));
  });

  test("the proxy is checked where it listens", () => {
    assert.equal(proxyUrl({ bindAddress: "0.0.0.0", port: 80 }), "http://127.0.0.1:80");
    assert.equal(proxyUrl({ bindAddress: "127.0.0.1", port: 18080 }), "http://127.0.0.1:18080");
    assert.equal(proxyUrl({ bindAddress: "::", port: 80 }), "http://[::1]:80");
    assert.equal(proxyUrl({ bindAddress: "::1", port: 80 }), "http://[::1]:80");
  });

  test("imageReference prefers the digest", () => {
    assert.equal(imageReference({ repository: "r/x", tag: "v1" }), "r/x:v1");
    assert.equal(
      imageReference({ repository: "r/x", tag: "v1", digest: `sha256:${"b".repeat(64)}` }),
      `r/x@sha256:${"b".repeat(64)}`,
    );
  });
});

describe("the deploy script's flow", () => {
  const text = script();
  const main = remotePart("main.sh");
  const steps = remotePart("steps.sh");
  const mainBody = main.slice(main.indexOf("main() {"));

  test("names its steps as DEPLOY_STEPS does, and runs them in that order after stdin", () => {
    assert.match(main, new RegExp(`^readonly STEPS=\\(${DEPLOY_STEPS.join(" ")}\\)$`, "m"));
    const calls = mainBody
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => /^(read_stdin|start_early|run_step [a-z_"$]+|for step in .*)$/.test(line));
    assert.deepEqual(calls, [
      "read_stdin",
      "run_step lock",
      "run_step preflight",
      "start_early",
      "run_step proxy_check",
      'for step in "${STEPS[@]:2}"; do',
      'run_step "$step"',
    ]);
    // What start_early ran (the dump) is not run again.
    assert.match(
      mainBody,
      /\[\[ " \$\{EARLY_STEPS\[\*\]\} " != \*" \$step "\* \]\] \|\| continue\n {4}run_step "\$step"/,
    );
    assert.match(steps, /^ {2}run_step backup\n {2}EARLY_STEPS\+=\(backup\)$/m);
    for (const step of [...DEPLOY_STEPS, "proxy_check"]) {
      assert.match(steps, new RegExp(`^step_${step}\\(\\) \\{$`, "m"), `step_${step}`);
    }
  });

  test("stops before the infra step when the same release already serves", () => {
    assert.ok(
      mainBody.indexOf("if already_deployed; then") < mainBody.indexOf("run_step proxy_check"),
    );
    assert.ok(mainBody.indexOf("if already_deployed; then") < mainBody.indexOf("${STEPS[@]:2}"));
  });

  test("takes only the catalog's stdin keys, and needs the three app secrets", () => {
    assert.match(
      text,
      /^ {2}STDIN_KEYS=\(POSTGRES_PASSWORD DATABASE_URL JWT_SECRET_KEY REGISTRY_USERNAME REGISTRY_TOKEN\)$/m,
    );
    assert.match(
      text,
      /^ {2}REQUIRED_STDIN_KEYS=\(POSTGRES_PASSWORD DATABASE_URL JWT_SECRET_KEY\)$/m,
    );
    assert.match(text, /^ {2}APP_SECRETS=\(DATABASE_URL JWT_SECRET_KEY\)$/m);
  });

  test("never exports the secrets to every command, only in the subshell of one compose call", () => {
    const exports = text
      .split("\n")
      .filter((line) => /\bexport\b/.test(line) && !/^\s*#/.test(line));
    assert.deepEqual(
      exports.map((line) => line.trim()),
      [
        "export LC_ALL=C",
        'for key in "${APP_SECRETS[@]}"; do export "$key=${SECRETS[$key]}"; done',
        'export CLICKY_IMAGE_BLUE="$IMAGE" CLICKY_IMAGE_GREEN="$IMAGE"',
      ],
    );
    assert.match(remotePart("helpers.sh"), /with_app_env\(\) \{\n {2}\(\n {4}for key in/);
  });

  test("has no delete-like command for the serving slot before the watch window passed", () => {
    const beforeDrain = steps.slice(0, steps.indexOf("step_drain() {"));
    assert.doesNotMatch(beforeDrain, /remove_slot "\$OLD_SLOT"/);
    assert.doesNotMatch(beforeDrain, /stop .*OLD_CID/);
  });

  test("commits to the new version (no more undo) only in the watch step", () => {
    const lines = steps.split("\n");
    const watch = lines.indexOf("step_watch() {");
    const drain = lines.indexOf(
      "# --- drain: the old slot stops standing by (the routing file names the new one only), then it",
    );
    assert.ok(watch > 0 && drain > watch);
    const commits = lines
      .map((line, i) => ({ line: line.trim(), i }))
      .filter(({ line }) => line === "commit");
    assert.ok(commits.length > 0);
    for (const { i } of commits) assert.ok(i > watch && i < drain, `commit at line ${i + 1}`);
    assert.equal(text.match(/COMMITTED=1/g)?.length, 1, "only commit() sets COMMITTED");
  });

  test("registers each undo right before the change it undoes", () => {
    for (const [undo, change] of [
      ["undo_backup", 'docker run --rm --name "$BACKUP_CONTAINER"'],
      ["undo_migrate", 'with_app_env compose run --rm --no-deps -T --name "$MIGRATION_CONTAINER"'],
      ["undo_start", 'with_app_env compose up -d --no-deps "backend-$NEW_SLOT"'],
      ["undo_switch", 'write_file "$PROXY_DIR/$name" 644'],
      ["undo_switch", "set_routing"],
    ] as const) {
      const at = steps.indexOf(`on_failure ${undo}`);
      assert.ok(at > 0, undo);
      assert.ok(at < steps.indexOf(change, at), `${undo} before ${change}`);
      assert.match(steps, new RegExp(`^${undo}\\(\\) \\{$`, "m"));
    }
  });

  test("checks the release's nginx site before anything changes, and only when there is something to do", () => {
    assert.ok(mainBody.indexOf("if already_deployed; then") < mainBody.indexOf("start_early"));
    assert.ok(mainBody.indexOf("start_early") < mainBody.indexOf("run_step proxy_check"));
    assert.ok(mainBody.indexOf("run_step proxy_check") < mainBody.indexOf("${STEPS[@]:2}"));
    // A site nginx rejects discards the dump that start_early began, even a finished one.
    assert.match(
      steps,
      /-g "\$PROXY_GLOBALS" >"\$TMP_DIR\/nginx-check\.log" 2>&1; then\n {4}BACKUP_DISCARD=1\n/,
    );
    assert.match(steps, /^ {2}if \(\(!BACKUP_DISCARD\)\) && \[\[ -n \$BACKUP_PID \]\]/m);
  });

  test("pulls in the background while the backup runs, and waits for the pull before migrating", () => {
    assert.ok(mainBody.indexOf("start_pull") < mainBody.indexOf("start_early"));
    assert.ok(DEPLOY_STEPS.indexOf("backup") < DEPLOY_STEPS.indexOf("pull"));
    assert.ok(DEPLOY_STEPS.indexOf("pull") < DEPLOY_STEPS.indexOf("migrate"));
    assert.match(
      steps,
      /^start_pull\(\) \{\n {2}\(\n {4}exec 9>&-\n {4}pull_image\n {2}\) >"\$TMP_DIR\/pull\.out" 2>&1 &$/m,
    );
  });

  test("is the prelude, the settings, then every part, each as checked in", () => {
    let at = 0;
    for (const part of REMOTE_PARTS) {
      const body = remotePart(part).replace(/^# shellcheck shell=bash.*\n/, "");
      const found = text.indexOf(body, at);
      assert.ok(found >= at, `${part} appears whole, in order`);
      at = found + body.length;
    }
    assert.ok(text.indexOf('if [ -z "${BASH_VERSION:-}" ]') < text.indexOf("STACK=staging"));
  });
});

/** The run command's arguments for the test config (`buildRunCommand` writes them so). */
const ARGS = ["image=ghcr.io/o/r/backend:v1.2.3", "tag=v1.2.3", "registry=ghcr.io", "migrate=1"];

/** Writes a rendered script into its release directory, as the copy does, and returns its path. */
function installScript(appDir: string, text: string): string {
  const dir = join(appDir, "releases", "0123456789ab");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "deploy.sh");
  writeFileSync(file, text);
  return file;
}

/** Runs an installed script as the run command does: `bash <file> <arguments>`, stdin piped. */
function runScript(
  file: string,
  stdin: string,
  opts: { shell?: string; args?: readonly string[]; env?: NodeJS.ProcessEnv } = {},
) {
  return spawnSync(opts.shell ?? "bash", [file, ...(opts.args ?? ARGS)], {
    input: stdin,
    encoding: "utf8",
    timeout: 20_000,
    ...(opts.env ? { env: opts.env } : {}),
  });
}

/** The newest run's log files in `<appDir>/logs`, by extension. */
function newestRunLogs(appDir: string): { out: string; err: string; log: string } {
  const dir = join(appDir, "logs");
  const base = readdirSync(dir)
    .filter((f) => f.endsWith(".out"))
    .sort()
    .at(-1)
    ?.replace(/\.out$/, "");
  assert.ok(base, `no run log in ${dir}`);
  const read = (ext: string) => readFileSync(join(dir, `${base}.${ext}`), "utf8");
  return { out: read("out"), err: read("err"), log: read("log") };
}

describe("the deploy script, run for real up to its lock", () => {
  const root = mkdtempSync(join(tmpdir(), "clicky-deploy-"));
  after(() => rmSync(root, { recursive: true, force: true }));
  const appDir = join(root, "app");
  const file = installScript(appDir, script({ appDir }));
  mkdirSync(join(appDir, "state"), { recursive: true });
  const secrets = "POSTGRES_PASSWORD=pw\nDATABASE_URL=postgresql://x\nJWT_SECRET_KEY=jwt-value\n";

  test("refuses an unknown stdin key, naming the key and never the value", () => {
    const r = runScript(file, `${secrets}EXTRA_KEY=very-secret-value\n`);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /deploy FAILED on web-1 \(stack staging\) at step stdin: stdin: unexpected key EXTRA_KEY/,
    );
    assert.doesNotMatch(r.stdout + r.stderr, /very-secret-value|jwt-value/);
  });

  test("names a missing secret", () => {
    const r = runScript(file, "POSTGRES_PASSWORD=pw\nDATABASE_URL=x\n");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /at step stdin: stdin: JWT_SECRET_KEY is missing/);
  });

  test("refuses to start without its arguments, or with one it does not know, changing nothing", () => {
    const missing = runScript(file, secrets, { args: ARGS.slice(0, 3) });
    assert.equal(missing.status, USAGE_EXIT);
    assert.match(
      missing.stderr,
      /^deploy: usage: bash .*deploy\.sh image=<image> tag=<tag> registry=<registry> migrate=0\|1, with the secrets as dotenv lines on stdin; nothing was changed\n$/,
    );
    const unknown = runScript(file, secrets, { args: [...ARGS, "--force"] });
    assert.equal(unknown.status, USAGE_EXIT);
    assert.match(unknown.stderr, /^deploy: unexpected argument --force; nothing was changed\n$/);
    const badFlag = runScript(file, secrets, { args: [...ARGS.slice(0, 3), "migrate=yes"] });
    assert.equal(badFlag.status, USAGE_EXIT);
  });

  test("fails fast when another deploy holds the lock, saying who and since when", () => {
    writeFileSync(
      join(appDir, "state", "deploy.lock.owner"),
      "deploy of ghcr.io/o/r/backend:v9 (stack staging) by deploy from 10.0.0.9, pid 4242, since 2026-01-02T03:04:05Z\n",
    );
    // A shell that holds the lock runs the deploy script, as a second deploy would meet it.
    const held = spawnSync(
      "bash",
      [
        "-c",
        `exec 9>>"$1"; flock -n 9 || exit 99; bash "$2" "\${@:4}" <<<"$3"`,
        "holder",
        join(appDir, "state", "deploy.lock"),
        file,
        secrets,
        ...ARGS,
      ],
      { encoding: "utf8", timeout: 20_000 },
    );
    assert.equal(held.status, LOCK_BUSY_EXIT, held.stderr);
    assert.match(
      held.stderr,
      /at step lock: another deploy holds .*state\/deploy\.lock: deploy of ghcr\.io\/o\/r\/backend:v9 \(stack staging\) by deploy from 10\.0\.0\.9, pid 4242, since 2026-01-02T03:04:05Z; this one changed nothing/,
    );
    assert.doesNotMatch(held.stderr, /backup taken/);
    assert.equal(
      readFileSync(join(appDir, "state", "deploy.lock.owner"), "utf8").includes("pid 4242"),
      true,
      "the holder's record is left alone",
    );
  });

  test("runs as a worker detached from its caller; <appDir>/logs keeps its log, progress and report", () => {
    const r = runScript(file, `${secrets}EXTRA_KEY=x\n`);
    assert.equal(r.status, 1);
    const logs = newestRunLogs(appDir);
    assert.equal(logs.err, r.stderr, "stderr is the report the worker wrote");
    assert.equal(logs.out, r.stdout, "stdout is the progress the worker wrote");
    assert.match(logs.log, /at step stdin: stdin: unexpected key EXTRA_KEY/);
    const modes = spawnSync("stat", ["-c", "%a", join(appDir, "logs")], { encoding: "utf8" });
    assert.equal(modes.stdout, "700\n");
  });

  test("goes on to its end when its caller dies, and then releases the lock", async () => {
    // A docker that takes 2 s to answer, so the deploy is still in preflight when its caller
    // (the command SSH ran) is killed; the worker must finish on its own and free the lock.
    const bin = join(root, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "docker"), "#!/bin/sh\nsleep 2\nexit 1\n", { mode: 0o755 });
    rmSync(join(appDir, "state", "deploy.lock.owner"), { force: true });
    const caller = spawn("bash", [file, ...ARGS], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
      stdio: ["pipe", "pipe", "pipe"],
    });
    caller.stdin.end(secrets);
    const owner = join(appDir, "state", "deploy.lock.owner");
    for (let i = 0; i < 100 && !existsSync(owner); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(owner), "the worker took the lock");
    caller.kill("SIGKILL");
    caller.stdout.destroy();
    caller.stderr.destroy();
    for (let i = 0; i < 100 && existsSync(owner); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!existsSync(owner), "the worker finished and removed its lock record");
    const free = spawnSync("flock", ["-n", join(appDir, "state", "deploy.lock"), "true"]);
    assert.equal(free.status, 0, "the lock is free");
    assert.match(newestRunLogs(appDir).err, /at step preflight: cannot reach the Docker engine/);
  });

  test("stops with a clear message under a shell that is not bash", () => {
    const r = runScript(file, secrets, { shell: "sh" });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^deploy: this script needs bash; run it as: bash <this file> /);
  });
});

describe("the prepare script, run for real", () => {
  test("lays out the app directory with private dirs for secrets, state and backups", () => {
    const root = mkdtempSync(join(tmpdir(), "clicky-prepare-"));
    try {
      const appDir = join(root, "srv", "app");
      const r = spawnSync("sh", ["-c", buildPrepareScript(appDir, `${appDir}/releases/abc123`)], {
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `prepare: ${appDir}/releases/abc123 ready\n`);
      const modes = spawnSync(
        "stat",
        [
          "-c",
          "%n %a",
          ...["releases", "releases/abc123", "proxy", "backups", "env", "state"].map((d) =>
            join(appDir, d),
          ),
        ],
        { encoding: "utf8" },
      );
      assert.equal(
        modes.stdout.replaceAll(`${appDir}/`, ""),
        "releases 755\nreleases/abc123 755\nproxy 755\nbackups 700\nenv 700\nstate 700\n",
      );
      const again = spawnSync("sh", [
        "-c",
        buildPrepareScript(appDir, `${appDir}/releases/abc123`),
      ]);
      assert.equal(again.status, 0, "idempotent");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

/** shellcheck, or a reason it cannot run here (a failure in CI). */
function shellcheckAvailable(): string | undefined {
  const r = spawnSync("shellcheck", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? undefined : "shellcheck is not installed (apt-get install shellcheck)";
}

describe("shellcheck", () => {
  const missing = shellcheckAvailable();
  if (missing && process.env.CI === "true") {
    test("is installed in CI", () => assert.fail(missing));
    return;
  }
  if (missing) console.log(`# skipping shellcheck tests: ${missing}`);
  const variants: [string, Record<string, unknown>][] = [
    ["defaults", {}],
    [
      "a pinned digest",
      { image: { repository: "ghcr.io/o/r/b", tag: "v1", digest: `sha256:${"c".repeat(64)}` } },
    ],
    ["no migration", { migrate: false }],
    [
      "compose v1 and an odd migration command",
      { compose: "v1", migrationCommand: ["sh", "-c", "echo 'a b' $HOME"] },
    ],
  ];
  for (const [name, patch] of variants) {
    test(`finds nothing in the deploy script (${name})`, { skip: missing }, () => {
      const r = spawnSync("shellcheck", ["--shell=bash", "--severity=style", "-"], {
        input: script(patch),
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    });
  }
  test("finds nothing in the prepare script (POSIX sh)", { skip: missing }, () => {
    const r = spawnSync("shellcheck", ["--shell=sh", "--severity=style", "-"], {
      input: buildPrepareScript("/opt/clicky-foundation", "/opt/clicky-foundation/releases/abc"),
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});
