import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { hostKeyProblems, isPlaceholderHostKey, pinnedHostKey } from "../../src/config/host-keys";
import { StackConfigError } from "../../src/config/load";
import { decodeConfigMap } from "../../src/config/raw";
import { parseStackConfig, type StackConfig, secretKeySpecs } from "../../src/config/schema";
import { readStackFile } from "../../src/config/stack-file";
import {
  readSiblingStacks,
  stackFilesProblems,
  stacksAgreeProblems,
} from "../../src/config/stacks-agree";
import { REPO_ROOT, runProgram } from "../support/program";

/** The values of our namespace in the committed `Pulumi.<stack>.yaml`. */
function committed(stack: string): Record<string, unknown> {
  const file = readStackFile(join(REPO_ROOT, `Pulumi.${stack}.yaml`));
  const secret = new Set(file.secretKeys);
  return decodeConfigMap(file.config, (key) => secret.has(key), file.file).values;
}

/**
 * The committed values with one key replaced (`undefined` removes it), by a path as the
 * problems print it, e.g. `deploy.hosts[0].host`.
 */
function patched(stack: string, path: string, value: unknown): Record<string, unknown> {
  const values = structuredClone(committed(stack));
  const parts = path.split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== "");
  let node = values as Record<string, unknown>;
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {};
    node = node[part] as Record<string, unknown>;
  }
  const last = parts[parts.length - 1] ?? "";
  if (value === undefined) delete node[last];
  else node[last] = value;
  return values;
}

function problemsOf(values: Record<string, unknown>, stack: string): readonly string[] {
  const result = parseStackConfig(values, { stack });
  return result.ok ? [] : result.problems;
}

function configOf(values: Record<string, unknown>, stack: string): StackConfig {
  const result = parseStackConfig(values, { stack });
  if (!result.ok) throw new Error(result.problems.join("\n"));
  return result.config;
}

describe("the committed stack files", () => {
  for (const stack of ["staging", "production"]) {
    test(`Pulumi.${stack}.yaml is valid`, () =>
      assert.deepEqual(problemsOf(committed(stack), stack), []));
  }
});

describe("production always needs a reviewer", () => {
  const noReviewers = { users: [], teams: [] };
  test("production without reviewers is refused even when preventSelfReview is false", () => {
    const values = patched("production", "environment.approval", {
      reviewers: noReviewers,
      preventSelfReview: false,
    });
    assert.deepEqual(problemsOf(values, "production"), [
      "Pulumi.production.yaml: clicky-delivery:environment.approval.reviewers: list at least one user or team: the production environment's required reviewers are the approval gate of every production deploy (whatever preventSelfReview says)",
    ]);
  });
  test("production without an approval section at all is refused the same way", () => {
    const values = patched("production", "environment.approval", undefined);
    assert.match(
      problemsOf(values, "production").join("\n"),
      /clicky-delivery:environment\.approval\.reviewers: list at least one user or team/,
    );
  });
  test("production with one team and no user is accepted", () => {
    const values = patched("production", "environment.approval.reviewers", {
      teams: ["release-managers"],
    });
    assert.deepEqual(problemsOf(values, "production"), []);
  });
  test("staging without reviewers is still accepted", () => {
    const values = patched("staging", "environment.approval.reviewers", noReviewers);
    assert.deepEqual(problemsOf(values, "staging"), []);
  });
});

describe("the drift cron is checked field by field", () => {
  const refused: [string, string[]][] = [
    [
      "61 25 * * *",
      [
        'Pulumi.staging.yaml: clicky-delivery:deployments.driftCron: minute 61 is out of range 0-59 (in "61 25 * * *")',
        'Pulumi.staging.yaml: clicky-delivery:deployments.driftCron: hour 25 is out of range 0-23 (in "61 25 * * *")',
      ],
    ],
    [
      "0 5 * * 7",
      [
        'Pulumi.staging.yaml: clicky-delivery:deployments.driftCron: day-of-week 7 is out of range 0-6 or SUN-SAT (in "0 5 * * 7")',
      ],
    ],
    [
      "30-10 5 * * *",
      [
        'Pulumi.staging.yaml: clicky-delivery:deployments.driftCron: minute range 30-10 is reversed (write the smaller value first) (in "30-10 5 * * *")',
      ],
    ],
  ];
  for (const [cron, expected] of refused) {
    test(`"${cron}" is refused, naming the field`, () => {
      const values = patched("staging", "deployments.driftCron", cron);
      assert.deepEqual(problemsOf(values, "staging"), expected);
    });
  }
  for (const cron of ["17 5 * * *", "0 6 * * MON-FRI", "*/15 2-4 1,15 JAN-jun sun"]) {
    test(`"${cron}" is accepted`, () => {
      const values = patched("staging", "deployments.driftCron", cron);
      assert.deepEqual(problemsOf(values, "staging"), []);
    });
  }
});

