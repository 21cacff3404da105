import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { planWorkflows } from "../../src/workflows";
import { stackConfig } from "../support/workflows";

/**
 * Whole generated files as committed snapshots (the committed staging stack, and the same with
 * `deployMode: pulumi-up`). A changed file fails until reviewed and refreshed with
 * `UPDATE_SNAPSHOTS=1 npx tsx --test test/workflows/snapshots.test.ts`.
 */
const DIR = join(__dirname, "__snapshots__");
const UPDATE = process.env.UPDATE_SNAPSHOTS === "1";

const sets = {
  "": planWorkflows(stackConfig("staging")),
  "pulumi-up": planWorkflows(stackConfig("staging", { workflows: { deployMode: "pulumi-up" } })),
};

for (const [variant, plan] of Object.entries(sets)) {
  describe(`snapshots${variant ? ` (${variant})` : ""}`, () => {
    const dir = variant ? join(DIR, variant) : DIR;
    const files = variant
      ? plan.files.filter((f) => /deploy-(staging|prod)\.yml$/.test(f.path))
      : plan.files;
    for (const file of files) {
      const name = file.path.split("/").pop() as string;
      test(`${file.path} matches ${variant ? `${variant}/` : ""}${name}`, () => {
        const path = join(dir, name);
        if (UPDATE) {
          mkdirSync(dir, { recursive: true });
          writeFileSync(path, file.content);
        }
        assert.ok(existsSync(path), `no snapshot ${path}; run with UPDATE_SNAPSHOTS=1`);
        assert.equal(file.content, readFileSync(path, "utf8"));
      });
    }
  });
}
