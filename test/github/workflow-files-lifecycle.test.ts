import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RESOURCE_TYPES } from "../../src/synth/resource-types";
import { EMPTY_STATE, lifecycleRun, type World } from "../support/lifecycle";
import { describeSteps, SECRETS, tagged } from "../support/stacks";

const STACK = "staging";
const { branch: BRANCH, repositoryFile: FILE, pullRequest: PULL } = RESOURCE_TYPES;

/**
 * A stand-in for the app repository: the default branch's files, the other branches, and the
 * GitHub API's answers as the github provider v6.13.0 turns them into results and errors.
 */
class Repository {
  readonly main = new Map<string, string>();
  readonly branches = new Map<string, Map<string, string>>();
  readonly pullRequests: { head: string; state: "open" | "merged" | "closed" }[] = [];
  /** An error every read of a file answers with (an outage), if set. */
  readError: string | undefined;

  world(): World {
    return {
      callResult: (token, args) => {
        if (token !== "github:index/getRepositoryFile:getRepositoryFile") return undefined;
        if (this.readError !== undefined) throw new Error(this.readError);
        const files = args.branch === "main" ? this.main : this.branches.get(String(args.branch));
        const content = files?.get(String(args.file));
        // data_source_github_repository_file.go: a 404 sets no id and no content, without error.
        return content === undefined
          ? { id: "", content: "" }
          : { id: `${args.repository}/${args.file}`, content };
      },
      create: (r) => {
        if (r.type === BRANCH) this.branches.set(String(r.inputs.branch), new Map(this.main));
        if (r.type === FILE) {
          const branch = this.branches.get(String(r.inputs.branch));
          if (!branch) return `404 Branch ${String(r.inputs.branch)} not found`;
          branch.set(String(r.inputs.file), String(r.inputs.content));
        }
        if (r.type === PULL)
          this.pullRequests.push({ head: String(r.inputs.headRef), state: "open" });
        return undefined;
      },
      // resource_github_branch.go Delete: DeleteRef, an error when the ref is gone;
      // resource_github_repository_file.go Delete: DeleteFile on the branch, an error likewise.
      delete: (old) => {
        if (old.type === BRANCH) {
          const name = String(old.inputs.branch);
          if (!this.branches.delete(name))
            return `422 Reference does not exist (refs/heads/${name})`;
        }
        if (old.type === FILE) {
          const branch = this.branches.get(String(old.inputs.branch));
          if (!branch) return `404 Branch ${String(old.inputs.branch)} not found`;
          branch.delete(String(old.inputs.file));
        }
        return undefined;
      },
    };
  }

  /** The newest open pull request is merged and GitHub deletes its head branch. */
  merge(): void {
    const pr = this.pullRequests.filter((p) => p.state === "open").pop();
    assert.ok(pr, "an open pull request to merge");
    for (const [path, content] of this.branches.get(pr.head) ?? []) this.main.set(path, content);
    pr.state = "merged";
    this.branches.delete(pr.head);
  }
}

const run = (
  repo: Repository,
  operation: "up" | "preview",
  state = EMPTY_STATE,
  workflows: Record<string, unknown> = {},
) =>
  lifecycleRun({
    stack: STACK,
    mode: "up",
    operation,
    secrets: SECRETS,
    overrides: { ...tagged(STACK, "v1"), workflows },
    world: { ...repo.world(), callResult: repoAnswers(repo) },
    state,
  });

/** The repository's answers plus the registry's, for the tagged runs. */
function repoAnswers(repo: Repository): World["callResult"] {
  const files = repo.world().callResult;
  return (token, args) =>
    token === "docker:index/getRegistryImage:getRegistryImage"
      ? { id: "image", sha256Digest: `sha256:${"1".repeat(64)}` }
      : files?.(token, args);
}

describe("the workflows pull request, merged and its branch deleted", async () => {
  const repo = new Repository();
  const proposed = await run(repo, "up");
  repo.merge();
  const afterMerge = await run(repo, "up", proposed.state);
  const next = await run(repo, "preview", afterMerge.state);

  test("the first run proposes the files on a branch with a pull request", () => {
    assert.deepEqual(proposed.errors, []);
    assert.equal(repo.pullRequests.length, 1);
    assert.ok(proposed.state.resources.some((r) => r.type === BRANCH));
  });

  test("the next staging run succeeds: the branch, files and pull request leave the state without a delete call", () => {
    assert.deepEqual(afterMerge.errors, []);
    const deletes = afterMerge.steps.filter((s) => s.op === "delete");
    assert.ok(deletes.length > 0, "they are no longer registered");
    const proposal: readonly string[] = [BRANCH, FILE, PULL];
    for (const step of deletes.filter((s) => proposal.includes(s.type))) {
      assert.equal(step.how, "retained", `${step.name} is dropped from state, not deleted`);
    }
    assert.ok(!afterMerge.state.resources.some((r) => proposal.includes(r.type)));
  });

  test("and the run after it plans nothing", () => {
    assert.deepEqual(next.errors, []);
    assert.equal(describeSteps(next.changes), "");
  });

  test("a later change of the model proposes a new pull request", async () => {
    repo.main.set(".github/workflows/pr.yml", "edited by hand\n");
    const proposal = await run(repo, "preview", afterMerge.state);
    assert.deepEqual(proposal.errors, []);
    assert.ok(proposal.changes.some((s) => s.type === PULL && s.op === "create"));
  });
});

describe("reading the default branch fails", async () => {
  const repo = new Repository();
  const first = await run(repo, "up");
  repo.merge();
  repo.readError =
    "GET https://api.github.com/repos/clicky-foundation/clicky-foundation/contents/.github/workflows/pr.yml: 502 Bad Gateway []";
  const outage = await run(repo, "preview", first.state);

  test("the run stops with the read error, not a drift or a bogus pull request", () => {
    assert.equal(outage.failed, true);
    assert.match(
      outage.errors.join("\n"),
      /could not read \.github\/workflows\/pr\.yml on main.*502 Bad Gateway/,
    );
    assert.ok(!outage.changes.some((s) => s.type === PULL || s.type === BRANCH));
  });
});

describe("the model changes again before the pull request is merged", async () => {
  const repo = new Repository();
  const first = await run(repo, "up");
  const second = await run(repo, "up", first.state, { checkDeadlineSeconds: 240 });
  repo.merge();
  const afterMerge = await run(repo, "up", second.state, { checkDeadlineSeconds: 240 });
  const next = await run(repo, "preview", afterMerge.state, { checkDeadlineSeconds: 240 });

  test("the second proposal gets a branch and pull request of its own", () => {
    assert.deepEqual(second.errors, []);
    assert.deepEqual(
      repo.pullRequests.map((p) => p.state),
      ["open", "merged"],
      "the first stays open (to close by hand), the second was merged",
    );
    assert.ok(second.steps.some((s) => s.type === BRANCH && s.op === "replace"));
  });

  test("after merging it, the next runs succeed and then plan nothing", () => {
    assert.deepEqual(afterMerge.errors, []);
    assert.deepEqual(next.errors, []);
    assert.equal(describeSteps(next.changes), "");
  });
});
