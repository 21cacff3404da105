import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  BENCH_USAGE,
  parseBenchArgs,
  parseReportArgs,
  REPORT_USAGE,
  UsageError,
} from "../../bench/deploy/options";

/** The message of the UsageError a command line throws. */
function usageError(parse: () => unknown): string {
  try {
    parse();
  } catch (err) {
    assert.ok(err instanceof UsageError, `expected a UsageError, got ${String(err)}`);
    return err.message;
  }
  assert.fail("the command line was accepted");
}

describe("the bench's command line", () => {
  test("runs 3 times at 200 requests/s on 1 GiB and writes the docs by default", () => {
    assert.deepEqual(parseBenchArgs([]), {
      help: false,
      runs: 3,
      ratePerSecond: 200,
      databaseGib: 1,
      writeDocs: true,
    });
  });

  const cases: [string[], Record<string, unknown>][] = [
    [["--runs", "5"], { runs: 5 }],
    [["--runs=5"], { runs: 5 }],
    [["--rate", "50.5"], { ratePerSecond: 50.5 }],
    [["--db-gib", "0.5"], { databaseGib: 0.5 }],
    [["--no-docs"], { writeDocs: false }],
  ];
  for (const [args, changed] of cases) {
    test(`takes ${args.join(" ")}`, () => {
      const parsed = parseBenchArgs(args);
      assert.equal(parsed.help, false);
      for (const [key, value] of Object.entries(changed)) {
        assert.equal((parsed as unknown as Record<string, unknown>)[key], value, key);
      }
    });
  }

  test("answers --help and -h with the help, which lists every option", () => {
    assert.deepEqual(parseBenchArgs(["--help"]), { help: true });
    assert.deepEqual(parseBenchArgs(["-h", "--runs", "x"]), { help: true });
    for (const option of ["--runs N", "--rate R", "--db-gib G", "--no-docs", "-h, --help"]) {
      assert.match(BENCH_USAGE, new RegExp(`^ +${option} `, "m"), option);
    }
  });

  const refused: [string[], RegExp][] = [
    [["--rnus", "3"], /Unknown option '--rnus'/],
    [["--runs"], /--runs/],
    [["--runs", "0"], /^--runs: expected a positive whole number, got "0"$/],
    [["--runs", "2.5"], /^--runs: expected a positive whole number, got "2.5"$/],
    [["--rate", "fast"], /^--rate: expected a positive number, got "fast"$/],
    [["--rate", ""], /^--rate: expected a positive number, got ""$/],
    [["--db-gib", "-1"], /--db-gib/],
    [["--no-docs=yes"], /--no-docs/],
    [["docs"], /Unexpected argument 'docs'/],
  ];
  for (const [args, message] of refused) {
    test(`refuses ${JSON.stringify(args.join(" "))}, naming what is wrong`, () => {
      assert.match(
        usageError(() => parseBenchArgs(args)),
        message,
      );
    });
  }
});

describe("the report's command line", () => {
  test("takes one record and writes to docs/ by default", () => {
    assert.deepEqual(parseReportArgs(["bench/results/x.json"]), {
      help: false,
      record: "bench/results/x.json",
      docsDir: "docs",
    });
  });

  test("takes --docs-dir before or after the record", () => {
    for (const args of [
      ["--docs-dir", "out/docs", "r.json"],
      ["r.json", "--docs-dir=out/docs"],
    ]) {
      assert.deepEqual(parseReportArgs(args), {
        help: false,
        record: "r.json",
        docsDir: "out/docs",
      });
    }
  });

  test("lists its options in --help", () => {
    assert.deepEqual(parseReportArgs(["--help"]), { help: true });
    assert.match(REPORT_USAGE, /<record\.json>/);
    assert.match(REPORT_USAGE, /^ +--docs-dir DIR /m);
    assert.match(REPORT_USAGE, /^ +-h, --help /m);
  });

  test("refuses no record, two records, an unknown option and an empty --docs-dir", () => {
    assert.match(
      usageError(() => parseReportArgs([])),
      /missing the record/,
    );
    assert.match(
      usageError(() => parseReportArgs(["a.json", "b.json"])),
      /expected one record, got 2: a\.json, b\.json/,
    );
    assert.match(
      usageError(() => parseReportArgs(["a.json", "--out", "x"])),
      /Unknown option '--out'/,
    );
    assert.match(
      usageError(() => parseReportArgs(["a.json", "--docs-dir="])),
      /^--docs-dir: /,
    );
  });
});
