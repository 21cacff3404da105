import { isShaPinned } from "./actions";
import { isRunStep, type Job, type JobEntry, type Workflow } from "./model";

const JOB_ID = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const EXACT_TAG = /^v?\d+\.\d+\.\d+$/;

/**
 * Assembles a {@link Workflow}, checking each job's rules as it is added so the error names the
 * offender (`pr.yml: job "lint": ...`), not a linter finding later in a generated file.
 *
 * @example new WorkflowBuilder({ file: "pr.yml", ... }).addJob("lint", lintJob).build()
 */
export class WorkflowBuilder {
  private readonly jobs: JobEntry[] = [];

  constructor(private readonly spec: Omit<Workflow, "jobs">) {}

  addJob(id: string, job: Job): this {
    const where = `${this.spec.file}: job "${id}"`;
    if (!JOB_ID.test(id)) throw new Error(`${where}: a job id is letters, digits, '-' and '_'`);
    if (this.jobs.some((j) => j.id === id)) throw new Error(`${where}: is defined twice`);
    if ((job as Partial<Job>).permissions === undefined) {
      throw new Error(`${where}: all workflow jobs must have a "permissions" clause`);
    }
    if (job.name.trim() === "" || job.name.includes("${{")) {
      throw new Error(
        `${where}: needs a literal name (required checks are computed from job names)`,
      );
    }
    const twin = this.jobs.find((j) => j.job.name === job.name);
    if (twin) {
      throw new Error(
        `${where}: name "${job.name}" is already job "${twin.id}"'s; two jobs would report one check`,
      );
    }
    if (!(job.timeoutMinutes > 0)) throw new Error(`${where}: needs a positive timeoutMinutes`);
    for (const need of job.needs ?? []) {
      if (!this.jobs.some((j) => j.id === need)) {
        throw new Error(`${where}: needs "${need}", which is not a job added before it`);
      }
    }
    for (const [name, service] of Object.entries(job.services ?? {})) {
      if (!/:[^/]+$/.test(service.image)) {
        throw new Error(`${where}: service "${name}" image "${service.image}" needs a tag`);
      }
    }
    const stepIds = new Set<string>();
    for (const step of job.steps) {
      const at = `${where}, step "${step.name}"`;
      if (step.id !== undefined) {
        if (stepIds.has(step.id)) throw new Error(`${at}: step id "${step.id}" is used twice`);
        stepIds.add(step.id);
      }
      if (isRunStep(step)) {
        if (step.run.includes("${{")) {
          throw new Error(
            `${at}: a run script must not contain \${{ }} (script injection); pass the value through env`,
          );
        }
      } else if (!isShaPinned(step.uses) && !EXACT_TAG.test(step.uses.ref)) {
        throw new Error(
          `${at}: ${step.uses.action}@${step.uses.ref} is neither a commit SHA nor an exact release tag`,
        );
      }
    }
    if (job.steps.length === 0) throw new Error(`${where}: has no steps`);
    this.jobs.push({ id, job });
    return this;
  }

  build(): Workflow {
    if (this.jobs.length === 0) throw new Error(`${this.spec.file}: has no jobs`);
    return { ...this.spec, jobs: [...this.jobs] };
  }
}
