// destination: artifact and cache, through the bundled action with the real @actions/artifact and @actions/cache
// clients against a local stand-in of GitHub's results service and REST API, with Azurite for the blobs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
// @ts-expect-error unzip-stream (a dependency of @actions/artifact) has no types
import unzip from 'unzip-stream';
import { keygen } from '../../src/keygen.js';
import archiver from 'archiver';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Manifest } from '../../src/archive/manifest.js';
import { runAction } from '../helpers/action.js';
import { startGitHubServices, type GitHubServices } from '../helpers/github-services.js';
import { createDatabase, dropDatabase } from '../helpers/pg.js';

let gh: GitHubServices;
let db: { name: string; url: string };

beforeAll(async () => {
  gh = await startGitHubServices();
  db = await createDatabase('gh_db', { documents: 80, dimensions: 8 });
});
afterAll(async () => {
  await gh?.stop();
  await dropDatabase(db.name);
});

/** A zip as the artifact service stores it. */
function zip(files: Record<string, Buffer | string>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const a = archiver('zip');
    const chunks: Buffer[] = [];
    a.on('data', (d: Buffer) => chunks.push(d));
    a.on('end', () => resolve(Buffer.concat(chunks)));
    a.on('error', reject);
    for (const [name, content] of Object.entries(files)) a.append(content, { name });
    void a.finalize();
  });
}

// These tests are about the transport: plaintext is allowed (the encryption tests below and encryption.itg.test.ts
// show what happens without allow-unencrypted).
function inRun(env: Record<string, string>, inputs: Record<string, string>, extra: Record<string, string> = {}) {
  return runAction({ 'database-url': db.url, 'github-token': env.GITHUB_TOKEN!, 'backup-dir': path.join(env.GITHUB_WORKSPACE!, 'backups'), 'allow-unencrypted': 'true', ...inputs }, { env: { ...env, ...extra }, cwd: env.GITHUB_WORKSPACE! });
}

