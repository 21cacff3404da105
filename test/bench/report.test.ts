import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { writeFailureReason } from "../../bench/deploy/load";
import { renderBenchmarkPage } from "../../bench/deploy/page";
import { failedWritesWhen, runLine, writeFailureKinds } from "../../bench/deploy/report";
import {
  CHART_FILE,
  COST_CHART_FILE,
  PAGE_FILE,
  recordName,
  writeReport,
} from "../../bench/deploy/publish";
import { FIXTURE_RECORD, fixtureRecord } from "../support/bench";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const RECORD_NAME = "test/fixtures/bench/synthetic-deploy-record.json";

describe("the benchmark page, rendered from the fixture record", () => {
  const page = renderBenchmarkPage(fixtureRecord(), {
    record: RECORD_NAME,
    chart: CHART_FILE,
    costChart: COST_CHART_FILE,
  });

  test("names the record it was rendered from and how to render it again", () => {
    assert.ok(page.includes(`Rendered from \`${RECORD_NAME}\``));
    assert.ok(page.includes(`\`npm run bench:report -- ${RECORD_NAME}\``));
  });

  test("shows both charts, as SVGs next to the page", () => {
    assert.equal(CHART_FILE, "deploy-latency.svg");
    assert.equal(COST_CHART_FILE, "deploy-cost.svg");
    assert.match(
      page,
      /^!\[Latency of every read during an upgrade[^\]]*\]\(deploy-latency\.svg\)$/m,
    );
    assert.match(
      page,
      /^!\[Wall time of an upgrade against the database's size\]\(deploy-cost\.svg\)$/m,
    );
  });

  test("says where it ran, from the record's machine and software", () => {
    assert.match(
      page,
      /^- \*\*Machine:\*\* 2 cores \(Synthetic CPU \(test fixture\)\), 4 GiB memory, Linux 0\.0\.0-test-fixture; load average 0\.10 at the start$/m,
    );
    assert.match(page, /^- \*\*Date:\*\* 2000-01-01 00:00 to 00:05 UTC$/m);
    assert.match(page, /Node v0\.0\.0-test-fixture$/m);
    assert.match(page, /here `docker compose`\./);
  });

  test("has the floor and every procedure per size, each with its ratio to the floor", () => {
    assert.match(
      page,
      /^\| 0\.010 GiB \| \*\*floor\*\*: pull 0\.1 s \+ start until healthy 1\.2 s \+ switch 0\.2 s \| 1\.5 s \| 1\.0× \|/m,
    );
    assert.match(
      page,
      /^\| 0\.010 GiB \| ours: upgrade v1 to v2 \(migration\) \| 4\.1 s \| 2\.7× \| 6 \| 0 \| 4 \| 0 \| 2\.0 ms \| 5000 ms \| 5000 ms \| 20 \| 0 \| 0 \|$/m,
    );
    assert.match(
      page,
      /^\| 0\.020 GiB \| peer \(docker-rollout\): upgrade v1 to v2 \| 6\.2 s \| 3\.9× \|/m,
    );
    assert.doesNotMatch(page, /SYN/);
  });

  test("has the cost curve per size and image, and the cost per added GiB", () => {
    assert.match(
      page,
      /^\| 0\.010 GiB \| v2 \+ 50 MB \| 2\.5 s \| 5\.1 s \(2\.0×\) \| 14\.6 s \(5\.8×\) \| 6\.6 s \(2\.6×\) \| – \|$/m,
    );
    assert.match(
      page,
      /^\| \*\*per added GiB\*\* \(least squares, v2\) \| \| 9\.8 s \| 2\.0 s \| 9\.8 s \|/m,
    );
  });

  test("has the targets, every run and the steps", () => {
    assert.match(
      page,
      /^- \*\*met\*\*: our upgrade on the smallest database \(0\.01 GiB\) within 3× the floor/m,
    );
    assert.match(
      page,
      /^- \*\*not measured\*\*: our upgrade on a 1 GiB database within 6× the floor/m,
    );
    assert.equal(
      page.match(/^\| (spec procedure|ours: |peer )[^|]* \| 0\.0[12]0 GiB \| v2[^|]* \| [12] \|/gm)
        ?.length,
      34,
    );
    assert.match(page, /^\| 0\.010 GiB \| v2 \| 4\.1 s \| 0\.0 \| 1\.5 \| 0\.5 \|/m);
    assert.match(page, /^\| 0\.010 GiB \| v2 \| 13\.6 s \| 1\.5 \| 0\.2 \| 0\.5 \| 10\.1 \|$/m);
    // The failed-health deploy's steps, from its failure report: the last is the undo.
    assert.match(
      page,
      /^\| database \| new image \| wall \| lock \| preflight .* \| health \| undo \|$/m,
    );
    assert.match(
      page,
      /^\| 0\.010 GiB \| v3 \| 22\.1 s \| 0\.0 \| 0\.8 \| .* \| 20\.1 \| 0\.4 \|$/m,
    );
  });

  test("counts what each procedure's clients saw, from the record", () => {
    assert.match(
      page,
      /^- spec procedure \(sleep 10\): ECONNREFUSED: synthetic \(\d+\), HTTP 502 \(\d+\), failed writes whose reason the record does not keep \(\d+\)$/m,
    );
    assert.match(page, /it holds 2 plain dumps, 0\.0 GB in all/);
  });
});

