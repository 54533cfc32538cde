// `pgvector-backup doctor`: the old kit's health check. Every check runs even when an earlier one failed (those
// that need the database are skipped when there is no connection); each says ok, warn, fail or skip, in one line,
// with the fix when something is wrong. Healthy means nothing failed (warnings are allowed).
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { cliEnvironment, cliInputGetter, parseArgs, type CliIo } from './cli.js';
import { buildConfig, type Config } from './config.js';
import type { Context } from './context.js';
import { ConfigurationError, errorCode, type ErrorCode } from './errors.js';
import { ConsoleLogger, MemoryLogger, type Logger, type Secrets } from './logger.js';
import { connect, describeTarget, poolerProblem } from './postgres/connection.js';
import { standingOf } from './archive/manifest.js';
import { standingText } from './modes/list.js';
import { readServerInfo, type ServerInfo } from './postgres/inventory.js';
import { discover, findClientTools, serverMajor } from './postgres/tools.js';
import { formatBytes, formatElapsed } from './progress.js';
import { listEverywhere, type Listing } from './storage/index.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  /** One line: what was found. */
  detail: string;
  /** What to do, when the status is warn or fail. */
  fix?: string;
  /** The error's code (docs/TROUBLESHOOTING.md) when the check failed with one of ours. */
  code?: ErrorCode;
}

export interface DoctorReport {
  healthy: boolean;
  /** Which database on which server (no password). */
  target: string;
  checks: CheckResult[];
}

export interface DoctorOptions {
  /** The newest good backup may be this old before it is a warning. */
  maxAgeHours: number;
  now?: Date;
}

export const DEFAULT_MAX_AGE_HOURS = 26;

/** Which checks need the database connection (skipped without one). */
const NEEDS_CONNECTION = ['server', 'pgvector', 'privileges'] as const;

const check = (name: string, status: CheckStatus, detail: string, fix?: string, code?: ErrorCode): CheckResult => ({
  name,
  status,
  detail,
  ...(fix !== undefined ? { fix } : {}),
  ...(code !== undefined ? { code } : {}),
});

/** A check that threw is a failed check, never a crashed doctor. */
async function guarded(name: string, fn: () => Promise<CheckResult>): Promise<CheckResult> {
  try {
    return await fn();
  } catch (err) {
    const hint = err instanceof Error && 'hint' in err && typeof err.hint === 'string' ? err.hint : undefined;
    return check(name, 'fail', err instanceof Error ? err.message : String(err), hint ?? 'See the detail; fix it and run doctor again', errorCode(err));
  }
}

export async function runDoctor(config: Config, logger: Logger, opts: DoctorOptions): Promise<DoctorReport> {
  const now = opts.now ?? new Date();
  const src = config.source;
  const checks: CheckResult[] = [];

  // The connection, and what needs it.
  let client: pg.Client | undefined;
  let server: ServerInfo | undefined;
  const connection = await guarded('connection', async () => {
    const t0 = Date.now();
    try {
      client = await connect(src);
    } catch (err) {
      return check('connection', 'fail', (err as Error).message, (err as { hint?: string }).hint ?? 'Check database-url', errorCode(err));
    }
    const pooler = poolerProblem(src);
    if (pooler) return check('connection', 'fail', `connected to ${describeTarget(src)}, but backups are refused here`, pooler, 'connect-pooler');
    return check('connection', 'ok', `connected to ${describeTarget(src)} in ${Date.now() - t0} ms`);
  });
  checks.push(connection);
  try {
    if (client) {
      const c = client;
      checks.push(
        await guarded('server', async () => {
          server = await readServerInfo(c);
          return check('server', 'ok', `PostgreSQL ${server.serverVersion}${server.inRecovery ? ' (a standby: backups read from it, which is fine)' : ''}`);
        }),
      );
      checks.push(await guarded('pgvector', () => pgvectorCheck(c, server?.database ?? src.database)));
      checks.push(await guarded('privileges', () => privilegesCheck(c, src.user)));
    } else {
      for (const name of NEEDS_CONNECTION) checks.push(check(name, 'skip', 'needs the database connection'));
    }
  } finally {
    await client?.end().catch(() => undefined);
  }

  checks.push(await guarded('pg_dump', () => pgDumpCheck(config, server)));
  checks.push(await guarded('backup-dir', () => directoryCheck('backup-dir', config.backupDir)));

  const database = server?.database ?? src.database;
  let listing: Listing | undefined;
  const listed = await guarded('last backup', async () => {
    listing = await listEverywhere(doctorContext(config, logger), database);
    return lastBackupCheck(listing, database, config.destination, opts.maxAgeHours, now);
  });
  checks.push(await guarded('free space', () => freeSpaceCheck(config.backupDir, listing)));
  checks.push(listed);

  if (config.pushgateway) {
    const gw = config.pushgateway;
    checks.push(await guarded('pushgateway', () => pushgatewayCheck(gw.url, gw.token)));
  } else {
    checks.push(check('pushgateway', 'skip', 'not configured (pushgateway-url)'));
  }
  if (config.metricsFile) {
    const file = config.metricsFile;
    checks.push(await guarded('metrics-file', () => metricsFileCheck(file, now)));
  } else {
    checks.push(check('metrics-file', 'skip', 'not configured (metrics-file is empty)'));
  }
  return { healthy: checks.every((c) => c.status !== 'fail'), target: describeTarget(src), checks };
}

