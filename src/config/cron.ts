/**
 * The cron grammar of GitHub Actions' `on.schedule` (the drift workflow; the same expression is
 * the Pulumi Cloud drift schedule's): five fields, `minute hour day-of-month month day-of-week`,
 * each a comma list of `*`, a value, a range `a-b`, or a step `*\/n`, `a-b/n`, `a/n` (from `a`
 * to the field's maximum). Months and weekdays may be names (`JAN`-`DEC`, `SUN`-`SAT`, any case).
 *
 * It is the grammar actionlint checks (robfig/cron's standard parser: weekday 7 is out of
 * range), minus forms GitHub does not document that robfig lets through: `?`, signed numbers,
 * empty list items. Like actionlint, it also refuses a schedule that would run more often than
 * every 5 minutes (GitHub's shortest interval), and one that can never run.
 */

interface CronFieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Names of the values from `min` on, e.g. `SUN` is 0. */
  readonly names?: readonly string[];
}

const FIELDS: readonly CronFieldSpec[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  {
    name: "month",
    min: 1,
    max: 12,
    names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
  },
  { name: "day-of-week", min: 0, max: 6, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] },
];

/** GitHub's shortest interval between two runs of a schedule. */
export const MIN_SCHEDULE_INTERVAL_MINUTES = 5;

/** The days each month can have (February in a leap year). */
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** A parsed schedule: the values each field selects, in field order, sorted. */
export interface CronSchedule {
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly daysOfMonth: readonly number[];
  readonly months: readonly number[];
  readonly daysOfWeek: readonly number[];
  /** Whether day-of-month / day-of-week start with `*`: cron ANDs them then, else ORs them. */
  readonly dayOfMonthIsStar: boolean;
  readonly dayOfWeekIsStar: boolean;
}

export type CronParseResult =
  | { readonly ok: true; readonly schedule: CronSchedule }
  | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Parses a five-field cron expression, or says what is wrong with it, naming the field.
 *
 * @example parseCron("0 6 * * MON-FRI") // ok, daysOfWeek [1, 2, 3, 4, 5]
 * @example parseCron("61 25 * * *") // "minute 61 is out of range 0-59", "hour 25 is ..."
 */
export function parseCron(expression: string): CronParseResult {
  const parts = expression.trim().split(/\s+/);
  if (expression.trim() === "" || parts.length !== FIELDS.length) {
    const got = expression.trim() === "" ? 0 : parts.length;
    return {
      ok: false,
      problems: [
        `expected five fields (minute hour day-of-month month day-of-week), got ${got}, e.g. "17 5 * * *" (05:17 UTC daily)`,
      ],
    };
  }
  const problems: string[] = [];
  const values: number[][] = [];
  FIELDS.forEach((spec, index) => {
    const field = parseField(parts[index] ?? "", spec);
    problems.push(...field.problems);
    values.push(field.values);
  });
  if (problems.length > 0) return { ok: false, problems };
  const [minutes = [], hours = [], daysOfMonth = [], months = [], daysOfWeek = []] = values;
  const schedule: CronSchedule = {
    minutes,
    hours,
    daysOfMonth,
    months,
    daysOfWeek,
    dayOfMonthIsStar: (parts[2] ?? "").startsWith("*"),
    dayOfWeekIsStar: (parts[4] ?? "").startsWith("*"),
  };
  const scheduleProblems = scheduleProblemsOf(schedule, parts);
  return scheduleProblems.length > 0
    ? { ok: false, problems: scheduleProblems }
    : { ok: true, schedule };
}

/** Everything wrong with a cron expression; empty when GitHub and Pulumi Cloud accept it. */
export function cronProblems(expression: string): readonly string[] {
  const parsed = parseCron(expression);
  return parsed.ok ? [] : parsed.problems;
}

function parseField(text: string, spec: CronFieldSpec): { problems: string[]; values: number[] } {
  const problems: string[] = [];
  const selected = new Set<number>();
  for (const item of text.split(",")) {
    const problem = addItem(item, spec, selected);
    if (problem !== undefined) problems.push(`${spec.name} ${problem}`);
  }
  return { problems, values: [...selected].sort((a, b) => a - b) };
}

