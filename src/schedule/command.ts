// `pgvector-backup schedule install | status | remove | run`: the old kit's setup_cron.sh (--time, --status,
// --remove) over the user's crontab, and a foreground loop for containers. The crontab entry runs the CLI by
// absolute paths from the directory it was installed in, so that directory's .env holds the secrets; options that
// carry a secret are refused.
import { existsSync, mkdirSync, promises as fs, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildConfig, inputDefault } from '../config.js';
import { cliEnvironment, cliInputGetter, parseArgs, type CliIo, type ParsedArgs } from '../cli.js';
import { ConfigurationError } from '../errors.js';
import type { InputName } from '../inputs.js';
import { readTextfile } from '../metrics/metrics.js';
import { parseConnectionString } from '../postgres/connection.js';
import { scanLocal } from '../storage/local.js';
import { standingOf } from '../archive/manifest.js';
import { cronDaemonRunning, crontabAccess } from './access.js';
import { DEFAULT_TIME, formatAge, formatRunTime, parseSchedule } from './cron.js';
import { installBlock, readBlock, removeBlock } from './crontab.js';
import { buildCronLine, parseCronLine, refuseSecrets } from './line.js';
import { logFileName, runSchedule } from './run.js';

/** How the installed entry starts the CLI again: this node and this script, by absolute path. */
export interface Self {
  node: string;
  script: string;
}

export function currentSelf(): Self {
  const arg = process.argv[1];
  let script = '';
  if (arg) {
    try {
      script = realpathSync(arg);
    } catch {
      script = path.resolve(arg);
    }
  }
  return { node: process.execPath, script };
}

export const DEFAULT_LOG_DIR = 'logs';

type Action = 'install' | 'status' | 'remove' | 'run';

export interface ScheduleArgs {
  action: Action;
  time?: string;
  logDir?: string;
  help: boolean;
  /** The backup's options, for install and run. */
  rest: string[];
}

const usageError = (message: string): ConfigurationError => new ConfigurationError(`${message}; see pgvector-backup schedule --help`, { code: 'config-cli-usage' });

/** Parses `schedule` arguments, including the old kit's `--status`, `--remove` and `--time`. Pure; table-tested. */
export function parseScheduleArgs(argv: string[]): ScheduleArgs {
  const out: ScheduleArgs = { action: 'install', help: false, rest: [] };
  let actionSet = false;
  const setAction = (a: Action): void => {
    if (actionSet && out.action !== a) throw usageError(`Choose one of install, status, remove, run (got ${out.action} and ${a})`);
    out.action = a;
    actionSet = true;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (i === 0 && ['install', 'status', 'remove', 'run'].includes(arg)) setAction(arg as Action);
    else if (arg === '--status') setAction('status');
    else if (arg === '--remove') setAction('remove');
    else if (arg === '--help' || arg === '-h') out.help = true;
    else if (arg === '--time' || arg.startsWith('--time=') || arg === '--log-dir' || arg.startsWith('--log-dir=')) {
      const eq = arg.indexOf('=');
      const flag = eq === -1 ? arg : arg.slice(0, eq);
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) throw usageError(`Option ${flag} needs a value`);
      if (flag === '--time') out.time = value;
      else out.logDir = value;
    } else out.rest.push(arg);
  }
  if ((out.action === 'status' || out.action === 'remove') && (out.rest.length || out.time !== undefined || out.logDir !== undefined)) {
    throw usageError(`schedule ${out.action} takes no options (got ${[...(out.time !== undefined ? ['--time'] : []), ...(out.logDir !== undefined ? ['--log-dir'] : []), ...out.rest].join(' ')})`);
  }
  return out;
}

