// The CLI: argv + environment (+ .env) -> the same Config -> the same modes. Exit codes: 0 ok, 1 failure,
// 2 usage or configuration error. Flags mirror the action's inputs (--backup-dir), plus the old kit's spellings
// (--retention 14, --list, --verify, --test-restore, --all) and environment (BACKUP_DIR, BACKUP_RETENTION_DAYS, DB_NAME).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildConfig, type InputGetter } from './config.js';
import { onCancel } from './context.js';
import { ConfigurationError, errorLine, exitCodeFor } from './errors.js';
import { INPUTS, MODES, OUTPUTS, type InputName, type Mode, type OutputName } from './inputs.js';
import { ConsoleLogger, Secrets, TerminalLine } from './logger.js';
import { doctorCommand } from './doctor.js';
import { progressStyle } from './progress.js';
import type { Reporter } from './report/reporter.js';
import { resolveConnection } from './postgres/connection.js';
import { ALERT_DEFAULTS, alertRules, type AlertOptions } from './metrics/alerts.js';
import { runMode } from './run.js';
import { initWorkflowCommand } from './init-workflow.js';
import { scheduleCommand } from './schedule/command.js';
import { VERSION } from './version.js';
import { keygenCommand } from './keygen.js';

const COMMANDS: Record<Mode | 'demo', string> = {
  backup: 'Dump the database from one snapshot, write the manifest, verify, apply retention.',
  verify: 'Check a backup (latest, a name or a path; --all for every one): checksum and structure (test-restore decompresses and restores it).',
  'test-restore': 'Restore a backup into a throwaway database and compare it with its manifest.',
  restore: 'Restore a backup (latest, a name or a path) into the target database, safely (swap or one transaction).',
  list: "List this database's backups in backup-dir.",
  prune: 'Apply retention to backup-dir (a dry run unless --dry-run false).',
  demo: 'Start a throwaway pgvector cluster with sample data and run the bundled action on it.',
};

/** `pgvector-backup alerts [--metrics-prefix P] [--stale-hours N] [--min-free-ratio R] [--mountpoint M]` */
export function alertsCommand(argv: string[]): string {
  const o: AlertOptions = { ...ALERT_DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigurationError(`Option ${flag} needs a value`, { code: 'config-cli-usage' });
    if (flag === '--metrics-prefix') {
      if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(value)) throw new ConfigurationError(`--metrics-prefix must be a Prometheus metric name prefix; got "${value}"`, { code: 'config-cli-usage' });
      o.prefix = value;
    } else if (flag === '--stale-hours') {
      if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0) throw new ConfigurationError(`--stale-hours must be a positive number; got "${value}"`, { code: 'config-cli-usage' });
      o.staleHours = Number(value);
    } else if (flag === '--min-free-ratio') {
      if (!/^0?\.\d+$/.test(value)) throw new ConfigurationError(`--min-free-ratio must be a fraction between 0 and 1 such as 0.2; got "${value}"`, { code: 'config-cli-usage' });
      o.minFreeRatio = Number(value);
    } else if (flag === '--mountpoint') o.mountpoint = value;
    else throw new ConfigurationError(`Unknown option ${flag}; alerts takes --metrics-prefix, --stale-hours, --min-free-ratio, --mountpoint`, { code: 'config-cli-usage' });
  }
  return alertRules(o);
}

/** Which inputs each command reads (for --help). */
const REMOTE: InputName[] = ['destination', 's3-endpoint', 's3-region', 's3-force-path-style', 'ssh-private-key', 'ssh-passphrase', 'known-hosts'];
const DECRYPT: InputName[] = ['decryption-identity', 'encryption-passphrase', 'decryption-gpg-private-key', 'decryption-gpg-passphrase'];
const COMMAND_INPUTS: Record<Mode, InputName[]> = {
  backup: ['metrics-file', 'metrics-prefix', 'pushgateway-url', 'pushgateway-token', 'pushgateway-job', 'database-url', 'backup-dir', 'format', 'compression', 'compression-level', 'verify', 'test-restore-url', 'create-roles', 'retention-days', 'keep-min', 'keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly', 'jobs', 'lock-wait-timeout', 'pg-bin-dir', ...REMOTE, 'encryption-recipients', 'encryption-passphrase', 'encryption-gpg-public-key', 'allow-unencrypted', 'decryption-identity'],
  verify: ['backup', 'all', 'backup-dir', 'database-url', 'pg-bin-dir', 'metrics-file', 'metrics-prefix', 'pushgateway-url', ...REMOTE, ...DECRYPT],
  'test-restore': ['backup', 'backup-dir', 'database-url', 'test-restore-url', 'create-roles', 'jobs', 'pg-bin-dir', 'metrics-file', 'metrics-prefix', 'pushgateway-url', ...REMOTE, ...DECRYPT],
  restore: ['backup', 'target-database-url', 'database-url', 'confirm', 'strategy', 'create-roles', 'backup-dir', 'jobs', 'pg-bin-dir', ...REMOTE, ...DECRYPT],
  list: ['backup-dir', 'database-url', ...REMOTE],
  prune: ['backup-dir', 'database-url', 'dry-run', 'retention-days', 'keep-min', 'keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly', ...REMOTE],
};

