// The s3:// destination against a real S3 API (s3rver) through the AWS SDK, with injected faults: multipart with
// a retried part, an upload that fails for good, a failing list page, names out of date order, lookup and
// download with checks.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Manifest } from '../../src/archive/manifest.js';
import { runAction } from '../helpers/action.js';
import { createDatabase, dropDatabase } from '../helpers/pg.js';
import { startS3, type S3Server } from '../helpers/s3.js';

let s3: S3Server;
let db: { name: string; url: string };
let client: S3Client;

beforeAll(async () => {
  s3 = await startS3();
  client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  // About 12 MB uncompressed: several 5 MiB parts.
  db = await createDatabase('s3_db', async (c) => {
    await c.query(`CREATE EXTENSION vector; CREATE TABLE items (id bigserial PRIMARY KEY, e vector(64))`);
    await c.query(`INSERT INTO items (e) SELECT (SELECT array_agg(random()::real) FROM generate_series(1, 64) WHERE g > 0)::vector FROM generate_series(1, 20000) g`);
  });
});
afterAll(async () => {
  await s3?.stop();
  await dropDatabase(db.name);
});

async function keys(prefix: string): Promise<string[]> {
  const r = await client.send(new ListObjectsV2Command({ Bucket: 'backups', Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

async function object(key: string): Promise<Buffer> {
  const r = await client.send(new GetObjectCommand({ Bucket: 'backups', Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

// gzip: pg_dump's own compression keeps the object names `<name>.dump` whatever pg_dump's version.
function run(inputs: Record<string, string>, env: Record<string, string> = {}) {
  return runAction({ 'database-url': db.url, compression: 'gzip', ...s3.inputs, ...inputs }, { env: { ...s3.env, ...env } });
}

describe('upload', () => {
  test('multipart upload with one part failing once (retried); the manifest is written last', async () => {
    const prefix = 'nightly';
    s3.fail({ match: (m, u) => m === 'PUT' && u.includes('partNumber=2') && u.includes(`${prefix}/`), status: 500, times: 1 });
    const seenBefore = s3.seen.length;
    const r = await run({ destination: `local,s3://backups/${prefix}`, 'backup-dir': mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3a-')), compression: 'none', 's3-part-size': '5', verify: 'quick' });
    expect(r.code, r.stdout).toBe(0);
    const name = r.outputs['backup-name']!;
    expect(await keys(`${prefix}/`)).toEqual([`${prefix}/${name}.dump`, `${prefix}/${name}.json`]);
    // Byte-identical to the local archive, and several parts were sent, one of them twice.
    const local = readFileSync(r.outputs['backup-path']!);
    expect(local.length).toBeGreaterThan(10 * 1024 * 1024);
    expect(createHash('sha256').update(await object(`${prefix}/${name}.dump`)).digest('hex')).toBe(r.outputs.sha256);
    const mine = s3.seen.slice(seenBefore);
    const parts = mine.filter((s) => s.method === 'PUT' && s.url.includes('partNumber='));
    expect(new Set(parts.map((p) => /partNumber=(\d+)/.exec(p.url)![1])).size).toBeGreaterThanOrEqual(2);
    expect(parts.some((p) => p.status === 500)).toBe(true);
    // The manifest PUT comes after the multipart upload completed.
    const complete = mine.findIndex((s) => s.method === 'POST' && s.url.includes('uploadId='));
    const manifestPut = mine.findIndex((s) => s.method === 'PUT' && s.url.includes(`${name}.json`));
    expect(complete).toBeGreaterThan(-1);
    expect(manifestPut).toBeGreaterThan(complete);
    expect(r.stdout).toContain(`Stored at s3://backups/${prefix}/${name}.dump`);
    expect(r.summary).toContain(`s3://backups/${prefix}/${name}.dump`);
  });

  test('an upload that fails for good: the run fails naming the destination, no manifest, earlier backups intact', async () => {
    const prefix = 'failing';
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3b-'));
    const first = await run({ destination: `local,s3://backups/${prefix}`, 'backup-dir': dir, verify: 'none' });
    expect(first.code, first.stdout).toBe(0);
    const before = await keys(`${prefix}/`);
    const beforeBytes = await object(before.find((k) => k.endsWith('.json'))!);
    s3.fail({ match: (m, u) => m === 'PUT' && u.includes(`${prefix}/`) && !u.includes('.json'), status: 403, times: 1000 });
    const r = await run({ destination: `local,s3://backups/${prefix}`, 'backup-dir': dir, verify: 'none' });
    s3.fail({ match: () => false, status: 0, times: 0 });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(new RegExp(`::error::The backup ${r.outputs['backup-name']} could not be stored in s3://backups/${prefix}`));
    const after = await keys(`${prefix}/`);
    expect(after.filter((k) => k.endsWith('.json'))).toEqual(before.filter((k) => k.endsWith('.json')));
    expect(await object(before.find((k) => k.endsWith('.json'))!)).toEqual(beforeBytes);
    // The local copy is kept so nothing is lost.
    expect(readFileSync(r.outputs['backup-path']!).length).toBeGreaterThan(0);
    // Retention did not run after the failure: the first backup is still there locally too.
    expect(first.outputs['backup-name']).not.toBe(r.outputs['backup-name']);
  });
});

test('an archive whose manifest never arrived is removed by prune after the grace period, not before', async () => {
  const p = 'orphans';
  const orphan = `${p}/${db.name}_20260101_000000.dump`;
  await client.send(new PutObjectCommand({ Bucket: 'backups', Key: orphan, Body: 'half an upload' }));
  const args = { mode: 'prune', destination: `s3://backups/${p}`, 'dry-run': 'false', 'backup-dir': mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3o-')) };
  const young = await run(args);
  expect(young.code, young.stdout).toBe(0);
  expect(await keys(`${p}/`)).toEqual([orphan]);
  const old = await run(args, { PGVB_ORPHAN_GRACE_SECONDS: '0' });
  expect(old.code, old.stdout).toBe(0);
  expect(old.stdout).toContain(`deleted leftover s3://backups/${orphan} (no manifest`);
  expect(await keys(`${p}/`)).toEqual([]);
});

describe('lookup, list and retention', () => {
  const prefix = 'lookup';
  const names: string[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const r = await run({ destination: `s3://backups/${prefix}`, 'backup-dir': mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3c-')), verify: 'none' });
      expect(r.code, r.stdout).toBe(0);
      // Without local among the destinations, backup-path is the S3 location.
      expect(r.outputs['backup-path']).toMatch(/^s3:\/\/backups\/lookup\//);
      names.push(r.outputs['backup-name']!);
      await new Promise((res) => setTimeout(res, 1100));
    }
  });

  test('test-restore of latest downloads it from S3, checks it and restores it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3d-'));
    const r = await run({ mode: 'test-restore', destination: `s3://backups/${prefix}`, 'backup-dir': dir, backup: 'latest' });
    expect(r.code, r.stdout).toBe(0);
    expect(r.outputs['backup-name']).toBe(names[1]);
    expect(r.stdout).toContain(`Downloading ${names[1]} from s3://backups/${prefix}/`);
    expect(r.outputs.verified).toBe('true');
  });

  test('a damaged object in S3 is caught by the download check', async () => {
    const p2 = 'damaged';
    const r0 = await run({ destination: `s3://backups/${p2}`, 'backup-dir': mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3e-')), verify: 'none' });
    expect(r0.code).toBe(0);
    const key = `${p2}/${r0.outputs['backup-name']}.dump`;
    const bytes = await object(key);
    bytes[100]! ^= 0xff;
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: key, Body: bytes }));
    const r = await run({ mode: 'verify', destination: `s3://backups/${p2}`, 'backup-dir': mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3f-')) });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::The download of .* from s3:\/\/backups\/damaged\/.* does not match its manifest/);
  });

  test('list shows backups in every destination', async () => {
    const r = await run({ mode: 'list', destination: `local,s3://backups/${prefix}`, 'backup-dir': mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3g-')) });
    expect(r.code, r.stdout).toBe(0);
    for (const n of names) expect(r.summary).toMatch(new RegExp(`\\| ${n} \\| .* \\| s3://backups/${prefix} \\| s3://backups/${prefix}/${n}\\.dump \\|`));
  });

  test('a failing second list page: prune deletes nothing and fails; a backup only warns', async () => {
    const env = { PGVB_S3_LIST_PAGE_SIZE: '1' };
    s3.fail({ match: (m, u) => m === 'GET' && u.includes('continuation-token='), status: 500, times: 1000 });
    const before = await keys(`${prefix}/`);
    const r = await run({ mode: 'prune', destination: `s3://backups/${prefix}`, 'retention-days': '0', 'keep-min': '1', 'dry-run': 'false', 'backup-dir': mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3h-')) }, env);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::Listing s3:\/\/backups\/lookup failed, so nothing was deleted there/);
    // After a good backup the same failure only warns: the backup stands, and still nothing is deleted.
    const b = await run({ destination: `s3://backups/${prefix}`, 'retention-days': '0', 'backup-dir': mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3j-')), verify: 'none' }, env);
    s3.fail({ match: () => false, status: 0, times: 0 });
    expect(b.code, b.stdout).toBe(0);
    expect(b.stdout).toMatch(/::warning::Retention skipped for s3:\/\/backups\/lookup: the listing failed, so nothing there is deleted/);
    before.push(`${prefix}/${b.outputs['backup-name']}.dump`, `${prefix}/${b.outputs['backup-name']}.json`);
    before.sort();
    expect(await keys(`${prefix}/`)).toEqual(before);
  });

  test('retention orders by the manifest time, not by name, and keeps the newest good backup', async () => {
    const p3 = 'order';
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3i-'));
    const r = await run({ destination: `s3://backups/${p3}`, 'backup-dir': dir, verify: 'none' });
    expect(r.code).toBe(0);
    const m = JSON.parse((await object(`${p3}/${r.outputs['backup-name']}.json`)).toString()) as Manifest;
    const archive = await object(`${p3}/${m.archive.file}`);
    // Two more copies whose names sort the other way round from their times.
    for (const [name, daysAgo] of [
      [`${db.name}_20990101_000000`, 30],
      [`${db.name}_20000101_000000`, 20],
    ] as const) {
      const copy: Manifest = { ...m, name, archive: { ...m.archive, file: `${name}.dump` }, createdAt: new Date(Date.now() - daysAgo * 86_400_000).toISOString() };
      await client.send(new PutObjectCommand({ Bucket: 'backups', Key: `${p3}/${name}.dump`, Body: archive }));
      await client.send(new PutObjectCommand({ Bucket: 'backups', Key: `${p3}/${name}.json`, Body: JSON.stringify(copy) }));
    }
    const p = await run({ mode: 'prune', destination: `s3://backups/${p3}`, 'retention-days': '25', 'keep-min': '1', 'dry-run': 'false', 'backup-dir': dir });
    expect(p.code, p.stdout).toBe(0);
    const left = await keys(`${p3}/`);
    expect(left).toContain(`${p3}/${db.name}_20000101_000000.json`);
    expect(left).not.toContain(`${p3}/${db.name}_20990101_000000.json`);
    expect(left).not.toContain(`${p3}/${db.name}_20990101_000000.dump`);
    expect(left).toContain(`${p3}/${r.outputs['backup-name']}.json`);
  });
});
