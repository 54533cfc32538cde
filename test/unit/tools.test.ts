import { describe, expect, test } from 'vitest';
import { chooseTools, dockerCommand, parseToolVersion, pgvectorImage, serverMajor, toolCommand, type Candidate } from '../../src/postgres/tools.js';

describe('parseToolVersion', () => {
  test.each([
    { text: 'pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)', expected: { major: 15, version: '15.18' } },
    { text: 'pg_dump (PostgreSQL) 17.2', expected: { major: 17, version: '17.2' } },
    { text: 'pg_dump (PostgreSQL) 17.2\n', expected: { major: 17, version: '17.2' } },
    { text: 'pg_dump (PostgreSQL) 9.6.24', expected: { major: 9, version: '9.6' } },
    { text: 'pg_restore (PostgreSQL) 16.4 (Homebrew)', expected: { major: 16, version: '16.4' } },
    { text: 'psql (PostgreSQL) 18beta1', expected: { major: 18, version: '18' } },
    { text: 'postgres (PostgreSQL) 14.13 (Ubuntu 14.13-0ubuntu0.22.04.1)', expected: { major: 14, version: '14.13' } },
    { text: 'pg_dump 13.7', expected: { major: 13, version: '13.7' } },
    { text: 'command not found', expected: undefined },
    { text: '', expected: undefined },
  ])('$text', ({ text, expected }) => {
    expect(parseToolVersion(text)).toEqual(expected);
  });
});

describe('serverMajor', () => {
  test.each([
    [150004, 15],
    [170002, 17],
    [160000, 16],
    [180000, 18],
    [100023, 10],
    [90624, 9],
    [90200, 9],
  ])('%i -> %i', (num, major) => {
    expect(serverMajor(num)).toBe(major);
  });
});

describe('chooseTools', () => {
  const c13: Candidate = { dir: '/usr/lib/postgresql/13/bin', major: 13, version: '13.16' };
  const c15: Candidate = { dir: '/usr/lib/postgresql/15/bin', major: 15, version: '15.18' };
  const c16: Candidate = { dir: '/usr/lib/postgresql/16/bin', major: 16, version: '16.4' };
  const c17: Candidate = { dir: '/usr/local/bin', major: 17, version: '17.2' };

  test.each([
    { name: 'lowest major at least the server', candidates: [c17, c16, c15, c13], min: 15, preferred: undefined, expected: c15 },
    { name: 'order of candidates does not matter', candidates: [c13, c17, c16], min: 14, preferred: undefined, expected: c16 },
    { name: 'newer only', candidates: [c13, c17], min: 15, preferred: undefined, expected: c17 },
    { name: 'preferred dir wins when new enough', candidates: [c15, c16, c17], min: 15, preferred: '/usr/local/bin', expected: c17 },
    { name: 'preferred dir with a trailing slash', candidates: [c15, c16, c17], min: 15, preferred: '/usr/lib/postgresql/16/bin/', expected: c16 },
    { name: 'preferred dir too old: the lowest fit instead', candidates: [c13, c16, c17], min: 15, preferred: '/usr/lib/postgresql/13/bin', expected: c16 },
    { name: 'preferred dir not among the candidates', candidates: [c15, c17], min: 15, preferred: '/opt/pg/bin', expected: c15 },
    { name: 'all too old: nothing', candidates: [c13, c15], min: 16, preferred: undefined, expected: undefined },
    { name: 'all too old, even the preferred one', candidates: [c13, c15], min: 16, preferred: '/usr/lib/postgresql/15/bin', expected: undefined },
    { name: 'no candidates', candidates: [], min: 9, preferred: undefined, expected: undefined },
    { name: '9.x server: any 10+ pg_dump', candidates: [c17, c13], min: 9, preferred: undefined, expected: c13 },
  ])('$name', ({ candidates, min, preferred, expected }) => {
    expect(chooseTools(candidates, min, preferred)).toEqual(expected);
  });

  test('does not reorder the caller\'s array', () => {
    const list = [c17, c15, c16];
    chooseTools(list, 15);
    expect(list).toEqual([c17, c15, c16]);
  });
});

describe('dockerCommand', () => {
  const PASSWORD = 'p@ss:/w%rd ü';
  const env = { PATH: '/usr/bin', PGUSER: 'alice', PGPASSWORD: PASSWORD, PGHOST: 'db', HOME: '/root', PGDATABASE: 'vectors' };

  test('exact argv: env names without values, host network, mounts, entrypoint', () => {
    const cmd = dockerCommand('pgvector/pgvector:pg16', 'pg_dump', ['--format=custom', '--no-password'], env, ['/backups', '/tmp/x y']);
    expect(cmd).toEqual({
      file: 'docker',
      args: [
        'run', '--rm', '-i', '--network', 'host', '--user', `${process.getuid!()}:${process.getgid!()}`,
        '-e', 'PGDATABASE', '-e', 'PGHOST', '-e', 'PGPASSWORD', '-e', 'PGUSER',
        '-v', '/backups:/backups', '-v', '/tmp/x y:/tmp/x y',
        '--entrypoint', 'pg_dump', 'pgvector/pgvector:pg16', '--format=custom', '--no-password',
      ],
      env,
    });
  });

  test('no secret value, and no non-PG variable, appears in argv', () => {
    const { args } = dockerCommand('img', 'pg_restore', [], env);
    expect(args.some((a) => a.includes(PASSWORD) || a.includes('alice') || a.includes('PATH') || a.includes('HOME'))).toBe(false);
    expect(args.filter((a) => a === '-e')).toHaveLength(4);
  });

  test('toolCommand: docker tools go through docker, local tools run from their dir', () => {
    expect(toolCommand({ kind: 'docker', image: pgvectorImage(17), major: 17, version: '17' }, 'psql', ['-c', 'select 1'], {}).args).toEqual([
      'run', '--rm', '-i', '--network', 'host', '--user', `${process.getuid!()}:${process.getgid!()}`, '--entrypoint', 'psql', 'pgvector/pgvector:pg17', '-c', 'select 1',
    ]);
    expect(toolCommand({ kind: 'local', dir: '/usr/lib/postgresql/16/bin', major: 16, version: '16.4' }, 'pg_restore', ['--list'], { A: '1' })).toEqual({
      file: '/usr/lib/postgresql/16/bin/pg_restore',
      args: ['--list'],
      env: { A: '1' },
    });
  });
});
