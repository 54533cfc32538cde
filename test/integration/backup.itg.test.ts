// mode: backup and list through the bundled action, on a real PostgreSQL + pgvector server: every format and
// compression, exact manifests, restorable with standard tools alone, consistent under concurrent writes.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseManifest } from '../../src/archive/manifest.js';
import { runAction, runCli } from '../helpers/action.js';
import { seedVariety } from '../helpers/fixtures.js';
import { createDatabase, dropDatabase, tableCounts, withClient } from '../helpers/pg.js';

let source: { name: string; url: string };
const made: string[] = [];

beforeAll(async () => {
  source = await createDatabase('bk_variety', seedVariety);
  made.push(source.name);
});
afterAll(async () => {
  for (const n of made) await dropDatabase(n);
});

function pgEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url.replace(/^postgresql:/, 'http:'));
  return {
    ...process.env,
    PGHOST: u.hostname,
    PGPORT: u.port,
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
  };
}

/** Restores an archive with the standard tools a user has, exactly as the README shows. */
function restoreWithStandardTools(archive: string, targetUrl: string): void {
  const env = pgEnv(targetUrl);
  const db = env.PGDATABASE!;
  let cmd: string;
  if (archive.endsWith('.sql.gz')) cmd = `gunzip -c '${archive}' | psql -X -q -v ON_ERROR_STOP=1 -d '${db}' >/dev/null`;
  else if (archive.endsWith('.sql.zst')) cmd = `zstd -dc '${archive}' | psql -X -q -v ON_ERROR_STOP=1 -d '${db}' >/dev/null`;
  else if (archive.endsWith('.sql')) cmd = `psql -X -q -v ON_ERROR_STOP=1 -d '${db}' -f '${archive}' >/dev/null`;
  else if (archive.endsWith('.dump.zst')) cmd = `zstd -dc '${archive}' | pg_restore --exit-on-error -d '${db}'`;
  else cmd = `pg_restore --exit-on-error -d '${db}' '${archive}'`;
  execFileSync('bash', ['-o', 'pipefail', '-c', cmd], { env, stdio: ['ignore', 'ignore', 'pipe'] });
}

