// verify and test-restore through the bundled action: good backups pass every check, damaged ones fail the
// right check with a clear message, the restored database is compared with the manifest exactly, and every
// temporary database, cluster and file is gone afterwards.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Manifest } from '../../src/archive/manifest.js';
import type { BackupError } from '../../src/errors.js';
import { MemoryLogger } from '../../src/logger.js';
import { acquireTarget } from '../../src/postgres/targets.js';
import { runAction, runCli, type RunResult } from '../helpers/action.js';
import { seedVariety } from '../helpers/fixtures.js';
import { startServerWithoutPgvector } from '../helpers/no-pgvector.js';
import { adminUrl, createDatabase, dropDatabase, sql, testPassword } from '../helpers/pg.js';

let db: { name: string; url: string };
const backups: Record<string, { dir: string; name: string; archive: string; manifest: string }> = {};
let tmp: string;

beforeAll(async () => {
  db = await createDatabase('vr_variety', seedVariety);
  tmp = mkdtempSync(path.join(os.tmpdir(), 'pgvb-vr-'));
  for (const [key, inputs] of Object.entries({
    custom: { format: 'custom', compression: 'gzip' },
    customZstd: { format: 'custom', compression: 'zstd' },
    plain: { format: 'plain', compression: 'gzip' },
    directory: { format: 'directory', compression: 'gzip' },
  })) {
    const dir = path.join(tmp, key);
    const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'none', ...inputs });
    expect(r.code, r.stdout).toBe(0);
    backups[key] = { dir, name: r.outputs['backup-name']!, archive: r.outputs['backup-path']!, manifest: r.outputs['manifest-path']! };
  }
});

afterAll(async () => {
  await dropDatabase(db.name);
  rmSync(tmp, { recursive: true, force: true });
});

/** A private copy of a backup to damage. */
function copyOf(key: string): { dir: string; archive: string; manifest: string } {
  const b = backups[key]!;
  const dir = mkdtempSync(path.join(tmp, `${key}-copy-`));
  const archive = path.join(dir, path.basename(b.archive));
  if (statSync(b.archive).isDirectory()) cpSync(b.archive, archive, { recursive: true });
  else copyFileSync(b.archive, archive);
  const manifest = path.join(dir, path.basename(b.manifest));
  copyFileSync(b.manifest, manifest);
  return { dir, archive, manifest };
}

