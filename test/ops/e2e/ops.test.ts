/**
 * The day-two commands (`npm run ops`), end to end: against the harness host, over real SSH
 * with the stack's pinned host key, after real deploys (v1, v2, then v3 whose health gate
 * fails and is undone). Each command's real output is asserted: what `status` says serves and
 * failed, what `audit` lists, what `logs` streams, and the deploy lock held by a live process
 * (release refused), then left behind by a dead one (release clears it).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { runOps } from "../../../src/ops/cli";
import type { LocalRunner } from "../../../src/ops/commands";
import {
  cleanupProject,
  composeContainers,
  e2eSkip,
  ensureHarness,
  freePort,
  type Harness,
  harnessAvailability,
  harnessInstance,
  type LoadResult,
  passwordAccepted as passwordAcceptedIn,
  prepareAndCopy,
  runAsProvider,
  runOverSsh,
  startLoad,
} from "../../harness";
import { e2eDeployConfig, e2eSecrets } from "../../support/e2e-config";
import { REPO_ROOT } from "../../support/program";
import { renderStack, TEST_SECRETS } from "../../support/render";

const availability = harnessAvailability();
const skip = e2eSkip("ops e2e");
const APP_DIR = `/home/deploy/clicky-ops-${harnessInstance()}`;
const PROJECT = `clickyops${harnessInstance()}`;

interface Ran {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

describe("ops commands, end to end", { skip }, () => {
  let h: Harness;
  let port = 0;
  let dir = "";
  let keyFile = "";
  const digests: Record<string, string> = {};

  function deployConfig(tag: string): Record<string, unknown> {
    return { ...e2eDeployConfig(h, port, { tag }), appDir: APP_DIR, composeProject: PROJECT };
  }

  async function deploy(tag: string, secrets: Record<string, string> = {}): Promise<number | null> {
    const rendered = await renderStack({
      deploy: deployConfig(tag),
      secrets: { ...e2eSecrets(h), ...secrets },
    });
    assert.equal(rendered.run.error, undefined, String(rendered.run.error));
    const host = rendered.hosts[0];
    assert.ok(host);
    await prepareAndCopy(h, host);
    const { result } = await runAsProvider(h, host.script, {
      stdin: host.stdin,
      timeoutMs: 5 * 60_000,
    });
    return result.code;
  }

  /** `npm run ops -- <args> --stack staging --dir <dir> --identity <key>`, in this process. */
  async function ops(...args: string[]): Promise<Ran> {
    return opsWith(undefined, ...args);
  }

  /** {@link ops}, with `run` in place of the local `gh` / `pulumi` that rollback starts. */
  async function opsWith(run: LocalRunner | undefined, ...args: string[]): Promise<Ran> {
    const out: string[] = [];
    const err: string[] = [];
    // The options go before `--`: what follows it is exec's command.
    const dash = args.indexOf("--");
    const [mine, command] = dash === -1 ? [args, []] : [args.slice(0, dash), args.slice(dash)];
    const code = await runOps(
      [...mine, "--stack", "staging", "--dir", dir, "--identity", keyFile, ...command],
      { out: (l) => out.push(l), err: (l) => err.push(l) },
      {},
      undefined,
      run,
    );
    return { code, out: out.join("\n"), err: err.join("\n") };
  }

  /** Runs `body` with the stack approval-gated (a reviewer in its environment), then puts the file back. */
  async function withReviewers(body: () => Promise<void>): Promise<void> {
    const path = join(dir, "Pulumi.staging.yaml");
    const original = readFileSync(path, "utf8");
    const file = parse(original) as {
      config: Record<string, { approval: { reviewers: { users: string[] } } }>;
    };
    const env = file.config["clicky-delivery:environment"];
    assert.ok(env);
    env.approval.reviewers.users = ["clicky-release-lead"];
    writeFileSync(path, stringify(file));
    try {
      await body();
    } finally {
      writeFileSync(path, original);
    }
  }

  /** The real command line (`src/ops/cli.ts` in its own process) with this stack's options. */
  function spawnOps(args: readonly string[], command: readonly string[] = []) {
    return spawn(
      process.execPath,
      ["--import", "tsx", "src/ops/cli.ts", ...args].concat(
        ["--stack", "staging", "--dir", dir, "--identity", keyFile],
        command.length ? ["--", ...command] : [],
      ),
      { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "pipe"] },
    );
  }

  before(
    async () => {
      if (!availability.ok)
        throw new Error(`CI=true but e2e cannot run here: ${availability.reason}`);
      h = await ensureHarness();
      port = await freePort();
      await cleanupProject(h, APP_DIR, PROJECT);
      for (const tag of ["v1", "v2", "v3"]) {
        digests[tag] = h.images.backend.tags[tag]?.digest ?? "";
      }
      // The stack file ops reads: the committed staging file with the e2e host's deploy section.
      dir = mkdtempSync(join(tmpdir(), "ops-e2e-"));
      const file = parse(readFileSync(join(REPO_ROOT, "Pulumi.staging.yaml"), "utf8")) as {
        config: Record<string, unknown>;
      };
      file.config["clicky-delivery:deploy"] = deployConfig("v2");
      writeFileSync(join(dir, "Pulumi.staging.yaml"), stringify(file));
      keyFile = join(dir, "deploy_key");
      writeFileSync(keyFile, h.privateKey, { mode: 0o600 });
      assert.equal(await deploy("v1"), 0, "v1 deploys");
      assert.equal(await deploy("v2"), 0, "v2 deploys");
      assert.notEqual(await deploy("v3"), 0, "v3 fails its health gate and is undone");
    },
    { timeout: 40 * 60_000 },
  );

  after(async () => {
    if (h) await cleanupProject(h, APP_DIR, PROJECT);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("status: what serves since when, the rollback target, the failed deploy, the lock, the containers", async () => {
    const r = await ops("status");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^e2e \\(deploy@127\\.0\\.0\\.1:${h.ssh.port}\\)$`, "m"));
    const short = (tag: string) => (digests[tag] ?? "").slice(0, 19);
    assert.match(
      r.out,
      new RegExp(
        `^ {2}serving {5}v2 \\(${short("v2")}\\) since \\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z, slot (blue|green), release \\S+$`,
        "m",
      ),
      r.out,
    );
    assert.match(
      r.out,
      new RegExp(`^ {2}previous {4}v1 \\(${short("v1")}\\) \\(rollback target\\)$`, "m"),
    );
    assert.match(r.out, /^ {2}last deploy \S+Z: FAILED at step health: .+$/m, r.out);
    assert.match(r.out, /^ {2}lock {8}free$/m);
    const slot = /slot (blue|green)/.exec(r.out)?.[1];
    assert.match(
      r.out,
      new RegExp(
        `^ {2}container {3}backend-${slot} \\(serving\\): running, Up .*\\(healthy\\)$`,
        "m",
      ),
    );
    for (const service of ["postgres", "redis", "proxy"]) {
      assert.match(r.out, new RegExp(`^ {2}container {3}${service}: running, `, "m"));
    }
    assert.doesNotMatch(r.out, /backend-(blue|green): running.*v3/);
  });

  test("status --json: the same facts for scripts", async () => {
    const r = await ops("status", "--json");
    assert.equal(r.code, 0, r.err);
    const [host] = JSON.parse(r.out) as {
      host: string;
      current: { tag: string; digest: string };
      lock: { held: boolean };
      runs: { result: { kind: string; step?: string } }[];
    }[];
    assert.equal(host?.host, "e2e");
    assert.equal(host?.current.tag, "v2");
    assert.equal(host?.current.digest, digests.v2);
    assert.equal(host?.lock.held, false);
    assert.deepEqual(host?.runs[0]?.result.kind, "failed");
    assert.equal(host?.runs[0]?.result.step, "health");
  });

  test("audit: every run, newest first, the failure included, with step timings", async () => {
    const r = await ops("audit");
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split("\n");
    assert.equal(lines.length, 3, r.out);
    assert.match(lines[0] ?? "", /^\S+Z {2}e2e {2}FAILED at step health: /);
    assert.match(
      lines[1] ?? "",
      /^\S+Z {2}e2e {2}deployed v2; lock \d+\.\d s, preflight .* record \d+\.\d s$/,
    );
    assert.match(lines[2] ?? "", /^\S+Z {2}e2e {2}deployed v1; /);
    const times = lines.map((l) => l.split(" ")[0] ?? "");
    assert.deepEqual([...times].sort().reverse(), times, "newest first");
  });

  test("logs: the serving app's lines, prefixed with the host; --since is checked", async () => {
    const r = await ops("logs", "--tail", "5");
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split("\n").filter((l) => l !== "");
    assert.ok(lines.length >= 1 && lines.length <= 5, r.out);
    for (const line of lines) assert.match(line, /^e2e \| \d{4}-\d{2}-\d{2}T\S+ \[backend v2\] /);
    const bad = await ops("logs", "--since", "yesterday; rm -rf /");
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--since yesterday; rm -rf \/: expected a duration/);
  });

  test("logs --follow streams until interrupted (the real command line)", async () => {
    const child = spawnOps(["logs", "--follow", "--tail", "0"]);
    let out = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    // The health checks (every second) make new lines.
    const deadline = Date.now() + 20_000;
    while (!/\n.*\n/.test(out) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    child.kill("SIGINT");
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    assert.match(out, /^e2e \| \S+ \[backend v2\] .*GET \/health/m, out);
    assert.equal(code, 0, "Ctrl-C ends it cleanly");
  });

  test("lock: held by a live deploy, release refused; left by a dead one, release clears it", async () => {
    const state = `${APP_DIR}/state`;
    // A deploy's lock as step_lock takes it: flock on the lock file, an owner record with its pid.
    const hold = await runOverSsh(
      h,
      `setsid flock ${state}/deploy.lock sleep 300 </dev/null >/dev/null 2>&1 &
sleep 0.5
pid=$(pgrep -n -f "^sleep 300")
printf 'deploy of x (stack staging) by deploy from 127.0.0.1, pid %s, since 2026-12-04T03:00:00Z\\n' "$pid" > ${state}/deploy.lock.owner
echo "$pid"`,
    );
    const pid = hold.stdout.trim();
    assert.match(pid, /^\d+$/, hold.stderr);
    try {
      const held = await ops("lock", "status");
      assert.equal(held.code, 0, held.err);
      assert.equal(
        held.out,
        `e2e: held by deploy of x (stack staging) by deploy from 127.0.0.1, pid ${pid}, since 2026-12-04T03:00:00Z (its process is running)`,
      );
      const refused = await ops("lock", "release", "--force");
      assert.equal(refused.code, 3, refused.out);
      assert.match(
        refused.out,
        new RegExp(`^e2e: refused: the deploy holding the lock is still running \\(pid ${pid}\\)`),
      );
      assert.match((await ops("status")).out, /^ {2}lock {8}held: deploy of x/m);
      const noForce = await ops("lock", "release");
      assert.equal(noForce.code, 2);
      assert.match(noForce.err, /pass --force/);
    } finally {
      await runOverSsh(
        h,
        `pkill -f "^sleep 300" || true; pkill -f "flock ${state}/deploy.lock" || true`,
      );
    }
    const stale = await ops("lock", "status");
    assert.match(stale.out, /^e2e: free; a stale owner record is left \(deploy of x/);
    const released = await ops("lock", "release", "--force");
    assert.equal(released.code, 0, released.out);
    assert.match(
      released.out,
      /^e2e: released: no process held the lock; removed the owner record/,
    );
    assert.equal((await ops("lock", "status")).out, "e2e: free");
    const again = await ops("lock", "release", "--force");
    assert.match(again.out, /^e2e: free: no deploy holds the lock/);
  });

  test("exec: a one-off command in a new container of the serving image, with the app's env", async () => {
    const before = await runOverSsh(
      h,
      `docker ps -q --filter label=com.docker.compose.project=${PROJECT} | sort`,
    );
    const r = await ops("exec", "--", "alembic", "current");
    assert.equal(r.code, 0, r.err);
    // v2's migrations: 001 and 002, reached through the project's network with DATABASE_URL.
    assert.match(r.out, /^002\S* \(head\)$/m, r.out);
    assert.match(
      r.err,
      /running in a new container of \S+@sha256:[0-9a-f]{64} \(backend-(blue|green)'s environment/,
    );
    const env = await ops(
      "exec",
      "--",
      "python3",
      "-c",
      "import os, sys; print(sorted(k for k in ('DATABASE_URL', 'JWT_SECRET_KEY', 'APP_ENV') if os.environ.get(k))); sys.exit(7)",
    );
    assert.equal(env.code, 7, "the command's own exit status");
    assert.equal(env.out, "['APP_ENV', 'DATABASE_URL', 'JWT_SECRET_KEY']");
    const quoted = await ops("exec", "--", "echo", "it's $HOME; `id`");
    assert.equal(quoted.out, "it's $HOME; `id`", "arguments reach the command as they are");
    const after = await runOverSsh(
      h,
      `docker ps -aq --filter label=com.docker.compose.project=${PROJECT} | sort`,
    );
    assert.equal(after.stdout, before.stdout, "no container left, the serving one untouched");
  });

  test("exec -i: the command reads this side's stdin (the real command line, which then exits)", async () => {
    const child = spawnOps(
      ["exec", "-i"],
      ["python3", "-c", "import sys; print(sum(int(l) for l in sys.stdin))"],
    );
    let out = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.stdin.end("40\n2\n");
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    assert.equal(code, 0);
    assert.equal(out, "42\n");
    // A command that reads nothing ends the session, and the process, while this side's stdin
    // stays open.
    const open = spawnOps(["exec", "-i"], ["true"]);
    const ended = await Promise.race([
      new Promise<number | null>((r) => open.once("exit", (c) => r(c))),
      new Promise<string>((r) => setTimeout(() => r("still running after 30 s"), 30_000)),
    ]);
    open.kill();
    assert.equal(ended, 0);
  });

  test("exec -i from a terminal: the remote command gets a terminal of this size (a shell works)", async () => {
    const input = new PassThrough();
    let out = "";
    const raw: boolean[] = [];
    let resize: (() => void) | undefined;
    const terminal = {
      input,
      write: (chunk: string) => {
        out += chunk;
      },
      size: () => ({ rows: 33, cols: 101 }),
      onResize: (listener: () => void) => {
        resize = listener;
        return () => {
          resize = undefined;
        };
      },
      setRaw: (on: boolean) => raw.push(on),
    };
    const err: string[] = [];
    const running = runOps(
      ["exec", "-i", "--stack", "staging", "--dir", dir, "--identity", keyFile, "--", "sh"],
      { out: () => {}, err: (l) => err.push(l) },
      {},
      undefined,
      undefined,
      undefined,
      () => terminal,
    );
    // What a person types at the shell's prompt, once it is there.
    const deadline = Date.now() + 30_000;
    while (!/# $|\$ $/.test(out) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    input.write("tty; stty size; echo $((6 * 7)); exit 5\n");
    const code = await running;
    assert.equal(code, 5, `${out}\n${err.join("\n")}`);
    assert.match(out, /^\/dev\/pts\/\d+\r?$/m, out);
    assert.match(out, /^33 101\r?$/m, out);
    assert.match(out, /^42\r?$/m, out);
    assert.deepEqual(raw, [true, false], "raw mode on for the session, off after it");
    assert.equal(resize, undefined, "the resize listener is gone");
  });

  test("rollback: the previous version the host records, the way the stack deploys", async () => {
    const plan = await ops("rollback");
    assert.equal(plan.code, 0, plan.err);
    assert.equal(
      plan.out,
      [
        "rollback of staging: v2 -> v1 (the version every host records as previous), without migrations",
        "staging is not approval-gated: pulumi up deploys it, with the deploy's backup, health gate and switch",
        "  pulumi up --stack staging --config-path --config deploy.image.tag=v1 --config deploy.migrate=false --diff",
        "nothing was run: add --yes to run it",
      ].join("\n"),
    );
    const ran: string[] = [];
    const run = (command: string, args: readonly string[]) => {
      ran.push([command, ...args].join(" "));
      return 0;
    };
    const yes = await opsWith(run, "rollback", "--yes");
    assert.equal(yes.code, 0, yes.err);
    assert.deepEqual(ran, [
      "pulumi up --stack staging --config-path --config deploy.image.tag=v1 --config deploy.migrate=false --diff",
    ]);
    // With reviewers, the stack's deploys go through the production workflow: so does this.
    await withReviewers(async () => {
      ran.length = 0;
      const gated = await opsWith(run, "rollback", "--yes");
      assert.equal(gated.code, 0, gated.err);
      assert.deepEqual(ran, [
        "gh workflow run deploy-prod.yml --repo clicky-foundation/clicky-foundation --ref main -f version=v1 -f run_migrations=false",
      ]);
      assert.match(gated.out, /dispatched: approve the run in GitHub Actions/);
    });
  });

  test("a host key other than the pinned one: nothing runs, and the message says why", async () => {
    const file = parse(readFileSync(join(dir, "Pulumi.staging.yaml"), "utf8")) as {
      config: Record<string, { hosts: { hostKey: string }[] }>;
    };
    const deploy = file.config["clicky-delivery:deploy"];
    assert.ok(deploy?.hosts[0]);
    const original = deploy.hosts[0].hostKey;
    deploy.hosts[0].hostKey =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFt0aGlzIGlzIG5vdCB0aGUgaG9zdCdzIGtleSwgbm9wZV0";
    writeFileSync(join(dir, "Pulumi.staging.yaml"), stringify(file));
    try {
      const r = await ops("status");
      assert.equal(r.code, 1);
      assert.match(
        r.out,
        /unreadable: ssh deploy@127\.0\.0\.1:\d+: the host key is not the one pinned in deploy\.hosts\[\]\.hostKey/,
      );
    } finally {
      deploy.hosts[0].hostKey = original;
      writeFileSync(join(dir, "Pulumi.staging.yaml"), stringify(file));
    }
  });

  test("usage mistakes name the option and exit 2 before connecting", async () => {
    const host = await ops("status", "--host", "nope");
    assert.equal(host.code, 2);
    assert.match(host.err, /--host nope: the stack has no such host \(deploy\.hosts: e2e\)/);
    const missing = await runOps(["status", "--dir", dir], { out: () => {}, err: () => {} }, {});
    assert.equal(missing, 2);
  });

  /** Whether PostgreSQL takes `password` for the app's role, as the app connects. */
  async function passwordAccepted(password: string): Promise<boolean> {
    const [pg] = await composeContainers(PROJECT, "postgres");
    assert.ok(pg);
    return passwordAcceptedIn(pg, password);
  }

  // Last: its deploy changes what the host records.
  test("rotate-db-password: a new password in the stack's config, put in place by a real deploy, no request failed", async () => {
    const plan = await ops("rotate-db-password");
    assert.equal(plan.code, 0, plan.err);
    assert.equal(
      plan.out,
      [
        "rotation of the database password of staging (role clicky, database clicky_db), to a new random password (32 bytes):",
        "  pulumi config set --secret postgresPassword --stack staging   (the password on its stdin, never printed)",
        "  pulumi up --stack staging --diff",
        "the deploy changes the role's password on each host before its backup, keeps the serving version's new connections working until it stops, and starts the new version with the new password: no request fails",
        "nothing was run: add --yes to run it",
      ].join("\n"),
    );
    assert.equal(await passwordAccepted(TEST_SECRETS.postgresPassword), true);
    // The stand-in for the Pulumi CLI: `config set` keeps what it reads on stdin, `up` runs the
    // deploy the program registers with that password, over SSH, under requests.
    const ran: string[] = [];
    let given: string | undefined;
    let deployed: number | null = null;
    let traffic: LoadResult | undefined;
    const run: LocalRunner = async (command, args, _cwd, input) => {
      ran.push([command, ...args].join(" "));
      if (args[0] === "config") {
        given = input;
        return 0;
      }
      assert.ok(given, "config set ran first");
      const load = startLoad({
        url: `http://127.0.0.1:${port}/health`,
        ratePerSecond: 40,
        durationMs: 5 * 60_000,
        keepAlive: "mixed",
      });
      deployed = await deploy("v2", { postgresPassword: given });
      traffic = await load.stop();
      return deployed ?? 1;
    };
    const yes = await opsWith(run, "rotate-db-password", "--yes");
    assert.equal(yes.code, 0, `${yes.out}\n${yes.err}`);
    assert.deepEqual(ran, [
      "pulumi config set --secret postgresPassword --stack staging",
      "pulumi up --stack staging --diff",
    ]);
    assert.ok(given);
    assert.match(given, /^[A-Za-z0-9_-]{43}$/, "32 random bytes, base64url");
    assert.ok(!`${yes.out}${yes.err}`.includes(given), "the password is never printed");
    assert.match(yes.out, /rotated\. Commit Pulumi\.staging\.yaml now/);
    assert.equal(deployed, 0);
    assert.ok(traffic);
    assert.ok(traffic.sent > 30, `${traffic.sent} requests`);
    assert.deepEqual(
      { errors: traffic.errors, non2xx: traffic.non2xx },
      { errors: {}, non2xx: {} },
    );
    assert.equal(await passwordAccepted(given), true, "the role has the new password");
    assert.equal(await passwordAccepted(TEST_SECRETS.postgresPassword), false);
    const status = await ops("status");
    assert.match(status.out, /^ {2}serving {5}v2 /m);
    assert.match(status.out, /container +backend-\w+ \(serving\): running, .*\(healthy\)/);

    // --password-stdin takes the user's; an approval-gated stack changes the config only and
    // says how the production workflow deploys it, with the tag the hosts serve.
    await withReviewers(async () => {
      ran.length = 0;
      given = undefined;
      const out: string[] = [];
      const code = await runOps(
        [
          "rotate-db-password",
          "--password-stdin",
          "--yes",
          "--stack",
          "staging",
          "--dir",
          dir,
          "--identity",
          keyFile,
        ],
        { out: (l) => out.push(l), err: (l) => out.push(l) },
        {},
        undefined,
        run,
        () => "mine, from a vault\n",
      );
      assert.equal(code, 0, out.join("\n"));
      assert.deepEqual(ran, ["pulumi config set --secret postgresPassword --stack staging"]);
      assert.equal(given, "mine, from a vault");
      assert.match(
        out.join("\n"),
        /gh workflow run deploy-prod\.yml --repo clicky-foundation\/clicky-foundation --ref main -f version=v2 -f run_migrations=false/,
      );
      assert.match(out.join("\n"), /next: commit Pulumi\.staging\.yaml, merge it/);
    });
  });
});
