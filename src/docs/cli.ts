import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GENERATED_TABLES, updateTables } from "./tables";

/** `npm run docs`: regenerates the generated tables of every docs page that holds them. */
const root = join(__dirname, "..", "..");
for (const page of Object.keys(GENERATED_TABLES)) {
  const path = join(root, page);
  const before = readFileSync(path, "utf8");
  const after = updateTables(page, before);
  if (after !== before) writeFileSync(path, after);
  console.log(`${page}: ${before === after ? "tables already up to date" : "tables updated"}`);
}
