/**
 * Host drift, end to end: the program (under Pulumi's mocks, with the engine's rules between
 * runs from test/support/lifecycle.ts) reads the harness host over real SSH with its own probe
 * (`sshProber`), and what the engine would then run (the prepare, copies and deploy commands it
 * plans to create or replace) runs for real on the host, in registration order, as the command
 * provider runs it.
 *
 * Each kind of drift: the serving container removed; the compose file edited on the host (and
 * the deploy run on it without the copies, which refuses it); the proxy's live site edited and
 * loaded by hand; the host rebuilt (containers, volumes and files gone). For each: `preview`
 * shows a replace and a warning naming the host and what differs, `up` puts the host back, and
 * the next `preview` plans nothing.
 */
import assert from "node:assert/strict";
import { after, before, describe, mock, test } from "node:test";
import { sshProber } from "../../../src/deploy/host-probe";
import { COMMAND_TYPE, COPY_TYPE } from "../../../src/synth/outputs";
import { redact, reveal } from "../../../src/synth/wire";
import {
  cleanupProject,
  composeContainers,
  copyOverSsh,
  e2eSkip,
  ensureHarness,
  freePort,
  type Harness,
  harnessAvailability,
  harnessInstance,
  httpGet,
  type LoadResult,
  runAsProvider,
  runLocal,
  runOverSsh,
  startLoad,
} from "../../harness";
import { e2eDeployConfig, e2eSecrets } from "../../support/e2e-config";
import {
  EMPTY_STATE,
  type LifecycleRun,
  lifecycleRun,
  type StackState,
} from "../../support/lifecycle";
import { TEST_SECRETS } from "../../support/render";
import { describeSteps, SECRETS } from "../../support/stacks";

const availability = harnessAvailability();
const skip = e2eSkip("drift e2e");
const APP_DIR = `/home/deploy/clicky-drift-${harnessInstance()}`;
const PROJECT = `clickydrift${harnessInstance()}`;

/** One `pulumi preview` or `pulumi up`, and what it warned. */
interface Run {
  readonly run: LifecycleRun;
  readonly warnings: readonly string[];
  /** What ran on the host (`up` only): `prepare`, `copy <file>`, `deploy`. */
  readonly performed: readonly string[];
  /** The deploy's output, when it ran. */
  readonly deployOutput?: string;
}

