import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  INITIAL_TRIGGER,
  parseGithubTime,
  parseSecretRecords,
  secretDecision,
} from "../../src/github/secret-drift";

const T0 = "2026-11-01 10:00:00 +0000 UTC";

describe("GitHub's times", () => {
  for (const [text, iso] of [
    [T0, "2026-11-01T10:00:00Z"],
    ["2026-11-01 10:00:00.123 +0000 UTC", "2026-11-01T10:00:00.123Z"],
    ["2026-11-01 12:00:00 +0200 CEST", "2026-11-01T10:00:00Z"],
    ["2026-11-01T10:00:00Z", "2026-11-01T10:00:00Z"],
  ] as const) {
    test(`${text} is ${iso}`, () => assert.equal(parseGithubTime(text), Date.parse(iso)));
  }
  test("anything else is not a time", () => assert.equal(parseGithubTime("yesterday"), undefined));
});

describe("a secret's decision", () => {
  const record = { writtenAt: T0, trigger: INITIAL_TRIGGER };
  const cases: [string, Parameters<typeof secretDecision>, string, boolean][] = [
    [
      "never written by Pulumi: nothing to compare",
      [undefined, "2026-11-02 10:00:00 +0000 UTC"],
      INITIAL_TRIGGER,
      false,
    ],
    ["written, and GitHub has no time for it", [record, undefined], INITIAL_TRIGGER, false],
    ["GitHub's time is Pulumi's", [record, T0], INITIAL_TRIGGER, false],
    [
      "GitHub's time is within a minute of Pulumi's (read back late)",
      [record, "2026-11-01 10:00:45 +0000 UTC"],
      INITIAL_TRIGGER,
      false,
    ],
    [
      "updated an hour after Pulumi wrote it",
      [record, "2026-11-01 11:00:00 +0000 UTC"],
      "rewritten-after:2026-11-01 11:00:00 +0000 UTC",
      true,
    ],
    [
      "unreadable times that differ",
      [{ writtenAt: "x", trigger: "t" }, "y"],
      "rewritten-after:y",
      true,
    ],
    [
      "an earlier rewrite keeps its trigger while in step",
      [{ writtenAt: T0, trigger: "rewritten-after:z" }, T0],
      "rewritten-after:z",
      false,
    ],
  ];
  for (const [name, args, trigger, drift] of cases) {
    test(name, () => {
      const decision = secretDecision(...args);
      assert.equal(decision.trigger, trigger);
      assert.equal(decision.drift !== undefined, drift);
    });
  }
});

describe("the recorded output", () => {
  test("is read back per secret", () => {
    assert.deepEqual(parseSecretRecords({ "repository/A": { writtenAt: T0, trigger: "t" } }), {
      "repository/A": { writtenAt: T0, trigger: "t" },
    });
  });
  test("anything unreadable is no record", () => {
    assert.deepEqual(parseSecretRecords("garbage"), {});
    assert.deepEqual(parseSecretRecords(undefined), {});
  });
});
