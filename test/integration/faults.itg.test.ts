// Bad input and faults: each exits non-zero with one line that says what to do, leaves no archive or manifest
// under a final name, and leaves earlier backups byte-identical. The password never leaks.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort } from '../../src/postgres/cluster.js';
import { seedBigTable } from '../helpers/fixtures.js';
import { runAction, runCli, type RunResult } from '../helpers/action.js';
import { adminUrl, createDatabase, dropDatabase, testPassword, urlFor, withClient } from '../helpers/pg.js';

let db: { name: string; url: string };
let big: { name: string; url: string };
let backupDir: string;
let before: Record<string, string>;
let goodName: string;

function snapshotDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    if (statSync(p).isFile()) out[f] = createHash('sha256').update(readFileSync(p)).digest('hex');
  }
  return out;
}

beforeAll(async () => {
  db = await createDatabase('fault_db', { documents: 200, dimensions: 16 });
  big = await createDatabase('fault_big', seedBigTable(150000, 32));
  backupDir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-faults-'));
  const good = await runAction({ 'database-url': db.url, 'backup-dir': backupDir, verify: 'none' });
  expect(good.code, good.stdout).toBe(0);
  goodName = good.outputs['backup-name']!;
  before = snapshotDir(backupDir);
});

afterAll(async () => {
  await dropDatabase(db.name);
  await dropDatabase(big.name);
});

/** The one line a user reads: the ::error:: annotation from setFailed. */
function errorLine(r: RunResult): string {
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
  return lines[lines.length - 1] ?? '';
}

function expectCleanFailure(r: RunResult, pattern: RegExp, dir = backupDir): void {
  expect(r.code, r.stdout + r.stderr).not.toBe(0);
  expect(errorLine(r)).toMatch(pattern);
  // No stack traces for expected failures.
  expect(r.stdout + r.stderr).not.toMatch(/\n\s+at .*\.js:\d+:\d+/);
  if (dir === backupDir) expect(snapshotDir(backupDir)).toEqual(before);
  expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
}

describe('bad input', () => {
  test.each([
    ['not a URL at all', 'mysql://root@localhost/db', /not a PostgreSQL connection string.*postgresql:\/\/user:password@host:5432\/dbname/],
    ['a bad port', 'postgresql://u@localhost:99999/db', /not a valid URL/],
  ])('database-url %s', async (_what, url, pattern) => {
    const r = await runAction({ 'database-url': url, 'backup-dir': backupDir });
    expectCleanFailure(r, pattern);
  });

  test('an invalid retention-days (action exit 1, CLI exit 2)', async () => {
    const r = await runAction({ 'database-url': db.url, 'backup-dir': backupDir, 'retention-days': 'seven' });
    expectCleanFailure(r, /retention-days must be a whole number from 0 to 36500; got "seven"/);
    const c = await runCli(['backup', '--retention', '-3', '--database-url', db.url, '--backup-dir', backupDir]);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/retention-days must be a whole number/);
    expect(snapshotDir(backupDir)).toEqual(before);
  });

  test('an unknown CLI option is a usage error (exit 2)', async () => {
    const c = await runCli(['backup', '--no-such-flag']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/Unknown option --no-such-flag/);
  });

  test('a transaction-mode pooler is refused with the fix', async () => {
    const r = await runAction({ 'database-url': 'postgresql://u:p@aws-0-eu-central-1.pooler.supabase.com:6543/postgres', 'backup-dir': backupDir });
    expectCleanFailure(r, /transaction-mode pooler.*session-mode pooler \(port 5432\)/);
  });
});

describe('connection faults', () => {
  test('unreachable host (connection refused)', async () => {
    const port = await freePort();
    const r = await runAction({ 'database-url': `postgresql://postgres:x@127.0.0.1:${port}/postgres`, 'backup-dir': backupDir });
    expectCleanFailure(r, new RegExp(`Cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port}: connection refused\\. Check the host and port`));
  });

  test('wrong password', async () => {
    const u = new URL(db.url.replace(/^postgresql:/, 'http:'));
    u.password = 'definitely-wrong';
    const r = await runAction({ 'database-url': u.toString().replace(/^http:/, 'postgresql:'), 'backup-dir': backupDir });
    expectCleanFailure(r, /Password authentication failed for user "postgres"\. Check the password/);
    expect(r.visible + r.stderr).not.toContain('definitely-wrong');
  });

  test('missing database', async () => {
    const r = await runAction({ 'database-url': urlFor('no_such_db_here'), 'backup-dir': backupDir });
    expectCleanFailure(r, /Database "no_such_db_here" does not exist.*Check the database name/);
  });
});

