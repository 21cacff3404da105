import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ROUTING_FILE, renderRouting } from "../../src/deploy/compose";
import { REMOTE_DIR, REMOTE_PARTS, remoteConstant, remotePart } from "../../src/deploy/script";
import { type DeploySettings, deploySettings, renderSettings } from "../../src/deploy/settings";
import { parseDeploy } from "../support/deploy-config";

/** The settings of a test config, and the preamble the script would start with. */
function testSettings(patch: Record<string, unknown> = {}): DeploySettings {
  const deploy = parseDeploy({
    hosts: [{ name: "web-1", host: "web-1.example.org" }],
    image: { repository: "ghcr.io/o/r/backend", tag: "v1" },
    ...patch,
  });
  const host = deploy.hosts[0];
  assert.ok(host);
  return deploySettings({
    stack: "staging",
    host,
    deploy,
    release: { id: "0123456789ab", files: new Map([["docker-compose.yml", "services: {}\n"]]) },
  });
}

const dir = mkdtempSync(join(tmpdir(), "clicky-remote-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function preambleFile(settings: DeploySettings): string {
  const file = join(dir, `settings-${Math.random().toString(36).slice(2)}.bash`);
  writeFileSync(file, `${renderSettings(settings).join("\n")}\n`);
  return file;
}

function tool(name: string): string | undefined {
  const r = spawnSync(name, ["--version"], { encoding: "utf8" });
  return r.status === 0 ? undefined : `${name} is not installed`;
}

describe("the settings preamble", () => {
  test("writes exactly the names the script's required-settings guard checks", () => {
    const guard = /require_settings\(\) \{[\s\S]*?for name in ([\s\S]*?); do/.exec(
      remotePart("main.sh"),
    );
    assert.ok(guard?.[1], "require_settings lists its names in one for loop");
    const names = guard[1].replace(/\\\n/g, " ").split(/\s+/).filter(Boolean);
    assert.deepEqual([...names].sort(), Object.keys(testSettings()).sort());
  });

  test("quotes every value word by word, so odd config stays literal", () => {
    const settings = testSettings({
      migrationCommand: ["sh", "-c", "echo 'a b' $HOME `id`"],
      appDir: "/opt/clicky-foundation",
    });
    const r = spawnSync(
      "bash",
      [
        "-c",
        `source "$1"; printf '%s\\n' "\${MIGRATION_COMMAND[@]}" "$APP_DIR"`,
        "_",
        preambleFile(settings),
      ],
      { encoding: "utf8" },
    );
    assert.equal(r.stdout, "sh\n-c\necho 'a b' $HOME `id`\n/opt/clicky-foundation\n");
  });
});

describe("the script's routing file", () => {
  test("has the name the proxy's routing.js reads", () => {
    assert.equal(remoteConstant("ROUTING_NAME"), ROUTING_FILE);
  });

  test("is what TypeScript's renderRouting shows, with and without the watch window's standby", () => {
    const file = preambleFile(testSettings());
    const render = (...args: string[]) =>
      spawnSync(
        "bash",
        [
          "-c",
          `source "$1"; source "$2"; shift 2; render_routing "$@"`,
          "_",
          file,
          join(REMOTE_DIR, "helpers.sh"),
          ...args,
        ],
        { encoding: "utf8" },
      ).stdout;
    assert.equal(
      render("green", "172.18.0.5"),
      renderRouting({ slot: "green", address: "172.18.0.5" }, 8000),
    );
    assert.equal(
      render("blue", "172.18.0.6", "green", "172.18.0.5"),
      renderRouting({ slot: "blue", address: "172.18.0.6" }, 8000, {
        slot: "green",
        address: "172.18.0.5",
      }),
    );
  });
});

describe("the bash helpers, unit-tested in bash (bats)", () => {
  const missing = tool("bats");
  if (missing && process.env.CI === "true") {
    test("bats is installed in CI", () => assert.fail(missing));
    return;
  }
  test("pass", { skip: missing }, () => {
    const r = spawnSync("bats", ["--tap", join(__dirname, "remote")], {
      encoding: "utf8",
      env: { ...process.env, DEPLOY_SETTINGS: preambleFile(testSettings()), REMOTE_DIR },
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^1\.\.\d+$/m);
    assert.doesNotMatch(r.stdout, /^not ok/m);
  });
});

describe("shellcheck of each part as a file", () => {
  const missing = tool("shellcheck");
  if (missing && process.env.CI === "true") {
    test("shellcheck is installed in CI", () => assert.fail(missing));
    return;
  }
  for (const file of ["prepare.sh", "probe.sh"]) {
    test(`finds nothing in ${file} (POSIX sh)`, { skip: missing }, () => {
      const r = spawnSync(
        "shellcheck",
        ["--shell=sh", "--severity=style", "--exclude=SC2154", join(REMOTE_DIR, file)],
        { encoding: "utf8" },
      );
      assert.equal(r.status, 0, r.stdout + r.stderr);
    });
  }
  for (const part of REMOTE_PARTS) {
    // Names set in one part and read in another (SC2154, SC2034, SC2153) are checked on the
    // whole script (test/deploy/script.test.ts), where every part is present.
    test(`finds nothing in ${part}`, { skip: missing }, () => {
      const r = spawnSync(
        "shellcheck",
        [
          "--shell=bash",
          "--severity=style",
          "--exclude=SC2154,SC2034,SC2153",
          join(REMOTE_DIR, part),
        ],
        { encoding: "utf8" },
      );
      assert.equal(r.status, 0, r.stdout + r.stderr);
    });
  }
});
