// The pure parts of `schedule`: the crontab block editor, cron validation and next times, the cron line (quoting,
// % escaping, read back), the refusal of secrets, and argument parsing. The cron line is also run through a real
// /bin/sh after cron's own translation, so the quoting is checked by the shell, not by our own parser.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigurationError } from '../../src/errors.js';
import { parseScheduleArgs, type ScheduleArgs } from '../../src/schedule/command.js';
import { formatAge, formatRunTime, parseSchedule } from '../../src/schedule/cron.js';
import { BEGIN_MARKER, END_MARKER, installBlock, readBlock, removeBlock, renderBlock } from '../../src/schedule/crontab.js';
import { buildCronLine, parseCronLine, refuseSecrets, shellQuote, shellWords, type CronEntry } from '../../src/schedule/line.js';
import { logFileName } from '../../src/schedule/run.js';
import { cronCommand } from '../helpers/cron.js';

const ENTRY = ['0 2 * * * echo ours'];
const BLOCK = renderBlock(ENTRY);
const OLD_BLOCK = renderBlock(['30 1 * * * echo older']);

function configError(fn: () => unknown): ConfigurationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

describe('crontab block editor', () => {
  // removed: removeBlock(before); afterInstall: removeBlock(installed) (the same unless install added a newline).
  test.each<{ name: string; before: string; installed: string; removed: string; afterInstall?: string }>([
    { name: 'empty crontab', before: '', installed: BLOCK, removed: '' },
    { name: 'other lines', before: 'MAILTO=me\n5 * * * * /bin/true\n', installed: 'MAILTO=me\n5 * * * * /bin/true\n' + BLOCK, removed: 'MAILTO=me\n5 * * * * /bin/true\n' },
    // cron ignores a last line without its newline: it gets one, nothing else changes.
    { name: 'no trailing newline', before: '5 * * * * /bin/true', installed: '5 * * * * /bin/true\n' + BLOCK, removed: '5 * * * * /bin/true', afterInstall: '5 * * * * /bin/true\n' },
    { name: 'CRLF lines stay CRLF', before: 'A=1\r\n5 * * * * x\r\n', installed: 'A=1\r\n5 * * * * x\r\n' + BLOCK, removed: 'A=1\r\n5 * * * * x\r\n' },
    { name: 'blank lines and comments', before: '\n# mine\n\n', installed: '\n# mine\n\n' + BLOCK, removed: '\n# mine\n\n' },
    {
      name: 'an existing block is replaced where it is',
      before: 'a\n' + OLD_BLOCK + 'b\n',
      installed: 'a\n' + BLOCK + 'b\n',
      removed: 'a\nb\n',
    },
    {
      name: 'an existing block with CRLF endings',
      before: 'a\r\n' + OLD_BLOCK.replace(/\n/g, '\r\n') + 'b\r\n',
      installed: 'a\r\n' + BLOCK + 'b\r\n',
      removed: 'a\r\nb\r\n',
    },
    {
      name: 'two blocks become one, at the first',
      before: 'a\n' + OLD_BLOCK + 'b\n' + OLD_BLOCK + 'c',
      installed: 'a\n' + BLOCK + 'b\nc',
      removed: 'a\nb\nc',
    },
    {
      name: "another tool's markers are left alone",
      before: '# BEGIN other-tool\n1 1 * * * other\n# END other-tool\n',
      installed: '# BEGIN other-tool\n1 1 * * * other\n# END other-tool\n' + BLOCK,
      removed: '# BEGIN other-tool\n1 1 * * * other\n# END other-tool\n',
    },
    { name: 'a block at the very end without newline', before: 'a\n' + OLD_BLOCK.slice(0, -1), installed: 'a\n' + BLOCK, removed: 'a\n' },
  ])('$name', ({ before, installed, removed, afterInstall }) => {
    expect(installBlock(before, ENTRY)).toBe(installed);
    // Idempotent: installing again changes nothing.
    expect(installBlock(installed, ENTRY)).toBe(installed);
    expect(readBlock(installed)).toEqual(ENTRY);
    expect(removeBlock(before).text).toBe(removed);
    expect(removeBlock(installed)).toEqual({ text: afterInstall ?? removed, removed: 1 });
    expect(removeBlock(removed)).toEqual({ text: removed, removed: 0 });
  });

  test('the block is marked and holds the entry', () => {
    expect(BLOCK.split('\n')[0]).toMatch(new RegExp(`^${BEGIN_MARKER.replace(/[*]/g, '\\*')} `));
    expect(BLOCK).toBe(`${BLOCK.split('\n')[0]}\n0 2 * * * echo ours\n${END_MARKER}\n`);
    expect(readBlock('a\nb\n')).toBeUndefined();
  });

  test.each([
    ['a BEGIN without END', `a\n${BEGIN_MARKER}\nx\n`, /a BEGIN line without its END line of the pgvector-backup block \(line 2\)/],
    ['an END without BEGIN', `a\n${END_MARKER}\n`, /an END line without its BEGIN line of the pgvector-backup block \(line 2\)/],
    ['BEGIN twice', `${BEGIN_MARKER}\n${BEGIN_MARKER}\n${END_MARKER}\n`, /second BEGIN/],
  ])('%s is refused, never guessed at', (_name, text, message) => {
    for (const op of [() => installBlock(text, ENTRY), () => removeBlock(text), () => readBlock(text)]) {
      const err = configError(op);
      expect(err.message).toMatch(message);
      expect(err.message).toContain('crontab -e');
      expect(err.code).toBe('config-crontab-block');
    }
  });
});

