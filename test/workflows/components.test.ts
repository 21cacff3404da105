import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { GITHUB_ACTIONS_APP_ID, rulesetInputs } from "../../src/github/ruleset";
import { contentHash, workflowCommitPlan } from "../../src/github/workflow-files";
import { planWorkflows } from "../../src/workflows";
import { byName, ofType, runProgram } from "../support/program";
import { stackConfig } from "../support/workflows";

const FILE = "github:index/repositoryFile:RepositoryFile";
const BRANCH = "github:index/branch:Branch";
const PR = "github:index/repositoryPullRequest:RepositoryPullRequest";
const RULESET = "github:index/repositoryRuleset:RepositoryRuleset";

const plan = planWorkflows(stackConfig("staging"));

describe("the repository-owning stack (staging) under mocks", async () => {
  const run = await runProgram({ stack: "staging", mode: "synth" });

  test("runs without error", () => assert.equal(run.error, undefined));
  test("commits every workflow file, with exactly the rendered content", () => {
    const files = ofType(run, FILE);
    assert.deepEqual(
      files.map((f) => f.inputs.file),
      plan.files.map((f) => f.path),
    );
    for (const f of files) {
      const expected = plan.files.find((p) => p.path === f.inputs.file);
      assert.equal(f.inputs.content, expected?.content);
      assert.equal(f.inputs.overwriteOnCreate, true);
    }
  });
  test("on a branch of their own with a pull request into main (pull-request mode)", () => {
    const branch = byName(run, BRANCH, "workflows-branch");
    assert.match(String(branch.inputs.branch), /^clicky-delivery\/workflows-[0-9a-f]{12}$/);
    assert.equal(branch.inputs.sourceBranch, "main");
    for (const f of ofType(run, FILE)) assert.equal(f.inputs.branch, branch.inputs.branch);
    const pr = byName(run, PR, "workflows-pull-request");
    assert.equal(pr.inputs.baseRef, "main");
    assert.equal(pr.inputs.headRef, branch.inputs.branch);
  });
  test("a ruleset on the default branch requires the PR pipeline's checks from GitHub Actions", () => {
    const ruleset = byName(run, RULESET, "default-branch");
    assert.equal(ruleset.inputs.enforcement, "active");
    assert.deepEqual(ruleset.inputs.conditions, {
      refName: { includes: ["~DEFAULT_BRANCH"], excludes: [] },
    });
    const rules = ruleset.inputs.rules as {
      pullRequest: unknown;
      requiredStatusChecks: { requiredChecks: { context: string; integrationId: number }[] };
    };
    assert.ok(rules.pullRequest);
    assert.deepEqual(
      rules.requiredStatusChecks.requiredChecks,
      plan.requiredContexts.map((context) => ({ context, integrationId: GITHUB_ACTIONS_APP_ID })),
    );
  });
});

describe("the other stack (production) under mocks", async () => {
  const run = await runProgram({ stack: "production", mode: "synth" });
  test("commits no file and creates no ruleset", () => {
    assert.equal(run.error, undefined);
    assert.deepEqual(ofType(run, FILE), []);
    assert.deepEqual(ofType(run, RULESET), []);
    assert.deepEqual(ofType(run, PR), []);
  });
});

describe("a cross-check failure under mocks", async () => {
  const run = await runProgram({
    stack: "staging",
    mode: "synth",
    overrides: {
      workflows: {
        targets: {
          production: { stack: "production", environment: "staging", checkPaths: ["/health"] },
        },
      },
    },
  });
  test("stops the program before any resource is registered", () => {
    assert.ok(run.error instanceof Error);
    assert.deepEqual(ofType(run, FILE), []);
  });
});

describe("the commit plan", () => {
  const files = [
    { path: ".github/workflows/a.yml", content: "a" },
    { path: ".github/workflows/b.yml", content: "b" },
  ];
  const args = { repository: "r", defaultBranch: "main", files, branchPrefix: "ci/wf" };
  test("direct mode commits to the default branch, no pull request", () => {
    const p = workflowCommitPlan("w", { ...args, mode: "direct" });
    assert.equal(p.branch, "main");
    assert.equal(p.pullRequest, undefined);
    assert.deepEqual(
      p.files.map((f) => f.resourceName),
      ["w-a.yml", "w-b.yml"],
    );
  });
  test("pull-request mode: the branch name changes with the content, and only then", () => {
    const p = workflowCommitPlan("w", { ...args, mode: "pull-request" });
    assert.equal(p.branch, `ci/wf-${contentHash(files)}`);
    const same = workflowCommitPlan("w", { ...args, mode: "pull-request" });
    assert.equal(same.branch, p.branch);
    const changed = workflowCommitPlan("w", {
      ...args,
      mode: "pull-request",
      files: [files[0] as (typeof files)[0], { path: ".github/workflows/b.yml", content: "b2" }],
    });
    assert.notEqual(changed.branch, p.branch);
  });
  test("a path committed twice is refused", () => {
    assert.throws(
      () =>
        workflowCommitPlan("w", {
          ...args,
          mode: "direct",
          files: [...files, files[0] as (typeof files)[0]],
        }),
      /w: \.github\/workflows\/a\.yml is committed twice/,
    );
  });
  test("a ruleset without required checks is refused", () => {
    assert.throws(
      () =>
        rulesetInputs({
          repository: "r",
          requiredContexts: [],
          enforcement: "active",
          requiredApprovals: 0,
        }),
      /at least one required check/,
    );
  });
});
