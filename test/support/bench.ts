import path from "node:path";
import { readRecord } from "../../bench/deploy/record";

/**
 * A small, hand-made record in the bench's format (version 2): made-up numbers at 20 reads/s
 * and 5 writes/s, two database sizes (0.01 and 0.02 GiB), the plain image and one 50 MB
 * larger, the floor, both baselines and the peer, for tests only. Nothing in it was measured;
 * its machine says so ("Synthetic CPU (test fixture)").
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
