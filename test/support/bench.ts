import path from "node:path";
import { readRecord } from "../../bench/deploy/record";

/**
 * A small, hand-made record in the bench's format: made-up numbers at 20 requests/s, for tests
 * only. Nothing in it was measured.
 */
export const FIXTURE_RECORD = path.join(
  __dirname,
  "..",
  "fixtures",
  "bench",
  "synthetic-deploy-record.json",
);

export function fixtureRecord() {
  return readRecord(FIXTURE_RECORD);
}