/** Adds the values of one list item to `selected`, or says what is wrong with it. */
function addItem(item: string, spec: CronFieldSpec, selected: Set<number>): string | undefined {
  if (item === "") return "has an empty item in its comma list";
  const slash = item.split("/");
  if (slash.length > 2) return `"${item}" has more than one '/'`;
  const [range = "", stepText] = slash;
  let step = 1;
  if (stepText !== undefined) {
    if (!/^\d+$/.test(stepText)) return `step "${stepText}" is not a number`;
    step = Number(stepText);
    if (step === 0) return "step 0 must be at least 1";
  }
  let start = spec.min;
  let end = spec.max;
  if (range !== "*") {
    const bounds = range.split("-");
    if (bounds.length > 2) return `"${item}" has more than one '-'`;
    const [lowText = "", highText] = bounds;
    const low = parseValue(lowText, spec);
    if (typeof low === "string") return low;
    start = low;
    if (highText !== undefined) {
      const high = parseValue(highText, spec);
      if (typeof high === "string") return high;
      if (high < low) return `range ${range} is reversed (write the smaller value first)`;
      end = high;
    } else {
      // `a/n` runs from a to the field's maximum; a plain `a` is that value only.
      end = stepText === undefined ? low : spec.max;
    }
  }
  for (let value = start; value <= end; value += step) selected.add(value);
  return undefined;
}

/** A field value as a number, or what is wrong with it. */
function parseValue(text: string, spec: CronFieldSpec): number | string {
  const rangeText = spec.names
    ? `${spec.min}-${spec.max} or ${spec.names[0]}-${spec.names[spec.names.length - 1]}`
    : `${spec.min}-${spec.max}`;
  if (/^\d+$/.test(text)) {
    const value = Number(text);
    return value < spec.min || value > spec.max ? `${value} is out of range ${rangeText}` : value;
  }
  const index = spec.names?.indexOf(text.toUpperCase()) ?? -1;
  if (index !== -1) return spec.min + index;
  if (text === "") return "has a range with a missing value";
  return `"${text}" is not a value in ${rangeText}`;
}

/** Schedules GitHub refuses although every field is valid: too frequent, or never. */
function scheduleProblemsOf(schedule: CronSchedule, parts: readonly string[]): string[] {
  const problems: string[] = [];
  const gap = smallestMinuteGap(schedule);
  if (gap < MIN_SCHEDULE_INTERVAL_MINUTES) {
    problems.push(
      `minute ${parts[0]} runs the schedule ${gap} minute${gap === 1 ? "" : "s"} apart; GitHub runs a schedule at most once every ${MIN_SCHEDULE_INTERVAL_MINUTES} minutes`,
    );
  }
  // With day-of-week `*` only day-of-month picks the days; some days exist in no chosen month.
  if (schedule.dayOfWeekIsStar && !schedule.dayOfMonthIsStar) {
    const someDay = schedule.months.some((month) =>
      schedule.daysOfMonth.some((day) => day <= (DAYS_IN_MONTH[month - 1] ?? 31)),
    );
    if (!someDay) {
      problems.push(
        `day-of-month ${parts[2]} is in no month ${parts[3]} selects, so the schedule never runs`,
      );
    }
  }
  return problems;
}

/**
 * The shortest time between two runs within an hour, or across the hour boundary when two
 * consecutive hours are selected (23 and 0 count as consecutive).
 */
function smallestMinuteGap(schedule: CronSchedule): number {
  const { minutes, hours } = schedule;
  let gap = Number.POSITIVE_INFINITY;
  for (let i = 1; i < minutes.length; i++) {
    gap = Math.min(gap, (minutes[i] ?? 0) - (minutes[i - 1] ?? 0));
  }
  const consecutiveHours = hours.some((hour) => hours.includes((hour + 1) % 24));
  const first = minutes[0];
  const last = minutes[minutes.length - 1];
  if (consecutiveHours && first !== undefined && last !== undefined) {
    gap = Math.min(gap, 60 - last + first);
  }
  return gap;
}