function doctorContext(config: Config, logger: Logger): Context {
  return {
    config,
    logger,
    reporter: { output: () => undefined, summary: async () => undefined },
    facts: {},
    onCancel: () => () => undefined,
  };
}

async function pgvectorCheck(c: pg.Client, database: string): Promise<CheckResult> {
  const r = await c.query<{ installed: string | null; available: string | null }>(
    `SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS installed,
            (SELECT default_version FROM pg_available_extensions WHERE name = 'vector') AS available`,
  );
  const { installed, available } = r.rows[0]!;
  if (installed) {
    const newer = available && available !== installed ? `; ${available} is available (ALTER EXTENSION vector UPDATE)` : '';
    return check('pgvector', 'ok', `vector ${installed} installed in ${database}${newer}`);
  }
  // Not a failure: a database without pgvector backs up and restores like any other.
  if (available) {
    return check('pgvector', 'warn', `not installed in ${database}; version ${available} is available on the server`, `If this database should hold vectors, run CREATE EXTENSION vector; in ${database} (as its owner or a superuser)`);
  }
  return check('pgvector', 'warn', `not installed in ${database} and not available on the server`, 'Install pgvector on the server (a pgvector/pgvector image, or the postgresql-<major>-pgvector package), then CREATE EXTENSION vector;');
}

async function privilegesCheck(c: pg.Client, user: string): Promise<CheckResult> {
  const r = await c.query<{ kind: string; name: string }>(
    `SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END AS kind, format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'm', 'S') AND c.relpersistence <> 't'
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
        AND NOT (has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'))
      ORDER BY 2`,
  );
  const total = await c.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'm', 'S') AND c.relpersistence <> 't'
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`,
  );
  const n = Number(total.rows[0]!.n);
  if (r.rows.length === 0) return check('privileges', 'ok', `${user} can read all ${n} tables and sequences`);
  const names = r.rows.slice(0, 5).map((x) => x.name).join(', ') + (r.rows.length > 5 ? ` and ${r.rows.length - 5} more` : '');
  return check(
    'privileges',
    'fail',
    `${user} cannot read ${r.rows.length} of ${n} tables and sequences (${names}): pg_dump would fail`,
    `GRANT pg_read_all_data TO ${user}; (PostgreSQL 14+) or grant SELECT on them and USAGE on their schemas`,
  );
}

async function pgDumpCheck(config: Config, server: ServerInfo | undefined): Promise<CheckResult> {
  const quiet = new MemoryLogger();
  if (!server) {
    // No server version to compare with: say what is there.
    const found = await discover('pg_dump', config.env, config.pgBinDir, !!config.pgBinDir);
    if (!found.length) {
      return check('pg_dump', 'fail', config.pgBinDir ? `pg-bin-dir ${config.pgBinDir} has no working pg_dump` : 'no pg_dump found on PATH or in the usual places', 'Install the PostgreSQL client programs (postgresql-client) or point pg-bin-dir at their bin directory');
    }
    return check('pg_dump', 'skip', `found ${found.map((f) => `${f.version} (${f.dir})`).join(', ')}; the server's version is unknown without a connection`);
  }
  const major = serverMajor(server.serverVersionNum);
  // The same search a backup makes, without installing anything.
  const tools = await findClientTools(major, { env: config.env, logger: quiet, allowInstall: false, ...(config.pgBinDir ? { pgBinDir: config.pgBinDir } : {}) });
  if (tools.kind === 'docker') {
    return check('pg_dump', 'warn', `no local pg_dump ${major}+; backups would run it from ${tools.image} with Docker`, `Install postgresql-client-${major} (or newer) for faster, Docker-free backups, or set pg-bin-dir`);
  }
  const newer = tools.major > major ? ` (newer than the server: restoring its archives needs pg_restore ${tools.major}+)` : '';
  return check('pg_dump', 'ok', `pg_dump ${tools.version} in ${tools.dir} for the PostgreSQL ${major} server${newer}`);
}