describe("host drift, end to end", { skip }, () => {
  let h: Harness;
  let port = 0;
  let state: StackState = EMPTY_STATE;
  const timings: string[] = [];

  before(
    async () => {
      if (!availability.ok)
        throw new Error(`CI=true but e2e cannot run here: ${availability.reason}`);
      h = await ensureHarness();
      port = await freePort();
      await cleanupProject(h, APP_DIR, PROJECT);
    },
    { timeout: 40 * 60_000 },
  );

  after(async () => {
    console.log(`# drift e2e:\n${timings.map((t) => `#   ${t}`).join("\n")}`);
    if (h) await cleanupProject(h, APP_DIR, PROJECT);
  });

  const url = (path: string) => `http://127.0.0.1:${port}${path}`;
  const onHost = async (script: string) => {
    const r = await runOverSsh(h, script);
    assert.equal(r.code, 0, `${script}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };

  /** The program's run against the host, then (for `up`) the engine's planned steps for real. */
  async function pulumi(operation: "preview" | "up"): Promise<Run> {
    const warnings: string[] = [];
    const warn = mock.method(console, "warn", (...args: unknown[]) => {
      warnings.push(args.map(String).join(" "));
    });
    let run: LifecycleRun;
    const started = Date.now();
    try {
      run = await lifecycleRun({
        stack: "staging",
        mode: "up",
        operation,
        state,
        secrets: { ...SECRETS, ...TEST_SECRETS, ...e2eSecrets(h) },
        overrides: {
          deploy: e2eDeployConfig(
            h,
            port,
            { tag: "v1" },
            { appDir: APP_DIR, composeProject: PROJECT },
          ),
        },
        hostProber: sshProber,
      });
    } finally {
      warn.mock.restore();
    }
    timings.push(`${operation}: program and probe ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.deepEqual(run.errors, []);
    const performed: string[] = [];
    let deployOutput: string | undefined;
    if (operation === "up") {
      const planned = new Map(
        run.steps
          .filter((s) => s.op === "create" || s.op === "replace")
          .map((s) => [`${s.type}::${s.name}`, s]),
      );
      for (const r of run.run.resources) {
        if (!planned.has(`${r.type}::${r.name}`)) continue;
        if (r.type === COPY_TYPE) {
          const remotePath = String(r.inputs.remotePath);
          const text = (redact(r.inputs.source) as { text: string }).text;
          await copyOverSsh(h, [{ remotePath, content: text }]);
          performed.push(`copy ${remotePath.slice(remotePath.lastIndexOf("/") + 1)}`);
        } else if (r.type === COMMAND_TYPE && r.name.endsWith("-prepare")) {
          const p = await runOverSsh(h, String(r.inputs.create));
          assert.equal(p.code, 0, p.stderr);
          performed.push("prepare");
        } else if (r.type === COMMAND_TYPE && r.name.endsWith("-run")) {
          const d = await runAsProvider(h, String(r.inputs.create), {
            stdin: String(reveal(r.inputs.stdin)),
            timeoutMs: 5 * 60_000,
          });
          deployOutput = d.result.stdout + d.result.stderr;
          assert.equal(d.result.code, 0, deployOutput);
          performed.push("deploy");
        }
      }
      state = run.state;
    }
    return { run, warnings, performed, ...(deployOutput === undefined ? {} : { deployOutput }) };
  }

  /** A preview that plans nothing and warns of nothing: the host is as the stack says. */
  async function inSync(label: string): Promise<void> {
    const p = await pulumi("preview");
    assert.equal(describeSteps(p.run.changes), "", `${label}: ${p.warnings.join("\n")}`);
    assert.deepEqual(p.warnings, [], label);
  }

  /** A preview that plans the host's commands again and says why. */
  async function driftShown(expected: RegExp): Promise<Run> {
    const p = await pulumi("preview");
    const replaced = p.run.changes.filter((s) => s.op === "replace").map((s) => s.name);
    assert.ok(replaced.includes("deploy-e2e-run"), describeSteps(p.run.changes));
    assert.ok(replaced.includes("deploy-e2e-prepare"), describeSteps(p.run.changes));
    for (const s of p.run.changes)
      assert.deepEqual(s.keys, ["replacementTrigger"], describeSteps(p.run.changes));
    const drift = p.warnings.filter((w) => w.includes("drift: host e2e"));
    assert.equal(drift.length, 1, p.warnings.join("\n"));
    assert.match(drift[0] ?? "", expected);
    assert.match(
      drift[0] ?? "",
      /`pulumi up` runs prepare, the release copies and the deploy on it again/,
    );
    timings.push(`drift: ${drift[0]}`);
    return p;
  }

  function noFailure(label: string, r: LoadResult): void {
    timings.push(
      `${label}: ${r.sent} requests, ${r.ok2xx} 2xx, ${r.non2xxTotal} non-2xx, ${r.errorsTotal} errors`,
    );
    assert.ok(r.sent >= 40, `only ${r.sent} requests`);
    assert.deepEqual(
      { non2xx: r.non2xx, errors: r.errors },
      { non2xx: {}, errors: {} },
      JSON.stringify(r.failures.slice(0, 5)),
    );
  }

  test("a first deploy, then a preview that plans nothing", { timeout: 10 * 60_000 }, async () => {
    const up = await pulumi("up");
    assert.deepEqual(up.performed.slice(0, 1), ["prepare"]);
    assert.ok(up.performed.includes("deploy"), up.performed.join(", "));
    assert.equal((await httpGet(url("/health"))).status, 200);
    await inSync("after the first deploy");
  });

  test("the serving container removed: preview names it, up brings the app back", {
    timeout: 10 * 60_000,
  }, async () => {
    const [serving] = await composeContainers(PROJECT, "backend-blue");
    assert.ok(serving, "blue serves after the first deploy");
    await runLocal("docker", ["rm", "-f", serving]);
    assert.notEqual((await httpGet(url("/health")).catch(() => ({ status: 0 }))).status, 200);
    await driftShown(/backend-blue \(serving\) has no container/);
    const up = await pulumi("up");
    assert.ok(up.performed.includes("deploy"));
    assert.match(up.deployOutput ?? "", /deployed v1/);
    assert.equal((await httpGet(url("/health"))).status, 200);
    await inSync("after the repair");
  });

  test("the compose file edited on the host: the deploy refuses it; preview names it, up copies it back", {
    timeout: 10 * 60_000,
  }, async () => {
    const release = (await onHost(`readlink ${APP_DIR}/current`)).trim();
    await onHost(`printf '# edited by hand\\n' >>${release}/docker-compose.yml`);
    // The deploy alone (no copies before it), as when the file is edited between the copy and the run.
    const p = await driftShown(
      /releases\/[0-9a-f]{12}\/docker-compose.yml differs from the stack's \(changed on the host\)/,
    );
    const runCommand = p.run.run.resources.find(
      (r) => r.type === COMMAND_TYPE && r.name === "deploy-e2e-run",
    );
    assert.ok(runCommand);
    const alone = await runAsProvider(h, String(runCommand.inputs.create), {
      stdin: String(reveal(runCommand.inputs.stdin)),
    });
    assert.notEqual(alone.result.code, 0);
    assert.match(
      alone.result.stderr,
      /docker-compose.yml differs from release [0-9a-f]{12} of the stack \(changed on the host after it was copied\); run pulumi up again, which copies it back; nothing was changed/,
    );
    const load = startLoad({
      url: url("/health"),
      ratePerSecond: 40,
      durationMs: 120_000,
      keepAlive: "mixed",
    });
    const up = await pulumi("up");
    noFailure("compose file put back", await load.stop());
    assert.ok(up.performed.includes("copy docker-compose.yml"), up.performed.join(", "));
    assert.match(up.deployOutput ?? "", /nothing to do/);
    assert.doesNotMatch(await onHost(`cat ${release}/docker-compose.yml`), /edited by hand/);
    await inSync("after the copy");
  });

  test("the proxy's live site edited and loaded by hand: preview names it, up puts it back and reloads", {
    timeout: 10 * 60_000,
  }, async () => {
    const [proxy] = await composeContainers(PROJECT, "proxy");
    assert.ok(proxy);
    await onHost(
      `sed -i 's|^  location / {|  location / {\\n    add_header X-Hand-Edit yes always;|' ${APP_DIR}/proxy/site.conf`,
    );
    await runLocal("docker", ["kill", "--signal", "HUP", proxy]);
    let edited = "";
    for (let i = 0; i < 50 && !edited; i++) {
      edited = String((await httpGet(url("/health"))).headers["x-hand-edit"] ?? "");
      if (!edited) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(edited, "yes", "nginx serves the hand edit");
    await driftShown(
      /proxy\/site.conf \(the proxy's live copy\) differs from the release's \(changed on the host\)/,
    );
    // A reload closes idle keep-alive connections, which a client may be about to reuse, so
    // this load opens a connection per request (docs/drift.md says so).
    const load = startLoad({
      url: url("/health"),
      ratePerSecond: 40,
      durationMs: 120_000,
      keepAlive: false,
    });
    const up = await pulumi("up");
    noFailure("proxy site put back", await load.stop());
    assert.match(
      up.deployOutput ?? "",
      /the proxy's site files were changed on the host \(site.conf\): put back as release [0-9a-f]{12} has them, and nginx reloaded/,
    );
    assert.equal((await httpGet(url("/health"))).headers["x-hand-edit"], undefined);
    await inSync("after the site repair");
  });

  test("the host rebuilt (containers, volumes and files gone): preview says so, up deploys it again", {
    timeout: 10 * 60_000,
  }, async () => {
    await cleanupProject(h, APP_DIR, PROJECT);
    await driftShown(/no deploy record \(\S+\/state\/current\): the host was wiped or rebuilt/);
    const up = await pulumi("up");
    assert.equal(up.performed[0], "prepare");
    assert.ok(up.performed.includes("deploy"));
    assert.equal((await httpGet(url("/health"))).status, 200);
    await inSync("after the rebuild");
  });
});