describe.each([
  { format: 'custom', compression: 'gzip', suffix: /^bk_variety_\w+_\d{8}_\d{6}\.dump$/ },
  { format: 'custom', compression: 'zstd', suffix: /\.dump\.zst$/ },
  { format: 'custom', compression: 'none', suffix: /\.dump$/ },
  { format: 'plain', compression: 'gzip', suffix: /^bk_variety_\w+_\d{8}_\d{6}\.sql\.gz$/ },
  { format: 'plain', compression: 'zstd', suffix: /\.sql\.zst$/ },
  { format: 'plain', compression: 'none', suffix: /\.sql$/ },
  { format: 'directory', compression: 'gzip', suffix: /\.dir$/ },
])('backup format=$format compression=$compression', ({ format, compression, suffix }) => {
  test('writes an exact manifest and an archive that standard tools restore', async () => {
    const backupDir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-bk-'));
    const r = await runAction({ 'database-url': source.url, 'backup-dir': backupDir, format, compression, verify: 'none' });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const archive = r.outputs['backup-path']!;
    expect(path.basename(archive)).toMatch(suffix);
    expect(existsSync(archive)).toBe(true);
    const manifest = parseManifest(readFileSync(r.outputs['manifest-path']!, 'utf8'), 'm.json');

    // Exact per-table counts, equal to the database's.
    const counts = await tableCounts(source.url);
    for (const t of manifest.tables) {
      if (t.kind === 'partitioned table') expect(t.rows).toBe(0);
      else expect(t.rows, `${t.schema}.${t.name}`).toBe(counts[`${t.schema}.${t.name}`]);
    }
    expect(manifest.tables.map((t) => `${t.schema}.${t.name}`)).toEqual(
      expect.arrayContaining(['public.documents', 'public.chunks', 'Search Space.My Docs', 'public.events', 'public.events_2025', 'public.doc_stats', 'public.scratch']),
    );
    const docs = manifest.tables.find((t) => t.name === 'documents')!;
    expect(docs.vectorColumns).toEqual([{ name: 'embedding', type: 'vector', dimensions: 32, nonNull: 294 }]);
    const myDocs = manifest.tables.find((t) => t.name === 'My Docs')!;
    expect(myDocs.vectorColumns.map((c) => [c.name, c.type, c.dimensions, c.nonNull])).toEqual([
      ['Embedding', 'vector', 3, 108],
      ['sparse', 'sparsevec', 10, 120],
      ['bits', 'bit', 16, 120],
    ]);
    expect(manifest.tables.find((t) => t.name === 'events_2025')!.kind).toBe('partition');
    expect(manifest.tables.find((t) => t.name === 'doc_stats')!.kind).toBe('materialized view');
    expect(manifest.tables.find((t) => t.name === 'scratch')!.unlogged).toBe(true);
    expect(manifest.indexes.find((i) => i.name === 'documents_embedding_hnsw')).toMatchObject({ method: 'hnsw', valid: true });
    expect(manifest.indexes.find((i) => i.name === 'documents_embedding_hnsw')!.definition).toContain("m='16'");
    expect(manifest.indexes.find((i) => i.name === 'chunks_embedding_ivfflat')!.method).toBe('ivfflat');
    expect(manifest.extensions.find((e) => e.name === 'vector')?.version).toMatch(/^\d+\.\d+/);
    expect(manifest.largeObjects).toBe(1);
    expect(manifest.sequences.find((s) => s.name === 'documents_id_seq')?.lastValue).toBe('300');
    expect(manifest.knn?.table).toBe('chunks'); // the largest table with a vector column and an integer key
    expect(manifest.knn?.samples.length).toBe(3);
    expect(manifest.knn?.samples[0]!.neighbours[0]).toBe(manifest.knn?.samples[0]!.id);
    expect(manifest.roles).toContain('postgres');
    expect(manifest.server.pgvectorVersion).toBe(manifest.extensions.find((e) => e.name === 'vector')!.version);
    expect(manifest.format).toBe(format);
    expect(manifest.compression.method).toBe(compression);
    expect(Date.parse(manifest.createdAt)).toBeGreaterThan(Date.now() - 600_000);
    expect(manifest.createdAt.endsWith('Z')).toBe(true);

    // Outputs agree with the manifest and the file.
    const total = manifest.tables.reduce((n, t) => n + t.rows, 0);
    expect(Number(r.outputs.rows)).toBe(total);
    expect(Number(r.outputs.tables)).toBe(manifest.tables.length);
    expect(Number(r.outputs.vectors)).toBe(294 + 600 + 108 + 120 + 120 + 250);
    expect(r.outputs.sha256).toBe(manifest.archive.sha256);
    if (format !== 'directory') {
      const sha = execFileSync('sha256sum', [archive], { encoding: 'utf8' }).split(' ')[0];
      expect(sha).toBe(manifest.archive.sha256);
      expect(Number(r.outputs['size-bytes'])).toBe(readFileSync(archive).length);
    }
    expect(r.summary).toContain('Search Space.My Docs');
    expect(r.stdout).toContain('::group::Dump');

    // No leftovers of the write path.
    expect(readdirSync(backupDir).filter((f) => f.endsWith('.partial'))).toEqual([]);

    // Restorable with standard tools alone, into a new database, with identical counts.
    const target = await createDatabase('bk_restored');
    made.push(target.name);
    restoreWithStandardTools(archive, target.url);
    expect(await tableCounts(target.url)).toEqual(counts);
  });
});

