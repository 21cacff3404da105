import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { filesToCommit } from "../../src/github/workflow-files";
import { planWorkflows } from "../../src/workflows";
import { ofType, runProgram } from "../support/program";
import { stackConfig } from "../support/workflows";

const FILE = "github:index/repositoryFile:RepositoryFile";
const BRANCH = "github:index/branch:Branch";
const PULL = "github:index/repositoryPullRequest:RepositoryPullRequest";
const GET_FILE = "github:index/getRepositoryFile:getRepositoryFile";

const rendered = planWorkflows(stackConfig("staging")).files;

/** Answers getRepositoryFile as GitHub would for a default branch holding `files`. */
function defaultBranchHolding(files: ReadonlyMap<string, string>) {
  return (token: string, args: Record<string, unknown>) => {
    if (token !== GET_FILE) return undefined;
    assert.equal(args.branch, "main", "reads the default branch");
    const content = files.get(String(args.file));
    return content === undefined ? { id: "" } : { id: `main:${String(args.file)}`, content };
  };
}

describe("workflow files in pull-request mode", () => {
  test("filesToCommit keeps only the files that differ from the default branch", () => {
    const [first, second] = rendered;
    assert.ok(first && second);
    const onMain = new Map<string, string | undefined>([
      [first.path, first.content],
      [second.path, `${second.content}# edited by hand\n`],
    ]);
    const pending = filesToCommit(rendered, onMain).map((f) => f.path);
    assert.ok(!pending.includes(first.path));
    assert.ok(pending.includes(second.path));
    assert.equal(pending.length, rendered.length - 1);
  });

  test("when the default branch already holds every rendered file, nothing is registered", async () => {
    const run = await runProgram({
      stack: "staging",
      mode: "synth",
      callResult: defaultBranchHolding(new Map(rendered.map((f) => [f.path, f.content]))),
    });
    assert.equal(run.error, undefined, String(run.error));
    assert.equal(run.calls.filter((c) => c.token === GET_FILE).length, rendered.length);
    assert.deepEqual([...ofType(run, FILE), ...ofType(run, BRANCH), ...ofType(run, PULL)], []);
    assert.equal(ofType(run, "github:index/repositoryRuleset:RepositoryRuleset").length, 1);
  });

  test("a file edited by hand on the default branch comes back through a pull request", async () => {
    const edited = rendered[0];
    assert.ok(edited);
    const run = await runProgram({
      stack: "staging",
      mode: "synth",
      callResult: defaultBranchHolding(
        new Map(
          rendered.map((f) => [
            f.path,
            f === edited ? f.content.replace("name:", "name: x") : f.content,
          ]),
        ),
      ),
    });
    assert.equal(run.error, undefined, String(run.error));
    assert.deepEqual(
      ofType(run, FILE).map((f) => f.inputs.file),
      [edited.path],
    );
    assert.equal(ofType(run, FILE)[0]?.inputs.content, edited.content);
    assert.equal(ofType(run, BRANCH).length, 1);
    assert.equal(ofType(run, PULL).length, 1);
  });
});
