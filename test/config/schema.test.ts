import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { missingSecretsMessage } from "../../src/config/load";
import { refNamePatternProblem } from "../../src/config/patterns";
import { formatKeyPath } from "../../src/config/problems";
import { decodeConfigMap, decodeValue } from "../../src/config/raw";
import { parseStackConfig, requiredSecretKeys, secretKeySpecs } from "../../src/config/schema";

const github = { owner: "clicky-foundation", repository: "clicky-foundation" };
const environment = { name: "staging", url: "https://staging.example.org" };
const deploy = {
  hosts: [{ name: "web-1", host: "web-1.example.org" }],
  image: { repository: "ghcr.io/clicky-foundation/clicky-foundation/backend", tag: "v1.0.0" },
};
/** Production always needs a reviewer; the rest of its config is the minimal one. */
const productionEnvironment = {
  name: "production",
  url: "https://api.example.org",
  approval: { reviewers: { users: ["release-lead"] } },
};

function problemsOf(values: Record<string, unknown>, stack = "staging"): readonly string[] {
  const result = parseStackConfig(values, { stack });
  return result.ok ? [] : result.problems;
}

function withEnv(patch: Record<string, unknown>): Record<string, unknown> {
  return { github, deploy, environment: { ...environment, ...patch } };
}

describe("a minimal stack config", () => {
  test("gets the spec's defaults", () => {
    const result = parseStackConfig({ github, environment, deploy }, { stack: "staging" });
    assert.ok(result.ok);
    assert.equal(result.config.github.defaultBranch, "main");
    assert.equal(result.config.github.repositoryStack, "staging");
    assert.deepEqual(result.config.environment.deploymentBranches, ["main"]);
    assert.deepEqual(result.config.environment.deploymentTags, []);
    assert.deepEqual(result.config.environment.approval, {
      reviewers: { users: [], teams: [] },
      preventSelfReview: false,
      waitTimerMinutes: 0,
      adminsBypass: false,
    });
  });

  test("makes the repositoryStack the owner of repository-wide resources, and no other", () => {
    const staging = parseStackConfig({ github, environment, deploy }, { stack: "staging" });
    const production = parseStackConfig(
      { github, environment: productionEnvironment, deploy },
      { stack: "production" },
    );
    assert.ok(staging.ok && production.ok);
    assert.equal(staging.config.ownsRepository, true);
    assert.equal(production.config.ownsRepository, false);
  });
});

