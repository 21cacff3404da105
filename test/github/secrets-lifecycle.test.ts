import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RESOURCE_TYPES } from "../../src/synth/resource-types";
import { reveal } from "../../src/synth/wire";
import {
  EMPTY_STATE,
  lifecycleRun,
  refresh,
  type StackState,
  type World,
} from "../support/lifecycle";
import { deployWith, describeSteps, registryAnswers, SECRETS, tagged } from "../support/stacks";

const STACK = "staging";
const { environmentSecret: ENV_SECRET, repositorySecret: REPO_SECRET } = RESOURCE_TYPES;

/** GitHub's Actions secrets, with the times GitHub reports (Go's time format, as the provider prints it). */
class Secrets {
  private clock = Date.parse("2026-11-01T10:00:00Z");
  readonly store = new Map<string, { value: string; updatedAt: string }>();

  tick(ms: number): void {
    this.clock += ms;
  }

  private now(): string {
    return `${new Date(this.clock)
      .toISOString()
      .replace("T", " ")
      .replace(/\.\d+Z$/, "")} +0000 UTC`;
  }

  private key(inputs: Readonly<Record<string, unknown>>): string {
    return `${String(inputs.environment ?? "repository")}/${String(inputs.secretName)}`;
  }

  /** Someone sets a secret in the GitHub UI. */
  setByHand(scope: string, name: string, value: string): void {
    this.tick(3_600_000);
    this.store.set(`${scope}/${name}`, { value, updatedAt: this.now() });
  }

  valueOf(scope: string, name: string): string | undefined {
    return this.store.get(`${scope}/${name}`)?.value;
  }

  world(): World {
    const isSecret = (type: string) => type === ENV_SECRET || type === REPO_SECRET;
    const write = (inputs: Readonly<Record<string, unknown>>) => {
      this.tick(1_000);
      this.store.set(this.key(inputs), {
        value: String(reveal(inputs.value)),
        updatedAt: this.now(),
      });
    };
    return {
      create: (r) => {
        if (isSecret(r.type)) write(r.inputs);
        return undefined;
      },
      update: (r) => {
        if (isSecret(r.type)) write(r.inputs);
        return undefined;
      },
      delete: (old) => {
        if (isSecret(old.type)) this.store.delete(this.key(old.inputs));
        return undefined;
      },
      // resource_github_actions_environment_secret.go Create/Update: both times read back after the write.
      outputs: (r) => {
        if (!isSecret(r.type)) return {};
        const at = this.store.get(this.key(r.inputs))?.updatedAt ?? "";
        return { updatedAt: at, remoteUpdatedAt: at };
      },
      callResult: (token, args) => {
        const list = (scope: string) => ({
          secrets: [...this.store]
            .filter(([k]) => k.startsWith(`${scope}/`))
            .map(([k, v]) => ({
              name: k.slice(scope.length + 1),
              createdAt: v.updatedAt,
              updatedAt: v.updatedAt,
            })),
        });
        if (token === "github:index/getActionsEnvironmentSecrets:getActionsEnvironmentSecrets") {
          return list(String(args.environment));
        }
        if (token === "github:index/getActionsSecrets:getActionsSecrets") return list("repository");
        return registryAnswers(token, args);
      },
    };
  }

  /** A refresh: the provider's Read stores GitHub's time in `remoteUpdatedAt` and keeps `updatedAt`. */
  refresh(state: StackState): StackState {
    return refresh(state, (entry) =>
      isSecretType(entry.type)
        ? { remoteUpdatedAt: this.store.get(this.key(entry.inputs))?.updatedAt ?? "" }
        : "unchanged",
    );
  }
}

const isSecretType = (type: string) => type === ENV_SECRET || type === REPO_SECRET;

describe("a secret changed in the GitHub UI", async () => {
  const github = new Secrets();
  const run = (operation: "up" | "preview", state: StackState, tag?: string) =>
    lifecycleRun({
      stack: STACK,
      mode: "up",
      operation,
      secrets: SECRETS,
      overrides: tag ? tagged(STACK, tag) : deployWith(STACK, (d) => d),
      world: github.world(),
      state,
    });
  const deployed = await run("up", EMPTY_STATE, "v1");
  github.tick(86_400_000);
  const quiet = await run("preview", github.refresh(deployed.state));
  github.setByHand("staging", "PULUMI_ACCESS_TOKEN", "pasted-by-hand");
  github.setByHand("repository", "CODECOV_TOKEN", "pasted-by-hand");
  const refreshed = github.refresh(deployed.state);
  const drift = await run("preview", refreshed);
  const restore = await run("up", refreshed);
  const after = await run("preview", github.refresh(restore.state));

  test("the first run writes the secrets and records when", () => {
    assert.deepEqual(deployed.errors, []);
    const records = deployed.state.outputs.githubSecrets as Record<string, { writtenAt?: string }>;
    assert.ok(records["environment:staging/PULUMI_ACCESS_TOKEN"]?.writtenAt);
    assert.ok(records["repository/CODECOV_TOKEN"]?.writtenAt);
  });

  test("a day later with no change, preview --refresh plans nothing", () => {
    assert.deepEqual(quiet.errors, []);
    assert.equal(describeSteps(quiet.changes), "");
  });

  test("after the hand edits, preview --refresh plans to write both secrets again", () => {
    assert.deepEqual(drift.errors, []);
    assert.equal(
      describeSteps(drift.changes),
      [
        `replace ${REPO_SECRET} repository-codecov-token`,
        `replace ${ENV_SECRET} staging-pulumi-access-token`,
      ].join("\n"),
    );
  });

  test("up puts the configured values back, delete-first so the value survives", () => {
    assert.deepEqual(restore.errors, []);
    assert.equal(github.valueOf("staging", "PULUMI_ACCESS_TOKEN"), SECRETS.pulumiAccessToken);
    assert.equal(github.valueOf("repository", "CODECOV_TOKEN"), SECRETS.codecovToken);
  });

  test("and the next preview plans nothing", () => {
    assert.deepEqual(after.errors, []);
    assert.equal(describeSteps(after.changes), "");
  });
});
