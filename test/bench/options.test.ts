import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  BENCH_USAGE,
  DUMP_USAGE,
  parseBenchArgs,
  parseDumpArgs,
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
  test("runs 3 times at 200 reads/s and 20 writes/s on 0.1, 1 and 4 GiB, two images, the peer, and writes the docs by default", () => {
    assert.deepEqual(parseBenchArgs([]), {
      help: false,
      runs: 3,
      ratePerSecond: 200,
      writesPerSecond: 20,
      databaseGib: [0.1, 1, 4],
      imageMb: [0, 300],
      peer: true,
      writeDocs: true,
    });
  });

  const cases: [string[], Record<string, unknown>][] = [
    [["--runs", "5"], { runs: 5 }],
    [["--runs=5"], { runs: 5 }],
    [["--rate", "50.5"], { ratePerSecond: 50.5 }],
    [["--writes", "5"], { writesPerSecond: 5 }],
    [["--db-gib", "0.5"], { databaseGib: [0.5] }],
    [["--db-gib", "4,0.1,1,1"], { databaseGib: [0.1, 1, 4] }],
    [["--image-mb", "50"], { imageMb: [0, 50] }],
    [["--image-mb", "300,0,50"], { imageMb: [0, 50, 300] }],
    [["--image-mb", "0"], { imageMb: [0] }],
    [["--no-peer"], { peer: false }],
    [["--no-docs"], { writeDocs: false }],
  ];
  for (const [args, changed] of cases) {
    test(`takes ${args.join(" ")}`, () => {
      const parsed = parseBenchArgs(args);
      assert.equal(parsed.help, false);
      for (const [key, value] of Object.entries(changed)) {
        assert.deepEqual((parsed as unknown as Record<string, unknown>)[key], value, key);
      }
    });
  }

  test("answers --help and -h with the help, which lists every option", () => {
    assert.deepEqual(parseBenchArgs(["--help"]), { help: true });
    assert.deepEqual(parseBenchArgs(["-h", "--runs", "x"]), { help: true });
    for (const option of [
      "--runs N",
      "--rate R",
      "--writes W",
      "--db-gib G,G",
      "--image-mb M,M",
      "--no-peer",
      "--no-docs",
      "-h, --help",
    ]) {
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
    [
      ["--db-gib", "0.1,,1"],
      /^--db-gib: expected a comma-separated list of positive numbers, got "" in "0\.1,,1"$/,
    ],
    [["--db-gib", "0,1"], /^--db-gib: .*got "0" in "0,1"$/],
    [
      ["--image-mb", "0,2.5"],
      /^--image-mb: expected a comma-separated list of whole numbers \(0 or more\), got "2\.5" in "0,2\.5"$/,
    ],
    [["--image-mb=-50"], /^--image-mb: .*got "-50"/],
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

describe("bench:dump's command line", () => {
  test("runs 3 times on 1 GiB, weights 0 and 128, level 1, without and with 2 contenders, by default", () => {
    assert.deepEqual(parseDumpArgs([]), {
      help: false,
      runs: 3,
      databaseGib: 1,
      cpuShares: [0, 128],
      compressionLevels: [1],
      contenders: [0, 2],
      ratePerSecond: 200,
      writesPerSecond: 20,
    });
  });

  test("takes lists in any order, sorted, without duplicates", () => {
    const parsed = parseDumpArgs([
      "--shares",
      "512,0,2,512",
      "--contenders",
      "4,1",
      "--db-gib",
      "4",
      "--levels",
      "9,0,1,0",
    ]);
    assert.equal(parsed.help, false);
    if (parsed.help) return;
    assert.deepEqual(parsed.cpuShares, [0, 2, 512]);
    assert.deepEqual(parsed.compressionLevels, [0, 1, 9]);
    assert.deepEqual(parsed.contenders, [1, 4]);
    assert.equal(parsed.databaseGib, 4);
  });

  test("answers --help with the help, which lists every option", () => {
    assert.deepEqual(parseDumpArgs(["--help"]), { help: true });
    for (const option of [
      "--runs N",
      "--db-gib G",
      "--shares S,S",
      "--levels L,L",
      "--contenders C,C",
      "--rate R",
      "--writes W",
      "-h, --help",
    ]) {
      assert.match(DUMP_USAGE, new RegExp(`^ +${option} `, "m"), option);
    }
  });

  const refused: [string[], RegExp][] = [
    [
      ["--shares", "0,1"],
      /^--shares: expected 0 \(Docker's default\) or 2 to 262144, got "1" in "0,1"$/,
    ],
    [["--shares", "262145"], /^--shares: .*got "262145"/],
    [["--shares", "0,"], /^--shares: .*got "" in "0,"$/],
    [["--shares", "128.5"], /^--shares: .*got "128\.5"/],
    [["--levels", "0,10"], /^--levels: expected 0 to 9, got "10" in "0,10"$/],
    [["--levels", "1.5"], /^--levels: .*got "1\.5"/],
    [["--contenders", "17"], /^--contenders: at most 16, got "17"$/],
    [["--contenders=-1"], /^--contenders: .*got "-1"/],
    [["--db-gib", "65"], /^--db-gib: at most 64, got "65"$/],
    [["--db-gib", "1,4"], /^--db-gib: expected a positive number, got "1,4"$/],
    [["--rate", "2001"], /^--rate: at most 2000/],
    [["--writes", "501"], /^--writes: at most 500/],
    [["--runs", "0"], /^--runs: expected a positive whole number, got "0"$/],
    [["--peer"], /Unknown option '--peer'/],
  ];
  for (const [args, message] of refused) {
    test(`refuses ${JSON.stringify(args.join(" "))}, naming what is wrong`, () => {
      assert.match(
        usageError(() => parseDumpArgs(args)),
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
