import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { REPO_ROOT } from "../support/program";

const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");

test("the README gives the two set-up commands", () => {
  assert.ok(readme.includes("npm ci && npm run synth -- --stack staging"));
  assert.ok(readme.includes("npm ci && npm test"));
});

test("the README's map links every page under docs/", () => {
  const pages = readdirSync(join(REPO_ROOT, "docs")).filter((name) => name.endsWith(".md"));
  assert.ok(pages.length > 5, `only ${pages.length} pages found`);
  for (const page of pages) {
    assert.ok(
      readme.includes(`- [docs/${page}](docs/${page}): `),
      `docs/${page} is not in the map`,
    );
  }
});
