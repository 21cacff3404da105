import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { HELP, runOps } from "../../src/ops/cli";
import { checkSince, lineSplitter } from "../../src/ops/commands";
import {
  buildStatusScript,
  formatStatus,
  parseHostReport,
  remoteScript,
  runResult,
} from "../../src/ops/report";
import { resolveCredentials } from "../../src/ops/stack";
import { REPO_ROOT } from "../support/program";

const DIGEST = `sha256:${"ab".repeat(32)}`;

/** What `remote/status.sh` prints on a host that served v1, then v2, then failed v3. */
const ANSWER = `ops 1
current slot=green
current image=registry/clicky/backend@${DIGEST}
current tag=v2
current digest=${DIGEST}
current release=r2
current backup=/opt/app/backups/b.dump.gz
current deployed_at=2026-12-04T03:10:00Z
current fingerprint=f
previous slot=blue
previous tag=v1
previous digest=sha256:${"cd".repeat(32)}
lock free
run 20261204T031500Z-900 gone
run-last [deploy e2e] health: backend-blue is unhealthy: /health answered 503
run-failed deploy FAILED on e2e (stack staging) at step health: backend-blue did not become healthy within 60 s
run 20261204T031000Z-800 gone
run-last [deploy e2e] finished: deployed v2 (registry/clicky/backend@${DIGEST}) to e2e; timings: lock 0.0 s, preflight 0.4 s, record 0.0 s
run 20261204T030000Z-700 gone
run-last [deploy e2e] finished: nothing to do: v1 (x) already serves from backend-blue with this release and env
history 2026-12-04T02:00:00Z staging slot=blue image=x backup=none
history 2026-12-04T03:10:00Z staging slot=green image=y backup=b
container backend-green|running|Up 5 minutes (healthy)
container postgres|running|Up 20 minutes (healthy)
end
`;

describe("the host report", () => {
  const r = parseHostReport(ANSWER);

  test("reads the records, the runs (newest first) and the containers", () => {
    assert.equal(r.current?.tag, "v2");
    assert.equal(r.current?.digest, DIGEST);
    assert.equal(r.current?.deployedAt, "2026-12-04T03:10:00Z");
    assert.equal(r.previous?.tag, "v1");
    assert.deepEqual(r.lock, { held: false });
    assert.deepEqual(
      r.runs.map((x) => [x.startedAt, x.result.kind]),
      [
        ["2026-12-04T03:15:00Z", "failed"],
        ["2026-12-04T03:10:00Z", "succeeded"],
        ["2026-12-04T03:00:00Z", "unchanged"],
      ],
    );
    assert.deepEqual(r.runs[0]?.result, {
      kind: "failed",
      step: "health",
      reason: "backend-blue did not become healthy within 60 s",
    });
    assert.deepEqual(r.runs[1]?.result, {
      kind: "succeeded",
      tag: "v2",
      timings: "lock 0.0 s, preflight 0.4 s, record 0.0 s",
    });
    assert.equal(r.containers.length, 2);
    assert.equal(r.history.length, 2);
  });

  test("a cut-off or foreign answer is refused, not taken for a host with nothing", () => {
    assert.throws(() => parseHostReport(ANSWER.replace("end\n", "")), /cut off/);
    assert.throws(() => parseHostReport("Welcome to the host!\n"), /not an ops report/);
  });

  test("a run still going, and one killed before it could report", () => {
    assert.deepEqual(runResult("[deploy a] pull: pulling", undefined, true), { kind: "running" });
    assert.deepEqual(runResult("[deploy a] pull: pulling", undefined, false), {
      kind: "ended",
      last: "pulling",
    });
  });

  test("printed for a person: serving, rollback target, last deploy, lock, containers", () => {
    const lines = formatStatus("e2e", "deploy@h:22", r);
    assert.deepEqual(lines, [
      "e2e (deploy@h:22)",
      "  serving     v2 (sha256:abababababab) since 2026-12-04T03:10:00Z, slot green, release r2",
      `  previous    v1 (sha256:cdcdcdcdcdcd) (rollback target)`,
      "  last deploy 2026-12-04T03:15:00Z: FAILED at step health: backend-blue did not become healthy within 60 s",
      "  lock        free",
      "  container   backend-green (serving): running, Up 5 minutes (healthy)",
      "  container   postgres: running, Up 20 minutes (healthy)",
    ]);
  });

  test("a held lock names its owner and whether its process runs", () => {
    const held = parseHostReport(
      ANSWER.replace(
        "lock free",
        "lock held\nlock-owner deploy of x (stack s) by deploy from 10.0.0.1, pid 42, since t\nlock-pid 42 alive",
      ),
    );
    assert.deepEqual(held.lock, {
      held: true,
      owner: "deploy of x (stack s) by deploy from 10.0.0.1, pid 42, since t",
      pid: 42,
      pidAlive: true,
    });
    assert.equal(held.runs[0]?.result.kind, "failed", "a failed run stays failed");
  });
});

