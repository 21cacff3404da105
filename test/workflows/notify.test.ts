// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the expected values are workflow YAML, where ${{ }} is GitHub's expression syntax
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { planWorkflows } from "../../src/workflows";
import { hasJq, stackConfig } from "../support/workflows";

/**
 * `workflows.notify`: each deploy job's last step posts the result to the environment's chat
 * webhook. The generated step runs for real here (bash, jq, curl) against a local HTTP server
 * that stands in for the webhook.
 */
type Step = { name: string; run?: string; if?: string; env?: Record<string, string> };
type Doc = { jobs: Record<string, { environment?: unknown; steps: Step[] }> };

const NO_TOOLS =
  (!hasJq() || spawnCheck("curl")) && process.env.CI !== "true" && "jq or curl is not installed";

function spawnCheck(cmd: string): boolean {
  return spawnSync(cmd, ["--version"]).status !== 0;
}

function plan(notify: boolean, deployMode = "pulumi-deployments") {
  return planWorkflows(stackConfig("staging", { workflows: { deployMode, notify } }));
}

function doc(files: ReturnType<typeof plan>["files"], name: string): Doc {
  const file = files.find((f) => f.path.endsWith(`/${name}`));
  assert.ok(file, name);
  return parse(file.content) as Doc;
}

interface Posted {
  readonly status: number | null;
  readonly stdout: string;
  readonly requests: { contentType?: string; body: string }[];
}

/** Runs the notify step's script with `env`, the webhook answering `answer` (none: no server). */
async function runNotify(
  script: string,
  env: Record<string, string>,
  answer: number | "none" = 200,
): Promise<Posted> {
  const requests: { contentType?: string; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      requests.push({
        ...(req.headers["content-type"] ? { contentType: req.headers["content-type"] } : {}),
        body,
      });
      res.writeHead(answer === "none" ? 200 : answer).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  if (answer === "none") await new Promise((r) => server.close(r));
  const dir = mkdtempSync(join(tmpdir(), "notify-"));
  const child = spawn("bash", ["-c", script], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      RUNNER_TEMP: dir,
      GITHUB_SERVER_URL: "https://github.example",
      GITHUB_REPOSITORY: "clicky-foundation/clicky-foundation",
      GITHUB_RUN_ID: "77",
      GITHUB_RUN_ATTEMPT: "2",
      WEBHOOK_URL: `http://127.0.0.1:${port}/services/T000/B000/secret-part`,
      ...env,
    },
  });
  let stdout = "";
  child.stdout.on("data", (b: Buffer) => {
    stdout += b.toString();
  });
  child.stderr.on("data", (b: Buffer) => {
    stdout += b.toString();
  });
  const status = await new Promise<number | null>((r) => child.once("exit", r));
  if (answer !== "none") await new Promise((r) => server.close(r));
  return { status, stdout, requests };
}

