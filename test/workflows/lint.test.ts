import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { planWorkflows } from "../../src/workflows";
import { withLogin } from "../support/program";
import { actionlint, hasShellcheck, parserErrors, stackConfig } from "../support/workflows";

/** Both deploy modes and both logins: their deploy jobs differ, and each must lint clean. */
const OIDC = withLogin("staging", "oidc");
const PLANS = {
  "pulumi-deployments": planWorkflows(stackConfig("staging")),
  "pulumi-up": planWorkflows(stackConfig("staging", { workflows: { deployMode: "pulumi-up" } })),
  "pulumi-deployments, OIDC login": planWorkflows(stackConfig("staging", OIDC)),
  "pulumi-up, OIDC login": planWorkflows(
    stackConfig("staging", { ...OIDC, workflows: { deployMode: "pulumi-up" } }),
  ),
  "pulumi-deployments, notify": planWorkflows(
    stackConfig("staging", { workflows: { notify: true } }),
  ),
  "pulumi-up, notify": planWorkflows(
    stackConfig("staging", { workflows: { deployMode: "pulumi-up", notify: true } }),
  ),
};

for (const [mode, plan] of Object.entries(PLANS)) {
  describe(`generated workflows (${mode})`, () => {
    for (const file of plan.files) {
      test(`${file.path}: actionlint reports nothing`, async () => {
        assert.deepEqual(await actionlint(file.content, file.path), []);
      });
      test(`${file.path}: GitHub's workflow parser reports no error`, () => {
        assert.deepEqual(parserErrors(file.path, file.content), []);
      });
    }
  });
}

describe("the linters can fail (so a clean result means something)", () => {
  const bad = `on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "\${{ github.event.head_commit.message }}"
      - uses: actions/checkout@v4
        with:
          not-an-input: [1
`;
  test("actionlint reports script injection in a run script", async () => {
    const injection = `on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "\${{ github.event.head_commit.message }}"
`;
    const findings = await actionlint(injection, ".github/workflows/bad.yml");
    assert.ok(
      findings.some((f) => /potentially untrusted/.test(f.message)),
      JSON.stringify(findings),
    );
  });
  test("GitHub's parser reports a malformed workflow", () => {
    assert.ok(parserErrors("bad.yml", bad).length > 0);
  });
  test("GitHub's parser reports an unknown job key", () => {
    const errors = parserErrors(
      "bad.yml",
      "on: push\njobs:\n  a:\n    runs-on: x\n    stepz: []\n",
    );
    assert.ok(
      errors.some((e) => /stepz/.test(e)),
      errors.join("\n"),
    );
  });
});

describe("every run script passes shellcheck", () => {
  const available = hasShellcheck();
  const dir = mkdtempSync(join(tmpdir(), "workflow-scripts-"));
  test("shellcheck is installed (CI must have it)", {
    skip: !available && process.env.CI !== "true" && "shellcheck is not installed here",
  }, () => {
    assert.ok(available, "install shellcheck (apt-get install -y shellcheck)");
  });
  for (const [mode, plan] of Object.entries(PLANS)) {
    for (const file of plan.files) {
      const doc = parse(file.content) as {
        jobs: Record<string, { steps: { name: string; run?: string }[] }>;
      };
      for (const [id, job] of Object.entries(doc.jobs)) {
        for (const step of job.steps.filter((s) => s.run !== undefined)) {
          test(`${mode} ${file.path} ${id}: ${step.name}`, {
            skip: !available && "shellcheck is not installed",
          }, () => {
            const path = join(dir, `${id}.sh`);
            writeFileSync(path, `#!/usr/bin/env bash\n${step.run}\n`);
            try {
              execFileSync("shellcheck", ["--shell=bash", path], { encoding: "utf8" });
            } catch (err) {
              assert.fail(String((err as { stdout?: string }).stdout ?? err));
            }
          });
        }
      }
    }
  }
});
