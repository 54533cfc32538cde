// `schedule`, `init-workflow` and the Docker service's commands, run as a user runs them: the bundled CLI as a
// subprocess, the crontab through CRONTAB=<a crontab stand-in over a temporary file>, the installed entry executed
// the way cron executes it (cron's % translation, /bin/sh, cron's bare environment), against the test server.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { readBlock, removeBlock, renderBlock } from '../../src/schedule/crontab.js';
import { buildCronLine, parseCronLine } from '../../src/schedule/line.js';
import { CLI, ROOT } from '../helpers/action.js';
import { composeBackupCommand, dockerfileExec } from '../helpers/compose.js';
import { cronCommand, cronJobEnv, fakeCrontab } from '../helpers/cron.js';
import { createDatabase, dropDatabase, testPassword } from '../helpers/pg.js';

let db: { name: string; url: string };
/** A copy of dist/cli, the way a user has the package installed (and safe from a rebuild of dist/ meanwhile). */
let installed: string;

beforeAll(async () => {
  db = await createDatabase('sched', async (c) => {
    await c.query(`CREATE EXTENSION IF NOT EXISTS vector;
      CREATE TABLE documents (id bigserial PRIMARY KEY, body text, embedding vector(8));
      INSERT INTO documents (body, embedding) SELECT 'doc ' || g, array_fill(g::real, ARRAY[8])::vector FROM generate_series(1, 200) g;
      CREATE INDEX ON documents USING hnsw (embedding vector_l2_ops);`);
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-install-'));
  installed = path.join(dir, 'dist', 'cli', 'index.js');
  for (let attempt = 0; ; attempt++) {
    try {
      cpSync(path.dirname(CLI), path.dirname(installed), { recursive: true });
      if (spawnSync(process.execPath, [installed, '--version']).status === 0) break;
    } catch {
      /* dist/ is being rebuilt */
    }
    if (attempt > 60) throw new Error('dist/cli/index.js is missing: run npm run build');
    await new Promise((r) => setTimeout(r, 5000));
  }
});
afterAll(async () => {
  if (db) await dropDatabase(db.name);
});

function pgEnv(url: string): Record<string, string> {
  const u = new URL(url.replace(/^postgresql:/, 'http:'));
  return {
    PGHOST: u.hostname,
    PGPORT: u.port,
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
  };
}

/** The environment of a user's shell, without settings of ours inherited from the machine. */
function shellEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(GITHUB_|INPUT_|ACTIONS_|RUNNER_|PG|BACKUP_|AWS_|DB_NAME$|DATABASE_URL$|METRICS_DIR$|CRONTAB$)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A copy of this Node beside the installed CLI (world-readable directories), for runs as another user. */
function userNode(): string {
  const copy = path.join(path.dirname(path.dirname(path.dirname(installed))), 'bin', 'node');
  if (!existsSync(copy)) {
    mkdirSync(path.dirname(copy), { recursive: true });
    copyFileSync(process.execPath, copy);
    chmodSync(copy, 0o755);
  }
  return copy;
}

function cli(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const ids = opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.gid! };
    // Another user runs Node from beside the installed copy: the checkout (and the Node in it) may be in a private
    // (0700) directory that only its owner can enter.
    const node = opts.uid === undefined ? process.execPath : userNode();
    const child = spawn(node, [installed, ...args], { cwd: opts.cwd, env: shellEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'], ...ids });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const tmp = (prefix: string): string => realpathSync(mkdtempSync(path.join(os.tmpdir(), prefix)));
const today = (): string => spawnSync('date', ['+backup_%Y%m%d.log']).stdout.toString().trim();

/** Runs the installed entry exactly as cron does; returns the shell's exit code. */
function runAsCron(line: string): number | null {
  const { command, stdin } = cronCommand(line);
  expect(stdin, 'an unescaped % would cut the command').toBeUndefined();
  return spawnSync('/bin/sh', ['-c', command], { env: cronJobEnv(), stdio: 'ignore' }).status;
}

// Lines a user already has: CRLF, another tool's block, a last line without its newline.
const USER_LINES = 'MAILTO=ops@example.com\r\n# nightly copy\n15 3 * * * rsync -a /srv /mnt\n# BEGIN other-tool\n1 1 * * * other\n# END other-tool\n@reboot /usr/local/bin/up';

describe('schedule install / remove', () => {
  test('install twice: one block, the entry runs this CLI by absolute paths from here; remove leaves every other line as it was', async () => {
    const work = tmp('pgvb-sched-');
    const ct = fakeCrontab(work);
    ct.write(USER_LINES);
    const env = { CRONTAB: ct.command };
    const args = ['schedule', 'install', '--retention', '14', '--backup-dir', 'backups/postgres'];
    const first = await cli(args, { cwd: work, env });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('Installed in the crontab');
    expect(first.stdout).toMatch(/Next runs: \d{4}-\d\d-\d\d 02:00 /);
    const second = await cli(args, { cwd: work, env });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('Already installed');

    const text = ct.read()!;
    expect(text.split('# BEGIN pgvector-backup schedule').length).toBe(2);
    const lines = readBlock(text)!;
    expect(lines).toHaveLength(1);
    expect(parseCronLine(lines[0]!)).toEqual({
      time: '0 2 * * *',
      cwd: work,
      node: process.execPath,
      script: installed,
      args: ['--retention-days', '14', '--backup-dir', 'backups/postgres'],
      logDir: 'logs',
    });
    expect(lines[0]).toContain('>> logs/backup_$(date +\\%Y\\%m\\%d).log 2>&1');
    expect(existsSync(path.join(work, 'logs'))).toBe(true);
    // The user's lines, byte for byte (the last one got the newline cron needs).
    expect(removeBlock(text).text).toBe(USER_LINES + '\n');

    const removed = await cli(['schedule', '--remove'], { cwd: work, env });
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('Removed the pgvector-backup entry');
    expect(ct.read()).toBe(USER_LINES + '\n');
    const status = await cli(['schedule', '--status'], { cwd: work, env });
    expect(status.code).toBe(1);
    expect(status.stdout).toContain('Not installed');
    const again = await cli(['schedule', 'remove'], { cwd: work, env });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to remove');
    expect(ct.read()).toBe(USER_LINES + '\n');
  });

  test('--time: a custom schedule replaces the entry; an invalid one is refused and changes nothing', async () => {
    const work = tmp('pgvb-sched-');
    const ct = fakeCrontab(work);
    const env = { CRONTAB: ct.command };
    const six = await cli(['schedule', 'install', '--time', '0 */6 * * *'], { cwd: work, env });
    expect(six.code, six.stderr).toBe(0);
    expect(readBlock(ct.read()!)![0]).toMatch(/^0 \*\/6 \* \* \* cd /);
    const times = [...six.stdout.matchAll(/(\d{4}-\d\d-\d\d) (\d\d):(\d\d)/g)];
    expect(times).toHaveLength(3);
    for (const t of times) expect([Number(t[2]) % 6, t[3]]).toEqual([0, '00']);

    const before = ct.read();
    const bad = ['0 2 * *', '*/5 * * * * *', '0 25 * * *', 'daily'];
    const refused = await Promise.all(bad.map((time) => cli(['schedule', 'install', '--time', time], { cwd: work, env })));
    refused.forEach((r, i) => {
      expect(r.code, bad[i]).toBe(2);
      expect(r.stderr).toContain(`error: --time "${bad[i]}" is not a valid cron schedule`);
      expect(r.stderr).toContain('Use five fields (minute hour day-of-month month day-of-week)');
    });
    expect(ct.read()).toBe(before);
    // The old kit's spelling: setup_cron.sh --time "..." installs.
    const weekly = await cli(['schedule', '--time', '0 3 * * 0'], { cwd: work, env });
    expect(weekly.code, weekly.stderr).toBe(0);
    expect(weekly.stdout).toContain('Replaced in the crontab');
    expect(readBlock(ct.read()!)).toHaveLength(1);
    expect(readBlock(ct.read()!)![0]).toMatch(/^0 3 \* \* 0 /);
    // Options the backup does not have fail now, not at 3 AM.
    const typo = await cli(['schedule', 'install', '--format', 'zip'], { cwd: work, env });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('Input format must be one of custom, plain, directory');
  });

  test('secrets never reach the crontab: a password in an option is refused; shell-only settings are pointed at .env', async () => {
    const work = tmp('pgvb-sched-');
    const ct = fakeCrontab(work);
    const env = { CRONTAB: ct.command };
    const pw = 'Pw-in-the-url-7';
    const r = await cli(['schedule', 'install', '--database-url', `postgresql://backup:${pw}@db.example/vector_db`], { cwd: work, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`Put the password in ${work}/.env (PGPASSWORD=..., or DATABASE_URL=postgresql://...) or in ~/.pgpass`);
    expect(r.stdout + r.stderr).not.toContain(pw);
    expect(ct.read()).toBeUndefined();

    const shell = await cli(['schedule', 'install', '--database-url', 'postgresql://backup@db.example/vector_db'], { cwd: work, env: { ...env, PGPASSWORD: pw } });
    expect(shell.code, shell.stderr).toBe(0);
    expect(shell.stderr).toContain(`warning: PGPASSWORD is set in this shell, but cron does not pass a shell's environment on: put it in ${work}/.env`);
    expect(ct.read()).not.toContain(pw);
  });

  test('crontab failures are clear errors', async () => {
    const work = tmp('pgvb-sched-');
    const missing = await cli(['schedule', 'status'], { cwd: work, env: { CRONTAB: path.join(work, 'no-such-crontab') } });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('Cannot run the CRONTAB command');
    // No crontab on PATH at all (the CLI itself is started by absolute path).
    const empty = path.join(work, 'empty-path');
    mkdirSync(empty);
    const none = await cli(['schedule', 'install'], { cwd: work, env: { PATH: empty } });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('error: crontab is not installed. Install cron (Debian/Ubuntu: sudo apt-get install cron');
    const denied = fakeCrontab(work, { failWith: "You (alice) are not allowed to use this program (crontab)" });
    const r = await cli(['schedule', 'install'], { cwd: work, env: { CRONTAB: denied.command } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('-l failed (exit 1): You (alice) are not allowed to use this program (crontab). Check that you may use cron (/etc/cron.allow and /etc/cron.deny)');
  });
});

// Debian's real crontab for a throwaway user: its "no crontab for" message and `crontab -` behave as we expect.
const realCrontab = ['/usr/bin/crontab', '/bin/crontab'].find((f) => existsSync(f));
const canUseRealCrontab = !!realCrontab && process.getuid?.() === 0 && existsSync('/usr/sbin/useradd');
test.skipIf(!canUseRealCrontab)("the real crontab, for a temporary user (skipped without root and Debian's cron package)", async () => {
  const user = `pgvbcron${randomBytes(3).toString('hex')}`;
  execFileSync('/usr/sbin/useradd', ['--no-create-home', '--shell', '/bin/sh', user]);
  try {
    const uid = Number(execFileSync('id', ['-u', user]).toString());
    const gid = Number(execFileSync('id', ['-g', user]).toString());
    const work = tmp('pgvb-real-');
    chownSync(work, uid, gid);
    // The user runs the installed copy: make its directories readable.
    for (let d = path.dirname(installed); d !== os.tmpdir() && d !== '/'; d = path.dirname(d)) chmodSync(d, 0o755);
    const env = { HOME: work, USER: user, LOGNAME: user };
    const asUser = { cwd: work, env, uid, gid };
    const listAsRoot = (): string => spawnSync(realCrontab!, ['-l', '-u', user]).stdout.toString();

    const empty = await cli(['schedule', 'status'], asUser);
    expect(empty.code, empty.stderr).toBe(1);
    expect(empty.stdout).toContain(`Not installed in the crontab of ${user}`);
    execFileSync(realCrontab!, ['-u', user, '-'], { input: '# mine\n17 5 * * * /bin/true\n' });
    const install = await cli(['schedule', 'install', '--time', '0 */6 * * *'], asUser);
    expect(install.code, install.stderr).toBe(0);
    expect(install.stdout).toContain(`Installed in the crontab of ${user}`);
    const listed = listAsRoot();
    expect(listed.startsWith('# mine\n17 5 * * * /bin/true\n# BEGIN pgvector-backup schedule')).toBe(true);
    expect(readBlock(listed)![0]).toMatch(new RegExp(`^0 \\*/6 \\* \\* \\* cd ${work} && `));
    const status = await cli(['schedule', 'status'], asUser);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toContain(`Installed in the crontab of ${user}:`);
    const removed = await cli(['schedule', 'remove'], asUser);
    expect(removed.code, removed.stderr).toBe(0);
    expect(listAsRoot()).toBe('# mine\n17 5 * * * /bin/true\n');
  } finally {
    spawnSync(realCrontab!, ['-r', '-u', user]);
    spawnSync('/usr/sbin/userdel', [user]);
  }
});

test('status before and after the entry runs as cron runs it: the last backup, the log, the last run from the metrics', async () => {
  const work = tmp('pgvb-sched-');
  const ct = fakeCrontab(work);
  const env = { CRONTAB: ct.command };
  const conn = pgEnv(db.url);
  // The old kit's .env: the secrets stay here.
  const dotenv = (password: string): void =>
    writeFileSync(path.join(work, '.env'), `PGHOST=${conn.PGHOST}\nPGPORT=${conn.PGPORT}\nPGUSER=${conn.PGUSER}\nPGPASSWORD=${password}\nDB_NAME=${conn.PGDATABASE}\n`);
  dotenv(conn.PGPASSWORD!);
  const install = await cli(['schedule', 'install', '--verify', 'quick'], { cwd: work, env });
  expect(install.code, install.stderr).toBe(0);
  expect(install.stderr).toBe('');
  const line = readBlock(ct.read()!)![0]!;
  for (const form of [testPassword(), encodeURIComponent(testPassword())]) expect(ct.read()).not.toContain(form);

  const before = await cli(['schedule', 'status'], { cwd: work, env });
  expect(before.code, before.stdout + before.stderr).toBe(0);
  expect(before.stdout).toContain(`Installed in the crontab (${ct.command}):\n  ${line}\n`);
  expect(before.stdout).toMatch(/Next runs: \d{4}-\d\d-\d\d 02:00 \([^)]*\), \d{4}-\d\d-\d\d 02:00 \([^)]*\), \d{4}-\d\d-\d\d 02:00 /);
  expect(before.stdout).toContain(`backups in ${work}/backups/postgres (database ${db.name})`);
  expect(before.stdout).toContain(`Last backup: none in ${work}/backups/postgres yet`);
  expect(before.stdout).toContain(`Last run: no result in ${work}/metrics/backup.prom yet`);

  expect(runAsCron(line)).toBe(0);
  const log = path.join(work, 'logs', today());
  const firstLog = readFileSync(log, 'utf8');
  expect(firstLog).toMatch(new RegExp(`backup-name=${db.name}_\\d{8}_\\d{6}`));
  expect(firstLog).toContain('verified=true');
  const backups = readdirSync(path.join(work, 'backups', 'postgres'));
  expect(backups.filter((f) => f.endsWith('.json'))).toHaveLength(1);

  const after = await cli(['schedule', 'status'], { cwd: work, env });
  expect(after.code, after.stdout + after.stderr).toBe(0);
  expect(after.stdout).toMatch(new RegExp(`Last backup: ${db.name}_\\d{8}_\\d{6}, \\d+ s ago, verified \\(quick\\)`));
  expect(after.stdout).toContain(`Last log: ${log}`);
  expect(after.stdout).toMatch(new RegExp(`Last run: succeeded \\(${db.name}, local\\), \\d+ s ago; last failure never`));

  // A run that fails (the password in .env is wrong now): status says so and exits 1; the log has both runs.
  dotenv('not-the-password');
  expect(runAsCron(line)).not.toBe(0);
  const failed = await cli(['schedule', 'status'], { cwd: work, env });
  expect(failed.code).toBe(1);
  expect(failed.stdout).toMatch(new RegExp(`Last run: FAILED \\(${db.name}, local\\) \\d+ s ago; last success \\d+ s ago`));
  const bothLogs = readFileSync(log, 'utf8');
  expect(bothLogs.startsWith(firstLog)).toBe(true);
  expect(bothLogs.slice(firstLog.length)).toMatch(/error: Password authentication failed for user/);
  for (const form of [testPassword(), encodeURIComponent(testPassword())]) expect(bothLogs).not.toContain(form);
});

test('status: an entry whose program is gone is reported, and one edited by hand is shown as it is', async () => {
  const work = tmp('pgvb-sched-');
  const ct = fakeCrontab(work);
  const gone = path.join(work, 'old-install', 'dist', 'cli', 'index.js');
  ct.write(renderBlock([buildCronLine({ time: '0 2 * * *', cwd: work, node: process.execPath, script: gone, args: [], logDir: 'logs' })]));
  const r = await cli(['schedule', 'status'], { cwd: work, env: { CRONTAB: ct.command } });
  expect(r.code).toBe(1);
  expect(r.stdout).toContain(`The entry's pgvector-backup ${gone} no longer exists, so the job fails: run pgvector-backup schedule install again`);
  ct.write(renderBlock(['30 1 * * * /usr/local/bin/my-backup.sh']));
  const edited = await cli(['schedule', 'status'], { cwd: work, env: { CRONTAB: ct.command } });
  expect(edited.code).toBe(0);
  expect(edited.stdout).toContain('  30 1 * * * /usr/local/bin/my-backup.sh\n');
  expect(edited.stdout).toMatch(/Next runs: \d{4}-\d\d-\d\d 01:30 /);
  expect(edited.stdout).toContain('The entry was edited by hand');
});

describe('schedule run (the Docker service)', () => {
  test("compose.yaml's backup command, run as a subprocess: sleeps until the time, runs the backup, logs it; SIGTERM stops it", async () => {
    const work = tmp('pgvb-run-');
    // The service's command with a schedule a few seconds away; the test restore's server exists only in compose.
    const argv = [...composeBackupCommand({ BACKUP_SCHEDULE: '*/4 * * * * *' }), '--verify', 'quick'];
    expect(argv.slice(0, 4)).toEqual(['schedule', 'run', '--time', '*/4 * * * * *']);
    const child = spawn(process.execPath, [installed, ...argv], { cwd: work, env: shellEnv(pgEnv(db.url)), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const deadline = Date.now() + 90_000;
    while (!/backup finished \(ok\)/.test(stderr) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    const code = await exited;
    expect(stderr, stdout).toMatch(/backup finished \(ok\)/);
    expect(code).toBe(0);
    expect(stderr).toMatch(/\[schedule [^\]]+\] schedule "\*\/4 \* \* \* \* \*": backups run in /);
    expect(stderr).toMatch(/next backup at \d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? /);
    expect(stderr).toContain('] stopped');
    // The backup's own output streams through, and the day's log file has it too.
    expect(stdout).toMatch(new RegExp(`backup-name=${db.name}_\\d{8}_\\d{6}`));
    const logs = readdirSync(path.join(work, 'logs'));
    expect(logs).toEqual([today()]);
    const log = readFileSync(path.join(work, 'logs', logs[0]!), 'utf8');
    const at = /== scheduled backup at \d{4}-\d\d-\d\d \d\d:\d\d(?::(\d\d))? /.exec(log);
    expect(at).not.toBeNull();
    expect(Number(at![1] ?? 0) % 4).toBe(0);
    expect(log).toContain('== backup finished (ok)');
    expect(readdirSync(path.join(work, 'backups')).filter((f) => f.endsWith('.json')).length).toBeGreaterThanOrEqual(1);
    for (const form of [testPassword(), encodeURIComponent(testPassword())]) expect(stdout + stderr + log).not.toContain(form);
  });

  test('a bad option fails at start, not at the first scheduled time', async () => {
    const r = await cli(['schedule', 'run', '--time', '0 2 * * *', '--compression', 'lzma'], { cwd: tmp('pgvb-run-') });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Input compression must be one of gzip, zstd, none');
  });

  test("the Dockerfile's command and the docker workflow's commands exist in this CLI", async () => {
    expect(dockerfileExec('ENTRYPOINT')).toEqual(['node', '/opt/pgvector-backup/dist/cli/index.js']);
    const cmd = await cli([...dockerfileExec('CMD'), '--help'], { cwd: tmp('pgvb-run-') });
    expect(cmd.code).toBe(0);
    expect(cmd.stdout).toContain('pgvector-backup schedule run [--time "0 2 * * *"]');
    const compose = await cli([...composeBackupCommand(), '--help'], { cwd: tmp('pgvb-run-') });
    expect(compose.code).toBe(0);
    expect(compose.stdout).toContain('Usage: pgvector-backup schedule');
    const workflow = readFileSync(path.join(ROOT, '.github', 'workflows', 'docker.yml'), 'utf8');
    const runs = [...workflow.matchAll(/docker run --rm pgvector-backup:ci (.+)$/gm)].map((m) => m[1]!.split(' '));
    expect(runs.length).toBeGreaterThanOrEqual(2);
    for (const args of runs) {
      const r = await cli(args, { cwd: tmp('pgvb-run-') });
      expect(r.code, args.join(' ')).toBe(0);
    }
  });
});

describe('init-workflow', () => {
  test('writes the three workflows, refuses to overwrite without --force, overwrites with it', async () => {
    const repo = tmp('pgvb-repo-');
    mkdirSync(path.join(repo, '.git'));
    const r = await cli(['init-workflow', '--schedule', '15 4 * * 1', '--destination', 's3://my-bucket/vector_db'], { cwd: repo });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const dir = path.join(repo, '.github', 'workflows');
    expect(readdirSync(dir).sort()).toEqual(['pgvector-backup-backup.yml', 'pgvector-backup-restore.yml', 'pgvector-backup-test-restore.yml']);
    const backup = parse(readFileSync(path.join(dir, 'pgvector-backup-backup.yml'), 'utf8')) as { on: { schedule: Array<{ cron: string }> }; jobs: Record<string, { steps: Array<{ uses?: string; with?: Record<string, string> }> }> };
    expect(backup.on.schedule).toEqual([{ cron: '15 4 * * 1' }]);
    const step = Object.values(backup.jobs).flatMap((j) => j.steps).find((s) => s.with?.mode === 'backup');
    expect(step?.with?.destination).toBe('s3://my-bucket/vector_db,cache');
    for (const f of readdirSync(dir)) expect(() => parse(readFileSync(path.join(dir, f), 'utf8'))).not.toThrow();
    expect(r.stdout).toContain('Add these repository secrets');
    expect(r.stdout).toMatch(/DATABASE_URL: postgresql:\/\//);
    expect(r.stdout).toContain('AWS_ACCESS_KEY_ID');
    expect(r.stdout).toContain('The backup runs at 15 4 * * 1 (UTC; next ');

    const mine = path.join(dir, 'pgvector-backup-backup.yml');
    writeFileSync(mine, 'name: mine\n');
    const refused = await cli(['init-workflow'], { cwd: repo });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      'error: .github/workflows/pgvector-backup-backup.yml, .github/workflows/pgvector-backup-restore.yml, .github/workflows/pgvector-backup-test-restore.yml already exist; nothing was written. Pass --force to overwrite',
    );
    expect(readFileSync(mine, 'utf8')).toBe('name: mine\n');

    const forced = await cli(['init-workflow', '--force'], { cwd: repo });
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('Overwrote .github/workflows/pgvector-backup-backup.yml');
    expect((parse(readFileSync(mine, 'utf8')) as typeof backup).on.schedule).toEqual([{ cron: '0 2 * * *' }]);
  });

  test('an invalid --schedule is refused; outside a repository root it warns', async () => {
    const dir = tmp('pgvb-repo-');
    const bad = await cli(['init-workflow', '--schedule', '0 2 * *'], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--schedule "0 2 * *" is not a valid cron schedule');
    expect(existsSync(path.join(dir, '.github'))).toBe(false);
    const ok = await cli(['init-workflow'], { cwd: dir });
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('is not the root of a git repository');
  });
});
