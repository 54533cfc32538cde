// `pgvector-backup doctor` run as a user runs it (node dist/cli/index.js doctor, a subprocess) against the test
// cluster, a real Pushgateway, and real directories. A database without pgvector is a warning (exit 0): a backup
// of it works, so the doctor does not call it unhealthy.
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CheckResult, DoctorReport } from '../../src/doctor.js';
import { freePort } from '../../src/postgres/cluster.js';
import { runCli, type RunResult } from '../helpers/action.js';
import { startServerWithoutPgvector } from '../helpers/no-pgvector.js';
import { createDatabase, dropDatabase, testPassword } from '../helpers/pg.js';
import { startPushgateway, type Gateway } from '../helpers/pushgateway.js';

let db: { name: string; url: string };
let gw: Gateway;
/** A backup-dir holding one fresh backup of db. */
let backupDir: string;
let backupName: string;
let backupPath: string;
let metricsFile: string;

const tmp = (p: string): string => mkdtempSync(path.join(os.tmpdir(), `pgvb-doctor-${p}-`));

beforeAll(async () => {
  db = await createDatabase('doctor_db', { documents: 60, dimensions: 8 });
  gw = await startPushgateway();
  const dir = tmp('base');
  backupDir = path.join(dir, 'backups');
  metricsFile = path.join(dir, 'metrics', 'backup.prom');
  const b = await runCli(['backup', '--database-url', db.url, '--backup-dir', backupDir, '--verify', 'quick', '--metrics-file', metricsFile]);
  expect(b.code, b.stderr).toBe(0);
  backupName = /^backup-name=(.+)$/m.exec(b.stdout)![1]!;
  backupPath = /^backup-path=(.+)$/m.exec(b.stdout)![1]!;
});
afterAll(async () => {
  await gw?.stop();
  if (db) await dropDatabase(db.name);
});

async function doctor(args: string[]): Promise<RunResult & { report: DoctorReport; status: Record<string, CheckResult['status']>; detail: Record<string, string> }> {
  const r = await runCli(['doctor', '--json', ...args]);
  let report: DoctorReport;
  try {
    report = JSON.parse(r.stdout) as DoctorReport;
  } catch {
    throw new Error(`doctor printed no JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
  return {
    ...r,
    report,
    status: Object.fromEntries(report.checks.map((c) => [c.name, c.status])),
    detail: Object.fromEntries(report.checks.map((c) => [c.name, c.detail])),
  };
}

const ALL = ['connection', 'server', 'pgvector', 'privileges', 'pg_dump', 'backup-dir', 'free space', 'last backup', 'pushgateway', 'metrics-file'];

test('healthy after a backup: exit 0, every check ok; the table says so', async () => {
  const args = ['--database-url', db.url, '--backup-dir', backupDir, '--metrics-file', metricsFile, '--pushgateway-url', gw.url];
  const r = await doctor(args);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.report.healthy).toBe(true);
  expect(r.report.checks.map((c) => c.name)).toEqual(ALL);
  expect(r.status).toEqual(Object.fromEntries(ALL.map((n) => [n, 'ok'])));
  expect(r.detail.connection).toMatch(new RegExp(`^connected to ${db.name} on 127\\.0\\.0\\.1:\\d+ as postgres in \\d+ ms$`));
  expect(r.detail.server).toMatch(/^PostgreSQL \d+\.\d+/);
  expect(r.detail.pgvector).toMatch(new RegExp(`^vector \\d+\\.\\d+\\.\\d+ installed in ${db.name}`));
  expect(r.detail.privileges).toMatch(/^postgres can read all \d+ tables and sequences$/);
  expect(r.detail.pg_dump).toMatch(/^pg_dump \d+\.\d+ in \/\S+ for the PostgreSQL \d+ server/);
  expect(r.detail['backup-dir']).toBe(`${backupDir} is writable`);
  expect(r.detail['free space']).toMatch(/GiB free on the filesystem of .*x the last backup/);
  expect(r.detail['last backup']).toMatch(new RegExp(`^${backupName} in local, \\d+ s old, verified quick$`));
  expect(r.detail.pushgateway).toMatch(/answers \/-\/healthy \(HTTP 200/);
  expect(r.detail['metrics-file']).toMatch(/can be written, last written \d+ s ago$/);
  // The probe file is gone.
  expect(readdirSync(backupDir).sort()).toEqual([path.basename(backupPath), `${backupName}.json`]);

  const table = await runCli(['doctor', ...args]);
  expect(table.code).toBe(0);
  expect(table.stdout).toMatch(/^ {2}ok {4}connection {4}connected to /m);
  expect(table.stdout.trimEnd().split('\n').pop()).toBe('Healthy: 10 ok, 0 warnings.');
  for (const out of [r.stdout, r.stderr, table.stdout, table.stderr]) expect(out).not.toContain(testPassword());
});

describe('pgvector', () => {
  test('a database without the extension (available on the server): warn, exit 0', async () => {
    const plain = await createDatabase('doctor_novec');
    try {
      const r = await doctor(['--database-url', plain.url, '--backup-dir', tmp('novec')]);
      expect(r.code, r.stdout).toBe(0);
      expect(r.report.healthy).toBe(true);
      expect(r.status.pgvector).toBe('warn');
      expect(r.detail.pgvector).toMatch(new RegExp(`^not installed in ${plain.name}; version \\d+\\.\\d+\\.\\d+ is available on the server$`));
      expect(r.report.checks.find((c) => c.name === 'pgvector')!.fix).toBe(`If this database should hold vectors, run CREATE EXTENSION vector; in ${plain.name} (as its owner or a superuser)`);
      expect(r.status.connection).toBe('ok');
      // No backup of this database yet.
      expect(r.status['last backup']).toBe('warn');
    } finally {
      await dropDatabase(plain.name);
    }
  });

  test('a server without pgvector at all: warn with how to install it, exit 0', async () => {
    const server = await startServerWithoutPgvector(testPassword());
    try {
      const url = `postgresql://postgres:${encodeURIComponent(testPassword())}@127.0.0.1:${server.cluster.port}/postgres`;
      const r = await doctor(['--database-url', url, '--backup-dir', tmp('nopgv')]);
      expect(r.code, r.stdout).toBe(0);
      expect(r.status.pgvector).toBe('warn');
      expect(r.detail.pgvector).toBe('not installed in postgres and not available on the server');
      expect(r.report.checks.find((c) => c.name === 'pgvector')!.fix).toMatch(/^Install pgvector on the server/);
    } finally {
      await server.remove();
    }
  });
});

