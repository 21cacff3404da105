import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { z } from "zod";
import { deployConfigSchema, deploySecretKeys } from "../../src/config/deploy";
import { hostValueCatalog } from "../../src/config/host-values";
import { unwrap } from "../../src/config/schema";
import {
  downgradeCommands,
  restoreLiveCommands,
  restoreToScratchCommands,
  rollbackCommands,
  runbookContext,
} from "../../src/deploy/runbooks";
import { DEPLOY_STEPS } from "../../src/deploy/script";
import { parseDeploy } from "../support/deploy-config";
import { REPO_ROOT } from "../support/program";

const read = (page: string) => readFileSync(join(REPO_ROOT, page), "utf8");
const operations = read("docs/operations.md");
const deployPage = read("docs/deploy.md");
const configuration = read("docs/configuration.md");
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

describe("docs/operations.md shows the runbooks exactly as the code (and the e2e) runs them", () => {
  test("roll back", () => {
    assert.ok(host);
    assert.ok(operations.includes(block(rollbackCommands(ctx, host, "production"))));
  });
  test("alembic downgrade", () => {
    assert.ok(operations.includes(block(downgradeCommands(ctx))));
  });
  test("restore into a scratch database", () => {
    assert.ok(operations.includes(block(restoreToScratchCommands(ctx, example))));
  });
  test("restore into the live database", () => {
    assert.ok(operations.includes(block(restoreLiveCommands(ctx, example))));
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

describe("the deploy's docs cover", () => {
  test("every key of the deploy section in docs/configuration.md", () => {
    const paths = keyPaths(deployConfigSchema);
    assert.ok(paths.length > 30, `only ${paths.length} keys found`);
    for (const path of paths) {
      assert.ok(configuration.includes(`| \`${path}\` |`), `missing ${path}`);
    }
  });
  test("every step of the script in docs/deploy.md", () => {
    for (const step of ["stdin", ...DEPLOY_STEPS]) {
      assert.ok(deployPage.includes(`| \`${step}\` |`), `missing step ${step}`);
    }
  });
  test("every secret key in docs/configuration.md and every stdin key in docs/deploy.md", () => {
    for (const spec of deploySecretKeys) {
      assert.ok(configuration.includes(`\`${spec.key}\``), spec.key);
    }
    for (const { name } of hostValueCatalog) assert.ok(deployPage.includes(`\`${name}\``), name);
  });
});
