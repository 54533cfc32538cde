// Progress of long CLI runs, as a user sees it: plain periodic lines (bytes, rate, elapsed) when stderr is a pipe,
// one line rewritten with \r on a terminal (util-linux `script` gives the CLI a pseudo-terminal), plain again under
// CI. The database is big enough (about 90 MiB of dump) for a dump and a restore to take a few seconds.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CLI, runCli } from '../helpers/action.js';
import { seedBigTable } from '../helpers/fixtures.js';
import { adminUrl, createDatabase, dropDatabase, testPassword } from '../helpers/pg.js';

let big: { name: string; url: string };

beforeAll(async () => {
  big = await createDatabase('progress_big', seedBigTable(100000, 64));
}, 300_000);
afterAll(async () => {
  if (big) await dropDatabase(big.name);
});

const tmp = (p: string): string => mkdtempSync(path.join(os.tmpdir(), `pgvb-progress-${p}-`));
const BYTES = String.raw`[\d.]+ (B|KiB|MiB|GiB)`;

test('a pipe gets plain lines every PGVB_PROGRESS_SECONDS: the dump (bytes, rate, elapsed) and the test restore (bytes read of the archive, %)', async () => {
  // Every 0.2 s (the shortest plain interval): the restore's data section (about 90 MiB of COPY) cannot finish before the first line, however fast
  // or loaded the machine is (a 1 s interval missed it when the data section took 0.8 s).
  const r = await runCli(['backup', '--database-url', big.url, '--backup-dir', tmp('plain'), '--verify', 'full', '--compression', 'gzip', '--test-restore-url', adminUrl()], { env: { PGVB_PROGRESS_SECONDS: '0.2' } });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).not.toContain('\r');
  const dump = r.stderr.split('\n').filter((l) => l.startsWith('  pg_dump: '));
  expect(dump.length, r.stderr).toBeGreaterThanOrEqual(1);
  // custom with gzip: pg_dump 15 compresses itself, so what it writes is what is stored (no separate "written").
  for (const l of dump) expect(l).toMatch(new RegExp(`^ {2}pg_dump: ${BYTES} dumped, ${BYTES}/s, \\d+ s$`));
  // pg_restore reads the archive itself: its read position, of the archive's size.
  const restore = r.stderr.split('\n').filter((l) => l.startsWith('  pg_restore data: '));
  expect(restore.length, r.stderr).toBeGreaterThanOrEqual(1);
  expect(restore[0]).toMatch(new RegExp(`^ {2}pg_restore data: ${BYTES} of ${BYTES} read \\(\\d+%\\), ${BYTES}/s, \\d+ s(, about .* left)?$`));
  expect(r.stderr + r.stdout).not.toContain(testPassword());
});

test('a plain-format test restore shows how much of the archive psql has been fed', async () => {
  const dir = tmp('psql');
  const b = await runCli(['backup', '--database-url', big.url, '--backup-dir', dir, '--verify', 'none', '--format', 'plain', '--compression', 'gzip'], { env: { PGVB_PROGRESS_SECONDS: '1' } });
  expect(b.code, b.stderr).toBe(0);
  // plain SQL is gzipped here: both sizes.
  expect(b.stderr).toMatch(new RegExp(`^ {2}pg_dump: ${BYTES} dumped, ${BYTES} written, ${BYTES}/s, \\d+ s$`, 'm'));
  const r = await runCli(['test-restore', '--database-url', big.url, '--backup-dir', dir, '--test-restore-url', adminUrl()], { env: { PGVB_PROGRESS_SECONDS: '0.2' } });
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('  psql: '));
  expect(lines.length, r.stderr).toBeGreaterThanOrEqual(1);
  expect(lines[0]).toMatch(new RegExp(`^ {2}psql: ${BYTES} of ${BYTES} read \\(\\d+%\\), ${BYTES}/s, \\d+ s`));
});

/** Runs the CLI under a pseudo-terminal (script -qec) with the connection in PG* variables, not argv. */
function onTerminal(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  const u = new URL(big.url.replace(/^postgresql:/, 'http:'));
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, CLI, ...args].map(q).join(' ');
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(GITHUB_|INPUT_|ACTIONS_|RUNNER_|PG|BACKUP_|DB_NAME|CI$)/.test(k)) base[k] = v;
  const childEnv = {
    ...base,
    PGHOST: u.hostname,
    PGPORT: u.port,
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: big.name,
    TERM: 'xterm',
    ...env,
  };
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

test('on a terminal the progress line is rewritten in place (\\r) and erased at the end', async () => {
  const r = await onTerminal(['backup', '--backup-dir', tmp('tty'), '--verify', 'quick', '--compression', 'gzip'], { PGVB_PROGRESS_SECONDS: '1' });
  expect(r.code, r.out).toBe(0);
  const redraws = r.out.split('\r\x1b[2K').filter((s) => s.startsWith('  pg_dump: '));
  expect(r.out).toMatch(/Backup progress_big_\w+: /);
  // Every 0.5 s on a terminal: more redraws than a plain line every second would give.
  expect(redraws.length, JSON.stringify(r.out.slice(0, 2000))).toBeGreaterThanOrEqual(3);
  for (const s of redraws) expect(s).toMatch(new RegExp(`^ {2}pg_dump: ${BYTES} dumped, ${BYTES}/s, \\d+ s`));
  // No progress line ever ends in a newline: it is overwritten, then erased before the next log line.
  expect(r.out).not.toMatch(/ {2}pg_dump: [^\r\n]*\d+ s\r?\n/);
  expect(r.out).toMatch(/Backup progress_big_\w+: /);
  expect(r.out).not.toContain(testPassword());
});

test('on a terminal under CI, plain lines again', async () => {
  const r = await onTerminal(['backup', '--backup-dir', tmp('tty-ci'), '--verify', 'none', '--compression', 'gzip'], { PGVB_PROGRESS_SECONDS: '1', CI: 'true' });
  expect(r.code, r.out).toBe(0);
  expect(r.out).not.toContain('\x1b[2K');
  expect(r.out).toMatch(new RegExp(`^ {2}pg_dump: ${BYTES} dumped, ${BYTES}/s, \\d+ s\\r?$`, 'm'));
});