test('wrong password: exit 1, connection fails, the local checks are still reported, no password in the output', async () => {
  const u = new URL(db.url.replace(/^postgresql:/, 'http:'));
  u.password = 'Wr0ng-pass-word';
  const bad = u.toString().replace(/^http:/, 'postgresql:');
  const args = ['--database-url', bad, '--backup-dir', backupDir, '--metrics-file', metricsFile];
  const r = await doctor(args);
  expect(r.code).toBe(1);
  expect(r.report.healthy).toBe(false);
  const conn = r.report.checks.find((c) => c.name === 'connection')!;
  expect(conn).toMatchObject({ status: 'fail', detail: 'Password authentication failed for user "postgres"', code: 'connect-password' });
  expect(conn.fix).toMatch(/Check the password/);
  expect(r.status).toMatchObject({ server: 'skip', pgvector: 'skip', privileges: 'skip', pg_dump: 'skip' });
  // What does not need the database still ran.
  expect(r.status['backup-dir']).toBe('ok');
  expect(r.status['free space']).toBe('ok');
  expect(r.status['last backup']).toBe('ok');
  expect(r.detail['last backup']).toContain(backupName);
  expect(r.status['metrics-file']).toBe('ok');
  expect(r.detail.pg_dump).toMatch(/^found \d+\.\d+ \(/);

  const table = await runCli(['doctor', ...args]);
  expect(table.code).toBe(1);
  expect(table.stdout).toMatch(/^ {2}FAIL {2}connection {4}Password authentication failed for user "postgres"$/m);
  expect(table.stdout).toContain('(see docs/TROUBLESHOOTING.md#connect-password)');
  expect(table.stdout.trimEnd().split('\n').pop()).toMatch(/^Unhealthy: 1 failed \(connection\), /);
  for (const out of [r.stdout, r.stderr, table.stdout, table.stderr]) {
    expect(out).not.toContain('Wr0ng-pass-word');
    expect(out).not.toContain(testPassword());
  }
});

test('a file where backup-dir should be: exit 1, backup-dir fails with the fix', async () => {
  const file = path.join(tmp('file'), 'backups');
  writeFileSync(file, 'not a directory');
  const r = await doctor(['--database-url', db.url, '--backup-dir', file]);
  expect(r.code).toBe(1);
  expect(r.status['backup-dir']).toBe('fail');
  expect(r.detail['backup-dir']).toBe(`${file} is a file, not a directory`);
  expect(r.report.checks.find((c) => c.name === 'backup-dir')!.fix).toBe('Set backup-dir to a directory path, or move that file away');
  expect(r.status.connection).toBe('ok');
  expect(readFileSync(file, 'utf8')).toBe('not a directory');
});

describe('stale last backup', () => {
  test('--max-age-hours 0: warn, exit 0', async () => {
    const r = await doctor(['--database-url', db.url, '--backup-dir', backupDir, '--max-age-hours', '0']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.status['last backup']).toBe('warn');
    expect(r.detail['last backup']).toMatch(new RegExp(`^${backupName} in local, \\d+ s old, verified quick: older than 0 h$`));
  });

  test('a manifest three days old: warn with the default 26 h', async () => {
    const dir = path.join(tmp('stale'), 'backups');
    cpSync(backupDir, dir, { recursive: true });
    const manifestFile = path.join(dir, `${backupName}.json`);
    const m = JSON.parse(readFileSync(manifestFile, 'utf8')) as { createdAt: string };
    m.createdAt = new Date(Date.now() - 72 * 3_600_000).toISOString();
    writeFileSync(manifestFile, JSON.stringify(m, null, 2));
    const r = await doctor(['--database-url', db.url, '--backup-dir', dir]);
    expect(r.code, r.stdout).toBe(0);
    expect(r.status['last backup']).toBe('warn');
    expect(r.detail['last backup']).toMatch(/, 72 h 0\d min old, verified quick: older than 26 h$/);
    expect(r.report.checks.find((c) => c.name === 'last backup')!.fix).toMatch(/^Run pgvector-backup backup/);
    // 80 h is enough.
    const ok = await doctor(['--database-url', db.url, '--backup-dir', dir, '--max-age-hours', '80']);
    expect(ok.status['last backup']).toBe('ok');
  });
});

describe('pushgateway', () => {
  test('down (nothing listens on the port): exit 1, pushgateway fails, the rest is ok', async () => {
    const port = await freePort();
    const r = await doctor(['--database-url', db.url, '--backup-dir', backupDir, '--metrics-file', metricsFile, '--pushgateway-url', `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.status.pushgateway).toBe('fail');
    expect(r.detail.pushgateway).toBe(`cannot reach the Pushgateway at 127.0.0.1:${port}: ECONNREFUSED`);
    expect(r.report.checks.filter((c) => c.status === 'fail').map((c) => c.name)).toEqual(['pushgateway']);
  });

  test('up (the real Pushgateway) with credentials in the URL: ok, and they never appear', async () => {
    const u = new URL(gw.url);
    u.username = 'backup';
    u.password = 'gw-Secret-42';
    const r = await doctor(['--database-url', db.url, '--backup-dir', backupDir, '--pushgateway-url', u.toString()]);
    expect(r.status.pushgateway).toBe('ok');
    expect(r.detail.pushgateway).toBe(r.detail.pushgateway!.replace('gw-Secret-42', ''));
    expect(r.stdout + r.stderr).not.toContain('gw-Secret-42');
  });

  test('not configured: skip', async () => {
    const r = await doctor(['--database-url', db.url, '--backup-dir', backupDir]);
    expect(r.status.pushgateway).toBe('skip');
    expect(r.code).toBe(0);
  });
});

test('bad doctor options: exit 2 with what to do', async () => {
  const r = await runCli(['doctor', '--max-age-hours', 'soon']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^error: --max-age-hours must be a number of hours such as 26/);
  const h = await runCli(['doctor', '--help']);
  expect(h.code).toBe(0);
  expect(h.stdout).toMatch(/^Usage: pgvector-backup doctor/);
});