/** The deepest existing path at or above `p`. */
async function existingAncestor(p: string): Promise<{ path: string; isDirectory: boolean }> {
  let cur = path.resolve(p);
  for (;;) {
    const st = await fs.stat(cur).catch(() => undefined);
    if (st) return { path: cur, isDirectory: st.isDirectory() };
    const up = path.dirname(cur);
    if (up === cur) return { path: cur, isDirectory: true };
    cur = up;
  }
}

function writeProblem(input: string, dir: string, err: unknown): CheckResult {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  if (code === 'ENOSPC' || code === 'EDQUOT') return check(input, 'fail', `no space left to write in ${dir} (${code})`, `Free space there or set ${input} to a larger volume`);
  if (code === 'EROFS') return check(input, 'fail', `${dir} is on a read-only filesystem`, `Set ${input} to a writable location`);
  return check(input, 'fail', `cannot write to ${dir} (${code})`, `Make ${dir} writable by this user (${process.getuid?.() ?? '?'}) or set ${input} to another directory`);
}

/** The directory exists and takes a file (written and removed), or it can be created. */
export async function directoryCheck(input: string, dir: string): Promise<CheckResult> {
  const found = await existingAncestor(dir);
  if (found.path === path.resolve(dir)) {
    if (!found.isDirectory) return check(input, 'fail', `${dir} is a file, not a directory`, `Set ${input} to a directory path, or move that file away`);
    const probe = path.join(dir, `.pgvector-backup-doctor-${process.pid}`);
    try {
      const h = await fs.open(probe, 'wx', 0o600);
      try {
        await h.writeFile('probe\n');
        await h.sync();
      } finally {
        await h.close();
      }
    } catch (err) {
      await fs.rm(probe, { force: true }).catch(() => undefined);
      return writeProblem(input, dir, err);
    }
    await fs.rm(probe, { force: true });
    return check(input, 'ok', `${dir} is writable`);
  }
  if (!found.isDirectory) return check(input, 'fail', `${dir} cannot be created: ${found.path} is a file`, `Set ${input} to a directory path, or move ${found.path} away`);
  try {
    await fs.access(found.path, constants.W_OK | constants.X_OK);
  } catch (err) {
    return writeProblem(input, found.path, err);
  }
  return check(input, 'ok', `${dir} does not exist yet; it will be created (${found.path} is writable)`);
}

/** Free space on backup-dir's filesystem against the newest backup's size. Pure; table-tested. */
export function judgeFreeSpace(free: number, lastSize: number | undefined, where: string): CheckResult {
  const fix = 'Free space there, lower retention-days or keep-*, or set backup-dir to a larger volume';
  if (lastSize === undefined || lastSize <= 0) return check('free space', 'ok', `${formatBytes(free)} free on the filesystem of ${where} (no earlier backup to compare with)`);
  const last = formatBytes(lastSize);
  if (free < lastSize) return check('free space', 'fail', `${formatBytes(free)} free on the filesystem of ${where}, less than the last backup (${last}): the next one will not fit`, fix);
  if (free < 2 * lastSize) return check('free space', 'warn', `${formatBytes(free)} free on the filesystem of ${where}, less than twice the last backup (${last})`, fix);
  return check('free space', 'ok', `${formatBytes(free)} free on the filesystem of ${where} (${Math.floor(free / lastSize)}x the last backup, ${last})`);
}

