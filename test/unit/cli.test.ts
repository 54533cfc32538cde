import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { cliEnvironment, parseArgs, parseDotEnv, type ParsedArgs } from '../../src/cli.js';
import { ConfigurationError } from '../../src/errors.js';

function parsed(p: Partial<ParsedArgs>): ParsedArgs {
  return { command: 'backup', inputs: {}, json: false, yes: false, verbose: false, help: false, ...p };
}

describe('parseArgs', () => {
  test.each<{ argv: string[]; expected: ParsedArgs }>([
    { argv: [], expected: parsed({}) },
    { argv: ['backup', '--backup-dir', 'x'], expected: parsed({ inputs: { 'backup-dir': 'x' } }) },
    { argv: ['--backup-dir=x'], expected: parsed({ inputs: { 'backup-dir': 'x' } }) },
    { argv: ['--database-url=postgresql://u:p=q@h/d'], expected: parsed({ inputs: { 'database-url': 'postgresql://u:p=q@h/d' } }) },
    { argv: ['--retention', '14'], expected: parsed({ inputs: { 'retention-days': '14' } }) },
    { argv: ['--retention-days=0'], expected: parsed({ inputs: { 'retention-days': '0' } }) },
    { argv: ['--list'], expected: parsed({ command: 'list' }) },
    { argv: ['--verify'], expected: parsed({ command: 'verify' }) },
    { argv: ['--test-restore'], expected: parsed({ command: 'test-restore' }) },
    { argv: ['backup', '--verify', 'quick'], expected: parsed({ inputs: { verify: 'quick' } }) },
    { argv: ['--verify', 'none'], expected: parsed({ inputs: { verify: 'none' } }) },
    { argv: ['--verify', 'my_backup'], expected: parsed({ command: 'verify', inputs: { backup: 'my_backup' } }) },
    { argv: ['verify', 'path/to/file.dump'], expected: parsed({ command: 'verify', inputs: { backup: 'path/to/file.dump' } }) },
    { argv: ['test-restore', 'db_20260107_143022'], expected: parsed({ command: 'test-restore', inputs: { backup: 'db_20260107_143022' } }) },
    { argv: ['verify', '--all'], expected: parsed({ command: 'verify', inputs: { all: 'true' } }) },
    { argv: ['verify', '--all', 'false'], expected: parsed({ command: 'verify', inputs: { all: 'false' } }) },
    { argv: ['--all', 'false'], expected: parsed({ inputs: { all: 'false' } }) },
    { argv: ['--all', 'verify'], expected: parsed({ command: 'verify', inputs: { all: 'true' } }) },
    { argv: ['--create-roles'], expected: parsed({ inputs: { 'create-roles': 'true' } }) },
    { argv: ['--create-roles', 'NO'], expected: parsed({ inputs: { 'create-roles': 'NO' } }) },
    { argv: ['prune', '--dry-run', 'false', '--keep-daily', '7'], expected: parsed({ command: 'prune', inputs: { 'dry-run': 'false', 'keep-daily': '7' } }) },
    { argv: ['list', '--json', '-v'], expected: parsed({ command: 'list', json: true, verbose: true }) },
    { argv: ['--version'], expected: parsed({ command: 'version' }) },
    { argv: ['-V'], expected: parsed({ command: 'version' }) },
    { argv: ['--help'], expected: parsed({ help: true }) },
    { argv: ['-h'], expected: parsed({ help: true }) },
    { argv: ['help'], expected: parsed({ help: true }) },
    { argv: ['verify', '--help'], expected: parsed({ command: 'verify', help: true }) },
    { argv: ['demo'], expected: parsed({ command: 'demo' }) },
    { argv: ['--backup-dir', '--weird-dir-name'], expected: parsed({ inputs: { 'backup-dir': '--weird-dir-name' } }) },
  ])('$argv', ({ argv, expected }) => {
    expect(parseArgs(argv)).toEqual(expected);
  });

  test.each([
    { argv: ['--bogus'], message: 'Unknown option --bogus; see pgvector-backup --help' },
    { argv: ['verify', '--bogus=1'], message: 'Unknown option --bogus; see pgvector-backup verify --help' },
    { argv: ['--backup-dir'], message: 'Option --backup-dir needs a value' },
    { argv: ['backup', '--retention'], message: 'Option --retention needs a value' },
    { argv: ['backup', 'extra'], message: 'Unexpected argument "extra"; see pgvector-backup --help' },
    { argv: ['verify', 'a', 'b'], message: 'Unexpected argument "a b"; see pgvector-backup --help' },
    { argv: ['list', 'verify'], message: 'Unexpected argument "verify"; see pgvector-backup --help' },
  ])('$argv throws a ConfigurationError', ({ argv, message }) => {
    expect(() => parseArgs(argv)).toThrow(ConfigurationError);
    expect(() => parseArgs(argv)).toThrow(message);
  });
});

