// Cron expressions: validated with cron-parser in the dialect crontab(5) (Debian's cron) and GitHub Actions'
// `on: schedule` understand, and their next run times. cron-parser alone accepts more than cron does (four
// fields, L, W, #, ?, H, a seconds field), which would install a line cron then silently ignores or misreads.
import { CronExpressionParser } from 'cron-parser';
import { ConfigurationError } from '../errors.js';

/** The old kit's default: daily at 02:00. */
export const DEFAULT_TIME = '0 2 * * *';

/** The @-macros cron knows, as the five fields they mean (@reboot has no next time and is not a backup schedule). */
const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const NAMES = /\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat)\b/gi;
const FIELD_NAMES = ['minute', 'hour', 'day of month', 'month', 'day of week'];

export interface Schedule {
  /** The expression as cron gets it: five fields (six with seconds, for `schedule run` only), macros expanded. */
  expression: string;
  /** The next `count` run times after `from`. */
  next(count: number, from?: Date): Date[];
}

const EXAMPLES = 'such as "0 2 * * *" (daily at 02:00) or "0 */6 * * *" (every 6 hours)';

/**
 * Parses a schedule. `seconds` allows a leading seconds field (six fields), which crontab and GitHub do not
 * support but `schedule run` does. `tz` is the time zone the times are computed in (default: the system's, as
 * cron uses; GitHub schedules are UTC).
 */
export function parseSchedule(text: string, opts: { seconds?: boolean; tz?: string; flag?: string } = {}): Schedule {
  const flag = opts.flag ?? '--time';
  const raw = text.trim().replace(/\s+/g, ' ');
  const fail = (why: string): never => {
    throw new ConfigurationError(`${flag} "${text}" is not a valid cron schedule: ${why}. Use five fields (minute hour day-of-month month day-of-week) ${EXAMPLES}`, {
      code: 'config-schedule-time',
    });
  };
  if (raw === '') fail('it is empty');
  if (raw.startsWith('@')) {
    const expanded = MACROS[raw.toLowerCase()];
    if (!expanded) fail(`cron's macros are ${Object.keys(MACROS).join(', ')}${raw.toLowerCase() === '@reboot' ? ' (@reboot is not a schedule)' : ''}`);
    return parseSchedule(expanded!, opts);
  }
  const fields = raw.split(' ');
  const allowed = opts.seconds ? [5, 6] : [5];
  if (!allowed.includes(fields.length)) {
    fail(`it has ${fields.length} field${fields.length === 1 ? '' : 's'}, cron needs ${opts.seconds ? '5 (or 6 with seconds first)' : '5'}; quote it on the command line`);
  }
  const names = opts.seconds && fields.length === 6 ? ['second', ...FIELD_NAMES] : FIELD_NAMES;
  fields.forEach((f, i) => {
    // Only what Vixie cron and GitHub both accept: numbers, *, ranges, steps, lists, and month/day names.
    if (!/^[0-9*,/-]+$/.test(f.replace(NAMES, '0'))) fail(`the ${names[i]} field "${f}" has characters cron does not understand (L, W, #, ? and H are not cron's)`);
  });
  let interval: ReturnType<typeof CronExpressionParser.parse>;
  try {
    interval = CronExpressionParser.parse(raw, opts.tz ? { tz: opts.tz } : {});
  } catch (err) {
    return fail(String((err as Error).message).replace(/^Error: /, '').toLowerCase());
  }
  // A day that never comes (31 February) would install a line that never runs.
  try {
    interval.next();
  } catch {
    fail('it never matches a date');
  }
  return {
    expression: raw,
    next(count: number, from: Date = new Date()): Date[] {
      const it = CronExpressionParser.parse(raw, { currentDate: from, ...(opts.tz ? { tz: opts.tz } : {}) });
      return it.take(count).map((d) => d.toDate());
    },
  };
}

/** "2026-11-26 02:00 (+01:00)": a run time in the schedule's zone (the system's unless `tz` is UTC). */
export function formatRunTime(d: Date, utc = false): string {
  const offsetMin = utc ? 0 : -d.getTimezoneOffset();
  const local = new Date(d.getTime() + offsetMin * 60_000);
  const p = (n: number): string => String(n).padStart(2, '0');
  const sign = offsetMin < 0 ? '-' : '+';
  const off = utc ? 'UTC' : `${sign}${p(Math.floor(Math.abs(offsetMin) / 60))}:${p(Math.abs(offsetMin) % 60)}`;
  const secs = local.getUTCSeconds() ? `:${p(local.getUTCSeconds())}` : '';
  return `${local.getUTCFullYear()}-${p(local.getUTCMonth() + 1)}-${p(local.getUTCDate())} ${p(local.getUTCHours())}:${p(local.getUTCMinutes())}${secs} (${off})`;
}

/** "3 h 5 min", "2 d 4 h", "40 s": how long ago (or until) for status lines. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}
