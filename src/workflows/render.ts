import { actionUses } from "./actions";
import { renderValue, type Value } from "./expr";
import type { Concurrency, Job, Step, Triggers, Workflow } from "./model";
import { isRunStep } from "./model";

/** A workflow in GitHub's own keys, as YAML will hold it. */
export type RenderedWorkflow = Record<string, unknown>;

/**
 * Maps the model to GitHub's keys (`runs-on`, `timeout-minutes`, ...), in GitHub's usual key
 * order, dropping everything undefined. Pure: the same model always renders the same object.
 */
export function renderWorkflow(workflow: Workflow): RenderedWorkflow {
  return compact({
    name: workflow.name,
    on: renderTriggers(workflow.on),
    permissions: { ...workflow.permissions },
    concurrency: workflow.concurrency && renderConcurrency(workflow.concurrency),
    jobs: Object.fromEntries(workflow.jobs.map(({ id, job }) => [id, renderJob(job)])),
  });
}

function renderTriggers(on: Triggers): Record<string, unknown> {
  return compact({
    pull_request: on.pullRequest && { branches: [...on.pullRequest.branches] },
    push: on.push && compact({ ...on.push }),
    workflow_dispatch: on.workflowDispatch && compact({ inputs: on.workflowDispatch.inputs }),
    schedule: on.schedule?.map((cron) => ({ cron })),
  });
}

function renderConcurrency(c: Concurrency): Record<string, unknown> {
  return { group: renderValue(c.group), "cancel-in-progress": c.cancelInProgress };
}

export function renderJob(job: Job): Record<string, unknown> {
  return compact({
    name: job.name,
    needs: job.needs && job.needs.length > 0 ? [...job.needs] : undefined,
    if: job.if?.text,
    "runs-on": job.runsOn,
    "timeout-minutes": job.timeoutMinutes,
    permissions: { ...job.permissions },
    environment: job.environment && {
      name: job.environment.name,
      ...(job.environment.url === undefined ? {} : { url: renderValue(job.environment.url) }),
    },
    concurrency: job.concurrency && renderConcurrency(job.concurrency),
    strategy: job.strategy && {
      ...(job.strategy.failFast === undefined ? {} : { "fail-fast": job.strategy.failFast }),
      matrix: job.strategy.matrix,
    },
    services:
      job.services &&
      Object.fromEntries(
        Object.entries(job.services).map(([name, s]) => [
          name,
          compact({ image: s.image, env: s.env, ports: s.ports, options: s.options?.join(" ") }),
        ]),
      ),
    env: renderMap(job.env),
    outputs: renderMap(job.outputs),
    steps: job.steps.map(renderStep),
  });
}

function renderStep(step: Step): Record<string, unknown> {
  const common = { name: step.name, id: step.id, if: step.if?.text };
  if (isRunStep(step)) {
    return compact({
      ...common,
      "working-directory": step.workingDirectory,
      env: renderMap(step.env),
      run: step.run,
    });
  }
  return compact({
    ...common,
    uses: actionUses(step.uses),
    env: renderMap(step.env),
    with: renderMap(step.with),
  });
}

function renderMap(
  map: Readonly<Record<string, Value>> | undefined,
): Record<string, unknown> | undefined {
  if (map === undefined) return undefined;
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, renderValue(v)]));
}

/** A copy without the keys whose value is `undefined`. */
function compact<T extends Record<string, unknown>>(value: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}
