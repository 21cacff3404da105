import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { deploymentPreRunCommands } from "../../src/cloud/deployments";
import { planWorkflows } from "../../src/workflows";
import { hasJq, runWithStubs, stackConfig } from "../support/workflows";

/**
 * The generated scripts that decide whether a job passes, run for real with bash, with small
 * stand-ins for `pulumi` and `gh` that print fixed output: what they print is what the real
 * commands print (shapes from pkg/cmd/pulumi/deployment/deployment_get.go,
 * pkg/cmd/pulumi/config/config_get.go and GitHub's "Get an environment").
 */
type Step = { name: string; run?: string; env?: Record<string, string> };
type Doc = { jobs: Record<string, { steps: Step[] }> };

function file(plan: ReturnType<typeof planWorkflows>, name: string): Doc {
  const found = plan.files.find((f) => f.path === `.github/workflows/${name}`);
  assert.ok(found, `no ${name}`);
  return parse(found.content) as Doc;
}

function script(doc: Doc, job: string, name: (n: string) => boolean): string {
  const step = doc.jobs[job]?.steps.find((s) => name(s.name));
  assert.ok(step?.run, `no step in ${job}`);
  return step.run;
}

const plan = planWorkflows(stackConfig("staging"));
/** jq is on GitHub's runners, where these scripts run; CI must have it too (a failure there). */
const NO_JQ = !hasJq() && process.env.CI !== "true" && "jq is not installed here";
const STACK = "clicky-foundation/clicky-delivery/staging";
const SHA = "0123456789abcdef0123456789abcdef01234567";
const TAG = "fedcba9876543210fedcba9876543210fedcba98";

