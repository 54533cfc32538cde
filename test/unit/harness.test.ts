import { describe, expect, test } from 'vitest';
import { actionEnv, parseOutputFile } from '../../src/demo/run.js';

describe('actionEnv', () => {
  const files = { output: '/tmp/out.txt', summary: '/tmp/summary.md' };

  test('INPUT_* names keep their hyphens; inherited runner, input and PG* variables are removed', () => {
    const base = {
      PATH: '/usr/bin',
      HOME: '/home/me',
      GITHUB_OUTPUT: '/elsewhere/output',
      GITHUB_TOKEN: 'ghp_secret',
      INPUT_FORMAT: 'plain',
      'INPUT_BACKUP-DIR': '/old',
      ACTIONS_RUNTIME_TOKEN: 'tok',
      RUNNER_TEMP: '/runner/tmp',
      PGPASSWORD: 'inherited',
      PGHOST: 'inherited-host',
      MY_GITHUB_THING: 'kept',
    };
    expect(actionEnv({ 'database-url': 'postgresql://u:p@h/d', 'backup-dir': '/b', verify: 'full' }, files, base)).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/me',
      MY_GITHUB_THING: 'kept',
      'INPUT_DATABASE-URL': 'postgresql://u:p@h/d',
      'INPUT_BACKUP-DIR': '/b',
      INPUT_VERIFY: 'full',
      GITHUB_OUTPUT: '/tmp/out.txt',
      GITHUB_STEP_SUMMARY: '/tmp/summary.md',
    });
  });

  test('the base environment is not modified', () => {
    const base = { GITHUB_OUTPUT: 'x', PATH: '/bin' };
    actionEnv({}, files, base);
    expect(base).toEqual({ GITHUB_OUTPUT: 'x', PATH: '/bin' });
  });
});

describe('parseOutputFile', () => {
  test.each([
    { name: 'name=value lines', text: 'backup-name=db_20260107_143022\nsize-bytes=1234\n', expected: { 'backup-name': 'db_20260107_143022', 'size-bytes': '1234' } },
    { name: 'a value containing "="', text: 'url=a=b=c\n', expected: { url: 'a=b=c' } },
    { name: 'an empty value', text: 'pgvector-version=\n', expected: { 'pgvector-version': '' } },
    {
      name: 'a multi-line block',
      text: 'summary<<ghadelimiter_1234\nline one\nline two = with equals\n\nline four\nghadelimiter_1234\n',
      expected: { summary: 'line one\nline two = with equals\n\nline four' },
    },
    { name: 'an empty block', text: 'empty<<EOF\nEOF\n', expected: { empty: '' } },
    {
      name: 'blocks and lines mixed',
      text: 'a=1\nb<<D1\nx=2\nD1\nc=3\nd<<D2\nmulti\nD2\n',
      expected: { a: '1', b: 'x=2', c: '3', d: 'multi' },
    },
    { name: 'name=value whose value contains <<', text: 'x=a<<b\n', expected: { x: 'a<<b' } },
    { name: 'blank lines and junk ignored', text: '\n\njunk\nk=v', expected: { k: 'v' } },
    { name: 'a later value overrides', text: 'k=1\nk=2\n', expected: { k: '2' } },
  ])('$name', ({ text, expected }) => {
    expect(parseOutputFile(text)).toEqual(expected);
  });
});