export function scheduleUsage(): string {
  return [
    'Usage: pgvector-backup schedule [install] [--time "0 2 * * *"] [--log-dir logs] [backup options]',
    '       pgvector-backup schedule status | remove        (also --status, --remove)',
    '       pgvector-backup schedule run [--time "0 2 * * *"] [--log-dir logs] [backup options]',
    '',
    'install  Adds a backup to your crontab (default daily at 02:00), in a marked block that install replaces and',
    '         remove deletes; nothing else in the crontab changes. Run it from the directory that holds your .env:',
    '         the entry runs `pgvector-backup backup <options>` there, by absolute paths, and appends its output to',
    '         <log-dir>/backup_YYYYMMDD.log. Secrets stay in .env (PGPASSWORD, DATABASE_URL) or ~/.pgpass: options',
    '         that contain a password are refused.',
    'status   The installed entry, its next 3 run times, the last backup in backup-dir (name, age, verified or not)',
    '         and the last run from the metrics file. Exit code 0 when installed and the last run did not fail,',
    '         1 when not installed or the last backup or run failed.',
    'remove   Removes only our block from the crontab.',
    'run      Runs the schedule in the foreground (for containers, where no cron runs): sleeps until the next time,',
    '         runs the backup, repeats; output to stdout and the log file. SIGTERM stops it. --time may have a sixth,',
    '         leading seconds field here.',
    '',
    'Common schedules: "0 2 * * *" daily at 2 AM (default), "0 */6 * * *" every 6 hours, "0 */12 * * *" every',
    '12 hours, "0 3 * * 0" weekly on Sunday at 3 AM, "0 4 1 * *" monthly on the 1st at 4 AM. Times are the',
    "system's local time, as cron uses. The crontab command is `crontab`, or the one the CRONTAB variable names.",
    '',
    'Backup options: see pgvector-backup backup --help.',
  ].join('\n');
}

/** What cron gives a job: no shell profile, PATH=/usr/bin:/bin; the job's .env adds the rest. */
function cronEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { PATH: '/usr/bin:/bin', SHELL: '/bin/sh' };
  for (const k of ['HOME', 'LOGNAME', 'USER', 'LANG']) if (env[k] !== undefined) out[k] = env[k];
  return out;
}

/** Settings the backup reads from the environment, which cron does not pass on from an interactive shell. */
const ENV_SETTINGS = /^(PG[A-Z]+|AWS_[A-Z_]+|DATABASE_URL|DB_NAME|BACKUP_DIR|BACKUP_RETENTION_DAYS|METRICS_DIR|PGVB_METRICS_FILE)$/;

/** The backup options, validated as `backup` options, in canonical form (--name value). */
function backupOptions(rest: string[], cwd: string, command: string): { parsed: ParsedArgs; args: string[] } {
  const parsed = parseArgs(['backup', ...rest]);
  if (parsed.command !== 'backup' || parsed.help) throw usageError(`schedule runs backups; "${rest.join(' ')}" is not a backup option`);
  if (parsed.inputs.mode !== undefined) throw usageError('schedule runs backups; leave out --mode');
  if (parsed.json) throw usageError('--json is not useful in a scheduled run');
  refuseSecrets(parsed.inputs, cwd, command);
  const args: string[] = [];
  for (const [name, value] of Object.entries(parsed.inputs)) args.push(`--${name}`, value);
  if (parsed.verbose) args.push('--verbose');
  return { parsed, args };
}

function validate(parsed: ParsedArgs, env: NodeJS.ProcessEnv): ReturnType<typeof buildConfig> {
  const get = cliInputGetter(parsed.inputs, env);
  return buildConfig((name) => (name === 'mode' ? 'backup' : get(name)), env);
}

