import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { accessoriesOf } from "../../src/config/deploy";
import { buildFleetRelease, type FleetRole } from "../../src/deploy/compose";
import { buildDeployScript, buildFleetScript, USAGE_EXIT } from "../../src/deploy/script";
import { parseDeploy } from "../support/deploy-config";

const HOSTS = [
  { name: "app-1", host: "10.0.0.11" },
  { name: "app-2", host: "10.0.0.12" },
  { name: "db-1", host: "10.0.0.13" },
];

/** The script of one fleet host, for accessories on db-1 or an external database. */
function fleetScript(kind: "host" | "external", role: FleetRole, backup?: "provider"): string {
  const deploy = parseDeploy({
    hosts: kind === "host" ? HOSTS : HOSTS.slice(0, 2),
    accessories:
      kind === "host"
        ? { host: "db-1", privateAddress: "10.0.0.13" }
        : { external: true, ...(backup ? { backup } : {}) },
    image: { repository: "ghcr.io/o/r/backend", tag: "v1" },
  });
  const accessories = accessoriesOf(deploy);
  assert.ok(accessories);
  const host = deploy.hosts[role === "database" ? 2 : 0];
  assert.ok(host);
  const release = buildFleetRelease("staging", deploy, accessories, role);
  return buildFleetScript({ stack: "staging", host, deploy, release }, role, accessories);
}

const VARIANTS: [string, () => string][] = [
  ["the accessories host's", () => fleetScript("host", "database")],
  ["an app host's (accessories host)", () => fleetScript("host", "app")],
  ["an app host's (external database, pg_dump)", () => fleetScript("external", "app")],
  ["an app host's (external database, provider)", () => fleetScript("external", "app", "provider")],
];

/** Runs a script with arguments and no stdin; what it said and its exit code. */
function run(text: string, args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), "fleet-script-"));
  const file = join(dir, "deploy.sh");
  writeFileSync(file, text);
  return spawnSync("bash", [file, ...args], { input: "", encoding: "utf8", timeout: 20_000 });
}

const ARGS = ["image=ghcr.io/o/r/backend:v1", "tag=v1", "registry=ghcr.io", "migrate=1"];

describe("the deploy script of a fleet host", () => {
  const shellcheck = spawnSync("shellcheck", ["--version"]).status === 0;
  for (const [name, build] of VARIANTS) {
    test(`${name}: shellcheck finds nothing, bash parses it`, {
      skip: !shellcheck && process.env.CI !== "true" ? "shellcheck is not installed" : false,
    }, () => {
      const text = build();
      const r = spawnSync("shellcheck", ["--shell=bash", "--severity=style", "-"], {
        input: text,
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.equal(spawnSync("bash", ["-n"], { input: text }).status, 0);
    });
  }

  test("is the single host's script up to its entry, then the fleet's part, which calls fleet_main", () => {
    const text = fleetScript("host", "app");
    assert.match(text, /\nreadonly FLEET_ROLE=app FLEET_DATABASE=host FLEET_BACKUP=pg_dump\n/);
    assert.match(text, /\nfleet_main "\$@"\nexit\n$/);
    assert.doesNotMatch(text, /\nmain "\$@"\n/, "the single host's entry is not called");
    assert.match(
      fleetScript("external", "app", "provider"),
      /FLEET_DATABASE=external FLEET_BACKUP=provider/,
    );
  });

  test("refuses a phase its role does not take, and no phase at all, before it reads stdin or changes anything", () => {
    const cases: [() => string, string, RegExp][] = [
      [
        () => fleetScript("host", "database"),
        "phase=switch",
        /the database host takes phase=database, not switch/,
      ],
      [
        () => fleetScript("host", "app"),
        "phase=database",
        /the app host takes phase=switch\|commit\|revert, not database/,
      ],
      [() => fleetScript("host", "app"), "", /, not none; nothing was changed/],
    ];
    for (const [build, phase, message] of cases) {
      const r = run(build(), phase ? [phase, ...ARGS] : ARGS);
      assert.equal(r.status, USAGE_EXIT, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /nothing was changed/);
    }
  });

  test("with an external database an app host takes the database phase too (it gets past the phase check)", () => {
    const r = run(fleetScript("external", "app"), ["phase=database", ...ARGS]);
    // It stops later, at its lock (no state directory here), not at the phase check.
    assert.doesNotMatch(r.stderr, /takes phase=/);
    assert.notEqual(r.status, 0);
  });

  test("an app host's failed phase names the rollout's database phase for the backup, not a missing one of its own", () => {
    for (const phase of ["switch", "commit", "revert"]) {
      // It stops at once: no secrets on its stdin here.
      const r = run(fleetScript("host", "app"), [`phase=${phase}`, ...ARGS]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /deploy FAILED on app-1 \(stack staging\) at step stdin/);
      assert.match(
        r.stderr,
        new RegExp(`backup: taken by this rollout's database phase, not by the ${phase} phase`),
      );
      assert.doesNotMatch(r.stderr, /backup taken before this deploy/);
    }
    const database = run(fleetScript("host", "database"), ["phase=database", ...ARGS]);
    assert.match(database.stderr, /backup taken before this deploy: none/);
  });

  test("leaves the single host's script as it was: the fleet's part is not in it", () => {
    const deploy = parseDeploy({
      hosts: [HOSTS[0]],
      image: { repository: "ghcr.io/o/r/backend", tag: "v1" },
    });
    const host = deploy.hosts[0];
    assert.ok(host);
    const single = buildDeployScript({
      stack: "staging",
      host,
      deploy,
      release: { id: "0123456789ab", files: new Map([["docker-compose.yml", "services: {}\n"]]) },
    });
    assert.doesNotMatch(single, /fleet_main|FLEET_ROLE/);
    assert.match(single, /\nmain "\$@"\nexit\n$/);
  });
});