describe("a host address is a DNS name or an IP address", () => {
  const refused: [string, string][] = [
    [
      "999.999.999.999",
      '"999.999.999.999" is not an IPv4 address (four numbers 0-255 without leading zeros, e.g. 192.0.2.10)',
    ],
    [
      "010.0.0.1",
      '"010.0.0.1" is not an IPv4 address (four numbers 0-255 without leading zeros, e.g. 192.0.2.10)',
    ],
    [
      "1.2.3",
      '"1.2.3" is not an IPv4 address (four numbers 0-255 without leading zeros, e.g. 192.0.2.10)',
    ],
    ["[2001:db8::1]", "write the IPv6 address without brackets: 2001:db8::1"],
    ["2001:db8::g", '"2001:db8::g" is not an IPv6 address'],
    [
      "-web.example.org",
      '"-web.example.org" is not a host name: its label "-web" must be 1-63 letters, digits or inner hyphens',
    ],
    [
      "web..example.org",
      '"web..example.org" has an empty label (two dots in a row, or a leading dot)',
    ],
    [
      "web_1.example.org",
      '"web_1.example.org" is not a host name: its label "web_1" must be 1-63 letters, digits or inner hyphens',
    ],
  ];
  for (const [host, problem] of refused) {
    test(`${host} is refused`, () => {
      const values = patched("staging", "deploy.hosts[0].host", host);
      assert.deepEqual(problemsOf(values, "staging"), [
        `Pulumi.staging.yaml: clicky-delivery:deploy.hosts[0].host: ${problem}`,
      ]);
    });
  }
  for (const host of [
    "10.0.0.5",
    "0.0.0.0",
    "255.255.255.255",
    "::1",
    "2001:db8::1",
    "web-1",
    "web-1.example.org",
    "1e100.net",
  ]) {
    test(`${host} is accepted`, () => {
      const values = patched("staging", "deploy.hosts[0].host", host);
      assert.deepEqual(problemsOf(values, "staging"), []);
    });
  }
  test("a name of 254 characters is refused", () => {
    const host = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(62)}`;
    assert.equal(host.length, 254);
    assert.deepEqual(problemsOf(patched("staging", "deploy.hosts[0].host", host), "staging"), [
      "Pulumi.staging.yaml: clicky-delivery:deploy.hosts[0].host: is 254 characters long; a host name has at most 253",
    ]);
  });
});

describe("a missing or empty value says it is required, not what zod expected", () => {
  const dir = mkdtempSync(join(tmpdir(), "clicky-config-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The problems of a stack file whose text is the committed staging file with one change. */
  function problemsOfStackFile(edit: (text: string) => string): readonly string[] {
    const text = edit(readStackFileText("staging"));
    const path = join(dir, "Pulumi.staging.yaml");
    writeFileSync(path, text);
    const file = readStackFile(path);
    const secret = new Set(file.secretKeys);
    const decoded = decodeConfigMap(file.config, (key) => secret.has(key), file.file);
    return problemsOf(decoded.values, "staging");
  }

  const imageRequired =
    "Pulumi.staging.yaml: clicky-delivery:deploy.image.repository: is required: the image repository the pipeline pushes to, e.g. ghcr.io/<owner>/<repo>/backend";

  test("an image section with only comments under it names the repository and what it is", () => {
    const problems = problemsOfStackFile((text) =>
      text.replace(/^ {6}repository: ghcr\.io.*\n/m, ""),
    );
    assert.deepEqual(problems, [imageRequired]);
  });
  test("an image section without a repository key says the same", () => {
    const values = patched("staging", "deploy.image", { tag: "v1.0.0" });
    assert.deepEqual(problemsOf(values, "staging"), [imageRequired]);
  });
  test("a missing deploy section names each key to write", () => {
    const values = patched("staging", "deploy", undefined);
    assert.deepEqual(problemsOf(values, "staging"), [
      "Pulumi.staging.yaml: clicky-delivery:deploy.hosts: is required",
      imageRequired,
    ]);
  });
  test("a missing section names its required keys", () => {
    const values = patched("staging", "environment", undefined);
    assert.deepEqual(problemsOf(values, "staging"), [
      "Pulumi.staging.yaml: clicky-delivery:environment.name: is required",
      "Pulumi.staging.yaml: clicky-delivery:environment.url: is required",
    ]);
  });
  test("a missing required choice is required, not an invalid option", () => {
    const values = patched("staging", "deployments.backend", undefined);
    assert.deepEqual(problemsOf(values, "staging"), [
      "Pulumi.staging.yaml: clicky-delivery:deployments.backend: is required",
    ]);
  });
  test("an optional key with only comments under it is empty, not required", () => {
    const problems = problemsOfStackFile((text) =>
      text.replace(/^ {4}backup:\n {6}keep: 10\n/m, "    backup:\n      # keep: 10\n"),
    );
    assert.deepEqual(problems, [
      "Pulumi.staging.yaml: clicky-delivery:deploy.backup: is empty (nothing but comments under it?); give it a value, or remove the key",
    ]);
  });
});

function readStackFileText(stack: string): string {
  return readFileSync(join(REPO_ROOT, `Pulumi.${stack}.yaml`), "utf8");
}

const PLACEHOLDER = `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${"A".repeat(43)}`;
const REAL_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJFcj1CHKyv3EJ4x/ZQgven+3J7fuKCh+EF0U2LZ+1UI";

describe("a placeholder host key counts as not set", () => {
  const cases: [string, string, boolean][] = [
    ["the committed all-zero ed25519 line", PLACEHOLDER, true],
    ["the same line with spaces around it", `  ${PLACEHOLDER} `, true],
    ["a real ed25519 key", REAL_KEY, false],
    [
      "an all-zero ECDSA point",
      `ecdsa-sha2-nistp256 ${sshBlob("ecdsa-sha2-nistp256", Buffer.from("nistp256"), Buffer.alloc(65))}`,
      true,
    ],
    ["a key that is not base64", "ssh-ed25519 not*base64", false],
    ["a truncated blob", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAA", false],
  ];
  for (const [what, line, placeholder] of cases) {
    test(`${what}: ${placeholder ? "placeholder" : "not a placeholder"}`, () =>
      assert.equal(isPlaceholderHostKey(line), placeholder));
  }
  test("the committed production file holds the placeholder", () => {
    const deploy = committed("production").deploy as { hosts: { hostKey?: string }[] };
    assert.equal(isPlaceholderHostKey(deploy.hosts[0]?.hostKey ?? ""), true);
  });
  test("the pinned key of a host is its key, unless that is unset or the placeholder", () => {
    assert.equal(pinnedHostKey({ hostKey: REAL_KEY }), REAL_KEY);
    assert.equal(pinnedHostKey({ hostKey: PLACEHOLDER }), undefined);
    assert.equal(pinnedHostKey({}), undefined);
  });
});

describe("host key rules, for pulumi up and for synth", () => {
  const host = (hostKey?: string) => ({
    name: "prod-1",
    host: "api.example.org",
    port: 22,
    ...(hostKey === undefined ? {} : { hostKey }),
  });
  const how =
    "pin it: ssh-keyscan -p 22 -t ed25519 api.example.org, checked against the host's console";
  const up = { mode: "up" } as const;
  const synth = { mode: "synth" } as const;

  test("up: production refuses a host without a key, with hostKeyPolicy's words", () => {
    assert.deepEqual(hostKeyProblems("production", [host()], "Pulumi.production.yaml", up), {
      errors: [
        `Pulumi.production.yaml: clicky-delivery:deploy.hosts[0].hostKey: required in production (${how})`,
      ],
      warnings: [],
      unset: [],
    });
  });
  test("up: production refuses the placeholder, saying it is the placeholder", () => {
    assert.deepEqual(hostKeyProblems("production", [host(PLACEHOLDER)], undefined, up), {
      errors: [
        `Pulumi.production.yaml: clicky-delivery:deploy.hosts[0].hostKey: required in production, and the line there is the all-zero placeholder, not the host's key (${how})`,
      ],
      warnings: [],
      unset: [],
    });
  });
  test("up: production accepts a real key", () => {
    assert.deepEqual(hostKeyProblems("production", [host(REAL_KEY)], undefined, up), {
      errors: [],
      warnings: [],
      unset: [],
    });
  });
  test("up: staging warns about a host without a key, with hostKeyPolicy's words", () => {
    const staging = { ...host(), host: "staging.example.org" };
    assert.deepEqual(hostKeyProblems("staging", [staging], undefined, up).warnings, [
      "Pulumi.staging.yaml: clicky-delivery:deploy.hosts[0].hostKey: not set, so the deploy to staging.example.org trusts any server that answers; pin it: ssh-keyscan -p 22 -t ed25519 staging.example.org, checked against the host's console",
    ]);
  });
  test("up and synth: staging warns that a placeholder is one", () => {
    for (const mode of [up, synth]) {
      assert.deepEqual(hostKeyProblems("staging", [host(PLACEHOLDER)], undefined, mode), {
        errors: [],
        warnings: [
          `Pulumi.staging.yaml: clicky-delivery:deploy.hosts[0].hostKey: is the all-zero placeholder, not the host's key, so it counts as not set: the deploy to api.example.org trusts any server that answers; ${how}`,
        ],
        unset: [],
      });
    }
  });
  test("synth: production lists a missing or placeholder key as unset instead of stopping", () => {
    const hosts = [
      host(PLACEHOLDER),
      { ...host(), name: "prod-2", host: "10.0.0.2" },
      host(REAL_KEY),
    ];
    assert.deepEqual(hostKeyProblems("production", hosts, undefined, synth), {
      errors: [],
      warnings: [],
      unset: [
        {
          key: "deploy.hosts[0].hostKey",
          name: "prod-1",
          host: "api.example.org",
          placeholder: true,
        },
        { key: "deploy.hosts[1].hostKey", name: "prod-2", host: "10.0.0.2", placeholder: false },
      ],
    });
  });
  test("synth of the committed production file lists its host key as unset", () => {
    const config = configOf(committed("production"), "production");
    const result = hostKeyProblems("production", config.deploy.hosts, undefined, synth);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(
      result.unset.map((u) => u.key),
      ["deploy.hosts[0].hostKey"],
    );
  });
});

