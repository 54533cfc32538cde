import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Manifest } from '../../src/archive/manifest.js';
import { directoryCheck, doctorCommand, judgeFreeSpace, lastBackupCheck, pushgatewayCheck, renderDoctor, type DoctorReport } from '../../src/doctor.js';
import { ConfigurationError } from '../../src/errors.js';
import { Secrets } from '../../src/logger.js';
import { freePort } from '../../src/postgres/cluster.js';
import type { Listing } from '../../src/storage/index.js';
import type { StoredBackup } from '../../src/storage/storage.js';

const GiB = 1024 ** 3;
const NOW = new Date('2026-11-25T12:00:00Z');

describe('judgeFreeSpace', () => {
  test.each<[number, number | undefined, 'ok' | 'warn' | 'fail', RegExp]>([
    [10 * GiB, undefined, 'ok', /^10\.0 GiB free on the filesystem of \/b \(no earlier backup to compare with\)$/],
    [10 * GiB, 0, 'ok', /no earlier backup/],
    [10 * GiB, 1 * GiB, 'ok', /^10\.0 GiB free .*\(10x the last backup, 1\.0 GiB\)$/],
    [2 * GiB, 1 * GiB, 'ok', /2x the last backup/],
    [1.5 * GiB, 1 * GiB, 'warn', /less than twice the last backup \(1\.0 GiB\)$/],
    [1 * GiB, 1 * GiB, 'warn', /less than twice/],
    [0.5 * GiB, 1 * GiB, 'fail', /less than the last backup \(1\.0 GiB\): the next one will not fit$/],
  ])('%s free, last %s: %s', (free, last, status, detail) => {
    const r = judgeFreeSpace(free, last, '/b');
    expect(r.status).toBe(status);
    expect(r.detail).toMatch(detail);
    expect(r.fix !== undefined).toBe(status !== 'ok');
  });
});

function stored(name: string, createdAt: string, opts: { good?: boolean; verification?: Manifest['verification']; destination?: string } = {}): StoredBackup {
  const v = opts.verification === undefined ? { level: 'full', ok: true, at: createdAt, checks: [] } : opts.verification;
  const manifest = { name, createdAt, archive: { size: 1000 }, verification: v, verifications: v ? [v] : [] } as unknown as Manifest;
  return { name, createdAt: new Date(createdAt), manifest, location: `/b/${name}.dump`, destination: opts.destination ?? 'local', good: opts.good ?? true, ref: undefined };
}

describe('lastBackupCheck', () => {
  const recent = stored('db_20261125_100000', '2026-11-25T10:00:00Z');
  const old = stored('db_20261123_100000', '2026-11-23T10:00:00Z');
  const unverified = stored('db_20261125_120000', '2026-11-25T12:00:00Z', { good: false, verification: null });
  const failed = stored('db_20261125_110000', '2026-11-25T11:00:00Z', { good: false, verification: { level: 'full', ok: false, at: '2026-11-25T11:00:00Z', checks: [], failure: 'x' } });
  test.each<[string, Listing, number, 'ok' | 'warn', RegExp]>([
    ['a recent good backup', { backups: [recent, old], failures: [] }, 26, 'ok', /^db_20261125_100000 in local, 2 h 00 min old, verified full$/],
    ['older than the threshold', { backups: [old], failures: [] }, 26, 'warn', /^db_20261123_100000 in local, 50 h 00 min old, verified full: older than 26 h$/],
    ['only an unverified one (verify: none)', { backups: [unverified], failures: [] }, 26, 'warn', /^no good backup of db in local \(the newest, db_20261125_120000, is unverified\)$/],
    ['--max-age-hours 0', { backups: [recent], failures: [] }, 0, 'warn', /older than 0 h$/],
    ['none at all', { backups: [], failures: [] }, 26, 'warn', /^no good backup of db in local$/],
    ['only a failed one', { backups: [failed], failures: [] }, 26, 'warn', /^no good backup of db in local \(the newest, db_20261125_110000, is BAD \(full\)\)$/],
    ['a newer one failed verification', { backups: [failed, recent], failures: [] }, 26, 'warn', /db_20261125_100000 .*; the newer db_20261125_110000 is BAD \(full\)$/],
    ['a destination could not be listed', { backups: [recent], failures: [{ destination: 's3://b/p', reason: 'AccessDenied' }] }, 26, 'warn', /; listing failed in s3:\/\/b\/p \(AccessDenied\)$/],
  ])('%s', (_name, listing, maxAge, status, detail) => {
    const r = lastBackupCheck(listing, 'db', ['local'], maxAge, NOW);
    expect(r.status).toBe(status);
    expect(r.detail).toMatch(detail);
    if (status === 'warn') expect(r.fix).toBeTruthy();
  });
});