test('the manifest is exact for the archive while other sessions keep writing (one snapshot)', async () => {
  const db = await createDatabase('bk_busy', async (c) => {
    await c.query(`CREATE EXTENSION vector; CREATE TABLE items (id bigserial PRIMARY KEY, payload text, e vector(16))`);
    await c.query(`INSERT INTO items (payload, e) SELECT repeat('x', 200), (SELECT array_agg(random()::real) FROM generate_series(1,16) WHERE g > 0)::vector FROM generate_series(1, 60000) g`);
  });
  made.push(db.name);
  const backupDir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-busy-'));
  let stop = false;
  let inserted = 0;
  const writer = withClient(db.url, async (c) => {
    while (!stop) {
      await c.query(`INSERT INTO items (payload, e) SELECT 'w', '[${Array(16).fill(0.5).join(',')}]' FROM generate_series(1, 50)`);
      inserted += 50;
    }
  });
  const r = await runAction({ 'database-url': db.url, 'backup-dir': backupDir, verify: 'none', compression: 'none' });
  stop = true;
  await writer;
  expect(r.code, r.stdout).toBe(0);
  expect(inserted).toBeGreaterThan(0);
  const manifest = parseManifest(readFileSync(r.outputs['manifest-path']!, 'utf8'), 'm');
  const items = manifest.tables.find((t) => t.name === 'items')!;
  const target = await createDatabase('bk_busy_restored');
  made.push(target.name);
  restoreWithStandardTools(r.outputs['backup-path']!, target.url);
  const restored = await tableCounts(target.url);
  const now = await tableCounts(db.url);
  // The archive holds exactly what the manifest says, although the table kept growing.
  expect(restored['public.items']).toBe(items.rows);
  expect(now['public.items']).toBeGreaterThan(items.rows);
});

test('list shows the database\'s backups with name, created, size, format and verification', async () => {
  const backupDir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-list-'));
  const a = await runAction({ 'database-url': source.url, 'backup-dir': backupDir, verify: 'none' });
  const b = await runAction({ 'database-url': source.url, 'backup-dir': backupDir, verify: 'quick', format: 'plain' });
  expect(a.code).toBe(0);
  expect(b.code).toBe(0);
  const l = await runAction({ mode: 'list', 'database-url': source.url, 'backup-dir': backupDir });
  expect(l.code).toBe(0);
  expect(l.outputs['backup-name']).toBe(b.outputs['backup-name']);
  expect(l.summary).toContain(a.outputs['backup-name']);
  expect(l.summary).toMatch(/\| Standing \| Last check \|/);
  expect(l.summary).toMatch(/plain\/zstd \| good \(quick\) \| quick passed \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \|/);
  expect(l.summary).toMatch(/custom\/zstd \| unverified \| - \|/);
  // The CLI shows the same, and only this database's backups.
  const other = await createDatabase('bk_other', { documents: 5, dimensions: 4 });
  made.push(other.name);
  expect((await runAction({ 'database-url': other.url, 'backup-dir': backupDir, verify: 'none' })).code).toBe(0);
  const cli = await runCli(['list', '--backup-dir', backupDir, '--database-url', source.url]);
  expect(cli.code).toBe(0);
  expect(cli.stdout).toContain(a.outputs['backup-name']);
  expect(cli.stdout).not.toContain(other.name);
  const all = await runCli(['--list', '--backup-dir', backupDir]);
  expect(all.stdout).toContain(other.name);
});

test('the old kit\'s CLI habits: PG* environment, DB_NAME, BACKUP_DIR, .env, --retention', async () => {
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'pgvb-env-'));
  const env = pgEnv(source.url);
  writeFileSync(path.join(cwd, '.env'), `# the old kit's .env\nPGPASSWORD=${env.PGPASSWORD}\nBACKUP_DIR=from-dotenv\n`);
  const r = await runCli(['backup', '--verify', 'none', '--retention', '3'], {
    cwd,
    env: { PGHOST: env.PGHOST, PGPORT: env.PGPORT, PGUSER: env.PGUSER, DB_NAME: source.name },
  });
  expect(r.code, r.stderr).toBe(0);
  const files = readdirSync(path.join(cwd, 'from-dotenv'));
  // The default: custom format, zstd (streamed, .dump.zst, with pg_dump 15; pg_dump's own, .dump, from 16).
  expect(files.some((f) => f.startsWith(source.name) && /\.dump(\.zst)?$/.test(f))).toBe(true);
  expect(r.stderr).toContain('Retention in local (3 days');
  expect(spawnSync(process.execPath, [path.resolve('dist/cli/index.js'), 'backup', '--help']).stdout.toString()).toContain('--retention-days (also --retention)');
});
