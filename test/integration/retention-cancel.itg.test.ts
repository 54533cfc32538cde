// Retention on real backups (ages set through the manifests' createdAt), prune's dry run, and cleanup when a
// run is cancelled (SIGTERM, as the runner sends it).
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Manifest } from '../../src/archive/manifest.js';
import { seedBigTable } from '../helpers/fixtures.js';
import { runAction, runCli } from '../helpers/action.js';
import { adminUrl, createDatabase, dropDatabase, sql } from '../helpers/pg.js';

let db: { name: string; url: string };
let template: { archive: string; manifest: string };

beforeAll(async () => {
  db = await createDatabase('ret_db', { documents: 50, dimensions: 8 });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-ret-tpl-'));
  const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'none' });
  expect(r.code, r.stdout).toBe(0);
  template = { archive: r.outputs['backup-path']!, manifest: r.outputs['manifest-path']! };
});
afterAll(async () => {
  await dropDatabase(db.name);
});

/** Places a copy of the template backup in `dir` under `name`, created `daysAgo` days ago. */
function plant(dir: string, name: string, daysAgo: number, opts: { verifiedOk?: boolean } = {}): void {
  const m = JSON.parse(readFileSync(template.manifest, 'utf8')) as Manifest;
  m.name = name;
  m.archive.file = `${name}.dump`;
  m.createdAt = new Date(Date.now() - daysAgo * 86_400_000).toISOString();
  // Good (verified) unless said otherwise: the template was written with verify: none (unverified).
  const v = { level: 'full' as const, ok: opts.verifiedOk ?? true, at: m.createdAt, checks: [] };
  m.verification = v;
  m.verifications = [v];
  copyFileSync(template.archive, path.join(dir, `${name}.dump`));
  writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(m));
}

const names = (dir: string): string[] => readdirSync(dir).sort();

describe('retention', () => {
  test('after a successful backup: older than retention-days deleted, orphans and fresh partials kept', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-ret-'));
    plant(dir, `${db.name}_old10`, 10);
    plant(dir, `${db.name}_old8`, 8);
    plant(dir, `${db.name}_new3`, 3);
    // An archive without a manifest is not a backup and is never touched; a fresh .partial may be a running backup.
    copyFileSync(template.archive, path.join(dir, `${db.name}_orphan.dump`));
    writeFileSync(path.join(dir, `${db.name}_fresh.dump.partial`), 'x');
    writeFileSync(path.join(dir, `${db.name}_stale.dump.partial`), 'x');
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(path.join(dir, `${db.name}_stale.dump.partial`), twoDaysAgo, twoDaysAgo);
    const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'none', 'retention-days': '7' });
    expect(r.code, r.stdout).toBe(0);
    const left = names(dir);
    expect(left).not.toContain(`${db.name}_old10.json`);
    expect(left).not.toContain(`${db.name}_old10.dump`);
    expect(left).not.toContain(`${db.name}_old8.dump`);
    expect(left).toContain(`${db.name}_new3.dump`);
    expect(left).toContain(`${db.name}_orphan.dump`);
    expect(left).toContain(`${db.name}_fresh.dump.partial`);
    expect(left).not.toContain(`${db.name}_stale.dump.partial`);
    expect(left).toContain(path.basename(r.outputs['backup-path']!));
    expect(r.stdout).toMatch(/Retention in local \(7 days, keep-min 1\): 2 kept, 2 deleted/);
  });

  test('three good backups followed by five failed runs with keep-min 3: all three survive', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-ret-min-'));
    for (let i = 0; i < 3; i++) plant(dir, `${db.name}_good${i}`, 30 + i, { verifiedOk: true });
    for (let i = 0; i < 5; i++) plant(dir, `${db.name}_failed${i}`, 20 + i, { verifiedOk: false });
    const r = await runAction({ mode: 'prune', 'database-url': db.url, 'backup-dir': dir, 'retention-days': '7', 'keep-min': '3', 'dry-run': 'false' });
    expect(r.code, r.stdout).toBe(0);
    const left = names(dir);
    for (let i = 0; i < 3; i++) expect(left).toContain(`${db.name}_good${i}.dump`);
    for (let i = 0; i < 5; i++) expect(left).not.toContain(`${db.name}_failed${i}.dump`);
  });

  test('the newest good backup survives whatever its age; order is by manifest time, not by name', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-ret-order-'));
    // Names sort the other way round from their creation times.
    plant(dir, `${db.name}_20990101_000000`, 40);
    plant(dir, `${db.name}_20000101_000000`, 35);
    const r = await runAction({ mode: 'prune', 'database-url': db.url, 'backup-dir': dir, 'retention-days': '7', 'dry-run': 'false' });
    expect(r.code, r.stdout).toBe(0);
    expect(names(dir)).toEqual([`${db.name}_20000101_000000.dump`, `${db.name}_20000101_000000.json`]);
  });

  test('prune is a dry run unless dry-run is false', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-ret-dry-'));
    plant(dir, `${db.name}_a`, 20);
    plant(dir, `${db.name}_b`, 10);
    const before = names(dir);
    const r = await runCli(['prune', '--backup-dir', dir, '--database-url', db.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`would delete ${db.name}_a`);
    expect(r.stdout).toContain('dry run');
    expect(names(dir)).toEqual(before);
  });

  test('a failed backup never prunes', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-ret-fail-'));
    plant(dir, `${db.name}_old`, 20);
    plant(dir, `${db.name}_older`, 30);
    const before = names(dir);
    const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, 'pg-bin-dir': '/nonexistent', 'retention-days': '1' });
    expect(r.code).not.toBe(0);
    expect(names(dir)).toEqual(before);
  });

  test('prune without a database plans each database on its own (each keeps its newest good backup)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-ret-perdb-'));
    plant(dir, `${db.name}_a`, 20);
    plant(dir, `${db.name}_b`, 30);
    for (const [name, days] of [['other_db_20200101_000000', 40], ['other_db_20200102_000000', 50]] as const) {
      plant(dir, name, days);
      const f = path.join(dir, `${name}.json`);
      const m = JSON.parse(readFileSync(f, 'utf8')) as Manifest;
      m.database = 'other_db';
      writeFileSync(f, JSON.stringify(m));
    }
    const r = await runCli(['prune', '--backup-dir', dir, '--retention-days', '7', '--dry-run', 'false']);
    expect(r.code, r.stderr).toBe(0);
    expect(names(dir)).toEqual([`${db.name}_a.dump`, `${db.name}_a.json`, 'other_db_20200101_000000.dump', 'other_db_20200101_000000.json'].sort());
  });

  test('backups of other databases in the same directory are not touched', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-ret-other-'));
    plant(dir, `${db.name}_mine`, 20);
    plant(dir, `other_db_20200101_000000`, 20);
    const m = JSON.parse(readFileSync(path.join(dir, 'other_db_20200101_000000.json'), 'utf8')) as Manifest;
    m.database = 'other_db';
    writeFileSync(path.join(dir, 'other_db_20200101_000000.json'), JSON.stringify(m));
    // An unverified new backup (verify: none) never displaces the newest good one: _mine stays.
    const unverified = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'none', 'retention-days': '7' });
    expect(unverified.code).toBe(0);
    expect(unverified.stdout).toMatch(/verify: none writes unverified backups/);
    expect(names(dir)).toContain(`${db.name}_mine.dump`);
    const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'quick', 'retention-days': '7' });
    expect(r.code).toBe(0);
    expect(names(dir)).toContain('other_db_20200101_000000.dump');
    expect(names(dir)).not.toContain(`${db.name}_mine.dump`);
  });
});

