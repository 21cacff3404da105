import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { secretKeySpecs } from "../../src/config/schema";
import { REPO_ROOT } from "../support/program";

const work = mkdtempSync(join(tmpdir(), "clicky-synth-"));

interface SynthRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly out: string;
}

/** Runs the real `npm run synth` entry point in a child process. */
function runSynth(args: string[], out: string): SynthRun {
  const child = spawnSync(
    process.execPath,
    ["--import", "tsx", join(REPO_ROOT, "src/synth/cli.ts"), ...args, "--out", out],
    { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 },
  );
  return { status: child.status, stdout: child.stdout, stderr: child.stderr, out };
}

type StackDoc = { config: Record<string, unknown> } & Record<string, unknown>;

/** A copy of a committed stack file with one defect, written as `Pulumi.<name>.yaml`. */
function brokenStackFile(from: string, name: string, mutate: (doc: StackDoc) => void): string {
  const doc = parse(readFileSync(join(REPO_ROOT, `Pulumi.${from}.yaml`), "utf8")) as StackDoc;
  mutate(doc);
  const path = join(work, `Pulumi.${name}.yaml`);
  writeFileSync(path, stringify(doc));
  return path;
}

function section(doc: StackDoc, key: string): Record<string, unknown> {
  return doc.config[`clicky-delivery:${key}`] as Record<string, unknown>;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

for (const stack of ["staging", "production"]) {
  describe(`synth of the committed ${stack} stack`, () => {
    const run = runSynth(["--stack", stack], join(work, `out-${stack}`));

    test("exits 0 and prints a summary", () => {
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`^synth ${stack}: \\d+ files in `, "m"));
      assert.match(run.stdout, /^resources: \d+$/m);
      assert.match(run.stdout, /github:index\/repositoryEnvironment:RepositoryEnvironment/);
    });

    test("writes resources.json in registration order with type, name, parent, inputs and options", () => {
      const resources = JSON.parse(readFileSync(join(run.out, "resources.json"), "utf8")) as {
        type: string;
        name: string;
        parent?: string;
        inputs: Record<string, unknown>;
        options: Record<string, unknown>;
      }[];
      assert.ok(resources.length > 0);
      for (const r of resources) {
        assert.deepEqual(
          Object.keys(r).filter(
            (k) => !["type", "name", "parent", "inputs", "options"].includes(k),
          ),
          [],
        );
        assert.equal(typeof r.options, "object", `${r.name} has options`);
      }
      const env = resources.find(
        (r) =>
          r.type === "github:index/repositoryEnvironment:RepositoryEnvironment" && r.name === stack,
      );
      assert.equal(env?.inputs.environment, stack);
      const parentNames = new Set(resources.map((r) => r.name));
      for (const r of resources) if (r.parent) assert.ok(parentNames.has(r.parent), r.parent);
      for (const r of resources.filter((r) => /Secret$/.test(r.type))) {
        assert.equal(r.inputs.value, "[secret]", `${r.name} shows its value`);
      }
    });

    test("shows the lifecycle options pulumi up acts on", () => {
      const resources = JSON.parse(readFileSync(join(run.out, "resources.json"), "utf8")) as {
        type: string;
        name: string;
        options: Record<string, unknown>;
      }[];
      const byName = (name: string) => resources.find((r) => r.name === name)?.options;
      const host = stack === "staging" ? "staging-1" : "prod-1";
      const secretOutputs = byName(`deploy-${host}-run`)?.additionalSecretOutputs as string[];
      assert.ok(secretOutputs.includes("stdout") && secretOutputs.includes("stderr"));
      assert.ok(
        ((byName(`deploy-${host}-run`)?.dependsOn ?? []) as string[]).some((d) =>
          d.startsWith(`deploy-${host}-`),
        ),
        "the deploy waits for its copies",
      );
      const environment = resources.find(
        (r) => r.type === "github:index/repositoryEnvironment:RepositoryEnvironment",
      );
      assert.equal(environment?.options.provider, "github", "GitHub resources use our provider");
      for (const r of resources.filter((r) =>
        /ActionsEnvironmentSecret$|ActionsSecret$/.test(r.type),
      )) {
        assert.equal(r.options.deleteBeforeReplace, true, `${r.name} is replaced delete-first`);
        assert.equal(r.options.replacementTrigger, "written-by-pulumi", r.name);
      }
      if (stack === "staging") {
        for (const r of resources.filter((r) =>
          /Branch$|RepositoryFile$|PullRequest$/.test(r.type),
        )) {
          assert.equal(r.options.retainOnDelete, true, `${r.name} leaves state without a delete`);
        }
      }
      assert.deepEqual(
        resources.find((r) => r.type === "clicky:github:DeploymentEnvironment")?.options,
        {},
        "{} when no option is set",
      );
    });

    test("shows the stack's Pulumi Deployments settings and drift schedule", () => {
      assert.match(run.stdout, /1 {2}pulumiservice:index:DeploymentSettings/);
      assert.match(run.stdout, /1 {2}pulumiservice:index:DriftSchedule/);
    });

    test("lists production's hosts whose key is still the placeholder", () => {
      const line = /^unpinned production host keys \([^)]*\): (.*)$/m.exec(run.stdout)?.[1];
      if (stack === "production") {
        assert.equal(
          line,
          "deploy.hosts[0].hostKey (prod-1, api.clicky-foundation.example: the placeholder)",
        );
      } else {
        assert.equal(line, undefined);
      }
    });

    test("lists the required secrets that are unset", () => {
      assert.match(
        run.stdout,
        /^unset secrets \(placeholders used; pulumi up stops until they are set\): .*pulumiAccessToken/m,
      );
    });
  });
}

