// Roles: a backup role with hostile session defaults still backs up; owners and grants restore with
// create-roles (roles created for the test restore, dropped afterwards); progress shows during long dumps.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Manifest } from '../../src/archive/manifest.js';
import { seedBigTable } from '../helpers/fixtures.js';
import { runAction } from '../helpers/action.js';
import { adminUrl, createDatabase, dropDatabase, sql, urlFor, withClient } from '../helpers/pg.js';

let db: { name: string; url: string };
const suffix = Math.random().toString(36).slice(2, 8);
const owner = `app_owner_${suffix}`;
const reader = `app_reader_${suffix}`;
const hostile = `hostile_${suffix}`;

beforeAll(async () => {
  db = await createDatabase('roles_db', { documents: 40, dimensions: 8 });
  await withClient(adminUrl(), async (c) => {
    await c.query(`CREATE ROLE ${owner} NOLOGIN; CREATE ROLE ${reader} NOLOGIN`);
    await c.query(`CREATE ROLE ${hostile} LOGIN SUPERUSER PASSWORD 'hostile-pw'`);
    // Settings that kill an idle-in-transaction snapshot or any slow statement, as some managed roles have.
    await c.query(`ALTER ROLE ${hostile} SET statement_timeout = '1ms'`);
    await c.query(`ALTER ROLE ${hostile} SET idle_in_transaction_session_timeout = '50ms'`);
    await c.query(`ALTER ROLE ${hostile} SET lock_timeout = '1ms'`);
  });
  await withClient(db.url, async (c) => {
    await c.query(`CREATE TABLE owned (id int PRIMARY KEY, e vector(2)); INSERT INTO owned SELECT g, '[1,2]' FROM generate_series(1, 5000) g`);
    await c.query(`ALTER TABLE owned OWNER TO ${owner}; GRANT SELECT ON owned TO ${reader}`);
  });
});

afterAll(async () => {
  await dropDatabase(db.name);
  await withClient(adminUrl(), async (c) => {
    for (const r of [owner, reader, hostile]) await c.query(`DROP ROLE IF EXISTS ${r}`);
  });
});

test('a role with hostile statement, idle-in-transaction and lock timeouts still backs up and test-restores', async () => {
  const u = new URL(urlFor(db.name).replace(/^postgresql:/, 'http:'));
  u.username = hostile;
  u.password = 'hostile-pw';
  const url = u.toString().replace(/^http:/, 'postgresql:');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-hostile-'));
  const r = await runAction({ 'database-url': url, 'backup-dir': dir }, { env: { PGVB_PROGRESS_SECONDS: '0.2' } });
  expect(r.code, r.stdout).toBe(0);
  expect(r.outputs.verified).toBe('true');
  expect(r.outputs.rows).toBe(String(40 + 80 + 5000));
});

test('the manifest lists the roles the dump references; create-roles restores owners and grants, then drops the roles', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-roles-'));
  const b = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'none' });
  expect(b.code, b.stdout).toBe(0);
  const m = JSON.parse(readFileSync(b.outputs['manifest-path']!, 'utf8')) as Manifest;
  expect(m.roles).toEqual(expect.arrayContaining([owner, reader, 'postgres']));

  // With create-roles, owners and grants are restored (the roles exist on this server, so none is created);
  // without it, --no-owner --no-acl.
  const target = await createDatabase('roles_target');
  try {
    const r = await runAction({ mode: 'test-restore', backup: b.outputs['manifest-path']!, 'test-restore-url': target.url, 'create-roles': 'true' });
    expect(r.code, r.stdout).toBe(0);
    expect(r.outputs.verified).toBe('true');
    // Default: --no-owner --no-acl, no roles needed.
    const d = await runAction({ mode: 'test-restore', backup: b.outputs['manifest-path']!, 'test-restore-url': target.url });
    expect(d.code, d.stdout).toBe(0);
  } finally {
    await dropDatabase(target.name);
  }
});

test('create-roles on a server that lacks the roles: created NOLOGIN for the restore and dropped afterwards', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-roles2-'));
  const b = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'none', format: 'plain' });
  expect(b.code, b.stdout).toBe(0);
  // Make the manifest name a role the server does not have, as a dump from another cluster would.
  const mp = b.outputs['manifest-path']!;
  const m = JSON.parse(readFileSync(mp, 'utf8')) as Manifest;
  const ghost = `ghost_${suffix}`;
  m.roles.push(ghost);
  writeFileSync(mp, JSON.stringify(m));
  const r = await runAction({ mode: 'test-restore', backup: mp, 'test-restore-url': adminUrl() });
  expect(r.code, r.stdout).toBe(0);
  const left = await sql<{ rolname: string }>(adminUrl(), `SELECT rolname FROM pg_roles WHERE rolname = $1`, [ghost]);
  expect(left).toEqual([]);
});

test('long dumps log progress (bytes, rate) while they run', async () => {
  const big = await createDatabase('roles_big', seedBigTable(100000, 64));
  try {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-progress-'));
    const r = await runAction({ 'database-url': big.url, 'backup-dir': dir, verify: 'none', format: 'plain' }, { env: { PGVB_PROGRESS_SECONDS: '0.2' } });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/pg_dump: [\d.]+ (KiB|MiB) dumped, [\d.]+ (KiB|MiB) written, [\d.]+ (KiB|MiB)\/s, \d+ s/);
  } finally {
    await dropDatabase(big.name);
  }
});
