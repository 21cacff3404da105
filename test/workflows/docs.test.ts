import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { githubValues, specSecretFates } from "../../src/config/catalog";
import { planWorkflows } from "../../src/workflows";
import { REPO_ROOT } from "../support/program";
import { stackConfig } from "../support/workflows";

const read = (page: string) => readFileSync(join(REPO_ROOT, page), "utf8");
const workflows = read("docs/workflows.md");
const secrets = read("docs/secrets.md");

test("docs/workflows.md names every generated workflow file", () => {
  for (const file of planWorkflows(stackConfig("staging")).files) {
    assert.ok(workflows.includes(`\`${file.path.replace(".github/workflows/", "")}\``), file.path);
  }
});

test("docs/secrets.md says where each of the spec's secrets went, and names every managed secret", () => {
  for (const fate of specSecretFates) assert.ok(secrets.includes(`\`${fate.spec}\``), fate.spec);
  for (const value of githubValues) assert.ok(secrets.includes(`\`${value.name}\``), value.name);
});

test("docs/workflows.md states the token permission for workflow files and what fails without it", () => {
  assert.match(workflows, /Workflows: read and write/);
  assert.match(workflows, /`workflow` scope/);
  assert.match(workflows, /404 Not Found/);
});
