import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import {
  parseRecord,
  RecordError,
  readRecord,
  recordFileName,
  serializeRecord,
} from "../../bench/deploy/record";
import { FIXTURE_RECORD, fixtureRecord } from "../support/bench";

/** Leaves a field out. */
const ABSENT = Symbol("absent");

/** The fixture as plain JSON with one field set to `value` (or left out). */
function fixtureWith(field: readonly (string | number)[], value: unknown): unknown {
  const root: unknown = JSON.parse(serializeRecord(fixtureRecord()));
  let node = root as Record<string | number, unknown>;
  for (const key of field.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = field.at(-1) ?? "";
  if (value === ABSENT) delete node[last];
  else node[last] = value;
  return root;
}

/** The message of the RecordError a value gets. */
function refusal(value: unknown): string {
  try {
    parseRecord(value, "r.json");
  } catch (err) {
    assert.ok(err instanceof RecordError, `expected a RecordError, got ${String(err)}`);
    return err.message;
  }
  assert.fail("the record was accepted");
}

describe("a bench record", () => {
  test("reads the fixture record", () => {
    const record = fixtureRecord();
    assert.equal(record.version, 2);
    assert.equal(record.measurements.length, 34);
    assert.equal(record.floors.length, 6);
    assert.deepEqual(record.settings.databaseGib, [0.01, 0.02]);
    assert.equal(record.machine.cpuModel, "Synthetic CPU (test fixture)");
  });

  test("round-trips through the file format and the schema unchanged", () => {
    const record = fixtureRecord();
    const dir = mkdtempSync(path.join(os.tmpdir(), "bench-record-"));
    const file = path.join(dir, recordFileName(new Date(record.startedAt)));
    writeFileSync(file, serializeRecord(record));
    assert.deepEqual(readRecord(file), record);
  });

  test("keeps each sample column on one line, the rest indented", () => {
    const text = serializeRecord(fixtureRecord());
    assert.match(text, /^ {10}"atMs": \[0,50,100,/m);
    assert.match(text, /^ {2}"settings": \{\n {4}"runs": 2,$/m);
    assert.match(text, /^ {4}"databaseGib": \[0\.01,0\.02\],$/m);
    assert.ok(text.endsWith("}\n"));
  });

  test("is named by its start in UTC, sortable and without colons", () => {
    assert.equal(recordFileName(new Date("2026-11-26T13:31:05.123Z")), "2026-11-26T13-31-05Z.json");
  });
});

describe("a malformed record is refused, naming the field", () => {
  const cases: [string, (string | number)[], unknown, RegExp][] = [
    [
      "a number written as a string",
      ["measurements", 3, "p99Ms"],
      "70 ms",
      /^r\.json: measurements\[3\]\.p99Ms: .*expected number.* \("70 ms"\)$/m,
    ],
    ["a missing field", ["machine", "cpuModel"], ABSENT, /^r\.json: machine\.cpuModel: /m],
    [
      "an unknown scenario",
      ["measurements", 0, "scenario"],
      "canary",
      /^r\.json: measurements\[0\]\.scenario: .* \("canary"\)$/m,
    ],
    [
      "sample columns of different lengths",
      ["measurements", 1, "trace", "samples", "status"],
      [200],
      /^r\.json: measurements\[1\]\.trace\.samples: atMs, latencyMs and status must have the same length$/m,
    ],
    ["an unknown key (a typo)", ["settings", "rate"], 200, /^r\.json: settings: .*"rate"/m],
    ["an unknown format version", ["version"], "2", /^r\.json: version: /m],
    [
      "a floor without its switch",
      ["floors", 0, "switchSeconds"],
      ABSENT,
      /^r\.json: floors\[0\]\.switchSeconds: /m,
    ],
    [
      "writes with a negative count",
      ["measurements", 2, "writes", "missing"],
      -1,
      /^r\.json: measurements\[2\]\.writes\.missing: .* \(-1\)$/m,
    ],
    ["no database size", ["sizes"], [], /^r\.json: sizes: /m],
    ["a start that is no ISO time", ["startedAt"], "yesterday", /^r\.json: startedAt: /m],
  ];
  for (const [what, field, value, message] of cases) {
    test(what, () => {
      assert.match(refusal(fixtureWith(field, value)), message);
    });
  }

  test("a record of another version, saying which and what to do", () => {
    for (const version of [1, 3]) {
      const message = refusal(fixtureWith(["version"], version));
      assert.match(
        message,
        new RegExp(
          `^r\\.json: a version ${version} record; this report reads version 2 records only`,
        ),
      );
      assert.match(message, /run `npm run bench:deploy` again$/);
    }
  });

  test("another JSON file, naming the record's root", () => {
    assert.match(refusal([1, 2]), /^r\.json: \(record\): /m);
  });

  test("a file that is no JSON, naming the file", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "bench-record-"));
    const file = path.join(dir, "broken.json");
    writeFileSync(file, "{ not json");
    assert.throws(
      () => readRecord(file),
      (err: Error) => {
        assert.ok(err instanceof RecordError);
        assert.ok(err.message.startsWith(`${file}: `), err.message);
        return true;
      },
    );
  });

  test("the fixture file itself is fine", () => {
    assert.doesNotThrow(() => readRecord(FIXTURE_RECORD));
  });
});