describe('parseDotEnv', () => {
  test('comments, export, quotes, inline comments, spaces', () => {
    const text = [
      '# a comment',
      '',
      '   # an indented comment',
      'PLAIN=value',
      'export EXPORTED=yes',
      'DOUBLE="a value # not a comment"',
      "SINGLE='single quoted'",
      'INLINE=abc # trailing comment',
      'HASH_NO_SPACE=postgresql://u:p#w@h/d',
      'SPACED = around equals ',
      'EMPTY=',
      'EQUALS=a=b=c',
      'not a line',
      '1BAD=x',
      'CRLF=windows\r',
    ].join('\n');
    expect(parseDotEnv(text)).toEqual({
      PLAIN: 'value',
      EXPORTED: 'yes',
      DOUBLE: 'a value # not a comment',
      SINGLE: 'single quoted',
      INLINE: 'abc',
      HASH_NO_SPACE: 'postgresql://u:p#w@h/d',
      SPACED: 'around equals',
      EMPTY: '',
      EQUALS: 'a=b=c',
      CRLF: 'windows',
    });
  });

  test('a later line overrides an earlier one', () => {
    expect(parseDotEnv('A=1\nA=2')).toEqual({ A: '2' });
  });

  // Was a bug (fixed): a quoted value followed by an inline comment keeps its quotes: the quote check needs the value to end
  // with the quote, so PGPASSWORD="s3cret" # staging becomes the password "s3cret" *with* the quotes.
  test('a quoted value followed by an inline comment loses the quotes and the comment', () => {
    expect(parseDotEnv('PGPASSWORD="s3cret" # staging')).toEqual({ PGPASSWORD: 's3cret' });
  });
});

describe('cliEnvironment', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  function withDotEnv(text: string | undefined): string {
    const d = mkdtempSync(path.join(os.tmpdir(), 'pgvb-cli-'));
    dirs.push(d);
    if (text !== undefined) writeFileSync(path.join(d, '.env'), text);
    return d;
  }

  test('DB_NAME becomes PGDATABASE when PGDATABASE is unset', () => {
    expect(cliEnvironment({ DB_NAME: 'vectors' }, withDotEnv(undefined))).toEqual({ DB_NAME: 'vectors', PGDATABASE: 'vectors' });
  });

  test('PGDATABASE wins over DB_NAME', () => {
    expect(cliEnvironment({ DB_NAME: 'a', PGDATABASE: 'b' }, withDotEnv(undefined))).toEqual({ DB_NAME: 'a', PGDATABASE: 'b' });
  });

  test('.env fills unset variables; the existing environment wins', () => {
    const cwd = withDotEnv('PGHOST=from-file\nPGUSER=file-user\nBACKUP_DIR=/file/dir\nDB_NAME=file_db\n');
    expect(cliEnvironment({ PGHOST: 'from-env', PATH: '/bin' }, cwd)).toEqual({
      PATH: '/bin',
      PGHOST: 'from-env',
      PGUSER: 'file-user',
      BACKUP_DIR: '/file/dir',
      DB_NAME: 'file_db',
      PGDATABASE: 'file_db',
    });
  });

  test('an empty variable in the environment still wins over .env', () => {
    const cwd = withDotEnv('PGPASSWORD=from-file\n');
    expect(cliEnvironment({ PGPASSWORD: '' }, cwd)).toEqual({ PGPASSWORD: '' });
  });

  test('the input environment is not modified', () => {
    const env = { DB_NAME: 'x' };
    cliEnvironment(env, withDotEnv('A=1'));
    expect(env).toEqual({ DB_NAME: 'x' });
  });
});