async function freeSpaceCheck(dir: string, listing: Listing | undefined): Promise<CheckResult> {
  const at = (await existingAncestor(dir)).path;
  const st = await fs.statfs(at);
  const free = Number(st.bavail) * Number(st.bsize);
  return judgeFreeSpace(free, listing?.backups[0]?.manifest.archive.size, dir);
}

/** The newest good backup's age against the threshold. Pure; table-tested. */
export function lastBackupCheck(listing: Listing, database: string, destinations: string[], maxAgeHours: number, now: Date): CheckResult {
  const failures = listing.failures.length ? `; listing failed in ${listing.failures.map((f) => `${f.destination} (${f.reason})`).join(', ')}` : '';
  const where = destinations.join(', ');
  const good = listing.backups.find((b) => b.good);
  const newest = listing.backups[0];
  const runFix = 'Run pgvector-backup backup, and check that the schedule (cron or the workflow) runs and succeeds';
  if (!good) {
    const bad = newest ? ` (the newest, ${newest.name}, is ${standingText(newest.manifest)})` : '';
    return check('last backup', 'warn', `no good backup of ${database} in ${where}${bad}${failures}`, listing.failures.length ? 'Fix access to the destinations that could not be listed; ' + runFix : runFix);
  }
  const ageHours = (now.getTime() - good.createdAt.getTime()) / 3_600_000;
  const age = formatElapsed(Math.max(0, ageHours * 3600));
  const verification = `verified ${standingOf(good.manifest.verifications).level ?? ''}`.trim();
  const unverifiedNewer = newest && newest !== good ? `; the newer ${newest.name} is ${standingText(newest.manifest)}` : '';
  const detail = `${good.name} in ${good.destination}, ${age} old, ${verification}${unverifiedNewer}${failures}`;
  if (ageHours > maxAgeHours) return check('last backup', 'warn', `${detail}: older than ${maxAgeHours} h`, runFix);
  if (unverifiedNewer || failures) return check('last backup', 'warn', detail, failures ? 'Fix access to the destinations that could not be listed' : 'Run verify on it or a new backup; see why it failed');
  return check('last backup', 'ok', detail);
}