describe("each config rule names the file, the key path and what was expected", () => {
  const cases: [string, Record<string, unknown>, string][] = [
    [
      "a missing section (named by its required keys)",
      { github, deploy },
      "Pulumi.staging.yaml: clicky-delivery:environment.name: is required",
    ],
    [
      "an unknown top-level key",
      { github, environment, deploy, enviroment: {} },
      "Pulumi.staging.yaml: clicky-delivery:enviroment: unknown key (expected one of: github, environment, ",
    ],
    [
      "an unknown nested key",
      withEnv({ approval: { reviewer: { users: ["alice"] } } }),
      "Pulumi.staging.yaml: clicky-delivery:environment.approval.reviewer: unknown key (expected one of: reviewers, preventSelfReview, waitTimerMinutes, adminsBypass)",
    ],
    [
      "a wrong type",
      withEnv({ approval: { waitTimerMinutes: "5" } }),
      "Pulumi.staging.yaml: clicky-delivery:environment.approval.waitTimerMinutes: expected number, received string",
    ],
    [
      "a wait timer beyond GitHub's 30 days",
      withEnv({ approval: { waitTimerMinutes: 50000 } }),
      "Pulumi.staging.yaml: clicky-delivery:environment.approval.waitTimerMinutes: Too big: expected number to be <=43200",
    ],
    [
      "a fractional wait timer",
      withEnv({ approval: { waitTimerMinutes: 1.5 } }),
      "Pulumi.staging.yaml: clicky-delivery:environment.approval.waitTimerMinutes: expected int, received number",
    ],
    [
      "a malformed login",
      withEnv({ approval: { reviewers: { users: ["alice", "-bob"] } } }),
      "Pulumi.staging.yaml: clicky-delivery:environment.approval.reviewers.users[1]: expected a GitHub login: 1-39 letters, digits or single hyphens, not starting or ending with a hyphen",
    ],
    [
      "a login with a double hyphen",
      withEnv({ approval: { reviewers: { users: ["al--ice"] } } }),
      "Pulumi.staging.yaml: clicky-delivery:environment.approval.reviewers.users[0]: expected a GitHub login",
    ],
    [
      "a team given by display name",
      withEnv({ approval: { reviewers: { teams: ["Release Managers"] } } }),
      "Pulumi.staging.yaml: clicky-delivery:environment.approval.reviewers.teams[0]: expected a team slug",
    ],
    [
      "a reviewer listed twice (logins are case-insensitive)",
      withEnv({ approval: { reviewers: { users: ["alice", "Alice"] } } }),
      'Pulumi.staging.yaml: clicky-delivery:environment.approval.reviewers.users[1]: "Alice" is listed twice',
    ],
    [
      "more than six reviewers",
      withEnv({
        approval: { reviewers: { users: ["a1", "a2", "a3", "a4"], teams: ["t1", "t2", "t3"] } },
      }),
      "Pulumi.staging.yaml: clicky-delivery:environment.approval.reviewers: GitHub allows at most 6 reviewers (users and teams together), got 7",
    ],
    [
      "self-review prevention without reviewers",
      withEnv({ approval: { preventSelfReview: true } }),
      "Pulumi.staging.yaml: clicky-delivery:environment.approval.preventSelfReview: needs at least one reviewer in approval.reviewers",
    ],
    [
      "an environment open to every branch",
      withEnv({ deploymentBranches: [], deploymentTags: [] }),
      "Pulumi.staging.yaml: clicky-delivery:environment.deploymentBranches: list at least one branch or tag pattern",
    ],
    [
      "a full ref instead of a branch pattern",
      withEnv({ deploymentBranches: ["refs/heads/main"] }),
      'Pulumi.staging.yaml: clicky-delivery:environment.deploymentBranches[0]: "refs/heads/main" write the short name ("main"), not the full ref',
    ],
    [
      "a tag pattern with a space",
      withEnv({ deploymentTags: ["v* .*"] }),
      'Pulumi.staging.yaml: clicky-delivery:environment.deploymentTags[0]: "v* .*" must not contain spaces or control characters',
    ],
    [
      "a default branch that is a pattern",
      { github: { ...github, defaultBranch: "main*" }, environment, deploy },
      "Pulumi.staging.yaml: clicky-delivery:github.defaultBranch: expected a branch name, not a pattern",
    ],
    [
      "an owner that is not a login",
      { github: { ...github, owner: "clicky foundation" }, environment, deploy },
      "Pulumi.staging.yaml: clicky-delivery:github.owner: expected a GitHub login",
    ],
    [
      "a repository name with a slash",
      { github: { ...github, repository: "org/repo" }, environment, deploy },
      "Pulumi.staging.yaml: clicky-delivery:github.repository: expected a repository name",
    ],
    [
      "a URL with a trailing slash",
      withEnv({ url: "https://staging.example.org/" }),
      "Pulumi.staging.yaml: clicky-delivery:environment.url: drop the trailing '/'",
    ],
    [
      "a URL without a scheme",
      withEnv({ url: "staging.example.org" }),
      "Pulumi.staging.yaml: clicky-delivery:environment.url: expected an http(s) URL",
    ],
  ];
  for (const [what, values, expected] of cases) {
    test(what, () => {
      const problems = problemsOf(values);
      assert.ok(
        problems.some((line) => line.startsWith(expected)),
        `no problem starts with:\n  ${expected}\ngot:\n  ${problems.join("\n  ")}`,
      );
    });
  }

  test("every problem is reported at once, one line each", () => {
    const problems = problemsOf({
      github: { ...github, owner: "-x" },
      deploy,
      environment: { ...environment, approval: { waitTimerMinutes: "5" }, colour: "blue" },
      typo: 1,
    });
    assert.equal(problems.length, 4, problems.join("\n"));
    for (const line of problems)
      assert.match(line, /^Pulumi\.staging\.yaml: clicky-delivery:\S+: /);
  });

  test("a secret stored in plain text is an error that says how to store it", () => {
    const result = parseStackConfig(
      { github, environment, deploy, codecovToken: "plain-value-123" },
      { stack: "staging", secretKeys: new Set() },
    );
    assert.ok(!result.ok);
    assert.deepEqual(result.problems, [
      "Pulumi.staging.yaml: clicky-delivery:codecovToken: is stored in plain text; remove it and run `pulumi config set --secret codecovToken --stack staging`",
    ]);
    assert.ok(!result.problems.join("\n").includes("plain-value-123"));
  });

  test("a secret of the wrong type never has its value quoted", () => {
    const problems = problemsOf({
      github,
      environment,
      deploy,
      expoToken: { nested: "hunter2-secret" },
    });
    assert.equal(problems.length, 1);
    assert.ok(!problems[0]?.includes("hunter2-secret"));
    assert.match(problems[0] ?? "", /clicky-delivery:expoToken: expected string/);
  });
});

