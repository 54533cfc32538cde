import { describe, expect, test } from 'vitest';
import { archiveSuffix, backupName, namePrefix, parseManifest, PENDING, standingOf, type Manifest, type Verification } from '../../src/archive/manifest.js';
import { BackupError } from '../../src/errors.js';

const AT = new Date(Date.UTC(2026, 0, 7, 14, 30, 22));

describe('backupName', () => {
  test.each([
    { db: 'vector_db', at: AT, expected: 'vector_db_20260107_143022' },
    { db: 'vector_db', at: new Date(Date.UTC(2025, 11, 31, 23, 59, 59)), expected: 'vector_db_20251231_235959' },
    { db: 'vector_db', at: new Date(Date.UTC(2026, 1, 3, 4, 5, 6)), expected: 'vector_db_20260203_040506' },
    { db: 'my db/../x', at: AT, expected: 'my_db___x_20260107_143022' },
    { db: 'prod:main*?', at: AT, expected: 'prod_main___20260107_143022' },
    { db: 'Über-db.v2', at: AT, expected: '_ber-db.v2_20260107_143022' },
    { db: '..hidden', at: AT, expected: '_hidden_20260107_143022' },
    { db: '.', at: AT, expected: '__20260107_143022' },
    { db: '', at: AT, expected: 'db_20260107_143022' },
  ])('$db -> $expected', ({ db, at, expected }) => {
    expect(backupName(db, at)).toBe(expected);
  });

  test.each(['..', '...x', '.env', '../../etc'])('%s does not give a name starting with "." or containing "/"', (db) => {
    const n = backupName(db, AT);
    expect(n.startsWith('.')).toBe(false);
    expect(n).not.toContain('/');
  });

  test('the stamp is UTC whatever the local time zone', () => {
    // 2026-01-07T14:30:22Z written with an offset.
    expect(backupName('d', new Date('2026-01-07T16:30:22+02:00'))).toBe('d_20260107_143022');
  });

  test.each([
    ['vector_db', 'vector_db_'],
    ['my db', 'my_db_'],
  ])('namePrefix(%s) = %s', (db, prefix) => {
    expect(namePrefix(db)).toBe(prefix);
  });
});

describe('archiveSuffix', () => {
  test.each([
    { format: 'custom' as const, method: 'gzip' as const, applied: 'pg_dump', expected: '.dump' },
    { format: 'custom' as const, method: 'zstd' as const, applied: 'stream', expected: '.dump.zst' },
    { format: 'custom' as const, method: 'gzip' as const, applied: 'stream', expected: '.dump.gz' },
    { format: 'custom' as const, method: 'none' as const, applied: 'none', expected: '.dump' },
    { format: 'plain' as const, method: 'gzip' as const, applied: 'stream', expected: '.sql.gz' },
    { format: 'plain' as const, method: 'zstd' as const, applied: 'stream', expected: '.sql.zst' },
    { format: 'plain' as const, method: 'none' as const, applied: 'none', expected: '.sql' },
    { format: 'directory' as const, method: 'gzip' as const, applied: 'pg_dump', expected: '.dir' },
    { format: 'directory' as const, method: 'none' as const, applied: 'none', expected: '.dir' },
  ])('$format $method $applied -> $expected', ({ format, method, applied, expected }) => {
    expect(archiveSuffix(format, { method, applied })).toBe(expected);
  });
});

const SHA = 'a'.repeat(64);

function minimal(): Record<string, unknown> {
  return {
    manifestVersion: 1,
    tool: { name: 'pgvector-backup', version: '0.1.0' },
    name: 'vector_db_20260107_143022',
    createdAt: '2026-01-07T14:30:22.000Z',
    database: 'vector_db',
    format: 'custom',
    compression: { method: 'gzip', level: 6, applied: 'pg_dump' },
    archive: { file: 'vector_db_20260107_143022.dump', size: 1234, sha256: SHA, dumpBytes: 1234 },
    tables: [],
    extensions: [],
    indexes: [],
    sequences: [],
  };
}

function problemsOf(text: string): string {
  try {
    parseManifest(text, '/backups/x.json');
  } catch (err) {
    expect(err).toBeInstanceOf(BackupError);
    return (err as Error).message;
  }
  throw new Error('parseManifest accepted the manifest');
}

