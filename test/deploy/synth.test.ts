import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { deployConfigSchema, withDeployImage } from "../../src/config/deploy";
import { isPlaceholderHostKey, pinnedHostKey } from "../../src/config/host-keys";
import { ENCRYPTED_PLACEHOLDER } from "../../src/config/stack-file";
import { buildRelease } from "../../src/deploy/compose";
import { SYNTH_LAST_DEPLOYED } from "../../src/deploy/image";
import { buildPrepareScript } from "../../src/deploy/prepare";
import { buildRunCommand, deployRunArgs, deployScriptPath } from "../../src/deploy/run-command";
import { buildDeployScript } from "../../src/deploy/script";
import { REPO_ROOT } from "../support/program";

const work = mkdtempSync(join(tmpdir(), "clicky-deploy-synth-"));

function synth(stack: string) {
  const out = join(work, stack);
  const child = spawnSync(
    process.execPath,
    ["--import", "tsx", join(REPO_ROOT, "src/synth/cli.ts"), "--stack", stack, "--out", out],
    { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 },
  );
  return { status: child.status, stderr: child.stderr, out };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

/**
 * The committed stack file's deploy section, parsed as the program parses it, with the image
 * synth resolves for it: the committed files name no tag, so synth shows the last deploy's
 * markers.
 */
function committedDeploy(stack: string) {
  const doc = parse(readFileSync(join(REPO_ROOT, `Pulumi.${stack}.yaml`), "utf8")) as {
    config: Record<string, unknown>;
  };
  const deploy = deployConfigSchema.parse(doc.config["clicky-delivery:deploy"]);
  return withDeployImage(deploy, { repository: deploy.image.repository, ...SYNTH_LAST_DEPLOYED });
}

for (const [stack, hostName] of [
  ["staging", "staging-1"],
  ["production", "prod-1"],
] as const) {
  describe(`synth of ${stack}: the deploy`, () => {
    const run = synth(stack);
    const deploy = committedDeploy(stack);
    const host = deploy.hosts[0];
    const release = buildRelease(stack, deploy);
    const name = `deploy-${hostName}`;
    const script = host ? buildDeployScript({ stack, host, deploy, release }) : "";

    test("synth succeeds", () => assert.equal(run.status, 0, run.stderr));

    test("writes each remote command's create as commands/<name>.sh, exactly", () => {
      assert.ok(host);
      assert.equal(
        readFileSync(join(run.out, "commands", `${name}-run.sh`), "utf8"),
        buildRunCommand(deployScriptPath(release.dir, script), deployRunArgs(deploy)),
      );
      assert.equal(
        readFileSync(join(run.out, "commands", `${name}-prepare.sh`), "utf8"),
        buildPrepareScript(deploy.appDir, release.dir),
      );
    });

    test("names the deploy's stdin keys, never their values", () => {
      assert.equal(
        readFileSync(join(run.out, "commands", `${name}-run.stdin-keys`), "utf8"),
        "POSTGRES_PASSWORD\nDATABASE_URL\nJWT_SECRET_KEY\n",
      );
      assert.ok(!existsSync(join(run.out, "commands", `${name}-prepare.stdin-keys`)));
    });

    test("writes the copied compose project under remote/<name>/<remote path>", () => {
      for (const [file, text] of release.files) {
        const slug = file.replace(/[^A-Za-z0-9]+/g, "-").replace(/-+$/, "");
        assert.equal(
          readFileSync(join(run.out, "remote", `${name}-${slug}`, release.dir, file), "utf8"),
          text,
        );
      }
    });

    test("writes the copied deploy script under remote/<name>-deploy-script/<remote path>", () => {
      assert.equal(
        readFileSync(
          join(run.out, "remote", `${name}-deploy-script`, deployScriptPath(release.dir, script)),
          "utf8",
        ),
        script,
      );
    });

    test("no secret, placeholder or private key is in any command or copied file", () => {
      for (const dir of ["commands", "remote"]) {
        for (const file of filesUnder(join(run.out, dir))) {
          const text = readFileSync(join(run.out, dir, file), "utf8");
          assert.ok(!text.includes(ENCRYPTED_PLACEHOLDER), `${dir}/${file}`);
          assert.ok(!text.includes("unset:"), `${dir}/${file}`);
          assert.ok(!text.includes("PRIVATE KEY"), `${dir}/${file}`);
        }
      }
    });

    test("resources.json shows each command's host, port, user and host key, the key masked", () => {
      const resources = JSON.parse(readFileSync(join(run.out, "resources.json"), "utf8")) as {
        name: string;
        inputs: { connection?: Record<string, unknown> };
      }[];
      const connection = resources.find((r) => r.name === `${name}-run`)?.inputs.connection;
      assert.ok(host);
      assert.deepEqual(connection, {
        host: host.host,
        port: host.port,
        user: host.user,
        privateKey: "[secret]",
        ...(pinnedHostKey(host) ? { hostKey: host.hostKey } : {}),
        dialErrorLimit: 5,
        perDialTimeout: 20,
      });
    });
  });
}

test("production's committed hosts hold the placeholder key line, to replace before the first deploy", () => {
  for (const host of committedDeploy("production").hosts) {
    assert.match(host.hostKey ?? "", /^ssh-ed25519 /, host.name);
    assert.ok(isPlaceholderHostKey(host.hostKey ?? ""), `${host.name}: synth pins no placeholder`);
  }
});
