// mode: restore (swap and in-place) and test-restore's migrate-command, through the bundled action and the CLI:
// refusals change nothing, a failure at any step leaves the target as it was, a success holds exactly the backup.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Manifest } from '../../src/archive/manifest.js';
import { runAction, runCli } from '../helpers/action.js';
import { adminUrl, createDatabase, dropDatabase, sql, tableCounts, withClient } from '../helpers/pg.js';

let db: { name: string; url: string };
let backup: { manifest: string; archive: string; name: string };
let counts: Record<string, number>;
let dir: string;
const extraDbs: string[] = [];

/** Tables, their rows and a hash of their contents: equal fingerprints mean an unchanged database. */
async function fingerprint(url: string): Promise<string> {
  return withClient(url, async (c) => {
    const rels = await c.query<{ q: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS q FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1`,
    );
    const parts: string[] = [];
    for (const r of rels.rows) {
      const h = await c.query<{ h: string }>(`SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS h FROM ${r.q} t`);
      parts.push(`${r.q}:${h.rows[0]!.h}`);
    }
    return parts.join('\n');
  });
}

async function databases(prefix: string): Promise<string[]> {
  return (await sql<{ datname: string }>(adminUrl(), `SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1`, [`${prefix}%`])).map((r) => r.datname);
}

beforeAll(async () => {
  db = await createDatabase('rs_db', { documents: 120, dimensions: 8 });
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-restore-'));
  const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'none' });
  expect(r.code, r.stdout).toBe(0);
  backup = { manifest: r.outputs['manifest-path']!, archive: r.outputs['backup-path']!, name: r.outputs['backup-name']! };
  counts = await tableCounts(db.url);
});

afterAll(async () => {
  for (const n of [db.name, ...extraDbs, ...(await databases(`${db.name}__`))]) await dropDatabase(n);
});

/** Changes the database after the backup, so a restore is visible. */
async function diverge(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`DELETE FROM chunks WHERE document_id > 100; DELETE FROM documents WHERE id > 100; CREATE TABLE added_later (x int); INSERT INTO added_later VALUES (1)`);
  });
}

describe('refusals change nothing', () => {
  test.each([
    ['no confirm', {}, {}, /restore replaces database "rs_db_\w+": set confirm to its name/],
    ['a confirm that is not the database name', { confirm: 'production' }, {}, /confirm \("production"\) is not the target database's name/],
    ['a pull_request event', { confirm: 'x' }, { GITHUB_EVENT_NAME: 'pull_request' }, /restore is refused on pull_request events/],
    ['a pull_request_target event', { confirm: 'x' }, { GITHUB_EVENT_NAME: 'pull_request_target' }, /restore is refused on pull_request_target events/],
  ])('%s', async (_what, inputs, env, pattern) => {
    const before = await fingerprint(db.url);
    const r = await runAction({ mode: 'restore', 'database-url': db.url, backup: backup.manifest, ...inputs }, { env });
    expect(r.code).not.toBe(0);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('::error::')).pop()).toMatch(pattern);
    expect(await fingerprint(db.url)).toBe(before);
  });

  test('the CLI needs --yes (or a terminal) to restore', async () => {
    const r = await runCli(['restore', backup.manifest, '--database-url', db.url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/run it on a terminal to confirm, or pass --yes/);
  });

  test('the CLI restores with --yes (the old kit\'s --restore FILE)', async () => {
    const name = `rs_cli_${Math.random().toString(36).slice(2, 8)}`;
    extraDbs.push(name);
    const target = db.url.replace(/\/[^/]*$/, `/${name}`);
    const r = await runCli(['restore', backup.archive, '--yes', '--database-url', db.url, '--target-database-url', target]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`restored-database=${name}`);
    expect(await tableCounts(target)).toEqual(counts);
  });
});

describe('strategy swap (the default)', () => {
  test('restores into a new database, checks it, swaps it in and keeps the old one; sequences continue', async () => {
    await diverge(db.url);
    const diverged = await fingerprint(db.url);
    const r = await runAction({ mode: 'restore', 'database-url': db.url, backup: backup.manifest, confirm: db.name });
    expect(r.code, r.stdout).toBe(0);
    expect(r.outputs['restored-database']).toBe(db.name);
    expect(r.outputs.verified).toBe('true');
    expect(Number(r.outputs['restore-seconds'])).toBeGreaterThan(0);
    expect(await tableCounts(db.url)).toEqual(counts);
    const kept = (await databases(`${db.name}__pre_restore_`))[0]!;
    expect(kept).toMatch(/__pre_restore_\d{8}_\d{6}$/);
    const keptUrl = db.url.replace(/\/[^/]*$/, `/${kept}`);
    expect(await fingerprint(keptUrl)).toBe(diverged);
    expect(await databases(`${db.name}__restore_`)).toEqual([]);
    // The summary says how to roll back.
    expect(r.summary).toMatch(new RegExp(`ALTER DATABASE "?${kept}"? RENAME TO "?${db.name}"?;`));
    // Sequences restored: a new row gets a fresh id.
    const [row] = await sql<{ id: string }>(db.url, `INSERT INTO documents (title, body) VALUES ('new', 'after restore') RETURNING id::text`);
    expect(Number(row!.id)).toBe(121);
  });

  test('a restored copy that differs from the manifest is dropped and the target is left as it was', async () => {
    const m = JSON.parse(readFileSync(backup.manifest, 'utf8')) as Manifest;
    m.tables.find((t) => t.name === 'documents')!.rows += 1;
    const bad = mkdtempSync(path.join(os.tmpdir(), 'pgvb-restore-bad-'));
    writeFileSync(path.join(bad, path.basename(backup.manifest)), JSON.stringify(m));
    copyFileSync(backup.archive, path.join(bad, path.basename(backup.archive)));
    const before = await fingerprint(db.url);
    const r = await runAction({ mode: 'restore', 'database-url': db.url, backup: path.join(bad, path.basename(backup.manifest)), confirm: db.name });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain('::error::rows public.documents: expected 121, restored 120');
    expect(r.stdout).toMatch(/::error::The restored copy differs from the manifest in 1 places\. The database rs_db_\w+ was not touched/);
    expect(await fingerprint(db.url)).toBe(before);
    expect(await databases(`${db.name}__restore_`)).toEqual([]);
  });

  test('into a database that does not exist yet: it is created', async () => {
    const name = `rs_new_${Math.random().toString(36).slice(2, 8)}`;
    extraDbs.push(name);
    const target = db.url.replace(/\/[^/]*$/, `/${name}`);
    const r = await runAction({ mode: 'restore', 'database-url': db.url, 'target-database-url': target, backup: backup.manifest, confirm: name });
    expect(r.code, r.stdout).toBe(0);
    expect(await tableCounts(target)).toEqual(counts);
  });
});

describe('strategy in-place (one transaction)', () => {
  test('restores over an existing database', async () => {
    const t = await createDatabase('rs_inplace', { documents: 120, dimensions: 8 });
    extraDbs.push(t.name);
    await diverge(t.url);
    const r = await runAction({ mode: 'restore', 'database-url': db.url, 'target-database-url': t.url, backup: backup.manifest, confirm: t.name, strategy: 'in-place' });
    expect(r.code, r.stdout).toBe(0);
    expect(r.outputs.verified).toBe('true');
    const got = await tableCounts(t.url);
    for (const [k, v] of Object.entries(counts)) expect(got[k], k).toBe(v);
    // Objects that are not in the dump stay (only the dump's objects are replaced).
    expect(got['public.added_later']).toBe(1);
  });

  test('a conflicting object makes the restore fail and the target is unchanged', async () => {
    const t = await createDatabase('rs_conflict', { documents: 120, dimensions: 8 });
    extraDbs.push(t.name);
    await diverge(t.url);
    // A view outside the dump that depends on a table the restore must drop and recreate.
    await sql(t.url, `CREATE VIEW doc_titles AS SELECT id, title FROM documents`);
    const before = await fingerprint(t.url);
    const r = await runAction({ mode: 'restore', 'database-url': db.url, 'target-database-url': t.url, backup: backup.manifest, confirm: t.name, strategy: 'in-place' });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::The restore failed and was rolled back: pg_restore exited with code 1: .*depend/);
    expect(await fingerprint(t.url)).toBe(before);
  });
});

describe('test-restore with migrate-command', () => {
  test('the migrations run against the restored database, then the comparison', async () => {
    const r = await runAction({
      mode: 'test-restore',
      backup: backup.manifest,
      'test-restore-url': adminUrl(),
      'migrate-command': `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -c 'ALTER TABLE documents ADD COLUMN summary text' -c 'CREATE INDEX ON documents (title)'`,
    });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain('ALTER TABLE');
    expect(Number(r.outputs['migrate-seconds'])).toBeGreaterThan(0);
    expect(r.summary).toMatch(/Migrations \(`psql .*`\) apply to production-shaped data: [\d.]+ s/);
  });

  test('failing migrations fail the check', async () => {
    const r = await runAction({ mode: 'test-restore', backup: backup.manifest, 'test-restore-url': adminUrl(), 'migrate-command': `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -c 'ALTER TABLE no_such_table ADD COLUMN x int'` });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::The migrate command failed on the restored backup \(exit code \d+\)/);
    expect(r.summary).toMatch(/\*\*Migrations .* failed\*\* on production-shaped data/);
    expect(await sql(adminUrl(), `SELECT datname FROM pg_database WHERE datname LIKE 'pgvb_test_%'`)).toEqual([]);
  });

  test('refused on a pull request from a fork', async () => {
    const event = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgvb-event-')), 'event.json');
    writeFileSync(event, JSON.stringify({ pull_request: { head: { repo: { full_name: 'stranger/app' } } }, repository: { full_name: 'acme/app' } }));
    const r = await runAction({ mode: 'test-restore', backup: backup.manifest }, { env: { GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: event } });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::test-restore is refused on a pull request from the fork stranger\/app/);
    // The same repository's pull request is fine.
    writeFileSync(event, JSON.stringify({ pull_request: { head: { repo: { full_name: 'acme/app' } } }, repository: { full_name: 'acme/app' } }));
    const ok = await runAction({ mode: 'test-restore', backup: backup.manifest, 'test-restore-url': adminUrl() }, { env: { GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: event } });
    expect(ok.code, ok.stdout).toBe(0);
  });
});