describe('parseManifest', () => {
  test('a valid minimal manifest is accepted and the optional fields get defaults', () => {
    const m: Manifest = parseManifest(JSON.stringify(minimal()), '/backups/x.json');
    expect(m).toEqual({ ...minimal(), knn: null, verification: null, verifications: [], roles: [], largeObjects: 0, encryption: null });
  });

  test('present optional fields are kept', () => {
    const m = parseManifest(JSON.stringify({ ...minimal(), roles: ['app'], largeObjects: 3 }), 'x.json');
    expect(m.roles).toEqual(['app']);
    expect(m.largeObjects).toBe(3);
  });

  test('an empty object lists every missing field', () => {
    expect(problemsOf('{}')).toBe(
      'Manifest x.json is invalid (tool.name, manifestVersion, name, createdAt, database, format, compression, archive.file, archive.size, archive.sha256, tables, extensions, indexes, sequences)',
    );
  });

  test.each([
    { field: 'tool.name', patch: { tool: { name: 'other-tool', version: '1' } } },
    { field: 'manifestVersion', patch: { manifestVersion: 3 } },
    { field: 'verifications', patch: { verifications: {} } },
    { field: 'verifications', patch: { verifications: [{ level: 'quick', ok: 'yes', at: '2026-01-01T00:00:00Z', checks: [] }] } },
    { field: 'verifications', patch: { verifications: [{ level: 'deep', ok: true, at: '2026-01-01T00:00:00Z', checks: [] }] } },
    { field: 'verifications', patch: { verifications: [null] } },
    { field: 'manifestVersion', patch: { manifestVersion: '1' } },
    { field: 'name', patch: { name: '' } },
    { field: 'name', patch: { name: '../evil' } },
    { field: 'name', patch: { name: 'a..b' } },
    { field: 'name', patch: { name: 'dir/name' } },
    { field: 'name', patch: { name: 'dir\\name' } },
    { field: 'name', patch: { name: 'line\nbreak' } },
    { field: 'createdAt', patch: { createdAt: 'yesterday' } },
    { field: 'createdAt', patch: { createdAt: 1736260222000 } },
    { field: 'database', patch: { database: 5 } },
    { field: 'format', patch: { format: 'tar' } },
    { field: 'compression', patch: { compression: { method: 'lz4' } } },
    { field: 'compression', patch: { compression: null } },
    { field: 'archive.file', patch: { archive: { file: '../x.dump', size: 1, sha256: SHA } } },
    { field: 'archive.file', patch: { archive: { file: 'sub/x.dump', size: 1, sha256: SHA } } },
    { field: 'archive.file', patch: { archive: { file: '/etc/passwd', size: 1, sha256: SHA } } },
    { field: 'archive.file', patch: { archive: { file: '..', size: 1, sha256: SHA } } },
    { field: 'archive.file', patch: { archive: { file: '.', size: 1, sha256: SHA } } },
    { field: 'archive.file', patch: { archive: { file: '', size: 1, sha256: SHA } } },
    { field: 'archive.size', patch: { archive: { file: 'x.dump', size: -1, sha256: SHA } } },
    { field: 'archive.size', patch: { archive: { file: 'x.dump', size: 1.5, sha256: SHA } } },
    { field: 'archive.size', patch: { archive: { file: 'x.dump', size: '12', sha256: SHA } } },
    { field: 'archive.sha256', patch: { archive: { file: 'x.dump', size: 1, sha256: 'A'.repeat(64) } } },
    { field: 'archive.sha256', patch: { archive: { file: 'x.dump', size: 1, sha256: 'abc' } } },
    { field: 'archive.files', patch: { archive: { file: 'x.dir', size: 1, sha256: SHA, files: [{ path: '../toc.dat', size: 1, sha256: SHA }] } } },
    { field: 'archive.files', patch: { archive: { file: 'x.dir', size: 1, sha256: SHA, files: [{ path: '/toc.dat', size: 1, sha256: SHA }] } } },
    { field: 'archive.files', patch: { archive: { file: 'x.dir', size: 1, sha256: SHA, files: [{ path: 'a/../../b', size: 1, sha256: SHA }] } } },
    { field: 'archive.files', patch: { archive: { file: 'x.dir', size: 1, sha256: SHA, files: [{ path: 'toc.dat', size: 1, sha256: 'nope' }] } } },
    { field: 'archive.files', patch: { archive: { file: 'x.dir', size: 1, sha256: SHA, files: 'toc.dat' } } },
    { field: 'tables', patch: { tables: {} } },
    { field: 'extensions', patch: { extensions: null } },
    { field: 'indexes', patch: { indexes: 'x' } },
    { field: 'sequences', patch: { sequences: undefined } },
  ])('invalid $field: $patch', ({ field, patch }) => {
    expect(problemsOf(JSON.stringify({ ...minimal(), ...patch }))).toBe(`Manifest x.json is invalid (${field})`);
  });

  test('several problems are all listed', () => {
    expect(problemsOf(JSON.stringify({ ...minimal(), name: 'a/..', format: 'zip', tables: null }))).toBe('Manifest x.json is invalid (name, format, tables)');
  });

  test('archive files with safe relative paths are accepted', () => {
    const m = parseManifest(
      JSON.stringify({ ...minimal(), format: 'directory', archive: { file: 'x.dir', size: 2, sha256: SHA, files: [{ path: 'toc.dat', size: 1, sha256: SHA }, { path: '3001.dat.gz', size: 1, sha256: SHA }] } }),
      'x.json',
    );
    expect(m.archive.files!.map((f) => f.path)).toEqual(['toc.dat', '3001.dat.gz']);
  });

  test.each([
    { text: '', message: 'Manifest x.json is empty' },
    { text: '  \n', message: 'Manifest x.json is empty' },
    { text: 'null', message: 'Manifest x.json is invalid (not an object)' },
    { text: '"string"', message: 'Manifest x.json is invalid (not an object)' },
    { text: '42', message: 'Manifest x.json is invalid (not an object)' },
  ])('$text -> $message', ({ text, message }) => {
    expect(problemsOf(text)).toBe(message);
  });

  test('truncated JSON is reported as not valid JSON', () => {
    expect(problemsOf(JSON.stringify(minimal()).slice(0, 50))).toMatch(/^Manifest x\.json is not valid JSON \(/);
  });

  test('the error has a hint', () => {
    try {
      parseManifest('{}', 'x.json');
      expect.unreachable();
    } catch (err) {
      expect((err as BackupError).hint).toBe('The backup cannot be trusted; use another backup or run a new one');
    }
  });

  // Was a bug (fixed): parseManifest promises a BackupError for every problem, but an archive.files entry that is not an object
  // (a damaged or hand-edited manifest) crashes with "TypeError: Cannot read properties of null (reading 'path')".
  test('archive.files with a null entry is a BackupError, not a TypeError', () => {
    expect(problemsOf(JSON.stringify({ ...minimal(), archive: { file: 'x.dir', size: 1, sha256: SHA, files: [null] } }))).toBe(
      'Manifest x.json is invalid (archive.files)',
    );
  });

  // Was a bug: backupName kept ".." of a database name ("my..db" is a valid PostgreSQL name) while parseManifest
  // rejects names containing "..". backupName now folds runs of dots.
  test('a manifest named by backupName for a database "my..db" is accepted', () => {
    const name = backupName('my..db', AT);
    expect(name).toBe('my_db_20260107_143022');
    const m = parseManifest(JSON.stringify({ ...minimal(), name, database: 'my..db', archive: { file: `${name}.dump`, size: 1, sha256: SHA } }), 'x.json');
    expect(m.name).toBe(name);
  });
});

const check = (level: Verification['level'], ok: boolean, minute: number): Verification => ({ level, ok, at: `2026-12-01T00:${String(minute).padStart(2, '0')}:00.000Z`, checks: [], ...(ok ? {} : { failure: 'x' }) });

describe('standing from the verification history', () => {
  test.each<[string, Verification[], ReturnType<typeof standingOf>['standing'], Verification['level'] | undefined]>([
    ['no check: unverified', [], 'unverified', undefined],
    ['a quick pass: good (quick)', [check('quick', true, 1)], 'good', 'quick'],
    ['a full pass: good (full)', [check('full', true, 1)], 'good', 'full'],
    ['a later quick pass never lowers a full one', [check('full', true, 1), check('quick', true, 2)], 'good', 'full'],
    ['a quick failure after a full pass is damage: bad', [check('full', true, 1), check('quick', false, 2)], 'bad', undefined],
    ['a quick pass does not clear a failed test restore', [check('full', false, 1), check('quick', true, 2)], 'bad', undefined],
    ['a full pass clears a failed test restore', [check('full', false, 1), check('full', true, 2)], 'good', 'full'],
    ['a quick pass clears a quick failure (the bytes match again)', [check('quick', false, 1), check('quick', true, 2)], 'good', 'quick'],
    ['full and quick failures: only a full pass clears them', [check('full', false, 1), check('quick', false, 2), check('quick', true, 3)], 'bad', undefined],
    // The order of recording decides, not the clocks (a pass stamped in the future must not hide later damage).
    ['a failure recorded after a pass whose clock was ahead: bad', [check('full', true, 5), check('quick', false, 1)], 'bad', undefined],
  ])('%s', (_name, history, standing, level) => {
    const s = standingOf(history);
    expect(s.standing).toBe(standing);
    expect(s.level).toBe(level);
    if (history.length) expect(s.last).toEqual(history.at(-1));
  });

  test('a version 1 manifest: its one slot becomes the history; a verification that never finished is unverified', () => {
    const passed = { level: 'full', ok: true, at: '2026-01-07T14:31:00.000Z', checks: ['test restore matches the manifest'] };
    expect(parseManifest(JSON.stringify({ ...minimal(), verification: passed }), 'x.json').verifications).toEqual([passed]);
    const pending = { level: 'full', ok: false, at: '2026-01-07T14:30:22.000Z', checks: [], failure: PENDING };
    const m = parseManifest(JSON.stringify({ ...minimal(), verification: pending }), 'x.json');
    expect(m.verifications).toEqual([]);
    expect(standingOf(m.verifications).standing).toBe('unverified');
    expect(parseManifest(JSON.stringify({ ...minimal(), verification: null }), 'x.json').verifications).toEqual([]);
  });

  test.each([
    ['Cannot decrypt backup x: the key does not match (no identity matched any of the file\'s recipients). Use the decryption-identity ...', 'unverified'],
    ['Cannot connect to PostgreSQL at 127.0.0.1:1: connection refused. Check the host and port in database-url ...', 'unverified'],
    ['No pg_dump of version 17 or newer found ...', 'unverified'],
    ['Backup x failed the sha256 (the archive differs from what was written) check. The backup is damaged ...', 'bad'],
    ['Backup x failed the zstd structure (the zstd stream ends inside a frame) check. ...', 'bad'],
    ['Decompressing x failed: zstd -d exited with code 1: ... The archive is damaged ...', 'bad'],
    ['Decompressing x failed: zstd: error 70 : Write error : No space left on device. The archive is damaged or the disk is full ...', 'unverified'],
    ['Decrypting backup x failed: ... The encrypted archive was modified or damaged; ...', 'bad'],
  ])('a version 1 failure %#: %s reads as %s (only damage stays a failure)', (failure, expected) => {
    const v = { level: 'full', ok: false, at: '2026-01-07T14:31:00.000Z', checks: [], failure };
    const m = parseManifest(JSON.stringify({ ...minimal(), verification: v }), 'x.json');
    expect(standingOf(m.verifications).standing).toBe(expected);
  });

  test('a version 1 test restore with mismatches is damage', () => {
    const v = { level: 'full', ok: false, at: '2026-01-07T14:31:00.000Z', checks: [], mismatches: 2 };
    expect(standingOf(parseManifest(JSON.stringify({ ...minimal(), verification: v }), 'x.json').verifications).standing).toBe('bad');
  });

  test('a version 2 manifest keeps its history as written', () => {
    const history = [check('full', true, 1), check('quick', true, 2)];
    const m = parseManifest(JSON.stringify({ ...minimal(), manifestVersion: 2, verifications: history, verification: history[1] }), 'x.json');
    expect(m.verifications).toEqual(history);
  });
});
