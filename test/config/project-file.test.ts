import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { PROJECT, secretKeySpecs, sectionSchemas } from "../../src/config/schema";
import { REPO_ROOT } from "../support/program";

interface ProjectFile {
  name: string;
  runtime: { name: string; options?: Record<string, unknown> };
  template?: { config?: Record<string, { description?: string; secret?: boolean }> };
}

const project = parse(readFileSync(join(REPO_ROOT, "Pulumi.yaml"), "utf8")) as ProjectFile;
const declared = project.template?.config ?? {};

test("the project is clicky-delivery on the nodejs runtime with TypeScript", () => {
  assert.equal(project.name, PROJECT);
  assert.equal(project.runtime.name, "nodejs");
  assert.equal(project.runtime.options?.typescript, true);
});

test("Pulumi.yaml declares every config key of the program, each with a description", () => {
  const expected = [
    ...Object.keys(sectionSchemas).map((k) => `${PROJECT}:${k}`),
    ...secretKeySpecs.map((s) => `${PROJECT}:${s.key}`),
  ].sort();
  assert.deepEqual(
    Object.keys(declared)
      .filter((k) => k.startsWith(`${PROJECT}:`))
      .sort(),
    expected,
  );
  for (const [key, value] of Object.entries(declared)) {
    assert.ok((value.description ?? "").length > 20, `${key} needs a description`);
  }
});

test("secret keys are declared secret, and nothing else is", () => {
  const secretKeys = new Set(secretKeySpecs.map((s) => `${PROJECT}:${s.key}`));
  for (const [key, value] of Object.entries(declared)) {
    if (key.startsWith(`${PROJECT}:`))
      assert.equal(value.secret ?? false, secretKeys.has(key), key);
  }
});