function editManifest(file: string, edit: (m: Manifest) => void): void {
  const m = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  edit(m);
  writeFileSync(file, JSON.stringify(m));
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function errorLine(r: RunResult): string {
  return r.stdout.split('\n').filter((l) => l.startsWith('::error::')).pop() ?? '';
}

/** A private TMPDIR for the action, to prove it leaves nothing behind. */
function privateTmp(): string {
  const dir = mkdtempSync(path.join(tmp, 'tmpdir-'));
  // Searchable by others, so that a cluster run as the postgres user (when tests run as root) can live there too.
  chmodSync(tmp, 0o711);
  chmodSync(dir, 0o711);
  return dir;
}

describe('verify: good backups pass', () => {
  test.each(['custom', 'customZstd', 'plain', 'directory'])('%s', async (key) => {
    const b = backups[key]!;
    const r = await runAction({ mode: 'verify', backup: 'latest', 'backup-dir': b.dir, 'database-url': db.url });
    expect(r.code, r.stdout).toBe(0);
    expect(r.outputs.verified).toBe('true');
    expect(r.stdout).toMatch(/ok: size .* sha256/);
    if (key === 'plain') expect(r.stdout).toMatch(/header and completion footer present; COPY for all \d+ tables/);
    else expect(r.stdout).toMatch(/pg_restore --list: data for all \d+ tables, 1 extensions/);
    if (key === 'customZstd') expect(r.stdout).toMatch(/ok: zstd stream complete \(walked, not decompressed\): 1 frame, \d+ blocks, ending with its content checksum/);
    const m = JSON.parse(readFileSync(b.manifest, 'utf8')) as Manifest;
    expect(m.verification).toMatchObject({ level: 'quick', ok: true });
  });

  test('the CLI verifies every backup in a directory (--all) and by path', async () => {
    const dir = mkdtempSync(path.join(tmp, 'all-'));
    // The two were written in their own directories, possibly within the same second and so under the same name:
    // each gets a name of its own here (manifest name, archive file and file names together).
    const placed: string[] = [];
    for (const key of ['custom', 'plain']) {
      const m = JSON.parse(readFileSync(backups[key]!.manifest, 'utf8')) as Manifest;
      const suffix = path.basename(backups[key]!.archive).slice(m.name.length);
      m.name = `${m.name}_${key}`;
      m.archive.file = m.name + suffix;
      copyFileSync(backups[key]!.archive, path.join(dir, m.archive.file));
      writeFileSync(path.join(dir, `${m.name}.json`), JSON.stringify(m));
      placed.push(path.join(dir, m.archive.file));
    }
    const all = await runCli(['verify', '--all', '--backup-dir', dir]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stderr.match(/== Verify /g)?.length).toBe(2);
    const one = await runCli(['verify', placed[1]!]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toContain('verified=true');
  });
});

describe('verify: damaged backups fail the right check', () => {
  test.each(['custom', 'plain', 'customZstd'])('a flipped byte in a %s archive', async (key) => {
    const c = copyOf(key);
    const buf = readFileSync(c.archive);
    buf[Math.floor(buf.length / 2)]! ^= 0x01;
    writeFileSync(c.archive, buf);
    const r = await runAction({ mode: 'verify', backup: c.archive });
    expect(r.code).not.toBe(0);
    expect(errorLine(r)).toMatch(new RegExp(`Backup ${backups[key]!.name} failed the (sha256|decompression)`));
    expect(r.outputs.verified).toBe('false');
  });

  test('a flipped byte in one file of a directory archive', async () => {
    const c = copyOf('directory');
    const dataFile = readdirSync(c.archive).filter((f) => f.endsWith('.dat.gz')).sort((a, b) => statSync(path.join(c.archive, b)).size - statSync(path.join(c.archive, a)).size)[0]!;
    const p = path.join(c.archive, dataFile);
    const buf = readFileSync(p);
    buf[10]! ^= 0xff;
    writeFileSync(p, buf);
    const r = await runAction({ mode: 'verify', backup: c.manifest });
    expect(r.code).not.toBe(0);
    expect(errorLine(r)).toContain(`failed the sha256 of ${dataFile} check`);
  });

  test.each(['custom', 'plain'])('the last tenth of a %s archive cut off', async (key) => {
    const c = copyOf(key);
    truncateSync(c.archive, Math.floor(statSync(c.archive).size * 0.9));
    const r = await runAction({ mode: 'verify', backup: c.archive });
    expect(r.code).not.toBe(0);
    expect(errorLine(r)).toMatch(/failed the size \(\d+ bytes, manifest says \d+\) check/);
  });

  test('a truncated plain dump whose manifest was rewritten to match still fails (no completion footer)', async () => {
    const c = copyOf('plain');
    const { execFileSync } = await import('node:child_process');
    const sqlText = execFileSync('gunzip', ['-c', c.archive]);
    const cut = sqlText.subarray(0, Math.floor(sqlText.length * 0.9));
    const { gzipSync } = await import('node:zlib');
    writeFileSync(c.archive, gzipSync(cut));
    editManifest(c.manifest, (m) => {
      m.archive.size = statSync(c.archive).size;
      m.archive.sha256 = sha256(c.archive);
      m.archive.dumpBytes = cut.length;
    });
    const r = await runAction({ mode: 'verify', backup: c.manifest });
    expect(r.code).not.toBe(0);
    expect(errorLine(r)).toMatch(/failed the plain dump footer \(the dump is truncated\) check/);
  });

  test('a cut custom/zstd stream whose manifest was rewritten to match fails the zstd structure check, and so do bytes appended', async () => {
    const c = copyOf('customZstd');
    const packed = readFileSync(c.archive);
    writeFileSync(c.archive, packed.subarray(0, Math.floor(packed.length * 0.8)));
    editManifest(c.manifest, (m) => {
      m.archive.size = statSync(c.archive).size;
      m.archive.sha256 = sha256(c.archive);
    });
    const r = await runAction({ mode: 'verify', backup: c.manifest });
    expect(r.code).not.toBe(0);
    expect(errorLine(r)).toMatch(new RegExp(`Backup ${backups.customZstd!.name} failed the zstd structure \\(the zstd stream ends inside a frame \\(the file is truncated\\) at byte \\d+\\) check`));
    expect(r.outputs.verified).toBe('false');
    // Bytes appended after the last frame.
    const d = copyOf('customZstd');
    writeFileSync(d.archive, Buffer.concat([packed, Buffer.from('appended')]));
    editManifest(d.manifest, (m) => {
      m.archive.size = statSync(d.archive).size;
      m.archive.sha256 = sha256(d.archive);
    });
    const appended = await runAction({ mode: 'verify', backup: d.manifest });
    expect(errorLine(appended)).toMatch(/failed the zstd structure \(bytes after the last zstd frame at byte \d+\) check/);
  });

  test('a byte changed inside a compressed block, with the manifest rewritten to match: quick verify cannot see it, the test restore (verify: full) does', async () => {
    const c = copyOf('customZstd');
    const packed = readFileSync(c.archive);
    // Past the table of contents (the archive's start) and before the frame's end: inside compressed data.
    const at = Math.floor(packed.length * 0.6);
    packed[at]! ^= 0x55;
    writeFileSync(c.archive, packed);
    editManifest(c.manifest, (m) => {
      m.archive.sha256 = sha256(c.archive);
    });
    const quick = await runAction({ mode: 'verify', backup: c.manifest });
    expect(quick.code, quick.stdout).toBe(0);
    const full = await runAction({ mode: 'test-restore', backup: c.manifest, 'backup-dir': c.dir });
    expect(full.code).not.toBe(0);
    expect(full.outputs.verified).not.toBe('true');
    expect(errorLine(full)).toMatch(/Decompressing \w+ failed: zstd -d exited with code 1: .*\(see docs\/TROUBLESHOOTING\.md#restore-archive-damaged\)/);
    // The same through Node's zlib (no zstd program).
    const viaNode = await runAction({ mode: 'test-restore', backup: c.manifest, 'backup-dir': c.dir }, { env: { PGVB_ZSTD: 'node' } });
    expect(viaNode.code).not.toBe(0);
    expect(errorLine(viaNode)).toMatch(/Decompressing \w+ failed: .*\(see docs\/TROUBLESHOOTING\.md#restore-archive-damaged\)/);
  });

  test("an archive compressed by Node's zlib (no zstd program) verifies the same way", async () => {
    const dir = path.join(tmp, 'node-zstd');
    const made = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'none', format: 'custom', compression: 'zstd' }, { env: { PGVB_ZSTD: 'node' } });
    expect(made.code, made.stdout).toBe(0);
    const r = await runAction({ mode: 'verify', backup: made.outputs['manifest-path']! });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/ok: zstd stream complete \(walked, not decompressed\): 1 frame, \d+ blocks, ending with its content checksum/);
    expect(r.stdout).toMatch(/pg_restore --list: data for all \d+ tables/);
  });

  test.each([
    ['missing', (f: string) => rmSync(f), /Manifest .*\.json is missing/],
    ['empty', (f: string) => writeFileSync(f, ''), /Manifest .*\.json is empty/],
    ['invalid JSON', (f: string) => writeFileSync(f, '{"tool": '), /Manifest .*\.json is not valid JSON/],
    ['without a checksum', (f: string) => editManifest(f, (m) => ((m.archive as { sha256?: string }).sha256 = undefined)), /Manifest .*\.json is invalid \(archive\.sha256\)/],
  ])('a manifest that is %s', async (_what, damage, pattern) => {
    const c = copyOf('custom');
    damage(c.manifest);
    const r = await runAction({ mode: 'verify', backup: c.archive });
    expect(r.code).not.toBe(0);
    expect(errorLine(r)).toMatch(pattern);
  });

  test('a manifest whose sha256 does not match', async () => {
    const c = copyOf('custom');
    editManifest(c.manifest, (m) => (m.archive.sha256 = 'f'.repeat(64)));
    const r = await runAction({ mode: 'verify', backup: c.manifest });
    expect(r.code).not.toBe(0);
    expect(errorLine(r)).toContain(`Backup ${backups.custom!.name} failed the sha256 (the archive differs from what was written) check`);
  });

  test('latest never picks an archive without a manifest', async () => {
    const c = copyOf('custom');
    rmSync(c.manifest);
    const r = await runAction({ mode: 'verify', backup: 'latest', 'backup-dir': c.dir, 'database-url': db.url });
    expect(r.code).not.toBe(0);
    expect(errorLine(r)).toMatch(/No complete backup of database vr_variety_\w+ found/);
  });
});

describe('test-restore', () => {
  test.each(['custom', 'customZstd', 'plain', 'directory'])('a good %s backup restores into a throwaway cluster and matches its manifest', async (key) => {
    const b = backups[key]!;
    const tmpdir = privateTmp();
    const r = await runAction({ mode: 'test-restore', backup: b.manifest }, { env: { TMPDIR: tmpdir } });
    expect(r.code, r.stdout).toBe(0);
    expect(r.outputs.verified).toBe('true');
    expect(r.outputs.mismatches).toBe('0');
    expect(Number(r.outputs['restore-seconds'])).toBeGreaterThan(0);
    if (key !== 'plain') expect(Number(r.outputs['index-build-seconds'])).toBeGreaterThan(0);
    expect(r.stdout).toContain('Target: throwaway PostgreSQL');
    expect(r.stdout).toMatch(/kNN check on public\.chunks: same neighbours/);
    expect(r.summary).toMatch(/\| public\.documents \| 300 \| 300 \| embedding: 294\/294 \| 3\/3 \| yes \|/);
    expect(r.summary).toMatch(/\| Search Space\.My Docs \| 120 \| 120 \|/);
    expect(r.summary).toContain('Nearest-neighbour check on public.chunks: 3 samples, top 10: identical');
    const m = JSON.parse(readFileSync(b.manifest, 'utf8')) as Manifest;
    expect(m.verification).toMatchObject({ level: 'full', ok: true, mismatches: 0 });
    // The cluster and any decompressed file are gone.
    expect(readdirSync(tmpdir)).toEqual([]);
  });

  test('into a server named by test-restore-url: a temporary database, dropped afterwards', async () => {
    const r = await runAction({ mode: 'test-restore', backup: backups.custom!.manifest, 'test-restore-url': adminUrl() });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/Target: temporary database pgvb_test_\d{14}_[0-9a-f]{6} on 127\.0\.0\.1/);
    const left = await sql<{ datname: string }>(adminUrl(), `SELECT datname FROM pg_database WHERE datname LIKE 'pgvb_test_%'`);
    expect(left).toEqual([]);
    if (testPassword()) expect(r.visible).not.toContain(testPassword());
  });

  test('a manifest row count that disagrees with the archive: the table and both counts are reported', async () => {
    const c = copyOf('custom');
    editManifest(c.manifest, (m) => {
      const t = m.tables.find((x) => x.name === 'documents')!;
      t.rows += 7;
    });
    const tmpdir = privateTmp();
    const r = await runAction({ mode: 'test-restore', backup: c.manifest }, { env: { TMPDIR: tmpdir } });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain('::error::rows public.documents: expected 307, restored 300');
    expect(errorLine(r)).toMatch(/differs from its manifest in 1 place/);
    expect(r.outputs.verified).toBe('false');
    expect(r.outputs.mismatches).toBe('1');
    expect(r.summary).toMatch(/\| public\.documents \| 307 \| 300 \| .* \| \*\*no\*\* \|/);
    expect(readdirSync(tmpdir)).toEqual([]);
  });

  test('different nearest neighbours are reported', async () => {
    const c = copyOf('plain');
    editManifest(c.manifest, (m) => m.knn!.samples[0]!.neighbours.reverse());
    const r = await runAction({ mode: 'test-restore', backup: c.manifest });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::knn public\.chunks\.embedding nearest 10 of id=\d+: expected/);
  });

  test('a target without pgvector fails before restoring, naming the extension and the fix', async () => {
    const server = await startServerWithoutPgvector('no-vector-here');
    try {
      const url = `postgresql://postgres:no-vector-here@127.0.0.1:${server.cluster.port}/postgres`;
      const r = await runAction({ mode: 'test-restore', backup: backups.custom!.manifest, 'test-restore-url': url });
      expect(r.code).not.toBe(0);
      expect(errorLine(r)).toMatch(/does not have the vector extension \(the backup needs vector \d+\.\d+\.\d+\).*pgvector\/pgvector:pg1\d/);
      const dbs = await sql<{ datname: string }>(url, `SELECT datname FROM pg_database WHERE datname LIKE 'pgvb_test_%'`);
      expect(dbs).toEqual([]);
    } finally {
      await server.remove();
    }
  });

  test('an extension version newer than the target has', async () => {
    const c = copyOf('custom');
    editManifest(c.manifest, (m) => (m.extensions.find((e) => e.name === 'vector')!.version = '99.0.0'));
    const r = await runAction({ mode: 'test-restore', backup: c.manifest, 'test-restore-url': adminUrl() });
    expect(r.code).not.toBe(0);
    expect(errorLine(r)).toMatch(/has vector \d+\.\d+\.\d+, older than the backup's 99\.0\.0/);
  });

  test('no target can provide an extension: the three ways to fix it, never a silent skip', async () => {
    // In-process, with PATH emptied so that no Docker client is found whatever the machine has.
    const m = JSON.parse(readFileSync(backups.custom!.manifest, 'utf8')) as Manifest;
    m.extensions.push({ name: 'not_installed_ext', version: '1.0', schema: 'public' });
    const logger = new MemoryLogger();
    const err = (await acquireTarget(m, { env: { PATH: '/nonexistent' }, logger }).then(
      () => new Error('resolved'),
      (e: unknown) => e,
    )) as BackupError;
    expect(err.message).toMatch(
      /No test-restore target can provide PostgreSQL 1\d\+ with the extensions vector, not_installed_ext \(the local PostgreSQL 1\d .* lacks not_installed_ext; Docker is not available\)/,
    );
    expect(err.hint).toMatch(/\(1\) set test-restore-url .*\(2\) install .*\(3\) make Docker available/);
  });
});

describe('backup with verify: full (the default)', () => {
  test('dumps, verifies, test-restores and reports', async () => {
    const dir = path.join(tmp, 'full');
    mkdirSync(dir);
    const r = await runAction({ 'database-url': db.url, 'backup-dir': dir });
    expect(r.code, r.stdout).toBe(0);
    expect(r.outputs.verified).toBe('true');
    expect(r.outputs.mismatches).toBe('0');
    expect(Number(r.outputs['index-build-seconds'])).toBeGreaterThan(0);
    expect(r.stdout).toContain('::group::Verify');
    expect(r.stdout).toContain('::group::Test restore');
    expect(r.summary).toContain('test restore of');
    const m = JSON.parse(readFileSync(r.outputs['manifest-path']!, 'utf8')) as Manifest;
    expect(m.verification?.level).toBe('full');
  });
});
