import assert from "node:assert/strict";
import { test } from "node:test";
import { parse } from "yaml";
import { planWorkflows } from "../../src/workflows";
import { stackConfig } from "../support/workflows";

type Job = {
  name: string;
  environment?: { name: string };
  steps: { run?: string; env?: Record<string, string> }[];
};

/** Every job of every generated file, for Pulumi Deployments and for `pulumi up` in the job. */
const jobs = [
  stackConfig("staging"),
  stackConfig("staging", { workflows: { deployMode: "pulumi-up" } }),
].flatMap((config) =>
  planWorkflows(config).files.flatMap((f) =>
    Object.entries((parse(f.content) as { jobs: Record<string, Job> }).jobs).map(([id, job]) => ({
      file: `${config.workflows.deployMode ?? "default"}: ${f.path}`,
      id,
      job,
    })),
  ),
);

/** Steps that change a stack: `pulumi up` or a Pulumi Deployments update. */
function updatesStack(job: Job, stack: string): boolean {
  return job.steps.some((s) => {
    const script = s.run ?? "";
    const target = `${s.env?.STACK ?? ""} ${script}`;
    const updates = /pulumi (up|deployment run update)\b/.test(script);
    return updates && new RegExp(`(^|[/\\s"])${stack}\\b`).test(target);
  });
}

test("the production stack is updated only by jobs of the production environment", () => {
  const updaters = jobs.filter(({ job }) => updatesStack(job, "production"));
  assert.ok(updaters.length >= 2, "a job deploys production in each mode");
  for (const { file, id, job } of updaters) {
    assert.equal(job.environment?.name, "production", `${file}: ${id}`);
  }
});

test("the staging stack is updated only by jobs of the staging environment", () => {
  const updaters = jobs.filter(({ job }) => updatesStack(job, "staging"));
  assert.ok(updaters.length >= 2, "a job deploys staging in each mode");
  for (const { file, id, job } of updaters) {
    assert.equal(job.environment?.name, "staging", `${file}: ${id}`);
  }
});

test("an environment's deploy token is read only by jobs of that environment", () => {
  for (const { file, id, job } of jobs) {
    const reads = job.steps.some((s) =>
      Object.values(s.env ?? {}).some((v) => v.includes("secrets.PULUMI_ACCESS_TOKEN")),
    );
    if (reads)
      assert.ok(
        job.environment?.name,
        `${file}: ${id} reads a deploy token outside an environment`,
      );
  }
});

test("every update and every drift preview runs the policy pack", () => {
  const runs = jobs.flatMap(({ file, id, job }) =>
    job.steps
      .map((s) => s.run ?? "")
      .filter((script) => /^\s*pulumi (up|deployment run|preview)\b/m.test(script))
      .map((script) => ({ where: `${file}: ${id}`, script })),
  );
  assert.ok(runs.length >= 5, "deploys of both stacks in both modes, and the drift preview");
  for (const { where, script } of runs) {
    assert.match(script, /--policy-pack policy\b/, where);
  }
});
