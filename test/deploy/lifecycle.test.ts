import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EMPTY_STATE, lifecycleRuns } from "../support/lifecycle";
import {
  DIGESTS,
  deployWith,
  describeSteps,
  isRunOf,
  REGISTRY_SECRETS,
  registryAnswers,
  SECRETS,
  tagged,
} from "../support/stacks";

const STACK = "staging";

describe("a deploy that fails on the host", async () => {
  const [first, failed, tagless, retried] = await lifecycleRuns(EMPTY_STATE, [
    {
      stack: STACK,
      mode: "up",
      operation: "up",
      secrets: SECRETS,
      overrides: tagged(STACK, "v1"),
      world: { callResult: registryAnswers },
    },
    {
      stack: STACK,
      mode: "up",
      operation: "up",
      secrets: SECRETS,
      overrides: tagged(STACK, "v2"),
      world: {
        callResult: registryAnswers,
        create: (r) =>
          isRunOf(r, DIGESTS.v2 ?? "") ? "health gate failed; v1 keeps serving" : undefined,
      },
    },
    {
      stack: STACK,
      mode: "up",
      operation: "preview",
      secrets: SECRETS,
      overrides: deployWith(STACK, (d) => d),
    },
    {
      stack: STACK,
      mode: "up",
      operation: "up",
      secrets: SECRETS,
      overrides: tagged(STACK, "v2"),
      world: { callResult: registryAnswers },
    },
  ]);

  test("the first deploy succeeds and records v1", () => {
    assert.deepEqual(first.errors, []);
    const image = first.state.outputs.deployedImage as { tag: string; digest: string };
    assert.equal(image.tag, "v1");
    assert.equal(image.digest, DIGESTS.v1);
  });

  test("a failed v2 deploy fails the run and leaves v1 recorded as deployed", () => {
    assert.equal(failed.failed, true);
    assert.match(failed.errors.join("\n") ?? "", /health gate failed/);
    const image = failed.state.outputs.deployedImage as { tag: string; digest: string };
    assert.equal(image.tag, "v1", "the stack says what the hosts serve");
    assert.equal(image.digest, DIGESTS.v1);
  });

  test("then a run without a tag plans nothing", () => {
    assert.deepEqual(tagless.errors, []);
    assert.equal(describeSteps(tagless.changes), "");
  });

  test("and deploying v2 again (fixed) retries it and records v2", () => {
    assert.deepEqual(retried.errors, []);
    assert.equal((retried.state.outputs.deployedImage as { tag: string }).tag, "v2");
  });
});

describe("a private image", async () => {
  const secrets = { ...SECRETS, ...REGISTRY_SECRETS };
  const [taggedRun, tagless] = await lifecycleRuns(EMPTY_STATE, [
    {
      stack: STACK,
      mode: "up",
      operation: "up",
      secrets,
      overrides: tagged(STACK, "v1"),
      world: { callResult: registryAnswers },
    },
    {
      stack: STACK,
      mode: "up",
      operation: "preview",
      secrets,
      overrides: deployWith(STACK, (d) => d),
    },
  ]);

  test("a tagged run looks its digest up through the registry provider", () => {
    assert.deepEqual(taggedRun.errors, []);
    assert.ok(
      taggedRun.steps.some((s) => s.type === "pulumi:providers:docker" && s.op === "create"),
    );
  });

  test("then a tagless run plans nothing: the provider is not deleted", () => {
    assert.deepEqual(tagless.errors, []);
    assert.equal(describeSteps(tagless.changes), "");
  });
});

describe("a fleet rollout that fails on its second app host", async () => {
  const fleet = (tag?: string) =>
    deployWith(STACK, (d) => {
      const [first] = d.hosts as Record<string, unknown>[];
      return {
        ...d,
        hosts: [
          first,
          { ...first, name: "staging-2", host: "staging-2.clicky-foundation.example" },
          { ...first, name: "staging-db", host: "staging-db.clicky-foundation.example" },
        ],
        accessories: { host: "staging-db", privateAddress: "10.0.0.5" },
        image: { ...(d.image as object), ...(tag ? { tag } : {}) },
      };
    });
  const isRollout = (r: { type: string; name: string }) =>
    r.type === "command:local:Command" && r.name === "deploy-rollout";
  const planOf = (r: { inputs: Record<string, unknown> }) =>
    String((r.inputs.environment as Record<string, string>)?.CLICKY_FLEET_PLAN);
  // The rollout reverted staging-1 when staging-2 failed its gate: it exits non-zero.
  const failRollout = (r: { name: string; type: string; inputs: Record<string, unknown> }) =>
    isRollout(r) && planOf(r).includes(DIGESTS.v2 ?? "")
      ? "rollout FAILED at staging-2: went back to the previous version on staging-1"
      : undefined;
  const [first, failed, tagless, retried] = await lifecycleRuns(EMPTY_STATE, [
    {
      stack: STACK,
      mode: "up",
      operation: "up",
      secrets: SECRETS,
      overrides: fleet("v1"),
      world: { callResult: registryAnswers },
    },
    {
      stack: STACK,
      mode: "up",
      operation: "up",
      secrets: SECRETS,
      overrides: fleet("v2"),
      world: { callResult: registryAnswers, create: failRollout },
    },
    { stack: STACK, mode: "up", operation: "preview", secrets: SECRETS, overrides: fleet() },
    {
      stack: STACK,
      mode: "up",
      operation: "up",
      secrets: SECRETS,
      overrides: fleet("v2"),
      world: { callResult: registryAnswers },
    },
  ]);

  test("the first rollout records v1; the hosts' files are copied, the rollout runs once", () => {
    assert.deepEqual(first.errors, []);
    assert.equal((first.state.outputs.deployedImage as { tag: string }).tag, "v1");
    assert.equal(first.state.resources.filter(isRollout).length, 1);
  });

  test("a failed rollout leaves the stack's record on v1, which every host serves again", () => {
    assert.equal(failed.failed, true);
    assert.equal((failed.state.outputs.deployedImage as { tag: string }).tag, "v1");
    const rollout = failed.state.resources.find(isRollout);
    assert.ok(rollout && planOf(rollout).includes(DIGESTS.v1 ?? ""), "state keeps the v1 rollout");
  });

  test("a tagless run then plans nothing: no host is left on v2 to put back", () => {
    assert.deepEqual(tagless.errors, []);
    assert.equal(describeSteps(tagless.changes), "");
  });

  test("the retry replaces the rollout only; the copies stay, the image is a run argument", () => {
    assert.deepEqual(retried.errors, []);
    assert.equal(describeSteps(retried.changes), "replace command:local:Command deploy-rollout");
    assert.equal((retried.state.outputs.deployedImage as { tag: string }).tag, "v2");
  });
});
