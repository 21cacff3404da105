// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the inputs are raw workflow YAML, where ${{ }} is GitHub's expression syntax (some of it beyond what src/workflows/expr.ts builds)
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { jobSecretReads } from "../../policy/workflow-secrets";

/** A workflow with one job `j` whose body is `job` (YAML, indented by four). */
function oneJob(job: string, top = ""): string {
  return `${top}jobs:\n  j:\n${job
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n")}\n`;
}

describe("which secrets a workflow job reads", () => {
  const cases: readonly {
    readonly name: string;
    readonly yaml: string;
    readonly secrets: readonly string[];
    readonly environment?: string;
    readonly readsAll?: RegExp;
  }[] = [
    {
      name: "secrets.NAME in a step's env",
      yaml: oneJob("steps:\n  - run: x\n    env:\n      T: ${{ secrets.PULUMI_DRIFT_TOKEN }}"),
      secrets: ["PULUMI_DRIFT_TOKEN"],
    },
    {
      name: "secrets['NAME'] and lower case, in a with: value",
      yaml: oneJob("steps:\n  - uses: a/b@c\n    with:\n      token: ${{ secrets['expo_token'] }}"),
      secrets: ["EXPO_TOKEN"],
    },
    {
      name: "an if: condition without ${{ }}",
      yaml: oneJob("if: secrets.EXPO_TOKEN != ''\nsteps:\n  - run: x"),
      secrets: ["EXPO_TOKEN"],
    },
    {
      name: "a step's if: condition, and two secrets in one expression",
      yaml: oneJob("steps:\n  - run: x\n    if: ${{ secrets.A != '' && secrets.B != '' }}"),
      secrets: ["A", "B"],
    },
    {
      name: "a secret inside a run script's text is not an expression",
      yaml: oneJob("steps:\n  - run: echo secrets.EXPO_TOKEN"),
      secrets: [],
    },
    {
      name: "other contexts named like it are not the secrets context",
      yaml: oneJob(
        "steps:\n  - run: x\n    env:\n      A: ${{ inputs.secrets }}\n      B: ${{ steps.my-secrets.outputs.x }}",
      ),
      secrets: [],
    },
    {
      name: "the workflow-level env counts for every job",
      yaml: oneJob("steps:\n  - run: x", "env:\n  T: ${{ secrets.PULUMI_DRIFT_TOKEN }}\n"),
      secrets: ["PULUMI_DRIFT_TOKEN"],
    },
    {
      name: "environment as a string",
      yaml: oneJob("environment: production\nsteps:\n  - run: x"),
      secrets: [],
      environment: "production",
    },
    {
      name: "environment as { name, url }",
      yaml: oneJob("environment:\n  name: drift\n  url: https://x\nsteps:\n  - run: x"),
      secrets: [],
      environment: "drift",
    },
    {
      name: "secrets: inherit reads every secret",
      yaml: oneJob("uses: ./.github/workflows/shared.yml\nsecrets: inherit"),
      secrets: [],
      readsAll: /^secrets: inherit$/,
    },
    {
      name: "toJSON(secrets) reads every secret",
      yaml: oneJob("steps:\n  - run: x\n    env:\n      ALL: ${{ toJSON(secrets) }}"),
      secrets: [],
      readsAll: /the whole secrets context/,
    },
    {
      name: "an index that is not a literal reads every secret",
      yaml: oneJob("steps:\n  - run: x\n    env:\n      T: ${{ secrets[inputs.name] }}"),
      secrets: [],
      readsAll: /the whole secrets context/,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const [job, ...rest] = jobSecretReads(c.yaml);
      assert.equal(rest.length, 0);
      assert.equal(job?.job, "j");
      assert.deepEqual(job?.secrets, c.secrets);
      assert.equal(job?.environment, c.environment);
      if (c.readsAll) assert.match(job?.readsAll ?? "", c.readsAll);
      else assert.equal(job?.readsAll, undefined);
    });
  }

  test("a file that is not YAML throws the parser's error", () => {
    assert.throws(() => jobSecretReads("jobs: [\n"), /Flow sequence|flow collection|Missing/i);
  });
});
