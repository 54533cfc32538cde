import { describe, expect, test } from 'vitest';
import { planRetention, type RetentionCandidate, type RetentionPolicy } from '../../src/retention.js';

const NOW = new Date(Date.UTC(2026, 0, 31, 12, 0, 0));
const DAY = 86_400_000;

function policy(p: Partial<RetentionPolicy> = {}): RetentionPolicy {
  return { days: 7, keepMin: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, ...p };
}

/** A backup `daysAgo` days before NOW (fractions allowed). */
function ago(name: string, daysAgo: number, good = true): RetentionCandidate {
  return { name, createdAt: new Date(NOW.getTime() - daysAgo * DAY), good };
}

function at(name: string, iso: string, good = true): RetentionCandidate {
  return { name, createdAt: new Date(iso), good };
}

function kept(backups: RetentionCandidate[], p: RetentionPolicy, now = NOW): string[] {
  return planRetention(backups, p, now)
    .filter((d) => d.keep)
    .map((d) => d.name)
    .sort();
}

describe('planRetention by age', () => {
  test.each([
    { days: 7, expected: ['a', 'b', 'c'] },
    { days: 3, expected: ['a', 'b'] },
    { days: 1, expected: ['a'] },
    // 0 keeps everything by age.
    { days: 0, expected: ['a', 'b', 'c', 'd', 'e'] },
  ])('retention-days $days keeps $expected', ({ days, expected }) => {
    const backups = [ago('a', 0.5), ago('b', 2), ago('c', 6.9), ago('d', 7.1), ago('e', 30)];
    expect(kept(backups, policy({ days }))).toEqual(expected);
  });

  test('exactly `days` old is no longer younger than `days`', () => {
    const backups = [ago('new', 0), ago('edge', 7)];
    const decisions = planRetention(backups, policy({ days: 7 }), NOW);
    expect(decisions.map((d) => [d.name, d.keep])).toEqual([
      ['new', true],
      ['edge', false],
    ]);
  });

  test('reasons name the rule that kept a backup', () => {
    const decisions = planRetention([ago('new', 1), ago('old', 10)], policy({ days: 7 }), NOW);
    expect(decisions).toEqual([
      { name: 'new', createdAt: new Date(NOW.getTime() - DAY), keep: true, reasons: ['newest good backup', 'younger than 7 days'] },
      { name: 'old', createdAt: new Date(NOW.getTime() - 10 * DAY), keep: false, reasons: [] },
    ]);
  });

  test('days 0 gives every backup the keep-all reason', () => {
    const decisions = planRetention([ago('x', 100, false), ago('y', 400)], policy({ days: 0 }), NOW);
    expect(decisions.map((d) => [d.name, d.reasons])).toEqual([
      ['x', ['retention-days 0 keeps all']],
      ['y', ['newest good backup', 'retention-days 0 keeps all']],
    ]);
  });
});