/** A Pushgateway's health endpoint (/-/healthy, else /metrics), with the same credentials a push uses. */
export async function pushgatewayCheck(url: string, token?: string, timeoutMs = 5000): Promise<CheckResult> {
  const u = new URL(url);
  const headers: Record<string, string> = {};
  // fetch refuses URLs with credentials: send them as the push does, in a header.
  if (u.username || u.password) headers.Authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  if (token) headers.Authorization = `Bearer ${token}`;
  u.username = '';
  u.password = '';
  const base = u.toString().replace(/\/+$/, '');
  const shown = `${u.host}${u.pathname.replace(/\/+$/, '')}`;
  const fix = 'Check pushgateway-url and that the Pushgateway runs and is reachable from here; until then metrics are not pushed (backups still run)';
  let last: Response | undefined;
  for (const endpoint of ['/-/healthy', '/metrics']) {
    const t0 = Date.now();
    try {
      last = await fetch(base + endpoint, { headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
      await last.body?.cancel();
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? ((err as Error).name === 'TimeoutError' ? `no answer in ${timeoutMs / 1000} s` : (err as Error).message);
      return check('pushgateway', 'fail', `cannot reach the Pushgateway at ${shown}: ${cause}`, fix);
    }
    if (last.ok) return check('pushgateway', 'ok', `${shown} answers ${endpoint} (HTTP ${last.status}, ${Date.now() - t0} ms)`);
    if (last.status !== 404) break;
  }
  const status = last!.status;
  if (status === 401 || status === 403) {
    return check('pushgateway', 'fail', `the Pushgateway at ${shown} refuses the credentials (HTTP ${status})`, 'Check pushgateway-token, or the user:password in pushgateway-url');
  }
  return check('pushgateway', 'fail', `the Pushgateway at ${shown} answers HTTP ${status}`, fix);
}

async function metricsFileCheck(file: string, now: Date): Promise<CheckResult> {
  const st = await fs.stat(file).catch(() => undefined);
  if (st?.isDirectory()) return check('metrics-file', 'fail', `${file} is a directory`, 'Set metrics-file to a file path such as metrics/backup.prom');
  const dir = await directoryCheck('metrics-file', path.dirname(file));
  if (dir.status !== 'ok') return { ...dir, detail: `directory of ${file}: ${dir.detail}` };
  const updated = st ? `, last written ${formatElapsed((now.getTime() - st.mtime.getTime()) / 1000)} ago` : ', not written yet';
  return check('metrics-file', 'ok', `${file} can be written${updated}`);
}

const LABEL: Record<CheckStatus, string> = { ok: 'ok', warn: 'warn', fail: 'FAIL', skip: 'skip' };

/** The report as a table for a terminal. Pure; table-tested. */
export function renderDoctor(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = [`pgvector-backup doctor: ${report.target}`, ''];
  for (const c of report.checks) {
    lines.push(`  ${LABEL[c.status].padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`);
    if (c.fix && (c.status === 'fail' || c.status === 'warn')) lines.push(`  ${''.padEnd(4)}  ${''.padEnd(width)}  fix: ${c.fix}${c.code ? ` (see docs/TROUBLESHOOTING.md#${c.code})` : ''}`);
  }
  const count = (s: CheckStatus): number => report.checks.filter((c) => c.status === s).length;
  const failed = report.checks.filter((c) => c.status === 'fail').map((c) => c.name);
  const tail = [`${count('ok')} ok`, `${count('warn')} warning${count('warn') === 1 ? '' : 's'}`, ...(count('skip') ? [`${count('skip')} skipped`] : [])].join(', ');
  lines.push('', report.healthy ? `Healthy: ${tail}.` : `Unhealthy: ${failed.length} failed (${failed.join(', ')}), ${tail}.`);
  return lines.join('\n') + '\n';
}

export function doctorUsage(): string {
  return [
    'Usage: pgvector-backup doctor [options]',
    '',
    'Checks what a backup needs: the connection, the server and pgvector versions, read privileges, a pg_dump at least',
    "as new as the server, backup-dir writable and its free space against the last backup's size, the last backup's",
    'age, the Pushgateway and the metrics file. Exit code 0: healthy (warnings allowed); 1: a check failed; 2: bad options.',
    '',
    'Options:',
    `  --max-age-hours N   warn when the newest good backup is older than N hours (default ${DEFAULT_MAX_AGE_HOURS})`,
    '  --json              print the checks as JSON ({ healthy, target, checks: [{ name, status, detail, fix? }] })',
    '  --database-url, --backup-dir, --destination, --pg-bin-dir, --metrics-file, --pushgateway-url, --pushgateway-token:',
    '                      as for backup (also from PG*, BACKUP_DIR, METRICS_DIR and ./.env)',
    '',
  ].join('\n');
}

/** `pgvector-backup doctor [--max-age-hours N] [--json] [backup options]`: prints the report; 0 healthy, 1 not. */
export async function doctorCommand(argv: string[], io: CliIo, secrets: Secrets): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout(doctorUsage());
    return 0;
  }
  let maxAgeHours = DEFAULT_MAX_AGE_HOURS;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg !== '--max-age-hours' && !arg.startsWith('--max-age-hours=')) {
      rest.push(arg);
      continue;
    }
    const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
    if (value === undefined || !/^\d+(\.\d+)?$/.test(value.trim())) {
      throw new ConfigurationError(`--max-age-hours must be a number of hours such as 26 (0 warns about any age); got "${value ?? ''}"`, { code: 'config-cli-usage' });
    }
    maxAgeHours = Number(value);
  }
  const args = parseArgs(rest);
  // parseArgs reads a mode word as the command; doctor takes none (a flag's value may still be "backup").
  if (args.command !== 'backup' || (rest.includes('backup') && !Object.values(args.inputs).includes('backup'))) {
    throw new ConfigurationError('doctor takes options only (see pgvector-backup doctor --help)', { code: 'config-cli-usage' });
  }
  const env = cliEnvironment(io.env, io.cwd);
  const get = cliInputGetter(args.inputs, env);
  const config = buildConfig((name) => (name === 'mode' ? 'backup' : get(name)), env);
  for (const s of config.secrets) secrets.add(s);
  const logger = new ConsoleLogger(secrets, args.verbose, (l) => io.stderr(l + '\n'));
  const report = await runDoctor(config, logger, { maxAgeHours });
  io.stdout(secrets.scrub(args.json ? JSON.stringify(report, null, 2) + '\n' : renderDoctor(report)));
  return report.healthy ? 0 : 1;
}
