import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { planWorkflows } from "../../src/workflows";
import { jobContexts } from "../../src/workflows/contexts";
import { expr } from "../../src/workflows/expr";
import type { Job } from "../../src/workflows/model";
import { stackConfig } from "../support/workflows";

const base: Job = {
  name: "Drift",
  runsOn: "ubuntu-latest",
  timeoutMinutes: 5,
  permissions: {},
  steps: [{ name: "x", run: "true" }],
};

describe("job contexts", () => {
  test("a plain job reports its name", () => assert.deepEqual(jobContexts("d", base), ["Drift"]));
  test("a matrix job reports one context per combination, values in key order", () => {
    const job = { ...base, strategy: { matrix: { os: ["linux", "mac"], node: [20] } } };
    assert.deepEqual(jobContexts("d", job), ["Drift (linux, 20)", "Drift (mac, 20)"]);
  });
  test("a conditional matrix job is refused, naming it", () => {
    const job = { ...base, if: expr.eq(expr.github("ref"), "x"), strategy: { matrix: { a: [1] } } };
    assert.throws(() => jobContexts("drift", job), /job "drift": a matrix job with an "if"/);
  });
});

describe("the ruleset's required contexts", () => {
  const plan = planWorkflows(stackConfig("staging"));
  const pr = plan.files.find((f) => f.path.endsWith("/pr.yml"));
  assert.ok(pr);
  /** What GitHub will report for the file as written: job names plus matrix suffixes. */
  const doc = parse(pr.content) as {
    jobs: Record<string, { name: string; strategy?: { matrix: Record<string, unknown[]> } }>;
  };
  const produced = Object.values(doc.jobs).flatMap((job) => {
    if (!job.strategy) return [job.name];
    let combos: unknown[][] = [[]];
    for (const values of Object.values(job.strategy.matrix)) {
      combos = combos.flatMap((c) => values.map((v) => [...c, v]));
    }
    return combos.map((c) => `${job.name} (${c.join(", ")})`);
  });

  test("every required context is produced by a job of the rendered PR pipeline", () => {
    for (const context of plan.requiredContexts) {
      assert.ok(produced.includes(context), `"${context}" is required but no PR job reports it`);
    }
  });
  test("and every check of the PR pipeline is required (none forgotten)", () => {
    assert.deepEqual([...plan.requiredContexts].sort(), [...produced].sort());
  });
  test("are the spec's checks plus the change detection", () => {
    assert.deepEqual(plan.requiredContexts, [
      "Detect Changes",
      "Backend Lint & Format",
      "Backend Tests",
      "Backend Security Scan",
      "Mobile Lint & Type Check",
      "Mobile Tests",
      "Mobile Security Scan",
      "Docker Build Check",
      "Pulumi Program Checks",
    ]);
  });
  test("include the program's checks only while the program lives in the app repository", () => {
    const elsewhere = planWorkflows(
      stackConfig("staging", {
        deployments: {
          backend: "cloud",
          organization: "clicky-foundation",
          source: { repository: "clicky-foundation/delivery", directory: "." },
        },
      }),
    );
    assert.ok(!elsewhere.requiredContexts.includes("Pulumi Program Checks"));
    const pr = elsewhere.files.find((f) => f.path.endsWith("/pr.yml"));
    assert.ok(pr && !pr.content.includes("program-checks"));
  });
  test("no required job can be skipped in a way that leaves its check unreported", () => {
    for (const [id, job] of Object.entries(doc.jobs) as [
      string,
      { if?: string; strategy?: unknown },
    ][]) {
      assert.ok(!(job.if && job.strategy), `${id} is a conditional matrix job`);
    }
  });
});