export async function scheduleCommand(argv: string[], io: CliIo, given?: Self): Promise<number> {
  const args = parseScheduleArgs(argv);
  if (args.help) {
    io.stdout(scheduleUsage() + '\n');
    return 0;
  }
  const user = safeUser();
  const warn = (m: string): void => io.stderr(`warning: ${m}\n`);
  if (args.action === 'run') return runCommand(args, io, given ?? currentSelf());
  const crontab = crontabAccess(io.env);
  const whose = crontab.system ? `the crontab of ${user}` : `the crontab (${crontab.command})`;
  const daemonCheck = (): void => {
    if (crontab.system && cronDaemonRunning() === false) warn('no cron daemon is running, so nothing will run: start it (sudo systemctl enable --now cron, or sudo service cron start)');
  };

  if (args.action === 'remove') {
    const before = await crontab.read();
    const { text, removed } = removeBlock(before);
    if (!removed) {
      io.stdout(`Not installed in ${whose}; nothing to remove.\n`);
      return 0;
    }
    await crontab.write(text);
    io.stdout(`Removed the pgvector-backup entry from ${whose}; every other line is as it was. Backups and logs stay where they are.\n`);
    return 0;
  }

  if (args.action === 'status') return statusCommand(io, crontab, whose, daemonCheck);

  // install
  const self = given ?? currentSelf();
  const schedule = parseSchedule(args.time ?? DEFAULT_TIME);
  const cwd = path.resolve(io.cwd);
  const { parsed, args: backupArgs } = backupOptions(args.rest, cwd, 'schedule install');
  if (!self.script || !path.isAbsolute(self.node)) throw new ConfigurationError('Cannot tell where this pgvector-backup is installed; run it as `node /path/to/dist/cli/index.js schedule install`', { code: 'config-cli-usage' });
  // What the cron job will see: cron's environment plus this directory's .env.
  const jobEnv = cliEnvironment(cronEnv(io.env), cwd);
  const config = validate(parsed, jobEnv);
  const usesS3 = config.destination.some((d) => d.startsWith('s3://'));
  const missing = Object.keys(io.env).filter((k) => ENV_SETTINGS.test(k) && (usesS3 || !k.startsWith('AWS_')) && io.env[k] && jobEnv[k] === undefined);
  if (missing.length) warn(`${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} set in this shell, but cron does not pass a shell's environment on: put ${missing.length === 1 ? 'it' : 'them'} in ${path.join(cwd, '.env')} (or pass the option) if the backup needs ${missing.length === 1 ? 'it' : 'them'}`);
  if (!config.databaseNamed) warn(`no database is named, so the backup will use database "${config.source.database}": set PGDATABASE (or DATABASE_URL) in ${path.join(cwd, '.env')}, or pass --database-url postgresql://user@host/db`);
  if (/[/\\]_npx[/\\]/.test(self.script)) warn(`this pgvector-backup runs from npx's cache (${self.script}), which npm may clear: install it (npm install pgvector-backup, or -g) and run schedule install from that installation`);
  const logDir = args.logDir ?? DEFAULT_LOG_DIR;
  if (logDir.trim() === '') throw usageError('--log-dir needs a directory (cron appends each run\'s output there)');
  const line = buildCronLine({ time: schedule.expression, cwd, node: self.node, script: self.script, args: backupArgs, logDir });
  const before = await crontab.read();
  const after = installBlock(before, [line]);
  if (after === before) io.stdout(`Already installed in ${whose}, unchanged:\n  ${line}\n`);
  else {
    await crontab.write(after);
    io.stdout(`${readBlock(before) ? 'Replaced' : 'Installed'} in ${whose}:\n  ${line}\n`);
  }
  mkdirSync(path.resolve(cwd, logDir), { recursive: true });
  io.stdout(`Next runs: ${schedule.next(3).map((d) => formatRunTime(d)).join(', ')}\n`);
  io.stdout(`Logs: ${path.join(path.resolve(cwd, logDir), 'backup_YYYYMMDD.log')}. Check with: pgvector-backup schedule status\n`);
  daemonCheck();
  return 0;
}