describe("the Pulumi Deployments deploy step", { skip: NO_JQ }, () => {
  const run = script(file(plan, "deploy-staging.yml"), "deploy", (n) =>
    n.endsWith("with Pulumi Deployments"),
  );
  /** `pulumi` that records `deployment run`'s arguments and answers `deployment get`. */
  const pulumi = `case "$1 $2" in
  "deployment run")
    printf '%s\\n' "$@" > "$STUB_LOG"
    printf 'Preparing deployment...\\n\\n'
    if [[ "\${NO_URL:-}" != 1 ]]; then
      printf 'View Live: \\033[4;34mhttps://app.pulumi.com/clicky-foundation/clicky-delivery/staging/deployments/42\\033[0m\\n'
    fi
    exit "\${RUN_EXIT:-0}" ;;
  "deployment get")
    [[ "$3 $4 $5 $6 $7" == "42 --stack ${STACK} --output json" ]] || { echo "unexpected: $*" >&2; exit 2; }
    n=$(cat "$STUB_LOG.gets" 2>/dev/null || echo 0); echo $((n + 1)) > "$STUB_LOG.gets"
    read -r -a statuses <<<"$STATUSES"
    status=\${statuses[$n]:-\${statuses[-1]}}
    printf '{\\n  "id": "5b2c", "status": "%s", "version": 42, "jobs": [], "updates": []\\n}\\n' "$status" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac`;
  const deploy = (env: Record<string, string>) =>
    runWithStubs(
      run,
      { pulumi },
      { STACK, IMAGE_TAG: TAG, GITHUB_SHA: SHA, PULUMI_ACCESS_TOKEN: "x", ...env },
    );

  test("never prints its Pulumi token, in any form, whatever the deployment's outcome", () => {
    const token = "pul-p@ss:w/rd?#%&=+ ü$HOME'\"`x`";
    const forms = [
      token,
      encodeURIComponent(token),
      Buffer.from(token).toString("base64"),
      JSON.stringify(token).slice(1, -1),
    ];
    for (const STATUSES of ["succeeded", "failed", "skipped", "running running succeeded"]) {
      const r = deploy({ STATUSES, PULUMI_ACCESS_TOKEN: token });
      for (const form of forms) {
        assert.ok(!`${r.stdout}${r.stderr}`.includes(form), `${STATUSES}: ${form}`);
      }
    }
  });

  test("deploys this run's commit, with the settings' pre-run commands first, then the tag, then the policy pack", () => {
    const r = deploy({ STATUSES: "succeeded" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const args = readFileSync(join(r.dir, ".stub-log"), "utf8").trimEnd().split("\n");
    const settings = deploymentPreRunCommands({
      repository: "clicky-foundation/clicky-foundation",
      directory: ".",
      stackFile: "Pulumi.staging.yaml",
    });
    assert.deepEqual(args, [
      "deployment",
      "run",
      "update",
      "--stack",
      STACK,
      "--suppress-stream-logs=false",
      "--git-commit",
      SHA,
      ...settings.flatMap((c) => ["--pre-run-command", c]),
      "--pre-run-command",
      `pulumi config set --stack ${STACK} --path --type string deploy.image.tag ${TAG}`,
      "--pre-run-command",
      `pulumi preview --stack ${STACK} --non-interactive --policy-pack policy`,
    ]);
    assert.match(r.stdout, /deployment 42 of .* succeeded/);
  });

  test("a skipped deployment fails the job: a newer deployment superseded it", () => {
    const r = deploy({ STATUSES: "skipped" });
    assert.equal(r.status, 1);
    assert.match(
      r.stdout,
      /::error::deployment 42 of clicky-foundation\/clicky-delivery\/staging was skipped: a newer deployment of the stack superseded it/,
    );
  });

  test("a failed deployment fails the job with its status, even when the CLI exits 0", () => {
    const r = deploy({ STATUSES: "failed" });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /::error::deployment 42 of .* ended with status 'failed'/);
  });

  test("a deployment still running when the CLI returns is waited for", () => {
    const r = deploy({ STATUSES: "running succeeded" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(readFileSync(join(r.dir, ".stub-log.gets"), "utf8").trim(), "2");
  });

  test("a CLI failure is not hidden by tee", () => {
    const r = deploy({ STATUSES: "failed", RUN_EXIT: "255" });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /ended with status 'failed'/);
  });

  test("no View Live line: fails saying the deployment is unknown", () => {
    const r = deploy({ STATUSES: "succeeded", NO_URL: "1", RUN_EXIT: "255" });
    assert.equal(r.status, 1);
    assert.match(
      r.stdout,
      /::error::pulumi deployment run \(exit status 255\) printed no 'View Live/,
    );
  });

  test("production deploys the dispatched commit too", () => {
    const prod = script(file(plan, "deploy-prod.yml"), "deploy", (n) =>
      n.endsWith("with Pulumi Deployments"),
    );
    assert.match(prod, /^commit="\$GITHUB_SHA"$/m);
    assert.match(prod, /--git-commit "\$commit"/);
  });
});

/** Staging's config with the program's source somewhere else (`deployments.source`). */
function programAt(source: { repository: string; directory: string }) {
  return stackConfig("staging", {
    deployments: { backend: "cloud", organization: "clicky-foundation", source },
  });
}

describe("a program kept in another repository", () => {
  const elsewhere = planWorkflows(
    programAt({ repository: "clicky-foundation/delivery", directory: "infra" }),
  );
  test("is deployed at the commit the job checked out, from its folder", () => {
    const doc = parse(
      elsewhere.files.find((f) => f.path.endsWith("/deploy-staging.yml"))?.content ?? "",
    ) as { jobs: Record<string, { steps: (Step & { "working-directory"?: string })[] }> };
    const step = doc.jobs.deploy?.steps.find((s) => s.name.endsWith("with Pulumi Deployments"));
    assert.equal(step?.["working-directory"], "delivery-program/infra");
    assert.match(step?.run ?? "", /^commit=\$\(git rev-parse HEAD\)$/m);
    assert.match(
      step?.run ?? "",
      /no Pulumi\.yaml in clicky-foundation\/delivery\/infra at this commit/,
    );
  });
});

describe("the Pulumi.yaml check", () => {
  test("refuses a value that would need shell quoting", () => {
    assert.throws(
      () => deploymentPreRunCommands({ repository: "o/r", directory: "a b", stackFile: "P.yaml" }),
      /"a b" has characters a shell message cannot hold/,
    );
  });
  const [check] = deploymentPreRunCommands({
    repository: "o/r",
    directory: "infra",
    stackFile: "Pulumi.production.yaml",
  });
  test("fails, naming the repository, folder and keys, when Pulumi.yaml is missing", () => {
    const r = runWithStubs(check ?? "", {});
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      "clicky-delivery: no Pulumi.yaml in o/r/infra at this commit; set deployments.source.repository and deployments.source.directory in Pulumi.production.yaml\n",
    );
  });
  test("passes when it is there", () => {
    const r = runWithStubs(check ?? "", {}, {}, { "Pulumi.yaml": "name: x\n" });
    assert.equal(r.status, 0, r.stderr);
  });
  test("the workflow step checks the program's folder from the workspace root", () => {
    const inFolder = planWorkflows(
      programAt({ repository: "clicky-foundation/clicky-foundation", directory: "infra" }),
    );
    const step = script(file(inFolder, "drift.yml"), "drift", (n) =>
      n.startsWith("Check that the Pulumi program"),
    );
    assert.equal(runWithStubs(step, {}, {}, { "Pulumi.yaml": "" }).status, 1);
    assert.equal(runWithStubs(step, {}, {}, { "infra/Pulumi.yaml": "" }).status, 0);
  });
});

describe("the PR pipeline's change detection", () => {
  const areas = (doc: Doc, changed: readonly string[]) => {
    const r = runWithStubs(
      script(doc, "changes", (n) => n === "List the changed areas"),
      { gh: 'printf "%s" "$CHANGED"' },
      {
        CHANGED: changed.map((f) => `${f}\n`).join(""),
        REPOSITORY: "o/r",
        PR_NUMBER: "7",
        GH_TOKEN: "x",
        GITHUB_OUTPUT: "/dev/null",
      },
    );
    assert.equal(r.status, 0, r.stderr);
    return Object.fromEntries(
      r.stdout
        .split("\n")
        .filter((l) => l.includes("="))
        .map((l) => l.split("=") as [string, string]),
    );
  };
  const pr = file(plan, "pr.yml");

  for (const only of ["Pulumi.staging.yaml", "package-lock.json", "src/workflows/steps.ts"]) {
    test(`a pull request touching only ${only} runs the program checks, nothing else`, () => {
      assert.deepEqual(areas(pr, [only]), { backend: "false", mobile: "false", program: "true" });
    });
  }
  test("the app's own files are not the program's", () => {
    assert.deepEqual(areas(pr, ["mobile/package-lock.json", "backend/src/app.py"]), {
      backend: "true",
      mobile: "true",
      program: "false",
    });
  });
  test("a changed workflow runs every area", () => {
    assert.deepEqual(areas(pr, [".github/workflows/pr.yml"]), {
      backend: "true",
      mobile: "true",
      program: "true",
    });
  });
  test("a program in a folder: only that folder's files are the program's", () => {
    const inFolder = planWorkflows(
      programAt({ repository: "clicky-foundation/clicky-foundation", directory: "infra" }),
    );
    const doc = file(inFolder, "pr.yml");
    assert.equal(areas(doc, ["infra/Pulumi.production.yaml"]).program, "true");
    assert.equal(areas(doc, ["Pulumi.production.yaml"]).program, "false");
  });
});

describe("the drift workflow's approval check", { skip: NO_JQ }, () => {
  const run = script(file(plan, "drift.yml"), "drift", (n) =>
    n.startsWith("Check the approval rules in GitHub"),
  );
  const production = {
    name: "production",
    url: "https://api.example.org",
    approval: {
      reviewers: { users: ["clicky-release-lead"], teams: ["release-managers"] },
      preventSelfReview: true,
      waitTimerMinutes: 0,
      adminsBypass: false,
    },
    deploymentBranches: ["main"],
  };
  const reviewersRule = (preventSelfReview: boolean) => ({
    id: 3755,
    type: "required_reviewers",
    prevent_self_review: preventSelfReview,
    reviewers: [
      { type: "User", reviewer: { login: "Clicky-Release-Lead", id: 1 } },
      { type: "Team", reviewer: { slug: "release-managers", id: 2 } },
    ],
  });
  const live = (rules: unknown[], canAdminsBypass = false) => ({
    id: 161088068,
    name: "production",
    can_admins_bypass: canAdminsBypass,
    protection_rules: [...rules, { id: 3756, type: "branch_policy" }],
  });
  /** Runs the check: `pulumi config get ... --json` prints `config`, `gh api` prints `environment`. */
  const check = (config: unknown, environment: unknown) =>
    runWithStubs(
      run,
      {
        pulumi: `[[ "$*" == "config get --stack $STACK --path environment --json" ]] || { echo "unexpected: $*" >&2; exit 2; }
printf '%s\\n' "$CONFIG_JSON"`,
        gh: `[[ "$*" == "api repos/$REPOSITORY/environments/production" ]] || { echo "unexpected: $*" >&2; exit 2; }
printf '%s\\n' "$ENVIRONMENT_JSON"`,
      },
      {
        STACK: "clicky-foundation/clicky-delivery/production",
        REPOSITORY: "clicky-foundation/clicky-foundation",
        GH_TOKEN: "x",
        PULUMI_ACCESS_TOKEN: "x",
        // The shape of `pulumi config get --json` for an object (config_get.go).
        CONFIG_JSON: JSON.stringify({
          value: JSON.stringify(config),
          objectValue: config,
          secret: false,
        }),
        ENVIRONMENT_JSON: JSON.stringify(environment),
      },
    );

  test("passes when GitHub has exactly the configured rules (logins in any case)", () => {
    const r = check(production, live([reviewersRule(true)]));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /approval rules match stack clicky-foundation\/clicky-delivery\/production/,
    );
  });

  test("the last reviewer removed in GitHub fails, naming the environment and who is missing", () => {
    const r = check(production, live([]));
    assert.equal(r.status, 1);
    assert.match(
      r.stdout,
      /::error::environment "production" of clicky-foundation\/clicky-foundation drifted from stack clicky-foundation\/clicky-delivery\/production: required reviewers: the stack expects users \[clicky-release-lead\], teams \[release-managers\], but GitHub has no required_reviewers rule \(missing: user clicky-release-lead, team release-managers\); pulumi up cannot put a removed rule back .* add them again in Settings > Environments > production > Required reviewers/,
    );
  });

  test("self-review switched on in GitHub fails", () => {
    const allowed = {
      ...production,
      approval: { ...production.approval, preventSelfReview: false },
    };
    const r = check(allowed, live([reviewersRule(true)]));
    assert.equal(r.status, 1);
    assert.match(r.stdout, /prevent self-review: the stack expects false, GitHub has true/);
    assert.doesNotMatch(r.stdout, /required reviewers:/);
  });

  test("a reviewer added by hand, a wait timer and admin bypass are each reported", () => {
    const rule = reviewersRule(true);
    const r = check(
      production,
      live(
        [
          { ...rule, reviewers: [...rule.reviewers, { type: "User", reviewer: { login: "eve" } }] },
          { id: 1, type: "wait_timer", wait_timer: 30 },
        ],
        true,
      ),
    );
    assert.equal(r.status, 1);
    const errors = r.stdout.split("\n").filter((l) => l.startsWith("::error::"));
    assert.equal(errors.length, 4, r.stdout);
    assert.match(r.stdout, /not in the stack config: user eve/);
    assert.match(r.stdout, /wait timer: the stack expects 0 minutes, GitHub has 30/);
    assert.match(
      r.stdout,
      /admins bypass \(can_admins_bypass\): the stack expects false, GitHub has true/,
    );
  });

  test("a stack without reviewers expects no rule, and the schema's defaults fill left-out keys", () => {
    const noReviewers = { name: "production", url: "https://s.example.org" };
    assert.equal(check(noReviewers, live([])).status, 0);
    const r = check(noReviewers, live([reviewersRule(false)]));
    assert.equal(r.status, 1);
    assert.match(
      r.stdout,
      /the stack expects none, but GitHub requires users \[clicky-release-lead\]/,
    );
  });
});