describe("synth of production", () => {
  const run = runSynth(["--stack", "production"], join(work, "out-prod-2"));
  test("shows reviewer lookups honestly, never invented ids", () => {
    const text = readFileSync(join(run.out, "resources.json"), "utf8");
    assert.match(text, /"lookup:user\/clicky-release-lead"/);
    assert.match(text, /"lookup:team\/release-managers"/);
  });
  test("writes no repository-wide resource", () => {
    const text = readFileSync(join(run.out, "resources.json"), "utf8");
    assert.doesNotMatch(text, /actionsSecret:ActionsSecret"/);
    assert.ok(!existsSync(join(run.out, "files")), "production commits no file");
  });
});

describe("synth of a local-backend stack (no deployments section)", () => {
  const file = brokenStackFile("staging", "local", (doc) => {
    delete doc.config["clicky-delivery:deployments"];
  });
  const run = runSynth(["--stack-file", file], join(work, "out-local"));
  test("succeeds without any Pulumi Cloud resource", () => {
    assert.equal(run.status, 0, run.stderr);
    assert.doesNotMatch(run.stdout, /pulumiservice:/);
    const text = readFileSync(join(run.out, "resources.json"), "utf8");
    assert.doesNotMatch(text, /pulumiservice:/);
  });
});

describe("synth with every secret set", () => {
  const ciphertexts: string[] = [];
  const file = brokenStackFile("staging", "encrypted", (doc) => {
    for (const spec of secretKeySpecs) {
      const ciphertext = `v1:CIPHERTEXT-${spec.key}-0a1b2c3d4e`;
      ciphertexts.push(ciphertext);
      // A structured secret holds one encrypted value per name (`--path 'appSecrets.NAME'`).
      doc.config[`clicky-delivery:${spec.key}`] = spec.names
        ? { SENTRY_DSN: { secure: ciphertext } }
        : { secure: ciphertext };
    }
    const deploy = doc.config["clicky-delivery:deploy"] as { app?: Record<string, unknown> };
    deploy.app = { ...(deploy.app ?? {}), secrets: ["SENTRY_DSN"] };
  });
  const run = runSynth(["--stack", "staging", "--stack-file", file], join(work, "out-enc"));

  test("succeeds and reports nothing unset", () => {
    assert.equal(run.status, 0, run.stderr);
    assert.doesNotMatch(run.stdout, /unset secrets/);
  });

  test("never writes or prints the stored (encrypted) values", () => {
    const everything = [
      run.stdout,
      run.stderr,
      ...filesUnder(run.out).map((f) => readFileSync(join(run.out, f), "utf8")),
    ];
    for (const ciphertext of ciphertexts) {
      for (const text of everything) assert.ok(!text.includes(ciphertext), `${ciphertext} leaked`);
    }
  });
});

describe("synth of a broken stack file", () => {
  const cases: { name: string; from: string; mutate: (doc: StackDoc) => void; expect: string[] }[] =
    [
      {
        name: "wrong-type",
        from: "staging",
        mutate: (doc) => {
          const approval = section(doc, "environment").approval as Record<string, unknown>;
          approval.waitTimerMinutes = "five";
          approval.adminsBypass = "no";
        },
        expect: [
          "Pulumi.wrong-type.yaml: clicky-delivery:environment.approval.waitTimerMinutes: expected number, received string",
          "Pulumi.wrong-type.yaml: clicky-delivery:environment.approval.adminsBypass: expected boolean, received string",
        ],
      },
      {
        name: "unknown-key",
        from: "staging",
        mutate: (doc) => {
          section(doc, "github").defaultBrnch = "main";
          doc.config["clicky-delivery:enviroment"] = { name: "staging" };
        },
        expect: [
          "Pulumi.unknown-key.yaml: clicky-delivery:github.defaultBrnch: unknown key (expected one of: owner, repository, defaultBranch, repositoryStack)",
          "Pulumi.unknown-key.yaml: clicky-delivery:enviroment: unknown key (expected one of: ",
        ],
      },
      {
        name: "bad-login",
        from: "production",
        mutate: (doc) => {
          const approval = section(doc, "environment").approval as Record<string, unknown>;
          approval.reviewers = { users: ["release_lead"], teams: ["Release Managers"] };
        },
        expect: [
          "Pulumi.bad-login.yaml: clicky-delivery:environment.approval.reviewers.users[0]: expected a GitHub login",
          "Pulumi.bad-login.yaml: clicky-delivery:environment.approval.reviewers.teams[0]: expected a team slug",
        ],
      },
      {
        name: "bad-pattern",
        from: "production",
        mutate: (doc) => {
          const env = section(doc, "environment");
          env.deploymentBranches = ["refs/heads/main"];
          env.deploymentTags = ["v*..*"];
        },
        expect: [
          'Pulumi.bad-pattern.yaml: clicky-delivery:environment.deploymentBranches[0]: "refs/heads/main" write the short name ("main"), not the full ref',
          `Pulumi.bad-pattern.yaml: clicky-delivery:environment.deploymentTags[0]: "v*..*" must not contain '..'`,
        ],
      },
      {
        name: "plain-secret",
        from: "staging",
        mutate: (doc) => {
          doc.config["clicky-delivery:expoToken"] = "expo-plaintext-canary-123";
        },
        expect: [
          "Pulumi.plain-secret.yaml: clicky-delivery:expoToken: is stored in plain text; remove it and run `pulumi config set --secret expoToken --stack plain-secret`",
        ],
      },
    ];

  for (const c of cases) {
    describe(c.name, () => {
      const file = brokenStackFile(c.from, c.name, c.mutate);
      const out = join(work, `out-${c.name}`);
      const run = runSynth(["--stack-file", file], out);

      test("exits non-zero", () => assert.equal(run.status, 1, run.stdout));

      test("prints one line per problem, naming the file and the key path", () => {
        const lines = run.stderr.trim().split("\n");
        for (const expected of c.expect) {
          assert.ok(
            lines.some((l) => l.startsWith(expected)),
            `missing: ${expected}\nin:\n${run.stderr}`,
          );
        }
        const problems = lines.slice(0, -1);
        assert.equal(problems.length, c.expect.length, run.stderr);
        assert.equal(lines.at(-1), `synth: ${c.expect.length} problem(s); nothing was written`);
      });

      test("writes nothing", () => assert.ok(!existsSync(out)));

      test("never echoes a secret value", () => {
        assert.ok(!run.stderr.includes("expo-plaintext-canary-123"));
        assert.ok(!run.stdout.includes("expo-plaintext-canary-123"));
      });
    });
  }
});
