import { relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { synth } from "./synth";

const USAGE = "usage: npm run synth -- --stack <name> [--stack-file <path>] [--out <dir>]";

/** `npm run synth -- --stack <name>`: see docs/synth.md. */
async function main(): Promise<number> {
  let values: { stack?: string; "stack-file"?: string; out?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        stack: { type: "string" },
        "stack-file": { type: "string" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const stack = values.stack ?? stackFromFile(values["stack-file"]);
  if (!stack) {
    console.error(`--stack is required\n${USAGE}`);
    return 2;
  }
  const programDir = resolve(__dirname, "..", "..");
  const result = await synth({
    stack,
    programDir,
    ...(values["stack-file"] ? { stackFile: values["stack-file"] } : {}),
    ...(values.out ? { out: values.out } : {}),
  });
  if (!result.ok) {
    for (const line of result.problems) console.error(line);
    console.error(`synth: ${result.problems.length} problem(s); nothing was written`);
    return 1;
  }
  const where = relative(process.cwd(), result.out) || ".";
  console.log(`synth ${stack}: ${result.written.length} files in ${where}/`);
  const total = [...result.counts.values()].reduce((a, b) => a + b, 0);
  console.log(`resources: ${total}`);
  for (const [type, count] of [...result.counts].sort(([a], [b]) => a.localeCompare(b))) {
    console.log(`  ${String(count).padStart(3)}  ${type}`);
  }
  const groups = ["files/", "commands/", "remote/"];
  for (const group of groups) {
    const inGroup = result.written.filter((w) => w.startsWith(group));
    if (inGroup.length)
      console.log(`${group}  ${inGroup.map((w) => w.slice(group.length)).join(", ")}`);
  }
  if (result.lookups.length) {
    console.log(`lookups (made by pulumi up, shown as lookup:... here): ${result.lookups.length}`);
  }
  if (result.unsetSecrets.length) {
    console.log(
      `unset secrets (placeholders used; pulumi up stops until they are set): ${result.unsetSecrets.join(", ")}`,
    );
  }
  if (result.unsetHostKeys.length) {
    console.log(
      `unpinned production host keys (not pinned here; pulumi up stops until they are): ${result.unsetHostKeys.join(", ")}`,
    );
  }
  return 0;
}

function stackFromFile(path: string | undefined): string | undefined {
  const match = path ? /Pulumi\.([^/\\]+)\.ya?ml$/.exec(path) : null;
  return match?.[1];
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`synth failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