describe('directoryCheck', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgvb-doctor-dir-'));

  test('an existing directory: a probe file is written and removed', async () => {
    const dir = path.join(root, 'exists');
    mkdirSync(dir);
    const r = await directoryCheck('backup-dir', dir);
    expect(r).toEqual({ name: 'backup-dir', status: 'ok', detail: `${dir} is writable` });
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a missing directory under a writable one: ok, and not created', async () => {
    const dir = path.join(root, 'missing', 'deeper');
    const r = await directoryCheck('backup-dir', dir);
    expect(r.status).toBe('ok');
    expect(r.detail).toBe(`${dir} does not exist yet; it will be created (${root} is writable)`);
    expect(existsSync(path.join(root, 'missing'))).toBe(false);
  });

  test('a file where the directory should be', async () => {
    const file = path.join(root, 'a-file');
    writeFileSync(file, 'x');
    const r = await directoryCheck('backup-dir', file);
    expect(r.status).toBe('fail');
    expect(r.detail).toBe(`${file} is a file, not a directory`);
    expect(r.fix).toMatch(/^Set backup-dir to a directory path/);
  });

  test('a file on the way to a missing directory', async () => {
    const file = path.join(root, 'another-file');
    writeFileSync(file, 'x');
    const r = await directoryCheck('metrics-file', path.join(file, 'sub', 'dir'));
    expect(r.status).toBe('fail');
    expect(r.detail).toBe(`${path.join(file, 'sub', 'dir')} cannot be created: ${file} is a file`);
    expect(r.fix).toMatch(/^Set metrics-file to a directory path/);
  });
});

describe('pushgatewayCheck against a real HTTP server', () => {
  let server: http.Server;
  let base: string;
  const seen: Array<{ url: string; auth: string | undefined }> = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ url: req.url!, auth: req.headers.authorization });
      const status = req.url!.startsWith('/ok/') ? 200 : req.url!.startsWith('/nohealth/') ? (req.url === '/nohealth/metrics' ? 200 : 404) : req.url!.startsWith('/auth/') ? 401 : 500;
      res.writeHead(status).end('body');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test('healthy: /-/healthy answers 200', async () => {
    const r = await pushgatewayCheck(`${base}/ok`);
    expect(r.status).toBe('ok');
    expect(r.detail).toMatch(/^127\.0\.0\.1:\d+\/ok answers \/-\/healthy \(HTTP 200, \d+ ms\)$/);
  });

  test('no /-/healthy (a proxy in front): /metrics instead', async () => {
    const r = await pushgatewayCheck(`${base}/nohealth/`);
    expect(r.status).toBe('ok');
    expect(r.detail).toMatch(/answers \/metrics \(HTTP 200/);
  });

  test('credentials from the URL go in a Basic header and are never shown; a token wins', async () => {
    seen.length = 0;
    const r = await pushgatewayCheck(`http://user:s3cret-pw@127.0.0.1:${new URL(base).port}/auth`);
    expect(r.status).toBe('fail');
    expect(r.detail).toMatch(/refuses the credentials \(HTTP 401\)$/);
    expect(r.fix).toMatch(/pushgateway-token/);
    expect(JSON.stringify(r)).not.toContain('s3cret-pw');
    expect(seen[0]).toEqual({ url: '/auth/-/healthy', auth: `Basic ${Buffer.from('user:s3cret-pw').toString('base64')}` });
    seen.length = 0;
    await pushgatewayCheck(`${base}/auth`, 'tok-123');
    expect(seen[0]!.auth).toBe('Bearer tok-123');
  });

  test('a server error fails', async () => {
    const r = await pushgatewayCheck(`${base}/broken`);
    expect(r.status).toBe('fail');
    expect(r.detail).toMatch(/answers HTTP 500$/);
  });

  test('nothing listening: fails with the cause', async () => {
    const port = await freePort();
    const r = await pushgatewayCheck(`http://127.0.0.1:${port}`);
    expect(r.status).toBe('fail');
    expect(r.detail).toBe(`cannot reach the Pushgateway at 127.0.0.1:${port}: ECONNREFUSED`);
    expect(r.fix).toMatch(/backups still run/);
  });
});