describe("refNamePatternProblem", () => {
  const good = ["main", "release/*", "v*.*.*", "feature/**", "hotfix-[0-9]*", "v?.?"];
  for (const pattern of good) {
    test(`accepts ${pattern}`, () => assert.equal(refNamePatternProblem(pattern), undefined));
  }
  const bad: [string, string][] = [
    ["", "must not be empty"],
    ["refs/tags/v1", 'write the short name ("v1"), not the full ref'],
    ["a..b", "must not contain '..'"],
    ["a~b", "must not contain '~', '^', ':' or '\\'"],
    ["a\tb", "must not contain spaces or control characters"],
    ["-main", "must not start with '/', '.' or '-'"],
    ["main/", "must not end with '/', '.' or '.lock'"],
    ["main.lock", "must not end with '/', '.' or '.lock'"],
    ["a//b", "must not contain '//'"],
    ["a@{b", "must not contain '@{'"],
    ["v[0-9", "has an unbalanced '[' or ']'"],
  ];
  for (const [pattern, problem] of bad) {
    test(`rejects ${JSON.stringify(pattern)}: ${problem}`, () =>
      assert.equal(refNamePatternProblem(pattern), problem));
  }
});

describe("reading the engine's config map", () => {
  test("decodes JSON objects and leaves strings alone", () => {
    assert.deepEqual(decodeValue('{"a":1}'), { a: 1 });
    assert.deepEqual(decodeValue("[1,2]"), [1, 2]);
    assert.equal(decodeValue("plain"), "plain");
    assert.equal(decodeValue("{not json"), "{not json");
  });

  test("reports keys of a namespace nobody reads, and keeps provider keys", () => {
    const decoded = decodeConfigMap(
      {
        "clicky-delivry:github": "{}",
        "github:owner": "clicky-foundation",
        "clicky-delivery:expoToken": "x",
      },
      (key) => key === "clicky-delivery:expoToken",
      "Pulumi.staging.yaml",
    );
    assert.deepEqual(decoded.problems, [
      'Pulumi.staging.yaml: clicky-delivry:github: unknown namespace "clicky-delivry" (expected clicky-delivery: or a provider\'s: github, command, docker, pulumiservice, pulumi)',
    ]);
    assert.deepEqual(Object.keys(decoded.values), ["expoToken"]);
    assert.deepEqual([...decoded.secretKeys], ["expoToken"]);
  });

  test("formats key paths as they appear in the stack file", () => {
    assert.equal(
      formatKeyPath("clicky-delivery", ["environment", "approval", "reviewers", "users", 0]),
      "clicky-delivery:environment.approval.reviewers.users[0]",
    );
    assert.equal(formatKeyPath("clicky-delivery", []), "clicky-delivery:");
  });
});

describe("required secrets", () => {
  test("the repository-owning stack needs the repository secrets; the approval-gated one the production-reaching ones", () => {
    const staging = parseStackConfig({ github, environment, deploy }, { stack: "staging" });
    const production = parseStackConfig(
      { github, environment: productionEnvironment, deploy },
      { stack: "production" },
    );
    assert.ok(staging.ok && production.ok);
    const keys = (c: typeof staging.config) => requiredSecretKeys(c).map((s) => s.key);
    assert.ok(keys(staging.config).includes("codecovToken"));
    assert.ok(!keys(staging.config).includes("expoToken"), "staging's jobs never see it");
    assert.ok(!keys(staging.config).includes("pulumiDriftToken"), "staging's jobs never see it");
    assert.ok(!keys(production.config).includes("codecovToken"));
    assert.ok(keys(production.config).includes("pulumiAccessToken"));
    assert.ok(keys(production.config).includes("expoToken"));
    assert.ok(keys(production.config).includes("pulumiDriftToken"));
  });

  test("the message gives the exact command for each missing secret", () => {
    const spec = secretKeySpecs.find((s) => s.key === "expoToken");
    assert.ok(spec);
    const lines = missingSecretsMessage([spec], "production", "Pulumi.production.yaml");
    assert.equal(
      lines[0],
      "Pulumi.production.yaml: 1 required secret is not set; nothing was changed. Run:",
    );
    assert.match(
      lines[1] ?? "",
      /^ {2}pulumi config set --secret expoToken --stack production {3}# /,
    );
  });
});
