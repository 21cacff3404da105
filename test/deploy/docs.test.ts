import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { z } from "zod";
import { deployConfigSchema, deploySecretKeys } from "../../src/config/deploy";
import { unwrap } from "../../src/config/schema";
import {
  downgradeCommands,
  restoreLiveCommands,
  restoreToScratchCommands,
  rollbackCommands,
  runbookContext,
} from "../../src/deploy/runbooks";
import { DEPLOY_STEPS } from "../../src/deploy/script";
import { hostValueCatalog } from "../../src/config/host-values";
import { REPO_ROOT } from "../support/program";
import { parseDeploy } from "./support/config";

const docs = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
const production = parseDeploy({
  hosts: [{ name: "prod-1", host: "api.clicky-foundation.example" }],
  image: { repository: "ghcr.io/clicky-foundation/clicky-foundation/backend", tag: "v1.0.0" },
});
const ctx = runbookContext(production);
const host = production.hosts[0];
const example = "production-20260101T120000Z-v1.4.0.dump";

function block(lines: readonly string[]): string {
  return `\`\`\`sh\n${lines.join("\n")}\n\`\`\``;
}

describe("the README shows the runbooks exactly as the code (and the e2e) runs them", () => {
  test("roll back", () => {
    assert.ok(host);
    assert.ok(docs.includes(block(rollbackCommands(ctx, host, "production"))));
  });
  test("alembic downgrade", () => {
    assert.ok(docs.includes(block(downgradeCommands(ctx))));
  });
  test("restore into a scratch database", () => {
    assert.ok(docs.includes(block(restoreToScratchCommands(ctx, example))));
  });
  test("restore into the live database", () => {
    assert.ok(docs.includes(block(restoreLiveCommands(ctx, example))));
  });
});

/** Every leaf key path of the deploy section, e.g. `hosts[].hostKey`, `backup.keep`. */
function keyPaths(schema: z.core.$ZodType, prefix = ""): string[] {
  const current = unwrap(schema);
  if (current instanceof z.ZodObject) {
    return Object.entries(current.shape).flatMap(([key, child]) =>
      keyPaths(child as z.core.$ZodType, prefix ? `${prefix}.${key}` : key),
    );
  }
  if (current instanceof z.ZodArray && current.element instanceof z.ZodObject) {
    return [`${prefix}[]`, ...keyPaths(current.element, `${prefix}[]`)];
  }
  return [prefix];
}

describe("the README, The deploy covers", () => {
  test("every key of the deploy section in its config reference", () => {
    const paths = keyPaths(deployConfigSchema);
    assert.ok(paths.length > 30, `only ${paths.length} keys found`);
    for (const path of paths) assert.ok(docs.includes(`| \`${path}\` |`), `missing ${path}`);
  });
  test("every step of the script", () => {
    for (const step of ["stdin", ...DEPLOY_STEPS]) {
      assert.ok(docs.includes(`| \`${step}\` |`), `missing step ${step}`);
    }
  });
  test("every secret key and stdin key", () => {
    for (const spec of deploySecretKeys) assert.ok(docs.includes(`\`${spec.key}\``), spec.key);
    for (const { name } of hostValueCatalog) assert.ok(docs.includes(`\`${name}\``), name);
  });
});
