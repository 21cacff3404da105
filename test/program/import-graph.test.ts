import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";

const SRC = join(__dirname, "..", "..", "src");

/**
 * The layers of `src/`, bottom first: a module imports only from its own folder or a lower
 * layer. Config is the bottom (everything reads it, it reads nothing of ours); the program
 * wires the components; synth, the docs generator and the ops commands sit on top.
 */
const LAYERS: readonly (readonly string[])[] = [
  ["config"],
  ["stack"],
  ["cloud", "deploy", "github"],
  ["workflows"],
  ["program.ts"],
  ["synth", "docs", "ops"],
];

function layerOf(top: string): number {
  const index = LAYERS.findIndex((layer) => layer.includes(top));
  assert.ok(index >= 0, `src/${top} is in no layer of this test; add it where it belongs`);
  return index;
}

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return modules(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The project modules a file imports (relative specifiers), as absolute `.ts` paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [
    ...text.matchAll(/^(?:import|export)(?:[^;]*? from)? "(\.{1,2}\/[^"]+)";$/gms),
  ].map((m) => m[1] ?? "");
  return specs.map((spec) => {
    const base = resolve(dirname(file), spec);
    return existsSync(`${base}.ts`) ? `${base}.ts` : join(base, "index.ts");
  });
}

const top = (file: string) => relative(SRC, file).split("/")[0] ?? "";
const files = modules(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test("no module imports from a higher layer", () => {
  const upward: string[] = [];
  for (const [file, imports] of graph) {
    for (const target of imports) {
      if (top(target) === top(file)) continue;
      if (layerOf(top(target)) > layerOf(top(file))) {
        upward.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
      }
    }
  }
  assert.deepEqual(upward, []);
});

test("the module graph has no cycle", () => {
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "open") {
      cycles.push(
        [...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(" -> "),
      );
      return;
    }
    state.set(file, "open");
    for (const target of graph.get(file) ?? []) {
      if (graph.has(target)) visit(target, [...path, file]);
    }
    state.set(file, "done");
  };
  for (const file of files) visit(file, []);
  assert.deepEqual(cycles, []);
});

test("every import this test follows resolves to a module of src/", () => {
  for (const [file, imports] of graph) {
    for (const target of imports) {
      if (target.startsWith(SRC)) assert.ok(graph.has(target), `${relative(SRC, file)}: ${target}`);
    }
  }
});