describe('planRetention: the newest good backup and keep-min', () => {
  test('the newest good backup is kept even when older than retention-days', () => {
    const decisions = planRetention([ago('old', 30), ago('older', 40)], policy({ days: 7, keepMin: 1 }), NOW);
    expect(decisions.map((d) => [d.name, d.keep, d.reasons])).toEqual([
      ['old', true, ['newest good backup']],
      ['older', false, []],
    ]);
  });

  test('keep-min 0 still keeps the newest good backup', () => {
    expect(kept([ago('old', 30), ago('older', 40)], policy({ days: 7, keepMin: 0 }))).toEqual(['old']);
  });

  test.each([
    { keepMin: 1, expected: ['b1'] },
    { keepMin: 2, expected: ['b1', 'b2'] },
    { keepMin: 4, expected: ['b1', 'b2', 'b3', 'b4'] },
    { keepMin: 10, expected: ['b1', 'b2', 'b3', 'b4', 'b5'] },
  ])('keep-min $keepMin keeps the $keepMin newest good backups', ({ keepMin, expected }) => {
    const backups = [ago('b3', 30), ago('b1', 10), ago('b5', 50), ago('b2', 20), ago('b4', 40)];
    expect(kept(backups, policy({ days: 1, keepMin }))).toEqual(expected);
  });

  test('keep-min reasons: the first is the newest, the rest cite keep-min', () => {
    const decisions = planRetention([ago('b1', 10), ago('b2', 20), ago('b3', 30)], policy({ days: 1, keepMin: 3 }), NOW);
    expect(decisions.map((d) => d.reasons)).toEqual([['newest good backup'], ['keep-min 3'], ['keep-min 3']]);
  });

  test('three good backups followed by five newer failed runs: keep-min 3 keeps all three good', () => {
    const backups = [
      ago('good1', 12),
      ago('good2', 11),
      ago('good3', 10),
      ago('fail1', 9, false),
      ago('fail2', 8, false),
      ago('fail3', 7, false),
      ago('fail4', 6, false),
      ago('fail5', 5, false),
    ];
    const decisions = planRetention(backups, policy({ days: 1, keepMin: 3 }), NOW);
    expect(decisions.filter((d) => d.keep).map((d) => d.name)).toEqual(['good3', 'good2', 'good1']);
    expect(decisions.find((d) => d.name === 'good3')!.reasons).toEqual(['newest good backup']);
  });

  test('a bad backup never counts as the newest: the newest good one is kept instead', () => {
    const backups = [ago('bad', 20, false), ago('good', 30)];
    expect(kept(backups, policy({ days: 7, keepMin: 1 }))).toEqual(['good']);
  });

  test('bad backups are still kept by age', () => {
    const backups = [ago('bad-new', 1, false), ago('good-new', 2), ago('bad-old', 20, false)];
    const decisions = planRetention(backups, policy({ days: 7, keepMin: 1 }), NOW);
    expect(decisions.map((d) => [d.name, d.keep, d.reasons])).toEqual([
      ['bad-new', true, ['younger than 7 days']],
      ['good-new', true, ['newest good backup', 'younger than 7 days']],
      ['bad-old', false, []],
    ]);
  });

  test('only bad backups, all old: nothing is kept', () => {
    expect(kept([ago('x', 20, false), ago('y', 30, false)], policy({ days: 7, keepMin: 5 }))).toEqual([]);
  });

  test('no backups: no decisions', () => {
    expect(planRetention([], policy(), NOW)).toEqual([]);
  });
});

describe('planRetention orders by createdAt, never by name', () => {
  test('names sorting the other way round do not matter', () => {
    // "zzz" sorts last by name but is the oldest; "aaa" sorts first but is the newest.
    const backups = [at('zzz_20260101', '2026-01-01T00:00:00Z'), at('aaa_20250101', '2026-01-20T00:00:00Z'), at('mmm', '2026-01-10T00:00:00Z')];
    const decisions = planRetention(backups, policy({ days: 1, keepMin: 2 }), NOW);
    expect(decisions.map((d) => d.name)).toEqual(['aaa_20250101', 'mmm', 'zzz_20260101']);
    expect(decisions.map((d) => d.keep)).toEqual([true, true, false]);
  });
});