describe('renderDoctor', () => {
  const report = (checks: DoctorReport['checks']): DoctorReport => ({ healthy: checks.every((c) => c.status !== 'fail'), target: 'db on h:5432 as u', checks });

  test('healthy with a warning', () => {
    expect(
      renderDoctor(
        report([
          { name: 'connection', status: 'ok', detail: 'connected' },
          { name: 'pgvector', status: 'warn', detail: 'not installed', fix: 'CREATE EXTENSION vector;' },
          { name: 'pushgateway', status: 'skip', detail: 'not configured' },
        ]),
      ),
    ).toBe(
      [
        'pgvector-backup doctor: db on h:5432 as u',
        '',
        '  ok    connection   connected',
        '  warn  pgvector     not installed',
        '                     fix: CREATE EXTENSION vector;',
        '  skip  pushgateway  not configured',
        '',
        'Healthy: 1 ok, 1 warning, 1 skipped.',
        '',
      ].join('\n'),
    );
  });

  test('unhealthy names the failed checks and points at the error code', () => {
    const text = renderDoctor(
      report([
        { name: 'connection', status: 'fail', detail: 'Password authentication failed for user "u"', fix: 'Check the password', code: 'connect-password' },
        { name: 'backup-dir', status: 'fail', detail: '/x is a file', fix: 'Set backup-dir' },
        { name: 'free space', status: 'ok', detail: '1.0 GiB free' },
      ]),
    );
    expect(text).toContain('  FAIL  connection  Password authentication failed for user "u"\n                    fix: Check the password (see docs/TROUBLESHOOTING.md#connect-password)\n');
    expect(text.trimEnd().split('\n').pop()).toBe('Unhealthy: 2 failed (connection, backup-dir), 1 ok, 0 warnings.');
  });
});

describe('doctorCommand options', () => {
  const io = (out: string[]) => ({ stdout: (t: string) => out.push(t), stderr: () => undefined, env: {}, cwd: mkdtempSync(path.join(os.tmpdir(), 'pgvb-doctor-cli-')) });

  test.each([[['list']], [['backup']], [['--max-age-hours']], [['--max-age-hours', '-1']], [['--max-age-hours=soon']], [['--bogus']], [['extra']]])('%j is a usage error', async (argv) => {
    await expect(doctorCommand(argv, io([]), new Secrets())).rejects.toThrow(ConfigurationError);
  });

  test('a flag whose value is a command word is fine; the report comes out with exit 1 when nothing listens', async () => {
    const out: string[] = [];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-doctor-opt-'));
    const port = await freePort();
    const code = await doctorCommand(['--database-url', `postgresql://u:pw-secret-1@127.0.0.1:${port}/x`, '--backup-dir', path.join(dir, 'backup'), '--max-age-hours=1.5', '--json'], io(out), new Secrets());
    expect(code).toBe(1);
    const report = JSON.parse(out.join('')) as DoctorReport;
    expect(report.checks.find((c) => c.name === 'connection')).toMatchObject({ status: 'fail', code: 'connect-refused' });
    expect(report.checks.find((c) => c.name === 'backup-dir')!.detail).toBe(`${path.join(dir, 'backup')} does not exist yet; it will be created (${dir} is writable)`);
    expect(out.join('')).not.toContain('pw-secret-1');
  });
});