describe("the stacks agree", () => {
  const staging = () => configOf(committed("staging"), "staging");
  const production = () => configOf(committed("production"), "production");
  const withStaging = (path: string, value: unknown) =>
    configOf(patched("staging", path, value), "staging");

  test("the committed stacks agree, seen from either", () => {
    assert.deepEqual(
      stacksAgreeProblems(production(), "Pulumi.production.yaml", [
        { file: "Pulumi.staging.yaml", config: staging() },
      ]),
      [],
    );
    assert.deepEqual(
      stacksAgreeProblems(staging(), "Pulumi.staging.yaml", [
        { file: "Pulumi.production.yaml", config: production() },
      ]),
      [],
    );
  });

  const disagreements: [string, string, unknown, string][] = [
    [
      "another image",
      "deploy.image.repository",
      "ghcr.io/x/y/backend",
      "Pulumi.production.yaml: clicky-delivery:deploy.image.repository: is ghcr.io/clicky-foundation/clicky-foundation/backend here but ghcr.io/x/y/backend in Pulumi.staging.yaml; both stacks deploy the same image",
    ],
    [
      "another owner",
      "github.owner",
      "someone-else",
      "Pulumi.production.yaml: clicky-delivery:github.owner: is clicky-foundation here but someone-else in Pulumi.staging.yaml; both stacks manage the same app repository",
    ],
    [
      "another repository",
      "github.repository",
      "other-app",
      "Pulumi.production.yaml: clicky-delivery:github.repository: is clicky-foundation here but other-app in Pulumi.staging.yaml; both stacks manage the same app repository",
    ],
    [
      "another default branch",
      "github.defaultBranch",
      "develop",
      "Pulumi.production.yaml: clicky-delivery:github.defaultBranch: is main here but develop in Pulumi.staging.yaml; both stacks deploy from the same default branch",
    ],
    [
      "another repository-owning stack",
      "github.repositoryStack",
      "production",
      "Pulumi.production.yaml: clicky-delivery:github.repositoryStack: is staging here but production in Pulumi.staging.yaml; exactly one stack owns the repository-wide resources, and every stack must name the same one",
    ],
    [
      "the same environment",
      "environment.name",
      "production",
      "Pulumi.production.yaml: clicky-delivery:environment.name: is production here and production in Pulumi.staging.yaml; each stack needs its own GitHub environment, or both would write the same approval rules and secrets",
    ],
    [
      "another organization",
      "deployments.organization",
      "other-org",
      "Pulumi.production.yaml: clicky-delivery:deployments.organization: is clicky-foundation here but other-org in Pulumi.staging.yaml; the pipelines name every stack in the same Pulumi organization",
    ],
    [
      "another backend",
      "deployments",
      { backend: "self-managed" },
      "Pulumi.production.yaml: clicky-delivery:deployments.backend: is cloud here but self-managed in Pulumi.staging.yaml; the pipelines run every stack the same way",
    ],
  ];
  for (const [what, path, value, expected] of disagreements) {
    test(`${what} in the other stack file is reported, with both values`, () => {
      const problems = stacksAgreeProblems(production(), "Pulumi.production.yaml", [
        { file: "Pulumi.staging.yaml", config: withStaging(path, value) },
      ]);
      assert.ok(
        problems.includes(expected),
        `expected:\n  ${expected}\ngot:\n  ${problems.join("\n  ")}`,
      );
    });
  }
  test("owner and repository names agree whatever their case, as on GitHub", () => {
    const other = withStaging("github.owner", "Clicky-Foundation");
    assert.deepEqual(
      stacksAgreeProblems(production(), "Pulumi.production.yaml", [
        { file: "Pulumi.staging.yaml", config: other },
      ]),
      [],
    );
  });

  test("a deploy target that names another environment than its stack's is reported", () => {
    const self = withStaging("workflows", {
      targets: {
        production: { stack: "production", environment: "prod", checkPaths: ["/health"] },
      },
    });
    assert.deepEqual(
      stacksAgreeProblems(self, "Pulumi.staging.yaml", [
        { file: "Pulumi.production.yaml", config: production() },
      ]),
      [
        "Pulumi.staging.yaml: clicky-delivery:workflows.targets.production.environment: is prod here but Pulumi.production.yaml names the production stack's environment production (environment.name); the production deploy job must run in the environment that stack manages, whose reviewers gate it",
      ],
    );
  });
  test("a deploy target of this very stack is checked against this file", () => {
    const self = withStaging("workflows", {
      targets: { staging: { stack: "staging", environment: "stage", checkPaths: ["/health"] } },
    });
    assert.deepEqual(stacksAgreeProblems(self, "Pulumi.staging.yaml", []), [
      "Pulumi.staging.yaml: clicky-delivery:workflows.targets.staging.environment: is stage here but this file names the staging stack's environment staging (environment.name); the staging deploy job must run in the environment that stack manages, whose reviewers gate it",
    ]);
  });
  test("a deploy target whose stack file does not exist is not checked", () => {
    const self = withStaging("workflows", {
      targets: {
        production: { stack: "prod-eu", environment: "anything", checkPaths: ["/health"] },
      },
    });
    assert.deepEqual(stacksAgreeProblems(self, "Pulumi.staging.yaml", []), []);
  });
});