describe('cancellation', () => {
  test('SIGTERM during a test restore: the throwaway cluster and temp files are removed', async () => {
    const tmpdir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-cancel-'));
    chmodSync(tmpdir, 0o711);
    const before = readFileSync(template.manifest, 'utf8');
    const r = await runAction({ mode: 'test-restore', backup: template.manifest }, { env: { TMPDIR: tmpdir }, signalWhen: { pattern: /Target: /, signal: 'SIGTERM' } });
    expect(r.signalled).toBe(true);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/The run was cancelled \(SIGTERM\)/);
    expect(r.stdout).not.toMatch(/does not restore cleanly/);
    expect(readdirSync(tmpdir)).toEqual([]);
    // Cancelled: nothing recorded (not even its quick check, which was for the test restore).
    expect(readFileSync(template.manifest, 'utf8')).toBe(before);
  });

  test('a backup cancelled during its verification is not counted as good', async () => {
    // Big enough that the test restore is still running when the signal arrives.
    const slow = await createDatabase('ret_slow', seedBigTable(60000, 32));
    try {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-cancel-verify-'));
      const tmpdir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-cancel-verify-tmp-'));
      chmodSync(tmpdir, 0o711);
      const r = await runAction({ 'database-url': slow.url, 'backup-dir': dir }, { env: { TMPDIR: tmpdir }, signalWhen: { pattern: /Target: /, signal: 'SIGTERM' } });
      expect(r.signalled).toBe(true);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/The run was cancelled \(SIGTERM\)/);
      expect(r.stdout).not.toMatch(/does not restore cleanly/);
      const list = await runAction({ mode: 'list', 'database-url': slow.url, 'backup-dir': dir });
      expect(list.summary).toMatch(/\| unverified \| - \|/);
      // Not good: a restore of latest does not take it ...
      const restore = await runAction({ mode: 'restore', 'database-url': slow.url, 'backup-dir': dir, backup: 'latest', confirm: slow.name });
      expect(restore.code).not.toBe(0);
      expect(restore.stdout).toMatch(/::error::No verified backup of database ret_slow_\w+ found in \S+ \(1 unverified, newest ret_slow_\w+\)/);
      // ... while a check of latest proves it, and then it is good.
      const v = await runAction({ mode: 'verify', 'database-url': slow.url, 'backup-dir': dir, backup: 'latest' });
      expect(v.code, v.stdout).toBe(0);
      const after = await runAction({ mode: 'list', 'database-url': slow.url, 'backup-dir': dir });
      expect(after.summary).toMatch(/\| good \(quick\) \| quick passed /);
    } finally {
      await dropDatabase(slow.name);
    }
  });

  test('SIGTERM during a test restore into test-restore-url: the temporary database is dropped', async () => {
    const r = await runAction(
      { mode: 'test-restore', backup: template.manifest, 'test-restore-url': adminUrl() },
      { signalWhen: { pattern: /Target: /, signal: 'SIGTERM' } },
    );
    expect(r.signalled).toBe(true);
    expect(r.code).not.toBe(0);
    const left = await sql<{ datname: string }>(adminUrl(), `SELECT datname FROM pg_database WHERE datname LIKE 'pgvb_test_%'`);
    expect(left).toEqual([]);
  });

  test('SIGTERM during a dump: no partial file, no archive, no manifest', async () => {
    const big = await createDatabase('ret_big', seedBigTable(100000, 32));
    try {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-cancel-dump-'));
      const r = await runAction({ 'database-url': big.url, 'backup-dir': dir, compression: 'none' }, { signalWhen: { pattern: /locked \(ACCESS SHARE\)/, signal: 'SIGTERM' } });
      expect(r.signalled).toBe(true);
      expect(r.code).not.toBe(0);
      expect(readdirSync(dir), r.stdout + r.stderr).toEqual([]);
    } finally {
      await dropDatabase(big.name);
    }
  });
});