export interface ParsedArgs {
  command: Mode | 'demo' | 'help' | 'version';
  inputs: Partial<Record<InputName, string>>;
  json: boolean;
  /** restore: confirmed without asking. */
  yes: boolean;
  verbose: boolean;
  help: boolean;
}

const OLD_KIT_COMMAND_FLAGS: Record<string, Mode> = { '--list': 'list', '--verify': 'verify', '--test-restore': 'test-restore' };
// (--restore FILE, the old kit's interactive restore, is `restore FILE`.)

/** Parses argv (without node and script). Pure; table-tested. */
export function parseArgs(argv: string[]): ParsedArgs {
  const out: ParsedArgs = { command: 'backup', inputs: {}, json: false, yes: false, verbose: false, help: false };
  let commandSet = false;
  const positional: string[] = [];
  const byFlag = new Map<string, (typeof INPUTS)[number]>();
  for (const spec of INPUTS) {
    byFlag.set(`--${spec.name}`, spec);
    for (const a of 'aliases' in spec ? spec.aliases : []) byFlag.set(`--${a}`, spec);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    if (arg === '--version' || arg === '-V') {
      out.command = 'version';
      commandSet = true;
      continue;
    }
    if (arg === '--json') {
      out.json = true;
      continue;
    }
    if (arg === '--yes' || arg === '-y') {
      out.yes = true;
      continue;
    }
    if (arg === '--verbose' || arg === '-v') {
      out.verbose = true;
      continue;
    }
    // --verify is both the old kit's command flag and the verify input (--verify quick): a level makes it the input.
    if (arg in OLD_KIT_COMMAND_FLAGS && !(arg === '--verify' && /^(none|quick|full)$/.test(argv[i + 1] ?? ''))) {
      out.command = OLD_KIT_COMMAND_FLAGS[arg]!;
      commandSet = true;
      continue;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const flag = eq === -1 ? arg : arg.slice(0, eq);
      const spec = byFlag.get(flag);
      if (!spec) throw new ConfigurationError(`Unknown option ${flag}; see pgvector-backup ${commandSet ? out.command + ' ' : ''}--help`, { code: 'config-cli-usage' });
      let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
      if (value === undefined) {
        const next = argv[i + 1];
        const isBool = 'boolean' in spec && spec.boolean;
        if (isBool && (next === undefined || !/^(true|false|yes|no|1|0|on|off)$/i.test(next))) value = 'true';
        else {
          if (next === undefined) throw new ConfigurationError(`Option ${flag} needs a value`, { code: 'config-cli-usage' });
          value = next;
          i++;
        }
      }
      out.inputs[spec.name] = value;
      continue;
    }
    if (!commandSet && (MODES as readonly string[]).concat(['demo', 'help']).includes(arg)) {
      out.command = arg as ParsedArgs['command'];
      commandSet = true;
      continue;
    }
    positional.push(arg);
  }
  if (out.command === 'help') {
    out.help = true;
    out.command = 'backup';
  }
  if (positional.length) {
    if (!['verify', 'test-restore', 'restore'].includes(out.command) || positional.length > 1) {
      throw new ConfigurationError(`Unexpected argument "${positional.join(' ')}"; see pgvector-backup --help`, { code: 'config-cli-usage' });
    }
    out.inputs.backup = positional[0]!;
  }
  return out;
}