describe('planRetention grandfather-father-son (restic semantics)', () => {
  // Several backups a day over several days; all far older than retention-days so only GFS keeps them.
  const backups = [
    at('d1-early', '2025-06-01T01:00:00Z'),
    at('d1-late', '2025-06-01T23:00:00Z'),
    at('d2', '2025-06-02T12:00:00Z'),
    // no backup on 06-03: it does not use up a daily slot
    at('d4-early', '2025-06-04T02:00:00Z'),
    at('d4-late', '2025-06-04T20:00:00Z'),
    at('d5-bad', '2025-06-05T10:00:00Z', false),
  ];

  test.each([
    { daily: 1, expected: ['d4-late'] },
    { daily: 2, expected: ['d2', 'd4-late'] },
    { daily: 3, expected: ['d1-late', 'd2', 'd4-late'] },
    { daily: 10, expected: ['d1-late', 'd2', 'd4-late'] },
  ])('keep-daily $daily keeps the newest of each of the last N days with backups', ({ daily, expected }) => {
    expect(kept(backups, policy({ days: 1, keepMin: 1, daily }))).toEqual(expected);
  });

  test('the daily reason names the day', () => {
    const decisions = planRetention(backups, policy({ days: 1, daily: 2 }), NOW);
    expect(Object.fromEntries(decisions.filter((d) => d.keep).map((d) => [d.name, d.reasons]))).toEqual({
      'd4-late': ['newest good backup', 'daily 2025-06-04'],
      d2: ['daily 2025-06-02'],
    });
  });

  test.each([
    // ISO weeks: 2025-06-02 (Mon) .. 06-08 is W23; 05-26 .. 06-01 is W22; 2024-12-30 (Mon) is 2025-W01.
    { weekly: 1, expected: { 'w23-b': 'weekly 2025-W23' } },
    { weekly: 2, expected: { 'w23-b': 'weekly 2025-W23', 'w22-b': 'weekly 2025-W22' } },
    { weekly: 3, expected: { 'w23-b': 'weekly 2025-W23', 'w22-b': 'weekly 2025-W22', 'w01': 'weekly 2025-W01' } },
  ])('keep-weekly $weekly uses ISO weeks', ({ weekly, expected }) => {
    const weeks = [
      at('w01', '2024-12-30T10:00:00Z'),
      at('w22-a', '2025-05-26T10:00:00Z'),
      at('w22-b', '2025-06-01T22:00:00Z'), // Sunday: still W22
      at('w23-a', '2025-06-02T00:30:00Z'), // Monday
      at('w23-b', '2025-06-08T10:00:00Z'),
    ];
    const decisions = planRetention(weeks, policy({ days: 1, keepMin: 0, weekly }), NOW);
    const got = Object.fromEntries(decisions.filter((d) => d.keep).map((d) => [d.name, d.reasons.filter((r) => r.startsWith('weekly'))[0]]));
    expect(got).toEqual(expected);
  });

  test('ISO week 53 and year boundaries', () => {
    // 2021-01-03 (Sunday) belongs to 2020-W53; 2021-01-04 (Monday) is 2021-W01.
    const decisions = planRetention([at('a', '2021-01-03T12:00:00Z'), at('b', '2021-01-04T12:00:00Z')], policy({ days: 1, weekly: 5 }), NOW);
    expect(decisions.map((d) => d.reasons.filter((r) => r.startsWith('weekly')))).toEqual([['weekly 2021-W01'], ['weekly 2020-W53']]);
  });

  test.each([
    { monthly: 1, yearly: 0, expected: ['m-2025-03b'] },
    { monthly: 2, yearly: 0, expected: ['m-2025-01', 'm-2025-03b'] },
    { monthly: 0, yearly: 1, expected: ['m-2025-03b'] },
    { monthly: 0, yearly: 2, expected: ['m-2024-12', 'm-2025-03b'] },
    { monthly: 0, yearly: 3, expected: ['m-2023-07', 'm-2024-12', 'm-2025-03b'] },
    { monthly: 3, yearly: 3, expected: ['m-2023-07', 'm-2024-12', 'm-2025-01', 'm-2025-03b'] },
  ])('keep-monthly $monthly keep-yearly $yearly', ({ monthly, yearly, expected }) => {
    const list = [
      at('m-2023-07', '2023-07-15T00:00:00Z'),
      at('m-2024-06', '2024-06-15T00:00:00Z'),
      at('m-2024-12', '2024-12-31T23:59:59Z'),
      at('m-2025-01', '2025-01-01T00:00:00Z'),
      at('m-2025-03a', '2025-03-01T00:00:00Z'),
      at('m-2025-03b', '2025-03-31T00:00:00Z'),
    ];
    expect(kept(list, policy({ days: 1, keepMin: 1, monthly, yearly }))).toEqual(expected);
  });

  test('bad backups never fill a GFS bucket', () => {
    const list = [at('good-day1', '2025-06-01T10:00:00Z'), at('bad-day2', '2025-06-02T10:00:00Z', false), at('good-day2-early', '2025-06-02T01:00:00Z')];
    // daily 1: the newest day with a good backup is 06-02, whose newest good backup is good-day2-early.
    expect(kept(list, policy({ days: 1, keepMin: 0, daily: 1 }))).toEqual(['good-day2-early']);
    expect(kept(list, policy({ days: 1, keepMin: 0, daily: 2 }))).toEqual(['good-day1', 'good-day2-early']);
  });

  test('bucket boundaries are UTC whatever the local time zone', () => {
    // 23:30 and 00:30 UTC are different days, the same day in UTC+1.
    const list = [at('late', '2025-06-01T23:30:00Z'), at('early', '2025-06-02T00:30:00Z')];
    expect(kept(list, policy({ days: 1, keepMin: 0, daily: 2 }))).toEqual(['early', 'late']);
  });
});