/** The files inside a stored blob: an artifact's zip entries, or a cache tarball's files (tar finds the compression). */
async function unpack(blob: { container: string; content: Buffer }): Promise<Buffer[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-blob-'));
  try {
    if (blob.container === 'actions-results') {
      await pipeline(Readable.from([blob.content]), unzip.Extract({ path: dir }));
    } else {
      writeFileSync(path.join(dir, 'blob'), blob.content);
      mkdirSync(path.join(dir, 'x'));
      execFileSync('tar', ['-xf', path.join(dir, 'blob'), '-C', path.join(dir, 'x')]);
    }
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name !== 'blob')
      .map((e) => readFileSync(path.join(e.parentPath, e.name)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('artifact', () => {
  test('a backup is uploaded as two artifacts (archive, then the manifest with the digest); a later run finds, downloads and test-restores it', async () => {
    const run1 = gh.newRun();
    const r = await inRun(run1, { destination: 'local,artifact', verify: 'quick' });
    expect(r.code, r.stdout).toBe(0);
    const name = r.outputs['backup-name']!;
    const mine = gh.artifacts().filter((a) => a.name.startsWith(name));
    expect(mine.map((a) => a.name).sort()).toEqual([name, `${name}.manifest`]);
    const archive = mine.find((a) => a.name === name)!;
    const manifestArtifact = mine.find((a) => a.name === `${name}.manifest`)!;
    // The manifest is the commit marker: created after the archive.
    expect(manifestArtifact.id).toBeGreaterThan(archive.id);
    // No retention of GitHub's own shorter than the repository's (issue 14): our retention deletes them, keeping
    // keep-min and the newest good one, so a week of failed backups cannot let the last good ones expire.
    expect(archive.expiresAt).toBeNull();
    expect(manifestArtifact.expiresAt).toBeNull();
    expect(r.stdout).toMatch(new RegExp(`Stored at artifact ${name} \\(id ${archive.id}\\)`));

    const run2 = gh.newRun();
    const t = await inRun(run2, { mode: 'test-restore', destination: 'artifact', backup: 'latest' });
    expect(t.code, t.stdout).toBe(0);
    expect(t.outputs['backup-name']).toBe(name);
    expect(t.stdout).toContain(`Downloading ${name} from artifact ${name}`);
    expect(t.outputs.verified).toBe('true');
    // The downloaded manifest carries the artifact's id and digest.
    const m = JSON.parse(readFileSync(path.join(run2.GITHUB_WORKSPACE!, 'backups', `${name}.json`), 'utf8')) as Manifest & { artifact?: { id: number; digest: string | null } };
    expect(m.artifact?.id).toBe(archive.id);
    if (archive.digest) expect(m.artifact?.digest?.replace(/^sha256:/, '')).toBe(archive.digest.replace(/^sha256:/, ''));
  });

  test('an upload that fails: the run fails naming the destination and no manifest artifact exists', async () => {
    const run = gh.newRun();
    gh.failNext('CreateArtifact', 400, 1);
    const r = await inRun(run, { destination: 'local,artifact', verify: 'none' });
    expect(r.code).not.toBe(0);
    const name = r.outputs['backup-name']!;
    expect(r.stdout).toMatch(new RegExp(`::error::The backup ${name} could not be stored in artifact`));
    expect(gh.artifacts().filter((a) => a.name.startsWith(name))).toEqual([]);
  });

  test('prune across runs: ordered by the manifests\' time, the newest good kept, expired ones deleted; a failing list page deletes nothing', async () => {
    const db2 = 'prune_db';
    const run = gh.newRun();
    const made = await inRun(run, { destination: 'local,artifact', verify: 'none' });
    expect(made.code, made.stdout).toBe(0);
    const template = JSON.parse(readFileSync(made.outputs['manifest-path']!, 'utf8')) as Manifest;
    const archiveBytes = readFileSync(made.outputs['backup-path']!);
    // Two planted backups of another database whose names sort the other way round from their times.
    const planted: Array<[string, number]> = [
      [`${db2}_20990101_000000`, 40],
      [`${db2}_20000101_000000`, 30],
    ];
    for (const [name, daysAgo] of planted) {
      const createdAt = new Date(Date.now() - daysAgo * 86_400_000).toISOString();
      // Verified (good): the template was written with verify: none.
      const v = { level: 'quick' as const, ok: true, at: createdAt, checks: [] };
      const m: Manifest = { ...template, database: db2, name, archive: { ...template.archive, file: `${name}.dump` }, createdAt, verification: v, verifications: [v] };
      await gh.addArtifact({ name, content: await zip({ [`${name}.dump`]: archiveBytes }), mimeType: 'application/zip' });
      await gh.addArtifact({ name: `${name}.manifest`, content: await zip({ [`${name}.json`]: JSON.stringify(m) }), mimeType: 'application/zip' });
    }
    const live = (): string[] => gh.artifacts().filter((a) => !a.deleted && a.name.startsWith(db2)).map((a) => a.name).sort();
    const before = live();
    expect(before).toHaveLength(4);

    // A failing second page of the listing: nothing is deleted.
    gh.failNext('ListRepoArtifactsREST', 403, 1, 1);
    const failed = await inRun(gh.newRun(), { mode: 'prune', destination: 'artifact', 'database-url': db.url.replace(/\/[^/]*$/, `/${db2}`), 'retention-days': '7', 'dry-run': 'false' }, { PGVB_ARTIFACT_PAGE_SIZE: '1' });
    expect(failed.code).not.toBe(0);
    expect(failed.stdout).toMatch(/::error::Listing artifact failed, so nothing was deleted there/);
    expect(live()).toEqual(before);

    // An archive artifact whose manifest never arrived, two days old: removed after the grace period.
    await gh.addArtifact({ name: `${db2}_20250101_000000`, content: await zip({ 'x.dump': 'half' }), mimeType: 'application/zip', createdAt: new Date(Date.now() - 2 * 86_400_000) });
    const p = await inRun(gh.newRun(), { mode: 'prune', destination: 'artifact', 'database-url': db.url.replace(/\/[^/]*$/, `/${db2}`), 'retention-days': '7', 'dry-run': 'false' });
    expect(p.code, p.stdout).toBe(0);
    expect(p.stdout).toMatch(new RegExp(`deleted leftover artifact ${db2}_20250101_000000 \\(id \\d+\\) \\(no manifest`));
    // The newer by manifest time (2000... by name) is the newest good one and stays, with its manifest.
    expect(live()).toEqual([`${db2}_20000101_000000`, `${db2}_20000101_000000.manifest`]);
  });
});

describe('cache', () => {
  test('saved under pgvector-backup-<db>-<timestamp>; a later run restores latest by prefix and test-restores it', async () => {
    const run1 = gh.newRun();
    const r = await inRun(run1, { destination: 'local,cache', verify: 'none' });
    expect(r.code, r.stdout).toBe(0);
    const stamp = /_(\d{8}_\d{6})$/.exec(r.outputs['backup-name']!)![1];
    const key = `pgvector-backup-${db.name}-${stamp}`;
    expect(gh.caches().map((c) => c.key)).toContain(key);
    expect(r.stdout).toContain(`Stored at cache ${key}`);

    const run2 = gh.newRun();
    const t = await inRun(run2, { mode: 'test-restore', destination: 'cache', backup: 'latest' });
    expect(t.code, t.stdout).toBe(0);
    expect(t.outputs['backup-name']).toBe(r.outputs['backup-name']);
    expect(t.outputs.verified).toBe('true');
    rmSync(path.join(run2.GITHUB_WORKSPACE!, 'backups'), { recursive: true, force: true });
  });

  test('a cache the service refuses to save fails the destination (saveCache returns -1)', async () => {
    const run = gh.newRun();
    gh.failNext('CreateCacheEntry', 400, 1);
    const r = await inRun(run, { destination: 'local,cache', verify: 'none' });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::The backup .* could not be stored in cache/);
    expect(r.stdout).toMatch(/was not saved \(the cache service refused or failed/);
  });

  test('no cache entry yet: latest says so', async () => {
    const run = gh.newRun();
    const r = await inRun(run, { mode: 'verify', destination: 'cache', 'database-url': db.url.replace(/\/[^/]*$/, '/never_backed_up') });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::No complete backup of database never_backed_up found in cache/);
  });
});

describe('encryption', () => {
  // A plain, uncompressed dump holds the value as it is: if it reached the uploaded bytes, it would be found.
  const CANARY = 'CANARY-7f3a9c-do-not-leak';
  let secretDb: { name: string; url: string };
  beforeAll(async () => {
    secretDb = await createDatabase('canary', async (c) => {
      await c.query('CREATE EXTENSION vector');
      await c.query('CREATE TABLE notes (id int PRIMARY KEY, body text, embedding vector(3))');
      await c.query(`INSERT INTO notes SELECT g, CASE WHEN g = 7 THEN $1 ELSE 'note ' || g END, '[1,2,3]' FROM generate_series(1, 50) g`, [CANARY]);
    });
  });
  afterAll(async () => {
    await dropDatabase(secretDb.name);
  });

  async function newBlobs(before: Set<string>): Promise<Array<{ container: string; name: string; content: Buffer }>> {
    return (await gh.blobs()).filter((b) => !before.has(`${b.container}/${b.name}`));
  }

  test('a canary value reaches the uploaded artifact and cache bytes when unencrypted, and never when encrypted', async () => {
    const inputs = { 'database-url': secretDb.url, destination: 'artifact,cache', format: 'plain', compression: 'none', verify: 'quick' };
    const seen = new Set((await gh.blobs()).map((b) => `${b.container}/${b.name}`));

    // Control: with allow-unencrypted the canary is in what was uploaded (so the check below can fail).
    const plain = await inRun(gh.newRun(), inputs);
    expect(plain.code, plain.stdout).toBe(0);
    const plainBlobs = await newBlobs(seen);
    expect(new Set(plainBlobs.map((b) => b.container))).toEqual(new Set(['actions-results', 'actions-cache']));
    for (const container of ['actions-results', 'actions-cache']) {
      const files = (await Promise.all(plainBlobs.filter((b) => b.container === container).map(unpack))).flat();
      expect(files.some((f) => f.includes(CANARY)), container).toBe(true);
    }
    for (const b of plainBlobs) seen.add(`${b.container}/${b.name}`);

    const k = await keygen();
    const enc = await inRun(gh.newRun(), { ...inputs, 'allow-unencrypted': 'false', 'encryption-recipients': k.recipient });
    expect(enc.code, enc.stdout).toBe(0);
    expect(enc.stdout).not.toMatch(/stored unencrypted/);
    const encBlobs = await newBlobs(seen);
    expect(new Set(encBlobs.map((b) => b.container))).toEqual(new Set(['actions-results', 'actions-cache']));
    for (const b of encBlobs) {
      expect(b.content.includes(CANARY), b.name).toBe(false);
      for (const f of await unpack(b)) expect(f.includes(CANARY), b.name).toBe(false);
    }
    // What was uploaded is the encrypted archive: a later run restores it with the identity.
    const t = await inRun(gh.newRun(), { mode: 'test-restore', 'database-url': secretDb.url, destination: 'cache', backup: 'latest', 'decryption-identity': k.file });
    expect(t.code, t.stdout).toBe(0);
    expect(t.outputs['backup-name']).toBe(enc.outputs['backup-name']);
    expect(t.outputs.mismatches).toBe('0');
  }, 180_000);
});

