import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { renderBenchmarkPage } from "../../bench/deploy/page";
import { CHART_FILE, PAGE_FILE, recordName, writeReport } from "../../bench/deploy/publish";
import { FIXTURE_RECORD, fixtureRecord } from "../support/bench";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const RECORD_NAME = "test/fixtures/bench/synthetic-deploy-record.json";

describe("the benchmark page, rendered from the fixture record", () => {
  const page = renderBenchmarkPage(fixtureRecord(), { record: RECORD_NAME, chart: CHART_FILE });

  test("names the record it was rendered from and how to render it again", () => {
    assert.ok(page.includes(`Rendered from \`${RECORD_NAME}\``));
    assert.ok(page.includes(`\`npm run bench:report -- ${RECORD_NAME}\``));
  });

  test("shows the chart, as an SVG next to the page", () => {
    assert.equal(CHART_FILE, "deploy-latency.svg");
    assert.match(
      page,
      /^!\[Latency of every request during a deploy[^\]]*\]\(deploy-latency\.svg\)$/m,
    );
  });

  test("says where it ran, from the record's machine and software", () => {
    assert.match(
      page,
      /^- \*\*Machine:\*\* 2 cores \(Synthetic CPU \(test fixture\)\), 4 GiB memory, Linux 0\.0\.0-test-fixture; load average 0\.10 at the start$/m,
    );
    assert.match(page, /^- \*\*Date:\*\* 2000-01-01 00:00 to 00:05 UTC$/m);
    assert.match(page, /Node v0\.0\.0-test-fixture$/m);
    assert.match(page, /here `docker compose` for both/);
  });

  test("has the medians table, one row per metric and a column per procedure", () => {
    assert.match(
      page,
      /^\| median of 2 runs \| spec procedure \(baseline\) \| ours: deploy v1 to v2 \(migration\) \| ours: failed-health deploy \(v3\) \| ours: rollback v2 to v1 \|$/m,
    );
    assert.match(
      page,
      /^\| backup size \| 20 MB \| 10 MB \(0\.50×\) \| 10 MB \(0\.50×\) \| 10 MB \(0\.50×\) \|$/m,
    );
  });

  test("has every run, the targets and the steps of our deploy", () => {
    assert.equal(page.match(/^\| (spec procedure|ours: )[^|]* \| [12] \|/gm)?.length, 8);
    assert.match(
      page,
      /^- \*\*met\*\*: backup \(custom format\) smaller than the baseline's plain SQL/m,
    );
    assert.match(page, /^\| median seconds \| 0\.0 \| 1\.5 \| 0\.5 \|/m);
  });

  test("counts what the baseline's clients saw, from the record", () => {
    assert.match(
      page,
      /failed these requests: ECONNREFUSED: synthetic \(\d+\), HTTP 502 \(\d+\)\./,
    );
    assert.match(page, /it holds 2 plain dumps, 0\.0 GB in all/);
  });
});

describe("rendering the report from a record", () => {
  test("writes the page and the chart side by side", async () => {
    const docs = mkdtempSync(path.join(os.tmpdir(), "bench-docs-"));
    const written = await writeReport(fixtureRecord(), RECORD_NAME, docs);
    assert.deepEqual(written, [path.join(docs, PAGE_FILE), path.join(docs, CHART_FILE)]);
    assert.match(readFileSync(path.join(docs, PAGE_FILE), "utf8"), /^# Deploy benchmark/);
    assert.match(readFileSync(path.join(docs, CHART_FILE), "utf8"), /^<svg /);
  });

  test("names a record by its path in the repository, or by its file name elsewhere", () => {
    assert.equal(recordName(FIXTURE_RECORD, REPO_ROOT), RECORD_NAME);
    assert.equal(
      recordName("/elsewhere/2026-01-01T00-00-00Z.json", REPO_ROOT),
      "2026-01-01T00-00-00Z.json",
    );
  });
});

describe("npm run bench:report", () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ["--import", "tsx", "bench/deploy/render-report.ts", ...args], {
      cwd: REPO_ROOT,
      encoding: "utf8",
    });

  test("renders the docs from a record into --docs-dir", () => {
    const docs = mkdtempSync(path.join(os.tmpdir(), "bench-docs-"));
    const run = cli(RECORD_NAME, "--docs-dir", docs);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(existsSync(path.join(docs, PAGE_FILE)));
    assert.ok(existsSync(path.join(docs, CHART_FILE)));
    assert.ok(readFileSync(path.join(docs, PAGE_FILE), "utf8").includes(RECORD_NAME));
  });

  test("refuses a malformed record, naming the field, and writes nothing", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "bench-bad-"));
    const record = JSON.parse(readFileSync(FIXTURE_RECORD, "utf8"));
    record.measurements[2].wallSeconds = "22.1 s";
    const file = path.join(dir, "bad.json");
    writeFileSync(file, JSON.stringify(record));
    const docs = path.join(dir, "docs");
    const run = cli(file, "--docs-dir", docs);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /bad\.json: measurements\[2\]\.wallSeconds: .*expected number/);
    assert.equal(existsSync(docs), false);
  });

  test("refuses an unknown option with exit code 2, naming it", () => {
    const run = cli(RECORD_NAME, "--out", "x");
    assert.equal(run.status, 2);
    assert.match(run.stderr, /Unknown option '--out'/);
    assert.match(run.stderr, /--help/);
  });
});
