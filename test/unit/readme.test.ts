import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { githubValues } from "../../src/config/catalog";
import { secretKeySpecs } from "../../src/config/schema";
import { updateReadme } from "../../src/docs/tables";
import { REPO_ROOT } from "../support/program";

const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");

test("the README's generated tables match the data the resources come from (npm run docs)", () => {
  assert.equal(readme, updateReadme(readme));
});

test("every managed secret and variable, and every secret config key, is in the README", () => {
  for (const value of githubValues) assert.ok(readme.includes(`| \`${value.name}\` |`), value.name);
  for (const spec of secretKeySpecs) assert.ok(readme.includes(`| \`${spec.key}\` |`), spec.key);
});

test("the README gives the two set-up commands", () => {
  assert.ok(readme.includes("npm ci && npm run synth -- --stack staging"));
  assert.ok(readme.includes("npm ci && npm test"));
});
