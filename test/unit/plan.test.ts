import { describe, expect, test } from 'vitest';
import { conninfoDbname, pgDumpArgs, pgRestoreArgs, planCompression, psqlRestoreArgs, type CompressionPlan } from '../../src/archive/plan.js';
import type { CompressionMethod, Format } from '../../src/archive/manifest.js';
import { ConfigurationError } from '../../src/errors.js';

describe('planCompression', () => {
  type Row = { format: Format; method: CompressionMethod; level: number | undefined; major: number; expected: CompressionPlan };
  const rows: Row[] = [
    // custom
    { format: 'custom', method: 'gzip', level: undefined, major: 15, expected: { method: 'gzip', level: 6, applied: 'pg_dump', pgDumpZ: '6', suffix: '.dump' } },
    { format: 'custom', method: 'gzip', level: undefined, major: 16, expected: { method: 'gzip', level: 6, applied: 'pg_dump', pgDumpZ: 'gzip:6', suffix: '.dump' } },
    { format: 'custom', method: 'gzip', level: 9, major: 15, expected: { method: 'gzip', level: 9, applied: 'pg_dump', pgDumpZ: '9', suffix: '.dump' } },
    { format: 'custom', method: 'gzip', level: 1, major: 17, expected: { method: 'gzip', level: 1, applied: 'pg_dump', pgDumpZ: 'gzip:1', suffix: '.dump' } },
    { format: 'custom', method: 'zstd', level: undefined, major: 15, expected: { method: 'zstd', level: 1, applied: 'stream', pgDumpZ: '0', suffix: '.dump.zst' } },
    { format: 'custom', method: 'zstd', level: 19, major: 15, expected: { method: 'zstd', level: 19, applied: 'stream', pgDumpZ: '0', suffix: '.dump.zst' } },
    { format: 'custom', method: 'zstd', level: undefined, major: 16, expected: { method: 'zstd', level: 1, applied: 'pg_dump', pgDumpZ: 'zstd:1', suffix: '.dump' } },
    { format: 'custom', method: 'zstd', level: 12, major: 16, expected: { method: 'zstd', level: 12, applied: 'pg_dump', pgDumpZ: 'zstd:12', suffix: '.dump' } },
    { format: 'custom', method: 'none', level: undefined, major: 15, expected: { method: 'none', level: null, applied: 'none', pgDumpZ: '0', suffix: '.dump' } },
    { format: 'custom', method: 'none', level: 5, major: 16, expected: { method: 'none', level: null, applied: 'none', pgDumpZ: '0', suffix: '.dump' } },
    // plain
    { format: 'plain', method: 'gzip', level: undefined, major: 15, expected: { method: 'gzip', level: 6, applied: 'stream', suffix: '.sql.gz' } },
    { format: 'plain', method: 'gzip', level: 2, major: 16, expected: { method: 'gzip', level: 2, applied: 'stream', suffix: '.sql.gz' } },
    { format: 'plain', method: 'zstd', level: undefined, major: 15, expected: { method: 'zstd', level: 1, applied: 'stream', suffix: '.sql.zst' } },
    { format: 'plain', method: 'zstd', level: undefined, major: 16, expected: { method: 'zstd', level: 1, applied: 'stream', suffix: '.sql.zst' } },
    { format: 'plain', method: 'none', level: undefined, major: 15, expected: { method: 'none', level: null, applied: 'none', suffix: '.sql' } },
    { format: 'plain', method: 'none', level: undefined, major: 16, expected: { method: 'none', level: null, applied: 'none', suffix: '.sql' } },
    // directory
    { format: 'directory', method: 'gzip', level: undefined, major: 15, expected: { method: 'gzip', level: 6, applied: 'pg_dump', pgDumpZ: '6', suffix: '.dir' } },
    { format: 'directory', method: 'gzip', level: 4, major: 16, expected: { method: 'gzip', level: 4, applied: 'pg_dump', pgDumpZ: 'gzip:4', suffix: '.dir' } },
    { format: 'directory', method: 'zstd', level: undefined, major: 16, expected: { method: 'zstd', level: 1, applied: 'pg_dump', pgDumpZ: 'zstd:1', suffix: '.dir' } },
    { format: 'directory', method: 'none', level: undefined, major: 15, expected: { method: 'none', level: null, applied: 'none', pgDumpZ: '0', suffix: '.dir' } },
    { format: 'directory', method: 'none', level: undefined, major: 16, expected: { method: 'none', level: null, applied: 'none', pgDumpZ: '0', suffix: '.dir' } },
  ];

  test.each(rows)('$format + $method (level $level) with pg_dump $major', ({ format, method, level, major, expected }) => {
    expect(planCompression(format, method, level, major)).toEqual(expected);
  });

  test('plain format never passes -Z to pg_dump', () => {
    for (const method of ['gzip', 'zstd', 'none'] as const) {
      expect('pgDumpZ' in planCompression('plain', method, undefined, 16)).toBe(false);
    }
  });

  test.each([13, 14, 15])('directory + zstd with pg_dump %i throws a ConfigurationError', (major) => {
    expect(() => planCompression('directory', 'zstd', undefined, major)).toThrow(ConfigurationError);
    expect(() => planCompression('directory', 'zstd', undefined, major)).toThrow(
      `format directory with compression zstd needs pg_dump 16 or newer (found ${major}); use compression gzip, or format custom`,
    );
  });
});

