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

describe("a deploy that fails on the second of two hosts", async () => {
  const twoHosts = (tag?: string) =>
    deployWith(STACK, (d) => {
      const [first] = d.hosts as Record<string, unknown>[];
      return {
        ...d,
        hosts: [
          first,
          { ...first, name: "staging-2", host: "staging-2.clicky-foundation.example" },
        ],
        image: { ...(d.image as object), ...(tag ? { tag } : {}) },
      };
    });
  const failOnSecond = (r: { name: string; type: string; inputs: Record<string, unknown> }) =>
    r.name === "deploy-staging-2-run" && String(r.inputs.create).includes(DIGESTS.v2 ?? "")
      ? "health gate failed on staging-2"
      : undefined;
  const [, failed, tagless, restored] = await lifecycleRuns(EMPTY_STATE, [
    {
      stack: STACK,
      mode: "up",
      operation: "up",
      secrets: SECRETS,
      overrides: twoHosts("v1"),
      world: { callResult: registryAnswers },
    },
    {
      stack: STACK,
      mode: "up",
      operation: "up",
      secrets: SECRETS,
      overrides: twoHosts("v2"),
      world: { callResult: registryAnswers, create: failOnSecond },
    },
    { stack: STACK, mode: "up", operation: "preview", secrets: SECRETS, overrides: twoHosts() },
    { stack: STACK, mode: "up", operation: "up", secrets: SECRETS, overrides: twoHosts() },
  ]);

  test("the stack still records v1, which the second host serves", () => {
    assert.equal(failed.failed, true);
    assert.equal((failed.state.outputs.deployedImage as { tag: string }).tag, "v1");
  });

  test("a tagless run shows the first host, which moved to v2, as the one change", () => {
    assert.equal(
      describeSteps(tagless.changes),
      "replace command:remote:Command deploy-staging-1-run",
    );
  });

  test("and up puts the first host back on v1, so the fleet serves one version", () => {
    assert.deepEqual(restored.errors, []);
    const run = restored.state.resources.find((r) => r.name === "deploy-staging-1-run");
    assert.ok(String(run?.inputs.create).includes(DIGESTS.v1 ?? ""));
  });
});