describe("the remote scripts", () => {
  const missing = spawnSync("shellcheck", ["--version"]).status === 0 ? false : "no shellcheck";
  for (const [name, script] of [
    ["status", buildStatusScript("/opt/it's here", "clicky", 20)],
    ["lock-release", `APP_DIR=/opt/app\n${remoteScript("lock-release")}`],
    ["logs", `APP_DIR=/opt/app\nPROJECT=p\nSINCE=\nTAIL=5\nFOLLOW=0\n${remoteScript("logs")}`],
    [
      "exec",
      `APP_DIR=/opt/app\nPROJECT=p\nINTERACTIVE=0\nCMD=(alembic current)\n${remoteScript("exec")}`,
    ],
  ] as const) {
    test(`${name}: shellcheck finds nothing in the script as it is sent`, { skip: missing }, () => {
      const dir = mkdtempSync(join(tmpdir(), "ops-sh-"));
      const file = join(dir, `${name}.sh`);
      writeFileSync(file, `#!/usr/bin/env bash\n${script}`);
      const r = spawnSync("shellcheck", ["--shell=bash", "--severity=style", file], {
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    });
  }

  test("status only reads: no command in it writes, removes or moves a file", () => {
    const body = remoteScript("status");
    assert.doesNotMatch(body, /\b(rm|mv|cp|tee|touch|mkdir|truncate)\b|>\s*"?\$/);
  });
});

describe("the command line", () => {
  const run = async (...argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runOps(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, {});
    return { code, out: out.join("\n"), err: err.join("\n") };
  };

  test("--help lists every command, and each command has its own", async () => {
    const top = await run("--help");
    assert.equal(top.code, 0);
    for (const command of [
      "status",
      "audit",
      "logs",
      "exec \\[-i\\] -- <command>",
      "rollback \\[--yes\\]",
      "lock status",
      "lock release --force",
      "rotate-db-password \\[--yes\\]",
    ]) {
      assert.match(top.out, new RegExp(`^ {2}${command}( |$)`, "m"), command);
    }
    for (const command of [
      "status",
      "audit",
      "logs",
      "exec",
      "rollback",
      "lock",
      "rotate-db-password",
    ]) {
      const r = await run(command, "--help");
      assert.equal(r.code, 0);
      assert.equal(r.out, HELP[command]);
      assert.match(r.out, new RegExp(`^usage: npm run ops -- ${command} `));
    }
  });

  test("rotate-db-password: a password it cannot pass as one line is refused, and a failed config set stops it before any deploy", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ops-rotate-"));
    writeFileSync(join(dir, "k"), "KEY FILE");
    const ran: string[] = [];
    const rotate = async (stdin: string, setExit: number) => {
      const out: string[] = [];
      const code = await runOps(
        ["rotate-db-password", "--password-stdin", "--yes", "--stack", "staging"].concat([
          "--dir",
          REPO_ROOT,
          "--identity",
          join(dir, "k"),
        ]),
        { out: (l) => out.push(l), err: (l) => out.push(l) },
        {},
        undefined,
        (command, args) => {
          ran.push([command, ...args].join(" "));
          return args[0] === "config" ? setExit : 0;
        },
        () => stdin,
      );
      return { code, out: out.join("\n") };
    };
    const broken = await rotate("two\nlines\n", 0);
    assert.equal(broken.code, 2);
    assert.match(
      broken.out,
      /holds a line break or NUL: the deploy passes it as one line; nothing was run/,
    );
    assert.deepEqual(ran, []);
    const empty = await rotate("\n", 0);
    assert.equal(empty.code, 2);
    assert.deepEqual(ran, []);
    const failed = await rotate("a new one\n", 5);
    assert.equal(failed.code, 5);
    assert.match(
      failed.out,
      /pulumi config set failed \(exit 5\): the stack's config and the hosts are unchanged/,
    );
    assert.deepEqual(ran, ["pulumi config set --secret postgresPassword --stack staging"]);
    assert.doesNotMatch(failed.out, /a new one/);
  });

  test("rotate-db-password refuses a fleet's database (across app hosts, or external) before it runs anything", async () => {
    for (const [accessories, message] of [
      [{ external: true }, /the database is external .*databaseUrl.*; nothing was run/],
      [
        { host: "staging-db", privateAddress: "10.0.0.5" },
        /not across app hosts yet .*; nothing was run/,
      ],
    ] as const) {
      const dir = mkdtempSync(join(tmpdir(), "ops-rotate-fleet-"));
      writeFileSync(join(dir, "k"), "KEY FILE");
      writeFileSync(join(dir, "Pulumi.yaml"), readFileSync(join(REPO_ROOT, "Pulumi.yaml")));
      const stackFile = parseYaml(readFileSync(join(REPO_ROOT, "Pulumi.staging.yaml"), "utf8"));
      const deploy = stackFile.config["clicky-delivery:deploy"];
      deploy.hosts = [
        ...deploy.hosts,
        { name: "staging-db", host: "staging-db.clicky-foundation.example" },
      ];
      deploy.accessories = accessories;
      if ("external" in accessories) deploy.hosts = deploy.hosts.slice(0, 1);
      writeFileSync(join(dir, "Pulumi.staging.yaml"), stringifyYaml(stackFile));
      const ran: string[] = [];
      const out: string[] = [];
      const code = await runOps(
        [
          "rotate-db-password",
          "--yes",
          "--stack",
          "staging",
          "--dir",
          dir,
          "--identity",
          join(dir, "k"),
        ],
        { out: (l) => out.push(l), err: (l) => out.push(l) },
        {},
        undefined,
        (command, args) => {
          ran.push([command, ...args].join(" "));
          return 0;
        },
        () => "",
      );
      assert.equal(code, 2, out.join("\n"));
      assert.match(out.join("\n"), message);
      assert.deepEqual(ran, []);
    }
  });

  test("an unknown command, a missing --stack and a wrong lock verb exit 2 with the usage", async () => {
    const unknown = await run("deploy");
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /^unknown command "deploy"/);
    const noStack = await run("status");
    assert.equal(noStack.code, 2);
    assert.match(noStack.err, /^--stack is required/);
    const verb = await run("lock", "steal", "--stack", "staging", "--dir", REPO_ROOT);
    assert.equal(verb.code, 2);
    assert.match(verb.err, /^lock takes status or release/);
  });

  test("a stack file that is not there, or not valid, stops with the file named", async () => {
    const none = await run("status", "--stack", "qa", "--dir", REPO_ROOT);
    assert.equal(none.code, 2);
    assert.match(none.err, /no stack file .*Pulumi\.qa\.yaml/);
    const dir = mkdtempSync(join(tmpdir(), "ops-bad-"));
    writeFileSync(
      join(dir, "Pulumi.qa.yaml"),
      "config:\n  clicky-delivery:deploy:\n    appDir: relative\n",
    );
    const bad = await run("status", "--stack", "qa", "--dir", dir);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /Pulumi\.qa\.yaml: clicky-delivery:/);
  });

  test("no credentials at all: says the three ways to give them", async () => {
    const r = await run("status", "--stack", "staging", "--dir", REPO_ROOT);
    // The Pulumi CLI is not installed here: no key comes from it, and there is no agent.
    if (spawnSync("pulumi", ["version"]).status === 0) return;
    assert.equal(r.code, 2);
    assert.match(r.err, /no SSH credentials: pass --identity/);
  });

  test("credentials: --identity first, then the stack's key through the Pulumi CLI, then the agent", () => {
    const dir = mkdtempSync(join(tmpdir(), "ops-key-"));
    writeFileSync(join(dir, "k"), "KEY FILE");
    const base = { stack: "s", dir, agentSocket: "/run/agent.sock" };
    assert.deepEqual(
      resolveCredentials({ ...base, identityFile: join(dir, "k"), pulumiSecret: () => "P" }),
      { kind: "key", privateKey: "KEY FILE", from: join(dir, "k") },
    );
    assert.deepEqual(resolveCredentials({ ...base, pulumiSecret: () => "P" }), {
      kind: "key",
      privateKey: "P",
      from: "the s stack's sshPrivateKey",
    });
    assert.deepEqual(resolveCredentials({ ...base, pulumiSecret: () => undefined }), {
      kind: "agent",
      socket: "/run/agent.sock",
    });
    assert.throws(
      () =>
        resolveCredentials({ ...base, identityFile: join(dir, "none"), pulumiSecret: () => "P" }),
      /--identity .*none: ENOENT/,
    );
  });

  test("--since takes what docker logs takes, nothing that could reach a shell", () => {
    for (const ok of ["10m", "2h", "1.5h", "2026-12-04", "2026-12-04T03:00:00Z", "1733281200"]) {
      assert.equal(checkSince(ok), ok);
    }
    for (const bad of ["yesterday", "10m; id", "$(id)", ""]) {
      assert.throws(() => checkSince(bad), /expected a duration/);
    }
  });
});

describe("remote output as lines", () => {
  test("a line cut across chunks comes out whole, each stream on its own, the rest on flush", () => {
    const got: string[] = [];
    const lines = lineSplitter((line, stream) => got.push(`${stream}:${line}`));
    lines.push("one\ntw", "stdout");
    lines.push("err-a", "stderr");
    lines.push("o\nthr", "stdout");
    lines.push("\n", "stderr");
    lines.flush();
    assert.deepEqual(got, ["stdout:one", "stdout:two", "stderr:err-a", "stdout:thr"]);
  });
});