describe('pgDumpArgs', () => {
  const gzip15 = planCompression('custom', 'gzip', undefined, 15);

  test.each([
    {
      name: 'custom with a snapshot',
      opts: { format: 'custom' as const, compression: gzip15, snapshot: '00000003-0000001B-1', lockWaitTimeout: '60s', jobs: 4 },
      expected: ['--no-password', '--lock-wait-timeout=60s', '--snapshot=00000003-0000001B-1', '--format=custom', '--compress=6'],
    },
    {
      name: 'custom without a snapshot',
      opts: { format: 'custom' as const, compression: gzip15, lockWaitTimeout: '5min', jobs: 1 },
      expected: ['--no-password', '--lock-wait-timeout=5min', '--format=custom', '--compress=6'],
    },
    {
      name: 'custom + zstd streamed: pg_dump itself does not compress',
      opts: { format: 'custom' as const, compression: planCompression('custom', 'zstd', undefined, 15), snapshot: 's1', lockWaitTimeout: '1s', jobs: 1 },
      expected: ['--no-password', '--lock-wait-timeout=1s', '--snapshot=s1', '--format=custom', '--compress=0'],
    },
    {
      name: 'plain + gzip',
      opts: { format: 'plain' as const, compression: planCompression('plain', 'gzip', undefined, 16), snapshot: 's2', lockWaitTimeout: '60s', jobs: 8 },
      expected: ['--no-password', '--lock-wait-timeout=60s', '--snapshot=s2', '--format=plain'],
    },
    {
      name: 'directory: jobs and the output dir',
      opts: { format: 'directory' as const, compression: planCompression('directory', 'zstd', 7, 17), snapshot: 's3', lockWaitTimeout: '60s', jobs: 3, outputDir: '/backups/db_20260107_143022.dir' },
      expected: ['--no-password', '--lock-wait-timeout=60s', '--snapshot=s3', '--format=directory', '--jobs=3', '--file=/backups/db_20260107_143022.dir', '--compress=zstd:7'],
    },
  ])('$name', ({ opts, expected }) => {
    const args = pgDumpArgs(opts);
    expect(args).toEqual(expected);
    // The connection (host, URL, password) comes from the environment only.
    expect(args.some((a) => /^--(dbname|host|port|username|password)\b|^-[dhpUW]$|postgres(ql)?:\/\//.test(a))).toBe(false);
  });

  test('directory format without an output dir is a programming error', () => {
    expect(() => pgDumpArgs({ format: 'directory', compression: gzip15, lockWaitTimeout: '60s', jobs: 2 })).toThrow('directory format needs an output directory');
  });
});

describe('conninfoDbname', () => {
  test.each([
    ['vectors', "dbname='vectors'"],
    ['my db', "dbname='my db'"],
    ["it's", "dbname='it\\'s'"],
    ['back\\slash', "dbname='back\\\\slash'"],
    ["o'k\\x", "dbname='o\\'k\\\\x'"],
    ['host=evil', "dbname='host=evil'"],
    ['postgresql://u:p@h/db', "dbname='postgresql://u:p@h/db'"],
  ])('%s -> %s', (name, expected) => {
    expect(conninfoDbname(name)).toBe(expected);
  });
});

describe('pgRestoreArgs', () => {
  test.each([
    {
      name: 'data section from a file, parallel, no owner',
      opts: { format: 'custom' as const, database: 'restore_1', input: '/b/x.dump', section: 'data' as const, jobs: 4, noOwner: true },
      expected: ['--no-password', '--exit-on-error', '--format=custom', "--dbname=dbname='restore_1'", '--section=data', '--no-owner', '--no-acl', '--jobs=4', '/b/x.dump'],
    },
    {
      name: 'post-data from a directory, parallel, owners kept',
      opts: { format: 'directory' as const, database: 'r', input: '/b/x.dir', section: 'post-data' as const, jobs: 2, noOwner: false },
      expected: ['--no-password', '--exit-on-error', '--format=directory', "--dbname=dbname='r'", '--section=post-data', '--jobs=2', '/b/x.dir'],
    },
    {
      name: 'pre-data is never parallel',
      opts: { format: 'custom' as const, database: 'r', input: '/b/x.dump', section: 'pre-data' as const, jobs: 8, noOwner: true },
      expected: ['--no-password', '--exit-on-error', '--format=custom', "--dbname=dbname='r'", '--section=pre-data', '--no-owner', '--no-acl', '/b/x.dump'],
    },
    {
      name: 'stdin input is never parallel',
      opts: { format: 'custom' as const, database: 'r', section: 'data' as const, jobs: 8, noOwner: false },
      expected: ['--no-password', '--exit-on-error', '--format=custom', "--dbname=dbname='r'", '--section=data'],
    },
    {
      name: 'jobs 1 adds no --jobs',
      opts: { format: 'custom' as const, database: 'r', input: '/f', section: 'data' as const, jobs: 1, noOwner: false },
      expected: ['--no-password', '--exit-on-error', '--format=custom', "--dbname=dbname='r'", '--section=data', '/f'],
    },
    {
      name: 'single transaction excludes --jobs',
      opts: { format: 'custom' as const, database: 'r', input: '/f', jobs: 4, noOwner: false, singleTransaction: true },
      expected: ['--no-password', '--exit-on-error', '--format=custom', "--dbname=dbname='r'", '--single-transaction', '/f'],
    },
    {
      name: 'whole archive, clean',
      opts: { format: 'custom' as const, database: 'r', input: '/f', jobs: 3, noOwner: false, clean: true },
      expected: ['--no-password', '--exit-on-error', '--format=custom', "--dbname=dbname='r'", '--jobs=3', '--clean', '--if-exists', '/f'],
    },
    {
      name: 'a database name with a quote and a backslash',
      opts: { format: 'custom' as const, database: "we'ird\\name", input: '/f', jobs: 1, noOwner: true },
      expected: ['--no-password', '--exit-on-error', '--format=custom', "--dbname=dbname='we\\'ird\\\\name'", '--no-owner', '--no-acl', '/f'],
    },
  ])('$name', ({ opts, expected }) => {
    expect(pgRestoreArgs(opts)).toEqual(expected);
  });
});

describe('psqlRestoreArgs', () => {
  test.each([
    {
      opts: { database: 'r' },
      expected: ['--no-password', '--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', '--file=-', '--output=/dev/null', "--dbname=dbname='r'"],
    },
    {
      opts: { database: "a'b", singleTransaction: true },
      expected: ['--no-password', '--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', '--file=-', '--output=/dev/null', "--dbname=dbname='a\\'b'", '--single-transaction'],
    },
  ])('$opts', ({ opts, expected }) => {
    expect(psqlRestoreArgs(opts)).toEqual(expected);
  });
});
