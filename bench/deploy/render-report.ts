/**
 * `npm run bench:report -- <record.json>`: renders docs/benchmarks.md and its chart from the
 * record of a bench run, and runs nothing. A record that does not match the schema is refused,
 * each wrong field named.
 */
import path from "node:path";
import { parseReportArgs, REPORT_USAGE, UsageError } from "./options";
import { recordName, writeReport } from "./publish";
import { RecordError, readRecord } from "./record";

async function main(): Promise<void> {
  const options = parseReportArgs(process.argv.slice(2));
  if (options.help) {
    console.log(REPORT_USAGE);
    return;
  }
  const record = readRecord(options.record);
  const written = await writeReport(record, recordName(options.record), options.docsDir);
  for (const file of written) console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((err) => {
  if (err instanceof UsageError) {
    console.error(`bench:report: ${err.message}\nRun with --help for the options.`);
    process.exit(2);
  }
  if (err instanceof RecordError) {
    console.error(`bench:report: ${err.message}`);
    process.exit(1);
  }
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
