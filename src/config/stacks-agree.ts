import { readdirSync } from "node:fs";
import { join } from "node:path";
import { decodeConfigMap } from "./raw";
import { PROJECT, parseStackConfig, type StackConfig } from "./schema";
import { readStackFile } from "./stack-file";

/** Another stack of the project, as its stack file declares it. */
export interface SiblingStack {
  /** The stack file's name, e.g. `Pulumi.staging.yaml`. */
  readonly file: string;
  readonly config: StackConfig;
}

export interface SiblingStacks {
  /** The other stack files that are valid. */
  readonly stacks: readonly SiblingStack[];
  /** One line per problem of the other stack files, each naming its file. */
  readonly problems: readonly string[];
}

/** `Pulumi.<stack>.yaml` (or `.yml`): the stack files the CLI reads beside `Pulumi.yaml`. */
const STACK_FILE = /^Pulumi\.(.+)\.ya?ml$/;

/**
 * Reads and validates the project's other stack files in `dir` (the folder of `Pulumi.yaml`),
 * without decrypting any secret, so this stack can be checked against them. A file that does
 * not validate is reported with its own problems, each line naming that file.
 *
 * @example readSiblingStacks(process.cwd(), "production") // reads Pulumi.staging.yaml
 */
export function readSiblingStacks(dir: string, stack: string): SiblingStacks {
  const stacks: SiblingStack[] = [];
  const problems: string[] = [];
  const names = readdirSync(dir)
    .map((entry) => ({ entry, stack: STACK_FILE.exec(entry)?.[1] }))
    .filter((f): f is { entry: string; stack: string } => f.stack !== undefined)
    .filter((f) => f.stack !== stack)
    .sort((a, b) => a.entry.localeCompare(b.entry));
  for (const { entry, stack: other } of names) {
    let fromFile: ReturnType<typeof readStackFile>;
    try {
      fromFile = readStackFile(join(dir, entry));
    } catch (err) {
      problems.push((err as Error).message);
      continue;
    }
    const secret = new Set(fromFile.secretKeys);
    const decoded = decodeConfigMap(fromFile.config, (key) => secret.has(key), fromFile.file);
    const parsed = parseStackConfig(decoded.values, {
      stack: other,
      file: fromFile.file,
      secretKeys: decoded.secretKeys,
    });
    problems.push(...decoded.problems);
    if (parsed.ok) stacks.push({ file: fromFile.file, config: parsed.config });
    else problems.push(...parsed.problems);
  }
  return { stacks, problems };
}

/** Settings every stack of the project must share, and why. */
const SHARED: readonly {
  readonly key: string;
  readonly read: (config: StackConfig) => string | undefined;
  /** GitHub names are case-insensitive: `Clicky` and `clicky` are one owner. */
  readonly ignoreCase?: boolean;
  readonly why: string;
}[] = [
  {
    key: "github.owner",
    read: (c) => c.github.owner,
    ignoreCase: true,
    why: "both stacks manage the same app repository",
  },
  {
    key: "github.repository",
    read: (c) => c.github.repository,
    ignoreCase: true,
    why: "both stacks manage the same app repository",
  },
  {
    key: "github.defaultBranch",
    read: (c) => c.github.defaultBranch,
    why: "both stacks deploy from the same default branch",
  },
  {
    key: "github.repositoryStack",
    read: (c) => c.github.repositoryStack,
    why: "exactly one stack owns the repository-wide resources, and every stack must name the same one",
  },
  {
    key: "deploy.image.repository",
    read: (c) => c.deploy.image.repository,
    why: "both stacks deploy the same image",
  },
  {
    key: "workflows.notify",
    read: (c) => String(c.workflows.notify),
    why: "the repository-owning stack writes the deploy workflows' notify step and each stack holds its environment's webhook",
  },
  {
    key: "workflows.mobile.submit",
    read: (c) => String(c.workflows.mobile.submit),
    why: "the repository-owning stack writes the upload steps and the approval-gated stack holds the store credentials they read",
  },
  {
    key: "deployments.backend",
    read: (c) => c.deployments.backend,
    why: "the pipelines run every stack the same way",
  },
  {
    key: "deployments.organization",
    read: (c) => c.deployments.organization,
    why: "the pipelines name every stack in the same Pulumi organization",
  },
  {
    key: "deployments.auth",
    read: (c) => c.deployments.auth,
    why: "the workflows log every job in to Pulumi the same way",
  },
];

/**
 * Where this stack disagrees with the project's other stacks, one line each, prefixed with this
 * stack's file and the key path, naming the other file and both values. The stacks share the
 * app repository, its default branch and owning stack, the image and the way they are run; each
 * has its own GitHub environment; and this stack's workflow deploy targets name the environment
 * each target stack manages (checked for the targets whose stack file is here).
 *
 * @example stacksAgreeProblems(production, "Pulumi.production.yaml", [staging])
 * // ["Pulumi.production.yaml: clicky-delivery:deploy.image.repository: is ghcr.io/a/b/backend
 * //   here but ghcr.io/x/y/backend in Pulumi.staging.yaml; both stacks deploy the same image"]
 */
export function stacksAgreeProblems(
  self: StackConfig,
  file: string,
  others: readonly SiblingStack[],
): string[] {
  const problems: string[] = [];
  const line = (key: string, text: string) => `${file}: ${PROJECT}:${key}: ${text}`;
  for (const other of others) {
    for (const shared of SHARED) {
      const here = shared.read(self);
      const there = shared.read(other.config);
      const same = shared.ignoreCase
        ? here?.toLowerCase() === there?.toLowerCase()
        : here === there;
      if (!same) {
        problems.push(
          line(
            shared.key,
            `is ${here ?? "not set"} here but ${there ?? "not set"} in ${other.file}; ${shared.why}`,
          ),
        );
      }
    }
    const name = self.environment.name;
    if (name.toLowerCase() === other.config.environment.name.toLowerCase()) {
      problems.push(
        line(
          "environment.name",
          `is ${name} here and ${other.config.environment.name} in ${other.file}; each stack needs its own GitHub environment, or both would write the same approval rules and secrets`,
        ),
      );
    }
  }
  const known = [{ file, config: self }, ...others];
  for (const [target, { stack, environment }] of Object.entries(self.workflows.targets)) {
    // A target may be qualified (`org/project/stack`); the stack file is named by the last part.
    const targetStack = known.find((s) => s.config.stack === stack.split("/").pop());
    if (targetStack === undefined) continue;
    const managed = targetStack.config.environment.name;
    if (managed !== environment) {
      const where = targetStack.file === file ? "this file" : targetStack.file;
      problems.push(
        line(
          `workflows.targets.${target}.environment`,
          `is ${environment} here but ${where} names the ${stack} stack's environment ${managed} (environment.name); the ${target} deploy job must run in the environment that stack manages, whose reviewers gate it`,
        ),
      );
    }
  }
  return problems;
}

/**
 * Everything wrong between this stack and the other stack files in `dir` (the folder of
 * `Pulumi.yaml`): their own problems, then where they disagree. Empty when there is no other
 * stack file, or nothing wrong.
 *
 * @example stackFilesProblems(config, "Pulumi.production.yaml", process.cwd())
 */
export function stackFilesProblems(self: StackConfig, file: string, dir: string): string[] {
  const siblings = readSiblingStacks(dir, self.stack);
  return [...siblings.problems, ...stacksAgreeProblems(self, file, siblings.stacks)];
}