describe("rendering the report from a record", () => {
  test("writes the page and both charts side by side", async () => {
    const docs = mkdtempSync(path.join(os.tmpdir(), "bench-docs-"));
    const written = await writeReport(fixtureRecord(), RECORD_NAME, docs);
    assert.deepEqual(written, [
      path.join(docs, PAGE_FILE),
      path.join(docs, CHART_FILE),
      path.join(docs, COST_CHART_FILE),
    ]);
    assert.match(readFileSync(path.join(docs, PAGE_FILE), "utf8"), /^# Deploy benchmark/);
    assert.match(readFileSync(path.join(docs, CHART_FILE), "utf8"), /^<svg /);
    assert.match(readFileSync(path.join(docs, COST_CHART_FILE), "utf8"), /^<svg /);
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
    assert.ok(existsSync(path.join(docs, COST_CHART_FILE)));
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

  test("refuses a version 1 record, saying so, and writes nothing", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "bench-v1-"));
    const record = JSON.parse(readFileSync(FIXTURE_RECORD, "utf8"));
    record.version = 1;
    const file = path.join(dir, "old.json");
    writeFileSync(file, JSON.stringify(record));
    const docs = path.join(dir, "docs");
    const run = cli(file, "--docs-dir", docs);
    assert.equal(run.status, 1);
    assert.match(
      run.stderr,
      /old\.json: a version 1 record; this report reads version 2 records only/,
    );
    assert.equal(existsSync(docs), false);
  });

  test("refuses an unknown option with exit code 2, naming it", () => {
    const run = cli(RECORD_NAME, "--out", "x");
    assert.equal(run.status, 2);
    assert.match(run.stderr, /Unknown option '--out'/);
    assert.match(run.stderr, /--help/);
  });
});

describe("why writes failed", () => {
  test("a write's reason drops its name and keeps its status and answer", () => {
    assert.equal(
      writeFailureReason('bench-deploy-2-x1-17: status 500: {"error": "timeout expired"}'),
      'status 500: {"error": "timeout expired"}',
    );
    assert.equal(
      writeFailureReason("bench-rollback-1-x-3: no answer in 5000 ms"),
      "no answer in 5000 ms",
    );
  });

  test("reasons are counted over the runs, and failures a record kept no reason for are said apart", () => {
    const [one, two] = fixtureRecord().measurements;
    assert.ok(one && two);
    const kept = {
      ...one,
      writes: {
        ...one.writes,
        failed: 3,
        failures: ["status 500: x", "status 500: x", "no answer in 5000 ms"],
      },
    };
    const old = { ...two, writes: { sent: 10, acknowledged: 8, failed: 2, missing: 0 } };
    assert.deepEqual(writeFailureKinds([kept, old]), [
      "write status 500: x (2)",
      "write no answer in 5000 ms (1)",
      "failed writes whose reason the record does not keep (2)",
    ]);
    assert.deepEqual(
      writeFailureKinds([{ ...one, writes: { ...one.writes, failed: 0, failures: [] } }]),
      [],
    );
  });

  test("the run's line says when each failed write was sent: into the deploy, after which milestone", () => {
    const [one] = fixtureRecord().measurements;
    assert.ok(one);
    const m = {
      ...one,
      trace: {
        ...one.trace,
        startMs: 2000,
        endMs: 12_000,
        marks: [
          { atMs: 5000, label: "Migrate" },
          { atMs: 9000, label: "Switched" },
        ],
      },
      writes: {
        ...one.writes,
        failed: 5,
        failures: ["a", "b", "c", "d", "e"],
        failuresAtMs: [1500, 4000, 5000, 10_250, 13_000],
      },
    };
    assert.equal(
      failedWritesWhen(m),
      " (failed writes sent at 0.5 s before the deploy; 2.0 s; 3.0 s, after Migrate; 8.3 s, after Switched; 1.0 s after the deploy ended)",
    );
    assert.ok(runLine(m).endsWith(failedWritesWhen(m)));
    assert.equal(failedWritesWhen({ ...m, writes: { ...m.writes, failuresAtMs: undefined } }), "");
    assert.equal(failedWritesWhen({ ...m, writes: { ...m.writes, failuresAtMs: [] } }), "");
  });
});
