import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { githubValues } from "../../src/config/catalog";
import { secretKeySpecs } from "../../src/config/schema";
import { GENERATED_TABLES, updateTables } from "../../src/docs/tables";
import { REPO_ROOT } from "../support/program";

const read = (page: string) => readFileSync(join(REPO_ROOT, page), "utf8");

for (const page of Object.keys(GENERATED_TABLES)) {
  test(`the generated tables of ${page} match the data the resources come from (npm run docs)`, () => {
    const text = read(page);
    assert.equal(text, updateTables(page, text));
  });
}

test("every managed secret and variable is in docs/secrets.md", () => {
  const secrets = read("docs/secrets.md");
  for (const value of githubValues)
    assert.ok(secrets.includes(`| \`${value.name}\` |`), value.name);
});

test("every secret config key is in docs/configuration.md", () => {
  const configuration = read("docs/configuration.md");
  for (const spec of secretKeySpecs) {
    assert.ok(configuration.includes(`| \`${spec.key}\` |`), spec.key);
  }
});

test("updateTables refuses a page without the table's markers, naming the page", () => {
  assert.throws(
    () => updateTables("docs/secrets.md", "# Secrets and variables\n"),
    /^Error: docs\/secrets\.md has no <!-- secrets-table:start --> \.\.\. <!-- secrets-table:end --> block$/,
  );
});

test("updateTables refuses a page that holds no generated tables", () => {
  assert.throws(() => updateTables("README.md", ""), /"README\.md" holds no generated tables/);
});

test("updateTables replaces only the text between the markers", () => {
  const page = "docs/configuration.md";
  const text =
    "before\n<!-- secret-keys-table:start -->\nstale\n<!-- secret-keys-table:end -->\nafter\n";
  const updated = updateTables(page, text);
  assert.ok(updated.startsWith("before\n<!-- secret-keys-table:start -->\n| Secret config key |"));
  assert.ok(updated.endsWith("|\n<!-- secret-keys-table:end -->\nafter\n"));
  assert.ok(!updated.includes("stale"));
});