describe("deploy notifications (workflows.notify)", () => {
  test("off by default: no step reads a webhook", () => {
    for (const file of plan(false).files) {
      assert.doesNotMatch(file.content, /DEPLOY_WEBHOOK_URL|Post the result/, file.path);
    }
  });

  for (const mode of ["pulumi-deployments", "pulumi-up"]) {
    test(`on (${mode}): the deploy jobs, and only they, start with the time and end with the post, always`, () => {
      const { files } = plan(true, mode);
      for (const [name, environment, version] of [
        ["deploy-staging.yml", "staging", "${{ needs.image.outputs.tag }}"],
        ["deploy-prod.yml", "production", "${{ inputs.version }}"],
      ] as const) {
        const job = doc(files, name).jobs.deploy;
        assert.ok(job, `${name} has a deploy job`);
        assert.ok(
          job.environment,
          "the deploy job runs in its environment, which holds the webhook",
        );
        assert.equal(job.steps[0]?.name, "Note when the deploy started");
        const last = job.steps.at(-1);
        assert.equal(last?.name, "Post the result to the chat webhook");
        assert.equal(last?.if, "always()");
        assert.deepEqual(last?.env, {
          WEBHOOK_URL: "${{ secrets.DEPLOY_WEBHOOK_URL }}",
          RESULT: "${{ job.status }}",
          VERSION: version,
          ENVIRONMENT: environment,
        });
      }
      const readers = files.flatMap((f) => {
        const d = parse(f.content) as Doc;
        return Object.entries(d.jobs)
          .filter(([, j]) => JSON.stringify(j).includes("DEPLOY_WEBHOOK_URL"))
          .map(([id]) => `${f.path.split("/").pop()}:${id}`);
      });
      assert.deepEqual(readers.sort(), ["deploy-prod.yml:deploy", "deploy-staging.yml:deploy"]);
    });
  }

  const script = doc(plan(true).files, "deploy-prod.yml").jobs.deploy?.steps.at(-1)?.run ?? "";

  test("a failed deploy: Slack's {text} payload with version, environment, duration and the run's link", {
    skip: NO_TOOLS,
  }, async () => {
    const started = Math.floor(Date.now() / 1000) - 125;
    const r = await runNotify(script, {
      RESULT: "failure",
      VERSION: 'v1.2.3 "quoted" \\ $HOME',
      ENVIRONMENT: "production",
      DEPLOY_STARTED_AT: String(started),
    });
    const finished = Date.now();
    assert.equal(r.status, 0, r.stdout);
    assert.equal(r.requests.length, 1);
    assert.equal(r.requests[0]?.contentType, "application/json");
    const payload = JSON.parse(r.requests[0]?.body ?? "") as { text: string };
    assert.deepEqual(Object.keys(payload), ["text"]);
    const said =
      /^Deploy of v1\.2\.3 "quoted" \\ \$HOME to production FAILED after 2 min (\d+) s \(clicky-foundation\/clicky-foundation\): <https:\/\/github\.example\/clicky-foundation\/clicky-foundation\/actions\/runs\/77\/attempts\/2\|the run>$/.exec(
        payload.text,
      );
    assert.ok(said, payload.text);
    // The step's own clock, read while it ran: at least 125 s after the start it was given, at
    // most as long after it as this test waited for the step.
    const upTo = Math.ceil(finished / 1000) - started;
    assert.ok(
      Number(said[1]) >= 5 && 120 + Number(said[1]) <= upTo,
      `${payload.text} (at most ${upTo} s)`,
    );
    assert.match(r.stdout, /posted: deploy of .* to production FAILED/);
  });

  test("success and cancellation say so", { skip: NO_TOOLS }, async () => {
    for (const [result, word] of [
      ["success", "succeeded"],
      ["cancelled", "was cancelled"],
    ] as const) {
      const started = Math.floor(Date.now() / 1000) - 3;
      const r = await runNotify(script, {
        RESULT: result,
        VERSION: "abc123",
        ENVIRONMENT: "staging",
        DEPLOY_STARTED_AT: String(started),
      });
      const upTo = Math.ceil(Date.now() / 1000) - started;
      assert.equal(r.status, 0, r.stdout);
      const { text } = JSON.parse(r.requests[0]?.body ?? "") as { text: string };
      const said = new RegExp(`^Deploy of abc123 to staging ${word} after 0 min (\\d+) s `).exec(
        text,
      );
      assert.ok(
        said && Number(said[1]) >= 3 && Number(said[1]) <= upTo,
        `${text} (at most ${upTo} s)`,
      );
    }
  });

  test("a webhook that refuses or is gone is a warning, never a failed deploy, and its path is not printed", {
    skip: NO_TOOLS,
  }, async () => {
    const refused = await runNotify(
      script,
      { RESULT: "success", VERSION: "abc123", ENVIRONMENT: "staging" },
      500,
    );
    assert.equal(refused.status, 0);
    assert.match(refused.stdout, /::warning::could not post the deploy notification: .*500/);
    assert.doesNotMatch(refused.stdout, /secret-part|T000/);
    const gone = await runNotify(
      script,
      { RESULT: "success", VERSION: "abc123", ENVIRONMENT: "staging" },
      "none",
    );
    assert.equal(gone.status, 0);
    assert.match(
      gone.stdout,
      /::warning::could not post the deploy notification: .*(refused|connect)/i,
    );
    assert.doesNotMatch(gone.stdout, /secret-part|T000/);
    assert.equal(gone.requests.length, 0);
  });

  test("no webhook in the environment: a warning, nothing sent, the step passes", {
    skip: NO_TOOLS,
  }, async () => {
    const r = await runNotify(script, {
      WEBHOOK_URL: "",
      RESULT: "success",
      VERSION: "abc123",
      ENVIRONMENT: "staging",
    });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /::warning::no DEPLOY_WEBHOOK_URL in the staging environment/);
    assert.equal(r.requests.length, 0);
  });
});