describe('tool faults', () => {
  test('pg_dump missing', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'pgvb-nobin-'));
    const r = await runAction({ 'database-url': db.url, 'backup-dir': backupDir, 'pg-bin-dir': empty });
    expectCleanFailure(r, /has no working pg_dump \(needed: version 1\d or newer\).*Point pg-bin-dir/);
  });

  test('pg_dump older than the server', async () => {
    const fake = mkdtempSync(path.join(os.tmpdir(), 'pgvb-oldbin-'));
    writeFileSync(path.join(fake, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 12.22"\n');
    chmodSync(path.join(fake, 'pg_dump'), 0o755);
    const r = await runAction({ 'database-url': db.url, 'backup-dir': backupDir, 'pg-bin-dir': fake });
    expectCleanFailure(r, /pg_dump 12\.22 in pg-bin-dir .* is older than the PostgreSQL 1\d server/);
  });

  test('pg_dump killed mid-stream (its backend terminated)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-kill-'));
    let killed = 0;
    let done = false;
    const killer = withClient(adminUrl(), async (c) => {
      while (!done && killed === 0) {
        const r = await c.query(
          `SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pgvector-backup pg_dump' AND query ILIKE 'COPY%'`,
          [big.name],
        );
        killed += r.rows.filter((x) => x.t).length;
        await new Promise((res) => setTimeout(res, 10));
      }
    });
    const r = await runAction({ 'database-url': big.url, 'backup-dir': dir, compression: 'none', verify: 'none' });
    done = true;
    await killer;
    expect(killed).toBe(1);
    expectCleanFailure(r, /pg_dump exited with code 1: .*(terminat|connection).*run the backup again/i, dir);
    expect(readdirSync(dir)).toEqual([]);
  });

  // zstd reads pg_dump's output directly (issue 8): its failures and its counts are checked like pg_dump's.
  const hasZstd = spawnSync('zstd', ['--version']).status === 0;
  test.runIf(hasZstd)('pg_dump and zstd killed mid-stream: pg_dump killed with zstd still fine, and zstd dying mid-stream', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-zstdfail-'));
    // A zstd that compresses the first 2 MB and then dies, as an OOM kill would.
    const fake = path.join(dir, 'zstd-dies');
    writeFileSync(fake, '#!/bin/sh\nhead -c 2000000 | zstd -q -c >/dev/null\necho "zstd: out of memory" >&2\nexit 137\n');
    chmodSync(fake, 0o755);
    const out = path.join(dir, 'backups');
    const r = await runAction({ 'database-url': big.url, 'backup-dir': out, compression: 'zstd', verify: 'none' }, { env: { PGVB_ZSTD: fake } });
    expectCleanFailure(r, /zstd exited with code 137 while compressing the dump: zstd: out of memory/, out);
    expect(readdirSync(out).filter((f) => !f.startsWith('metrics'))).toEqual([]);
    // No pg_dump of this database left writing into a pipe nobody reads (other test files dump other databases).
    const left = spawnSync('pgrep', ['-f', `pg_dump.*--snapshot`])
      .stdout.toString()
      .split('\n')
      .filter(Boolean)
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`PGDATABASE=${big.name}`);
        } catch {
          return false;
        }
      });
    expect(left).toEqual([]);
  });

  test.runIf(hasZstd)("the manifest's dumped bytes are zstd's exact count, also from a zstd that does not print it", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-zstdcount-'));
    const quiet = path.join(dir, 'zstd-quiet');
    // The real zstd with its report lines removed: the count must then come from decompressing the file.
    writeFileSync(quiet, `#!/bin/bash\nset -o pipefail\n${spawnSync('sh', ['-c', 'command -v zstd']).stdout.toString().trim()} "$@" 2> >(grep -v ' B => ' >&2)\n`);
    chmodSync(quiet, 0o755);
    for (const env of [{}, { PGVB_ZSTD: quiet }]) {
      const out = mkdtempSync(path.join(dir, 'b-'));
      const r = await runAction({ 'database-url': db.url, 'backup-dir': out, compression: 'zstd', verify: 'quick' }, { env });
      expect(r.code, r.stdout).toBe(0);
      const m = JSON.parse(readFileSync(r.outputs['manifest-path']!, 'utf8')) as { archive: { dumpBytes: number; size: number } };
      const plain = execFileSync('zstd', ['-dc', r.outputs['backup-path']!], { maxBuffer: 1 << 30 });
      expect(m.archive.dumpBytes).toBe(plain.length);
      expect(plain.subarray(0, 5).toString()).toBe('PGDMP');
      expect(m.archive.size).toBe(statSync(r.outputs['backup-path']!).size);
    }
  });
});