describe('parseSchedule', () => {
  const from = new Date('2026-01-01T00:00:00Z');
  const utc = (expr: string, n = 3, opts = {}): string[] => parseSchedule(expr, { tz: 'UTC', ...opts }).next(n, from).map((d) => d.toISOString());

  test.each<[string, string[]]>([
    ['0 2 * * *', ['2026-01-01T02:00:00.000Z', '2026-01-02T02:00:00.000Z', '2026-01-03T02:00:00.000Z']],
    ['0 */6 * * *', ['2026-01-01T06:00:00.000Z', '2026-01-01T12:00:00.000Z', '2026-01-01T18:00:00.000Z']],
    ['0 */12 * * *', ['2026-01-01T12:00:00.000Z', '2026-01-02T00:00:00.000Z', '2026-01-02T12:00:00.000Z']],
    ['0 3 * * 0', ['2026-01-04T03:00:00.000Z', '2026-01-11T03:00:00.000Z', '2026-01-18T03:00:00.000Z']],
    ['0 3 * * 7', ['2026-01-04T03:00:00.000Z', '2026-01-11T03:00:00.000Z', '2026-01-18T03:00:00.000Z']],
    ['0 3 * * SUN', ['2026-01-04T03:00:00.000Z', '2026-01-11T03:00:00.000Z', '2026-01-18T03:00:00.000Z']],
    ['0 4 1 * *', ['2026-01-01T04:00:00.000Z', '2026-02-01T04:00:00.000Z', '2026-03-01T04:00:00.000Z']],
    // Day of month and day of week both restricted: either matches, as in cron.
    ['0 0 1 * 1', ['2026-01-05T00:00:00.000Z', '2026-01-12T00:00:00.000Z', '2026-01-19T00:00:00.000Z']],
    ['30 1 * jan-feb mon-fri', ['2026-01-01T01:30:00.000Z', '2026-01-02T01:30:00.000Z', '2026-01-05T01:30:00.000Z']],
    ['  0   2  * * *  ', ['2026-01-01T02:00:00.000Z', '2026-01-02T02:00:00.000Z', '2026-01-03T02:00:00.000Z']],
    ['@daily', ['2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z', '2026-01-04T00:00:00.000Z']],
    ['@hourly', ['2026-01-01T01:00:00.000Z', '2026-01-01T02:00:00.000Z', '2026-01-01T03:00:00.000Z']],
  ])('%s', (expr, expected) => {
    expect(utc(expr)).toEqual(expected);
  });

  test('the expression is normalised (macros expanded, spaces collapsed)', () => {
    expect(parseSchedule('@weekly').expression).toBe('0 0 * * 0');
    expect(parseSchedule(' 0  2 * * * ').expression).toBe('0 2 * * *');
  });

  test('the next time is strictly after the given one', () => {
    expect(parseSchedule('0 2 * * *', { tz: 'UTC' }).next(1, new Date('2026-01-01T02:00:00Z'))[0]!.toISOString()).toBe('2026-01-02T02:00:00.000Z');
  });

  test('a seconds field only where allowed (schedule run)', () => {
    expect(utc('*/5 * * * * *', 2, { seconds: true })).toEqual(['2026-01-01T00:00:05.000Z', '2026-01-01T00:00:10.000Z']);
    expect(configError(() => parseSchedule('*/5 * * * * *')).message).toMatch(/has 6 fields, cron needs 5/);
  });

  test.each<[string, RegExp]>([
    ['', /it is empty/],
    ['0 2 * *', /has 4 fields, cron needs 5; quote it/],
    ['0 2 * * * *', /has 6 fields/],
    ['61 * * * *', /61/],
    ['0 24 * * *', /24/],
    ['0 0 31 2 *', /day of month|never matches/],
    ['0 0 L * *', /day of month field "L".*L, W, #, \? and H are not cron's/],
    ['0 0 * * 1#2', /day of week field "1#2"/],
    ['? * * * *', /minute field "\?"/],
    ['a b c d e', /minute field "a"/],
    ['@reboot', /@reboot is not a schedule/],
    ['@often', /cron's macros are @yearly/],
  ])('"%s" is refused with a clear message', (expr, message) => {
    const err = configError(() => parseSchedule(expr));
    expect(err.message).toMatch(message);
    expect(err.message).toContain(`--time "${expr}" is not a valid cron schedule`);
    expect(err.message).toContain('"0 2 * * *" (daily at 02:00)');
    expect(err.code).toBe('config-schedule-time');
  });

  test('formatting', () => {
    expect(formatRunTime(new Date('2026-01-01T02:00:00Z'), true)).toBe('2026-01-01 02:00 (UTC)');
    expect(formatRunTime(new Date('2026-01-01T02:00:05Z'), true)).toBe('2026-01-01 02:00:05 (UTC)');
    expect(formatRunTime(new Date('2026-01-01T02:00:00Z'))).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d \([+-]\d\d:\d\d\)$/);
    expect([formatAge(4_000), formatAge(125_000), formatAge(3 * 3600_000 + 5 * 60_000), formatAge(50 * 3600_000)]).toEqual(['4 s', '2 min', '3 h 5 min', '2 d 2 h']);
    expect(logFileName(new Date(2026, 0, 7, 23, 59))).toBe('backup_20260107.log');
  });
});

describe('the cron line', () => {
  const base: CronEntry = {
    time: '0 2 * * *',
    cwd: '/srv/app',
    node: '/usr/bin/node',
    script: '/opt/pgvb/dist/cli/index.js',
    args: ['--retention-days', '14'],
    logDir: 'logs',
  };

  test('the old kit layout: absolute paths, cd, logs/backup_$(date +%Y%m%d).log with cron-escaped %', () => {
    expect(buildCronLine(base)).toBe(
      '0 2 * * * cd /srv/app && mkdir -p logs && /usr/bin/node /opt/pgvb/dist/cli/index.js backup --retention-days 14 >> logs/backup_$(date +\\%Y\\%m\\%d).log 2>&1',
    );
  });

  test.each<[string, Partial<CronEntry>]>([
    ['spaces and quotes', { cwd: "/srv/my app/it's here", args: ['--backup-dir', "b a'c k"] }],
    ['percent signs', { cwd: '/srv/50%', args: ['--backup-dir', '%Y%m%d'], logDir: 'logs %d' }],
    ['shell metacharacters', { args: ['--backup-dir', '$(touch /tmp/x);`id`|&<>*?[]!#~{}'] }],
    ['unicode and empty values', { cwd: '/srv/bäckups', args: ['--compression-level', ''] }],
    ['a seconds-free macro time', { time: '0 0 * * 0' }],
  ])('%s: read back exactly, and /bin/sh sees exactly these words', (_name, over) => {
    const e = { ...base, ...over };
    const line = buildCronLine(e);
    expect(line).not.toMatch(/\n/);
    expect(parseCronLine(line)).toEqual(e);
    // No unescaped % reaches cron (it would cut the command and feed the rest as stdin).
    const { command, stdin } = cronCommand(line);
    expect(stdin).toBeUndefined();
    // The shell's own reading: the same line with a script that prints its argv, run as cron runs it.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-line-'));
    const script = path.join(dir, 'argv.mjs');
    writeFileSync(script, 'console.log(JSON.stringify({ cwd: process.cwd(), argv: process.argv.slice(2) }));\n');
    const probe = buildCronLine({ ...e, cwd: dir, node: process.execPath, script });
    expect(cronCommand(probe).stdin).toBeUndefined();
    execFileSync('/bin/sh', ['-c', cronCommand(probe).command], { env: { PATH: '/usr/bin:/bin' } });
    const logs = readdirSync(path.join(dir, e.logDir));
    expect(logs).toEqual([execFileSync('date', ['+backup_%Y%m%d.log']).toString().trim()]);
    const printed = JSON.parse(readFileSync(path.join(dir, e.logDir, logs[0]!), 'utf8')) as { cwd: string; argv: string[] };
    expect(printed).toEqual({ cwd: dir, argv: ['backup', ...e.args] });
  });

  test('shellQuote and shellWords agree', () => {
    for (const w of ['plain', '', "it's", 'a b', '$HOME', '"q"', 'back\\slash', '%']) expect(shellWords(shellQuote(w))).toEqual([w]);
    expect(shellWords(`a 'b c' "d \\"e\\"" f\\ g`)).toEqual(['a', 'b c', 'd "e"', 'f g']);
  });

  test('values cron cannot hold are refused', () => {
    expect(configError(() => buildCronLine({ ...base, args: ['--backup-dir', 'a\nb'] })).message).toMatch(/line break/);
    expect(configError(() => buildCronLine({ ...base, cwd: 'C:\\x' })).message).toMatch(/backslash/);
  });

  test('a hand-edited line is not misread', () => {
    expect(parseCronLine('0 2 * * * /usr/local/bin/backup.sh')).toBeUndefined();
    expect(parseCronLine('0 2 * * * cd /x && node y backup >> log 2>&1')).toBeUndefined();
    expect(parseCronLine('garbage')).toBeUndefined();
  });
});

describe('refuseSecrets', () => {
  test.each<[string, Record<string, string>]>([
    ['a URL without password', { 'database-url': 'postgresql://backup@db.example:5432/vector_db' }],
    ['keyword form without password', { 'database-url': 'host=db user=backup dbname=vector_db' }],
    ['a test-restore-url without password', { 'test-restore-url': 'postgresql://postgres@restore-target/postgres' }],
    ['a Pushgateway without credentials', { 'pushgateway-url': 'http://pushgateway:9091' }],
    ['no secret inputs', { 'backup-dir': 'b', 'retention-days': '3' }],
  ])('%s is fine', (_name, inputs) => {
    expect(() => refuseSecrets(inputs, '/srv/app', 'schedule install')).not.toThrow();
  });

  test.each<[string, Record<string, string>, RegExp]>([
    ['a password in database-url', { 'database-url': 'postgresql://u:S3cr3t-pw@h/db' }, /\/srv\/app\/\.env \(PGPASSWORD=\.\.\., or DATABASE_URL=postgresql:\/\/\.\.\.\) or in ~\/\.pgpass/],
    ['a password in keyword form', { 'database-url': 'host=h user=u password=S3cr3t-pw dbname=d' }, /--database-url contains a password/],
    ['a password in test-restore-url', { 'test-restore-url': 'postgresql://postgres:S3cr3t-pw@h/postgres' }, /~\/\.pgpass \(host:port:database:user:password\)/],
    ['a password in target-database-url', { 'target-database-url': 'postgresql://postgres:S3cr3t-pw@h/postgres' }, /--target-database-url contains a password/],
    ['Pushgateway credentials', { 'pushgateway-url': 'https://u:S3cr3t-pw@push.example' }, /--pushgateway-url contains a password/],
    ['a Pushgateway token', { 'pushgateway-token': 'S3cr3t-pw' }, /--pushgateway-token contains a secret.*leave it out/],
    ['a GitHub token', { 'github-token': 'S3cr3t-pw' }, /--github-token contains a secret/],
  ])('%s is refused, without printing it', (_name, inputs, message) => {
    const err = configError(() => refuseSecrets(inputs, '/srv/app', 'schedule install'));
    expect(err.message).toMatch(message);
    expect(err.message).toContain('never writes secrets into the crontab');
    expect(err.message).not.toContain('S3cr3t');
    expect(err.code).toBe('config-schedule-secret');
  });
});

describe('parseScheduleArgs', () => {
  const a = (p: Partial<ScheduleArgs>): ScheduleArgs => ({ action: 'install', help: false, rest: [], ...p });
  test.each<[string[], ScheduleArgs]>([
    [[], a({})],
    [['install'], a({})],
    [['--time', '0 */6 * * *'], a({ time: '0 */6 * * *' })],
    [['--time=0 3 * * 0', '--retention', '14'], a({ time: '0 3 * * 0', rest: ['--retention', '14'] })],
    [['install', '--log-dir', 'var/log', '--backup-dir', 'b'], a({ logDir: 'var/log', rest: ['--backup-dir', 'b'] })],
    [['--status'], a({ action: 'status' })],
    [['status'], a({ action: 'status' })],
    [['--remove'], a({ action: 'remove' })],
    [['remove'], a({ action: 'remove' })],
    [['run', '--time', '*/5 * * * * *'], a({ action: 'run', time: '*/5 * * * * *' })],
    [['status', '--help'], a({ action: 'status', help: true })],
  ])('%j', (argv, expected) => {
    expect(parseScheduleArgs(argv)).toEqual(expected);
  });

  test.each<[string[], RegExp]>([
    [['--status', '--remove'], /Choose one of install, status, remove, run/],
    [['status', '--time', '0 2 * * *'], /schedule status takes no options/],
    [['remove', '--backup-dir', 'x'], /schedule remove takes no options/],
    [['--time'], /--time needs a value/],
  ])('%j is a usage error', (argv, message) => {
    expect(configError(() => parseScheduleArgs(argv)).message).toMatch(message);
  });
});