async function statusCommand(io: CliIo, crontab: ReturnType<typeof crontabAccess>, whose: string, daemonCheck: () => void): Promise<number> {
  const lines = readBlock(await crontab.read());
  if (!lines?.length) {
    io.stdout(`Not installed in ${whose}. Install with: pgvector-backup schedule install [--time "0 2 * * *"]\n`);
    return 1;
  }
  let healthy = true;
  const say = (s: string): void => io.stdout(s + '\n');
  say(`Installed in ${whose}:`);
  for (const l of lines) say(`  ${l}`);
  const entry = parseCronLine(lines[0]!);
  const time = entry?.time ?? lines[0]!.trim().split(/\s+/).slice(0, 5).join(' ');
  try {
    say(`Next runs: ${parseSchedule(time).next(3).map((d) => formatRunTime(d)).join(', ')}`);
  } catch {
    say(`Next runs: unknown ("${time}" is not a schedule this tool reads)`);
  }
  daemonCheck();
  if (!entry) {
    say('The entry was edited by hand: its settings cannot be read. Run pgvector-backup schedule install again to rewrite it.');
    return 0;
  }
  // The settings the job runs with: its options, then the .env of its directory (cron passes no shell variables).
  const env = cliEnvironment(cronEnv(io.env), entry.cwd);
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(['backup', ...entry.args]);
  } catch (err) {
    say(`The entry's options are not valid for this version: ${(err as Error).message}`);
    return 1;
  }
  const get = (name: InputName): string => cliInputGetter(parsed.inputs, env)(name) ?? inputDefault(name);
  const backupDir = path.resolve(entry.cwd, get('backup-dir'));
  const url = get('database-url').trim();
  let database: string | undefined;
  try {
    database = url ? parseConnectionString(url).database : env.PGDATABASE || undefined;
  } catch {
    database = undefined;
  }
  say(`Runs in ${entry.cwd} with ${entry.node}; backups in ${backupDir}${database ? ` (database ${database})` : ''}`);
  for (const [file, what] of [
    [entry.cwd, 'working directory'],
    [entry.node, 'node'],
    [entry.script, 'pgvector-backup'],
  ] as const) {
    if (!existsSync(file)) {
      healthy = false;
      say(`The entry's ${what} ${file} no longer exists, so the job fails: run pgvector-backup schedule install again (from the directory with your .env)`);
    }
  }

  const scan = await scanLocal(backupDir, database);
  const last = scan.backups[0];
  const now = Date.now();
  if (!last) say(`Last backup: none in ${backupDir} yet${scan.invalid.length ? ` (${scan.invalid.length} unusable manifest${scan.invalid.length === 1 ? '' : 's'})` : ''}`);
  else {
    const info = standingOf(last.manifest.verifications);
    const state = info.standing === 'good' ? `verified (${info.level})` : info.standing === 'unverified' ? 'not verified' : `verification FAILED: ${info.decidedBy?.failure ?? 'see the log'}`;
    if (info.standing === 'bad') healthy = false;
    say(`Last backup: ${last.name}, ${formatAge(now - last.createdAt.getTime())} ago, ${state}`);
  }

  const logDir = path.resolve(entry.cwd, entry.logDir);
  const logs = (await fs.readdir(logDir).catch(() => [] as string[])).filter((f) => /^backup_\d{8}\.log$/.test(f)).sort();
  const newestLog = logs[logs.length - 1];
  say(newestLog ? `Last log: ${path.join(logDir, newestLog)}` : `Last log: none in ${logDir} yet (today's would be ${logFileName(new Date())})`);

  const metricsFile = get('metrics-file').trim();
  if (metricsFile) {
    const file = path.resolve(entry.cwd, metricsFile);
    const prefix = get('metrics-prefix').trim() || 'pgvector_backup';
    const samples = await readTextfile(file);
    const runs = samples.filter((s) => s.name === `${prefix}_success` && (!database || s.labels.database === database));
    if (!runs.length) say(`Last run: no result in ${file} yet`);
    for (const r of runs) {
      const at = (name: string): number | undefined =>
        samples.find((s) => s.name === `${prefix}_${name}` && s.labels.database === r.labels.database && s.labels.destination === r.labels.destination)?.value;
      const ok = at('last_success_timestamp_seconds');
      const failed = at('last_failure_timestamp_seconds');
      const ago = (t: number | undefined): string => (t === undefined ? 'never' : `${formatAge(now - t * 1000)} ago`);
      if (r.value === 1) say(`Last run: succeeded (${r.labels.database}, ${r.labels.destination}), ${ago(ok)}; last failure ${ago(failed)}`);
      else {
        healthy = false;
        say(`Last run: FAILED (${r.labels.database}, ${r.labels.destination}) ${ago(failed)}; last success ${ago(ok)}. See the log`);
      }
    }
  }
  return healthy ? 0 : 1;
}

async function runCommand(args: ScheduleArgs, io: CliIo, self: Self): Promise<number> {
  const schedule = parseSchedule(args.time ?? DEFAULT_TIME, { seconds: true });
  const cwd = path.resolve(io.cwd);
  const { parsed, args: backupArgs } = backupOptions(args.rest, cwd, 'schedule run');
  // A bad option fails now, not at the first scheduled time.
  validate(parsed, cliEnvironment(io.env, cwd));
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    await runSchedule({
      schedule,
      cwd,
      node: self.node,
      script: self.script,
      args: backupArgs,
      logDir: args.logDir === '' ? undefined : (args.logDir ?? DEFAULT_LOG_DIR),
      env: io.env,
      log: (l) => io.stderr(`[schedule ${new Date().toISOString()}] ${l}\n`),
      output: (text) => io.stdout(text),
      signal: controller.signal,
    });
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
  return 0;
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? 'this user';
  }
}