/** Reads KEY=VALUE lines of a .env file (no expansion). Existing environment variables win. */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    const quoted = /^(["'])(.*?)\1\s*(#.*)?$/.exec(v);
    if (quoted) v = quoted[2]!;
    else v = v.replace(/\s+#.*$/, '');
    out[m[1]!] = v;
  }
  return out;
}

/** The environment the CLI works with: process env, then .env in the working directory, then the old kit's names. */
export function cliEnvironment(env: NodeJS.ProcessEnv, cwd: string): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...env };
  const file = path.join(cwd, '.env');
  if (existsSync(file)) {
    for (const [k, v] of Object.entries(parseDotEnv(readFileSync(file, 'utf8')))) if (merged[k] === undefined) merged[k] = v;
  }
  if (!merged.PGDATABASE && merged.DB_NAME) merged.PGDATABASE = merged.DB_NAME;
  return merged;
}

/** An input as the CLI sees it: the flag, else the environment variables it reads (and .env), else the CLI's default. */
export function cliInputGetter(inputs: ParsedArgs['inputs'], env: NodeJS.ProcessEnv): InputGetter {
  return (name) => {
    const v = inputs[name];
    if (v !== undefined) return v;
    const spec = INPUTS.find((i) => i.name === name)!;
    for (const e of 'env' in spec ? spec.env : []) if (env[e]) return env[e];
    // The old kit's METRICS_DIR held backup.prom.
    if (name === 'metrics-file' && env.METRICS_DIR) return path.join(env.METRICS_DIR, 'backup.prom');
    return 'cliDefault' in spec ? spec.cliDefault : undefined;
  };
}

export function usage(command?: Mode | 'demo'): string {
  if (command && command !== 'demo') {
    const lines = [`Usage: pgvector-backup ${command} [options]${command === 'verify' || command === 'test-restore' ? ' [BACKUP]' : ''}`, '', COMMANDS[command], '', 'Options:'];
    for (const name of COMMAND_INPUTS[command]) {
      const spec = INPUTS.find((i) => i.name === name)!;
      const alias = 'aliases' in spec ? ` (also --${spec.aliases.join(', --')})` : '';
      const env = 'env' in spec ? ` [env ${spec.env.join(', ')}]` : '';
      const cliDefault = 'cliDefault' in spec ? spec.cliDefault : spec.default;
      const def = cliDefault ? ` (default: ${cliDefault})` : '';
      lines.push(`  --${name}${alias}${env}`, `      ${spec.description}${def}`);
    }
    lines.push('', 'Connection: --database-url, else PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (or DB_NAME), also from ./.env.', 'Global: --json (print outputs as JSON), --verbose, --help.');
    return lines.join('\n');
  }
  return [
    `pgvector-backup ${VERSION}: back up PostgreSQL + pgvector, prove every backup restores.`,
    '',
    'Usage: pgvector-backup <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([c, d]) => `  ${c.padEnd(13)} ${d}`),
    `  ${'alerts'.padEnd(13)} Print Prometheus alerting rules for the metrics (--metrics-prefix, --stale-hours).`,
    `  ${'doctor'.padEnd(13)} Health check: connection, versions, pg_dump, backup-dir, free space, last backup age, Pushgateway.`,
    `  ${'keygen'.padEnd(13)} Create an age key pair for encryption-recipients / decryption-identity (--output FILE).`,
    `  ${'schedule'.padEnd(13)} Run backups from cron: schedule install [--time "0 2 * * *"] | status | remove | run (in the foreground).`,
    `  ${'init-workflow'.padEnd(13)} Write GitHub workflows (scheduled backup, manual restore, PR test-restore) into .github/workflows/.`,
    '',
    'Run pgvector-backup <command> --help for its options. Exit codes: 0 ok, 1 failure, 2 usage or configuration error.',
    'Old kit spellings: --list, --verify, --test-restore, --retention N, --all; restore FILE for --restore FILE.',
  ].join('\n');
}

class CliReporter implements Reporter {
  readonly outputs: Partial<Record<OutputName, string>> = {};
  readonly summaries: string[] = [];
  constructor(private readonly secrets: Secrets) {}
  output(name: OutputName, value: string | number | boolean): void {
    this.outputs[name] = this.secrets.scrub(String(value));
  }
  async summary(markdown: string): Promise<void> {
    this.summaries.push(this.secrets.scrub(markdown));
  }
}

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Asks a question on a terminal; absent when stdin is not a terminal. */
  ask?: (question: string) => Promise<string>;
  /** stderr is a terminal: progress rewrites one line there (unless CI is set). */
  stderrIsTTY?: boolean;
  /** The terminal's width, to keep the progress line on one line. */
  columns?: () => number | undefined;
}

