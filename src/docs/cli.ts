import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { updateReadme } from "./tables";

/** `npm run docs`: regenerates the README's generated tables in place. */
const path = join(__dirname, "..", "..", "README.md");
const before = readFileSync(path, "utf8");
const after = updateReadme(before);
writeFileSync(path, after);
console.log(
  before === after ? "README.md: tables already up to date" : "README.md: tables updated",
);
