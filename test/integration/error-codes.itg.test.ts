// The error line a user reads ends with the entry of docs/TROUBLESHOOTING.md that explains it, through the bundled
// action and CLI, for real failures: the shell kit's common problems (connection, permissions, gzip corruption,
// "must be owner of" on restore) and a usage mistake. Every pointer leads to an entry that exists.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Manifest } from '../../src/archive/manifest.js';
import { freePort } from '../../src/postgres/cluster.js';
import { ROOT, runAction, runCli, type RunResult } from '../helpers/action.js';
import { adminUrl, createDatabase, dropDatabase, sql, tableCounts, testPassword, withClient } from '../helpers/pg.js';

const DOC = readFileSync(path.join(ROOT, 'docs/TROUBLESHOOTING.md'), 'utf8');
const POINTER = /\(see docs\/TROUBLESHOOTING\.md#([a-z0-9-]+)\)$/;

let db: { name: string; url: string };
const roles: string[] = [];

beforeAll(async () => {
  db = await createDatabase('ec_db', { documents: 60, dimensions: 8 });
});

afterAll(async () => {
  await dropDatabase(db.name);
  for (const r of roles) await sql(adminUrl(), `DROP ROLE IF EXISTS "${r}"`).catch(() => undefined);
});

/** The last ::error:: annotation (the action) or error: line (the CLI). */
function errorLine(r: RunResult): string {
  const lines = [...r.stdout.split('\n').filter((l) => l.startsWith('::error::')), ...r.stderr.split('\n').filter((l) => l.startsWith('error: '))];
  return lines[lines.length - 1] ?? '';
}

/** The code the line points to; fails unless the doc has its entry. */
function pointedCode(line: string): string {
  const code = POINTER.exec(line)?.[1];
  expect(code, line).toBeDefined();
  expect(DOC, `docs/TROUBLESHOOTING.md has no entry for ${code}`).toMatch(new RegExp(`^#### ${code}$`, 'm'));
  return code!;
}

/** A login role with only CONNECT, and its URL for the test database. */
async function plainRole(): Promise<string> {
  const role = `ec_user_${Math.random().toString(36).slice(2, 8)}`;
  roles.push(role);
  await withClient(adminUrl(), async (c) => {
    await c.query(`CREATE ROLE ${c.escapeIdentifier(role)} LOGIN PASSWORD ${c.escapeLiteral(testPassword())}`);
    await c.query(`GRANT CONNECT ON DATABASE ${c.escapeIdentifier(db.name)} TO ${c.escapeIdentifier(role)}`);
  });
  const u = new URL(db.url.replace(/^postgresql:/, 'http:'));
  u.username = role;
  u.password = encodeURIComponent(testPassword());
  return u.toString().replace(/^http:/, 'postgresql:');
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

describe('the shell kit\'s common problems point to their entries', () => {
  test('connection refused (action)', async () => {
    const port = await freePort();
    const r = await runAction({ 'database-url': `postgresql://postgres:x@127.0.0.1:${port}/postgres`, 'backup-dir': mkdtempSync(path.join(os.tmpdir(), 'pgvb-ec-')) });
    expect(r.code).not.toBe(0);
    expect(errorLine(r)).toMatch(new RegExp(`^::error::Cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port}: connection refused\\. Check the host`));
    expect(pointedCode(errorLine(r))).toBe('connect-refused');
  });

  test('a role that may not read the tables (CLI, exit 1)', async () => {
    const url = await plainRole();
    const r = await runCli(['backup', '--database-url', url, '--backup-dir', mkdtempSync(path.join(os.tmpdir(), 'pgvb-ec-'))]);
    expect(r.code, r.stderr).toBe(1);
    expect(errorLine(r)).toMatch(/^error: PostgreSQL error during backup: permission denied for table \w+ \(SQLSTATE 42501\)\. The role lacks a privilege/);
    expect(pointedCode(errorLine(r))).toBe('pg-permission-denied');
    expect(r.stderr + r.stdout).not.toContain(testPassword());
  });

  test('gzip corruption: a truncated .sql.gz, then one whose manifest matches the truncated bytes ("unexpected end of file")', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-ec-gz-'));
    const made = await runAction({ 'database-url': db.url, 'backup-dir': dir, format: 'plain', compression: 'gzip', verify: 'none' });
    expect(made.code, made.stdout).toBe(0);
    const archive = made.outputs['backup-path']!;
    const manifestPath = made.outputs['manifest-path']!;
    expect(archive).toMatch(/\.sql\.gz$/);
    truncateSync(archive, Math.floor(Number(made.outputs['size-bytes']) / 2));

    const truncated = await runCli(['verify', archive]);
    expect(truncated.code).toBe(1);
    expect(errorLine(truncated)).toMatch(/^error: Backup \w+ failed the size \(\d+ bytes, manifest says \d+\) check\./);
    expect(pointedCode(errorLine(truncated))).toBe('verify-checksum');

    // The bytes were already cut when written: size and checksum match, the gzip stream ends early.
    const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
    m.archive.size = readFileSync(archive).length;
    m.archive.sha256 = sha256(archive);
    m.verification = null;
    writeFileSync(manifestPath, JSON.stringify(m, null, 2));
    const corrupt = await runCli(['verify', archive]);
    expect(corrupt.code).toBe(1);
    expect(errorLine(corrupt)).toMatch(/^error: Backup \w+ failed the decompression \(unexpected end of file\) check\./);
    expect(pointedCode(errorLine(corrupt))).toBe('verify-decompression');

    // test-restore stops at the same check and keeps its code (not a generic one).
    const restore = await runAction({ mode: 'test-restore', 'database-url': db.url, 'backup-dir': dir, backup: manifestPath });
    expect(restore.code).not.toBe(0);
    expect(errorLine(restore)).toMatch(/^::error::Backup \w+ failed verification before the test restore/);
    expect(pointedCode(errorLine(restore))).toBe('verify-decompression');
  });

  test('an in-place restore by a role that does not own the objects ("must be owner of"): rolled back, nothing changed', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-ec-own-'));
    const made = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'none' });
    expect(made.code, made.stdout).toBe(0);
    const before = await tableCounts(db.url);
    const url = await plainRole();
    const r = await runAction({ mode: 'restore', 'database-url': url, 'backup-dir': dir, backup: made.outputs['manifest-path']!, confirm: db.name, strategy: 'in-place' });
    expect(r.code).not.toBe(0);
    expect(errorLine(r)).toMatch(/^::error::The restore failed and was rolled back: pg_restore exited with code 1: .*must be owner of /);
    expect(pointedCode(errorLine(r))).toBe('restore-permission-denied');
    expect(await tableCounts(db.url)).toEqual(before);
  });
});

describe('usage mistakes', () => {
  test('an unknown CLI option: exit 2, config-cli-usage', async () => {
    const r = await runCli(['backup', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toBe('error: Unknown option --no-such-flag; see pgvector-backup backup --help (see docs/TROUBLESHOOTING.md#config-cli-usage)');
    expect(pointedCode(errorLine(r))).toBe('config-cli-usage');
  });

  test('each failed backup of verify --all has its own pointer, and the run ends with verify-failed', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-ec-all-'));
    const made = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'none' });
    expect(made.code, made.stdout).toBe(0);
    writeFileSync(made.outputs['backup-path']!, 'not the archive');
    const r = await runAction({ mode: 'verify', all: 'true', 'backup-dir': dir, 'database-url': db.url });
    expect(r.code).not.toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
    expect(lines.map((l) => POINTER.exec(l)?.[1])).toEqual(['verify-checksum', 'verify-failed']);
    for (const l of lines) pointedCode(l);
  });
});
