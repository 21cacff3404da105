import { WorkflowBuilder } from "../builder";
import { expr } from "../expr";
import type { Workflow } from "../model";
import type { PipelineSettings } from "../settings";
import { inProgram, programSteps } from "../steps";

/**
 * Drift detection (`drift.yml`), on a schedule and by hand: `pulumi preview --refresh
 * --expect-no-changes --diff` of every stack, failing when GitHub or a host no longer matches
 * the program.
 *
 * The job runs in no environment: a scheduled job in `production` would wait for a reviewer.
 * Its credential is the repository secret `PULUMI_DRIFT_TOKEN`, a Pulumi token that can read
 * (and so preview) the stacks but never update them; the deploy tokens stay in their
 * environments.
 */
export function driftPipeline(settings: PipelineSettings): Workflow {
  return new WorkflowBuilder({
    file: "drift.yml",
    name: "Drift Detection",
    source: "src/workflows/pipelines/drift.ts",
    on: { schedule: [settings.driftCron], workflowDispatch: {} },
    permissions: {},
    concurrency: { group: "drift", cancelInProgress: false },
  })
    .addJob("drift", {
      name: "Drift",
      runsOn: "ubuntu-latest",
      timeoutMinutes: 30,
      permissions: { contents: "read" },
      strategy: {
        failFast: false,
        matrix: { stack: [settings.staging.stack, settings.production.stack] },
      },
      steps: [
        ...programSteps(settings),
        {
          name: "Preview with refresh; fail on any change",
          ...inProgram(settings),
          env: {
            PULUMI_ACCESS_TOKEN: expr.secret("PULUMI_DRIFT_TOKEN"),
            STACK: expr.matrix("stack"),
          },
          run: 'pulumi preview --stack "$STACK" --refresh --expect-no-changes --diff --non-interactive',
        },
      ],
    })
    .build();
}
