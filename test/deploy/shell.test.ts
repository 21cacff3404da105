import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { assign, assignArray, quote } from "../../src/deploy/shell";

/** What bash makes of a rendered word: the argument it would pass. */
function bashSees(words: string): string[] {
  const r = spawnSync("bash", ["-c", `printf '%s\\0' ${words}`], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split("\0").slice(0, -1);
}

describe("quote, the one quoting helper", () => {
  const cases: [string, string, string][] = [
    ["leaves safe words bare", "docker", "docker"],
    ["leaves paths, flags and refs bare", "ghcr.io/o/r:v1@sha256:ab", "ghcr.io/o/r:v1@sha256:ab"],
    ["quotes the empty string", "", "''"],
    ["quotes spaces", "a b", "'a b'"],
    ["quotes a single quote as '\\''", "it's", `'it'\\''s'`],
    ["quotes double quotes", 'say "hi"', `'say "hi"'`],
    [
      "quotes $ and backticks so nothing expands",
      "$(rm -rf /) `id` $HOME",
      "'$(rm -rf /) `id` $HOME'",
    ],
    ["quotes non-ASCII text", "héllo wörld ✓", "'héllo wörld ✓'"],
    ["quotes a newline", "a\nb", "'a\nb'"],
    ["quotes globs", "*.dump", "'*.dump'"],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => {
      assert.equal(quote(input), expected);
      assert.deepEqual(bashSees(quote(input)), [input], "bash reads back the same word");
    });
  }
});

describe("assign and assignArray, the settings preamble's writers", () => {
  test("assign and assignArray quote values", () => {
    assert.equal(assign("TAG", "v1"), "TAG=v1");
    assert.equal(assign("MSG", "it's"), `MSG='it'\\''s'`);
    assert.equal(assign("EMPTY", ""), "EMPTY=''");
    assert.equal(assignArray("CMD", ["alembic", "upgrade", "head"]), "CMD=(alembic upgrade head)");
    assert.equal(assignArray("CMD", ["a b", ""]), "CMD=('a b' '')");
    assert.throws(() => assign("1X", "v"), /not a variable name/);
  });
});