describe("reading the other stack files", () => {
  const dir = mkdtempSync(join(tmpdir(), "clicky-stacks-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("from the project folder finds and validates the other stack", () => {
    const siblings = readSiblingStacks(REPO_ROOT, "production");
    assert.deepEqual(siblings.problems, []);
    assert.deepEqual(
      siblings.stacks.map((s) => [s.file, s.config.stack]),
      [["Pulumi.staging.yaml", "staging"]],
    );
  });
  test("the committed stack files agree, as pulumi up checks them", () => {
    for (const stack of ["staging", "production"]) {
      const config = configOf(committed(stack), stack);
      assert.deepEqual(stackFilesProblems(config, `Pulumi.${stack}.yaml`, REPO_ROOT), []);
    }
  });
  test("a folder without other stack files has nothing to check", () => {
    writeFileSync(join(dir, "Pulumi.yaml"), "name: clicky-delivery\n");
    const config = configOf(committed("staging"), "staging");
    assert.deepEqual(stackFilesProblems(config, "Pulumi.staging.yaml", dir), []);
  });
  test("another stack file that is not valid is reported with its own problems, naming it", () => {
    const text = readStackFileText("production").replace(
      'driftCron: "17 5 * * *"',
      'driftCron: "61 5 * * *"',
    );
    writeFileSync(join(dir, "Pulumi.production.yaml"), text);
    const config = configOf(committed("staging"), "staging");
    assert.deepEqual(stackFilesProblems(config, "Pulumi.staging.yaml", dir), [
      'Pulumi.production.yaml: clicky-delivery:deployments.driftCron: minute 61 is out of range 0-59 (in "61 5 * * *")',
    ]);
  });
  test("another stack file that is not YAML is reported, naming it", () => {
    writeFileSync(join(dir, "Pulumi.production.yaml"), "config: [unclosed\n");
    const config = configOf(committed("staging"), "staging");
    const problems = stackFilesProblems(config, "Pulumi.staging.yaml", dir);
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(problems[0] ?? "", /^Pulumi\.production\.yaml: cannot read the stack file: /);
  });
});

