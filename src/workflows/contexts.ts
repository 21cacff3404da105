import type { Job, Workflow } from "./model";

/**
 * The status check contexts one job reports: its name, or one context per matrix combination,
 * `Name (value1, value2)`, with values in the order of the matrix keys (GitHub's own naming
 * for a matrix job whose name has no expression).
 *
 * A job with both a matrix and an `if` is refused: when skipped it reports a single check
 * without the suffix, so a required `Name (value)` would wait forever.
 *
 * @example jobContexts({ name: "Drift", strategy: { matrix: { stack: ["a", "b"] } }, ... })
 *   // ["Drift (a)", "Drift (b)"]
 */
export function jobContexts(id: string, job: Job): string[] {
  if (job.strategy === undefined) return [job.name];
  if (job.if !== undefined) {
    throw new Error(
      `job "${id}": a matrix job with an "if" reports "${job.name}" without its matrix suffix when skipped; drop the matrix or the condition`,
    );
  }
  let combos: (string | number)[][] = [[]];
  for (const values of Object.values(job.strategy.matrix)) {
    combos = combos.flatMap((combo) => values.map((v) => [...combo, v]));
  }
  return combos.map((combo) => `${job.name} (${combo.join(", ")})`);
}

/**
 * The contexts the default branch's ruleset requires: every check the PR pipeline reports,
 * derived from its model (job names, matrix suffixes), never typed a second time.
 */
export function requiredContexts(prPipeline: Workflow): string[] {
  return prPipeline.jobs.flatMap(({ id, job }) => jobContexts(id, job));
}
