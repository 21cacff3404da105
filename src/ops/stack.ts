import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeConfigMap } from "../config/raw";
import { parseStackConfig, type StackConfig } from "../config/schema";
import { readStackFile } from "../config/stack-file";
import type { Credentials } from "../deploy/ssh-exec";

/** A problem the user fixes: printed as is, exit status 2 (usage) or 1. */
export class OpsError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "OpsError";
  }
}

/**
 * The stack's config as `pulumi` would read it, without its secrets: `Pulumi.<stack>.yaml` in
 * the program's folder, validated like the program validates it. A wrong file stops the
 * command with every problem, each naming the file and the key.
 */
export function readOpsStack(dir: string, stack: string): StackConfig {
  const path = join(dir, `Pulumi.${stack}.yaml`);
  if (!existsSync(path)) {
    throw new OpsError(
      `no stack file ${path}: run from the folder of Pulumi.yaml, or pass --dir <that folder>`,
      2,
    );
  }
  const file = readStackFile(path);
  const secret = new Set(file.secretKeys);
  const decoded = decodeConfigMap(file.config, (key) => secret.has(key), file.file);
  const parsed = parseStackConfig(decoded.values, {
    stack,
    file: file.file,
    secretKeys: decoded.secretKeys,
  });
  const problems = [...decoded.problems, ...(parsed.ok ? [] : parsed.problems)];
  if (!parsed.ok || problems.length > 0) throw new OpsError(problems.join("\n"));
  return parsed.config;
}

export interface CredentialSources {
  /** `--identity <file>`: a private key file. */
  readonly identityFile?: string;
  readonly stack: string;
  readonly dir: string;
  /** `SSH_AUTH_SOCK`. */
  readonly agentSocket?: string;
  /** Reads the stack's `sshPrivateKey` with the Pulumi CLI; undefined when it cannot. */
  readonly pulumiSecret?: (stack: string, dir: string) => string | undefined;
}

/**
 * The SSH credentials, in this order: `--identity <file>`; the stack's own `sshPrivateKey`,
 * read the way `pulumi` reads it (`pulumi config get --show-secrets`, where the CLI is
 * installed and logged in); the user's SSH agent. The key is never printed.
 */
export function resolveCredentials(sources: CredentialSources): Credentials {
  if (sources.identityFile !== undefined) {
    try {
      return {
        kind: "key",
        privateKey: readFileSync(sources.identityFile, "utf8"),
        from: sources.identityFile,
      };
    } catch (err) {
      throw new OpsError(
        `--identity ${sources.identityFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        2,
      );
    }
  }
  const fromPulumi = (sources.pulumiSecret ?? pulumiConfigSecret)(sources.stack, sources.dir);
  if (fromPulumi !== undefined) {
    return {
      kind: "key",
      privateKey: fromPulumi,
      from: `the ${sources.stack} stack's sshPrivateKey`,
    };
  }
  if (sources.agentSocket) return { kind: "agent", socket: sources.agentSocket };
  throw new OpsError(
    `no SSH credentials: pass --identity <private key file>, or log in with the Pulumi CLI (pulumi config get --show-secrets sshPrivateKey --stack ${sources.stack} must work), or load the deploy key into an SSH agent`,
    2,
  );
}

/** `pulumi config get --show-secrets sshPrivateKey`, or undefined when the CLI cannot. */
export function pulumiConfigSecret(stack: string, dir: string): string | undefined {
  try {
    const value = execFileSync(
      "pulumi",
      ["config", "get", "--show-secrets", "sshPrivateKey", "--stack", stack],
      { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 30_000 },
    );
    return value.trim() === "" ? undefined : `${value.trimEnd()}\n`;
  } catch {
    return undefined;
  }
}