describe('storage faults', () => {
  test('backup-dir is not a directory', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgvb-file-')), 'regular-file');
    writeFileSync(file, 'x');
    const r = await runAction({ 'database-url': db.url, 'backup-dir': path.join(file, 'sub') });
    expectCleanFailure(r, /backup-dir .* is not a usable directory \(ENOTDIR\)/);
  });

  const canMount = process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0;
  test.skipIf(!canMount)('disk full (a 256 KiB tmpfs as backup-dir; skipped where mount is not allowed)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-full-'));
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
    if (m.status !== 0) return; // a sandbox that refuses mounts: nothing to test here
    try {
      // Written by this process (none), by the zstd program straight into the file, and by Node's zstd.
      for (const [compression, env] of [['none', {}], ['zstd', {}], ['zstd', { PGVB_ZSTD: 'node' }]] as const) {
        const r = await runAction({ 'database-url': big.url, 'backup-dir': dir, compression, verify: 'none' }, { env });
        expectCleanFailure(r, /No space left on the device of .*Free space there/, dir);
        expect(readdirSync(dir)).toEqual([]);
      }
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});

test('a lock held by another session fails within lock-wait-timeout, naming the table', async () => {
  await withClient(db.url, async (locker) => {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE');
    const t0 = Date.now();
    const r = await runAction({ 'database-url': db.url, 'backup-dir': backupDir, 'lock-wait-timeout': '1s' });
    const took = Date.now() - t0;
    await locker.query('ROLLBACK');
    expectCleanFailure(r, /Timed out after lock-wait-timeout \(1s\) waiting for a lock on table public\.chunks.*raise lock-wait-timeout/);
    expect(took).toBeLessThan(30_000);
  });
});

describe('the password never leaks', () => {
  const password = (): string => testPassword();
  const forms = (p: string): string[] => [p, encodeURIComponent(p), Buffer.from(p).toString('base64'), p.replace(/[^A-Za-z0-9]/g, (c) => encodeURIComponent(c))];

  function expectNoLeak(r: RunResult, extra: string[] = []): void {
    const p = password();
    if (!p) return; // an external server whose password we do not know
    const everything = [r.visible, r.stderr, JSON.stringify(r.outputs), r.summary, ...extra].join('\n');
    for (const f of forms(p)) expect(everything).not.toContain(f);
    for (const argv of r.argvSeen) for (const f of forms(p)) expect(argv).not.toContain(f);
  }

  test('through a successful backup with step debug on', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-secret-'));
    const metrics = path.join(dir, 'backup.prom');
    const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'full', 'metrics-file': metrics }, { env: { ACTIONS_STEP_DEBUG: 'true', RUNNER_DEBUG: '1' }, watchArgv: true });
    expect(r.code, r.stdout).toBe(0);
    expect(r.argvSeen.some((a) => a.includes('pg_dump'))).toBe(true);
    const manifest = readFileSync(r.outputs['manifest-path']!, 'utf8');
    // The metrics (labels included) and every file name in backup-dir (the object names uploads use).
    const prom = readFileSync(metrics, 'utf8');
    expect(prom).toMatch(/_success\{[^}]*database="/);
    expectNoLeak(r, [manifest, prom, readdirSync(dir).join('\n')]);
    // The runner is told to mask it.
    if (password()) expect(r.stdout).toContain('::add-mask::');
  });

  test('through a failed dump and a failed login', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-secret2-'));
    const failedDump = await withClient(db.url, async (locker) => {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE documents IN ACCESS EXCLUSIVE MODE');
      const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, 'lock-wait-timeout': '500ms' }, { env: { ACTIONS_STEP_DEBUG: 'true' }, watchArgv: true });
      await locker.query('ROLLBACK');
      return r;
    });
    expect(failedDump.code).not.toBe(0);
    expectNoLeak(failedDump);
    const u = new URL(db.url.replace(/^postgresql:/, 'http:'));
    u.username = 'no_such_user';
    const failedLogin = await runAction({ 'database-url': u.toString().replace(/^http:/, 'postgresql:'), 'backup-dir': dir }, { env: { ACTIONS_STEP_DEBUG: 'true' } });
    expect(failedLogin.code).not.toBe(0);
    expectNoLeak(failedLogin);
    // No passfile or other secret-bearing file remains.
    expect(readdirSync(dir)).toEqual([]);
  });
});


