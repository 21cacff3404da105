import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { githubValues, specSecretFates } from "../../src/config/catalog";
import { planWorkflows } from "../../src/workflows";
import { REPO_ROOT } from "../support/program";
import { stackConfig } from "./support";

const doc = readFileSync(join(REPO_ROOT, "README.md"), "utf8");

test("the README names every generated workflow file", () => {
  for (const file of planWorkflows(stackConfig("staging")).files) {
    assert.ok(doc.includes(`\`${file.path.replace(".github/workflows/", "")}\``), file.path);
  }
});

test("the README says where each of the spec's secrets went, and names every managed secret", () => {
  for (const fate of specSecretFates) assert.ok(doc.includes(`\`${fate.spec}\``), fate.spec);
  for (const value of githubValues) assert.ok(doc.includes(`\`${value.name}\``), value.name);
});

test("the README states the token permission for workflow files and what fails without it", () => {
  assert.match(doc, /Workflows: read and write/);
  assert.match(doc, /`workflow` scope/);
  assert.match(doc, /404 Not Found/);
});