describe("pulumi up refuses stacks that disagree", async () => {
  const secrets = Object.fromEntries(
    secretKeySpecs.filter((s) => !s.names).map((s) => [s.key, `${s.key}-value`]),
  );
  const run = await runProgram({
    stack: "staging",
    mode: "up",
    secrets,
    overrides: { github: { ...(committed("staging").github as object), defaultBranch: "develop" } },
    stackFilesDir: REPO_ROOT,
  });
  test("before any resource is registered, naming the other stack file", () => {
    assert.ok(run.error instanceof StackConfigError, String(run.error));
    assert.deepEqual(run.error.problems, [
      "Pulumi.staging.yaml: clicky-delivery:github.defaultBranch: is develop here but main in Pulumi.production.yaml; both stacks deploy from the same default branch",
    ]);
    assert.deepEqual(run.resources, []);
  });
});

describe("Pulumi Deployments needs the program's source spelled out", () => {
  const cloud = { backend: "cloud", organization: "clicky-foundation" };
  test("a cloud stack without source is refused, naming both keys and why", () => {
    const values = patched("staging", "deployments", cloud);
    assert.deepEqual(problemsOf(values, "staging"), [
      'Pulumi.staging.yaml: clicky-delivery:deployments.source.repository: is required with backend "cloud": the owner/name of the repository that holds this program\'s Pulumi.yaml',
      'Pulumi.staging.yaml: clicky-delivery:deployments.source.directory: is required with backend "cloud": the folder of Pulumi.yaml inside that repository ("." for its root)',
    ]);
  });
  test("a cloud stack with only a directory still needs the repository", () => {
    const values = patched("staging", "deployments", { ...cloud, source: { directory: "." } });
    assert.deepEqual(problemsOf(values, "staging"), [
      'Pulumi.staging.yaml: clicky-delivery:deployments.source.repository: is required with backend "cloud": the owner/name of the repository that holds this program\'s Pulumi.yaml',
    ]);
  });
  test("the committed stacks name both", () => {
    for (const stack of ["staging", "production"]) {
      const { source } = configOf(committed(stack), stack).deployments;
      assert.deepEqual(source, {
        repository: "clicky-foundation/clicky-foundation",
        directory: ".",
      });
    }
  });
  test("a self-managed stack may leave them out: the app repository's root", () => {
    const values = patched("staging", "deployments", { backend: "self-managed" });
    assert.deepEqual(configOf(values, "staging").deployments.source, { directory: "." });
  });
});

/** An SSH public key blob of length-prefixed fields, base64 as in a host key line. */
function sshBlob(type: string, ...fields: Buffer[]): string {
  const parts = [Buffer.from(type), ...fields].flatMap((field) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(field.length);
    return [length, field];
  });
  return Buffer.concat(parts).toString("base64");
}

describe("the mobile update branches", () => {
  test("one branch for testers and users is refused, naming the key", () => {
    const problems = problemsOf(
      patched("staging", "workflows.mobile", {
        updateBranch: "production",
        stagingUpdateBranch: "production",
      }),
      "staging",
    );
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(problems[0] ?? "", /workflows\.mobile\.stagingUpdateBranch/);
    assert.match(problems[0] ?? "", /must differ: an update reaches production only when promoted/);
  });
  test("left out, testers get `staging` and users `production`", () => {
    const config = configOf(patched("staging", "workflows.mobile", undefined), "staging");
    assert.deepEqual(config.workflows.mobile, {
      buildProfile: "production",
      updateBranch: "production",
      stagingUpdateBranch: "staging",
      submit: true,
    });
  });
});