export async function runCli(argv: string[], io: CliIo, demo?: () => Promise<number>): Promise<number> {
  const secrets = new Secrets();
  try {
    if (argv[0] === 'schedule') return await scheduleCommand(argv.slice(1), io);
    if (argv[0] === 'doctor') return await doctorCommand(argv.slice(1), io, secrets);
    if (argv[0] === 'init-workflow') return await initWorkflowCommand(argv.slice(1), io);
    if (argv[0] === 'keygen') {
      if (argv.includes('--help')) {
        io.stdout('Usage: pgvector-backup keygen [--output FILE]\n\nPrints a new age identity (in age-keygen\'s format) and its recipient, with how to store them in GitHub.\n');
        return 0;
      }
      return await keygenCommand(argv.slice(1), io);
    }
    if (argv[0] === 'alerts') {
      if (argv.includes('--help')) {
        io.stdout('Usage: pgvector-backup alerts [--metrics-prefix P] [--stale-hours 48] [--min-free-ratio 0.2] [--mountpoint /]\n\nPrints Prometheus alerting rules for the metrics.\n');
        return 0;
      }
      io.stdout(alertsCommand(argv.slice(1)));
      return 0;
    }
    const args = parseArgs(argv);
    if (args.command === 'version') {
      io.stdout(VERSION + '\n');
      return 0;
    }
    if (args.help) {
      io.stdout(usage(args.command === 'backup' && !argv.includes('backup') ? undefined : (args.command as Mode)) + '\n');
      return 0;
    }
    if (args.command === 'demo') {
      if (!demo) throw new ConfigurationError('demo is not available here', { code: 'config-cli-usage' });
      return await demo();
    }
    const env = cliEnvironment(io.env, io.cwd);
    const get = cliInputGetter(args.inputs, env);
    const config = buildConfig((name) => (name === 'mode' ? args.command : get(name)), env);
    if (config.mode === 'restore' && config.confirm === undefined) {
      // The old kit's interactive restore: ask on a terminal; otherwise --yes (or --confirm NAME) is needed.
      if (args.yes) config.confirm = config.target.database;
      else if (io.ask) config.confirm = (await io.ask(`This replaces database "${config.target.database}" on ${config.target.host}:${config.target.port}. Type its name to go ahead: `)).trim();
      else throw new ConfigurationError(`restore replaces database "${config.target.database}": run it on a terminal to confirm, or pass --yes (or --confirm ${config.target.database})`, { code: 'restore-confirm' });
    }
    for (const s of config.secrets) secrets.add(s);
    if (config.testRestoreUrl) secrets.add(resolveConnection(config.testRestoreUrl, {}, 'test-restore-url').password);
    const terminal = progressStyle(io.stderrIsTTY, env) === 'live' ? new TerminalLine(io.stderr, io.columns) : undefined;
    const logger = new ConsoleLogger(secrets, args.verbose, (l) => io.stderr(l + '\n'), terminal);
    const reporter = new CliReporter(secrets);
    let failure: unknown;
    try {
      await runMode({ config, logger, facts: {}, reporter, onCancel });
    } catch (err) {
      failure = err;
    }
    if (args.json) io.stdout(JSON.stringify(reporter.outputs, null, 2) + '\n');
    else if (config.mode === 'list' || config.mode === 'prune') io.stdout(reporter.summaries.join('\n'));
    else for (const o of OUTPUTS) if (reporter.outputs[o.name] !== undefined) io.stdout(`${o.name}=${reporter.outputs[o.name]}\n`);
    if (failure) throw failure;
    return 0;
  } catch (err) {
    io.stderr(`error: ${secrets.scrub(errorLine(err))}\n`);
    if (!(err instanceof Error) || !['BackupError', 'ConfigurationError'].includes(err.name)) {
      io.stderr(secrets.scrub(err instanceof Error ? (err.stack ?? '') : '') + '\n');
    }
    return exitCodeFor(err);
  }
}
