// `pgvector-backup init-workflow [--schedule CRON] [--destination D] [--force]`: writes the three workflows a
// repository needs (scheduled backup, manual restore, PR test-restore) into .github/workflows/, from the examples
// (src/init-workflow-templates.ts is generated from examples/), and says which secrets to add next.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { CliIo } from './cli.js';
import { ConfigurationError } from './errors.js';
import { WORKFLOW_TEMPLATES } from './init-workflow-templates.js';
import { formatRunTime, parseSchedule } from './schedule/cron.js';

export type WorkflowKind = keyof typeof WORKFLOW_TEMPLATES;

export const WORKFLOW_FILES: Record<WorkflowKind, string> = {
  backup: 'pgvector-backup-backup.yml',
  restore: 'pgvector-backup-restore.yml',
  'test-restore': 'pgvector-backup-test-restore.yml',
};

export interface InitOptions {
  schedule?: string;
  destination?: string;
  force: boolean;
  help: boolean;
}

/** What the secrets the workflows use hold, for the next-steps list. */
const SECRET_HELP: Record<string, string> = {
  DATABASE_URL: 'postgresql://user:password@host:5432/db of the database to back up (a direct or session-mode connection)',
  DATABASE_SERVER_URL: 'postgresql://user:password@host:5432 of the server restores go to (the workflow adds /<database>)',
  AWS_ACCESS_KEY_ID: 'for the s3:// destination (or use aws-actions/configure-aws-credentials with OIDC)',
  AWS_SECRET_ACCESS_KEY: 'for the s3:// destination',
  PUSHGATEWAY_URL: 'optional: a Prometheus Pushgateway for the metrics (leave unset for none)',
  BACKUP_AGE_IDENTITY: 'the age private key (AGE-SECRET-KEY-1..., from pgvector-backup keygen) that decrypts the backups',
  BACKUP_AGE_RECIPIENT: 'the age public key (age1..., from pgvector-backup keygen) the backups are encrypted to',
};

const usageError = (message: string): ConfigurationError => new ConfigurationError(`${message}; see pgvector-backup init-workflow --help`, { code: 'config-cli-usage' });

export function parseInitArgs(argv: string[]): InitOptions {
  const out: InitOptions = { force: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--force' || arg === '-f') out.force = true;
    else if (arg === '--help' || arg === '-h') out.help = true;
    else if (/^--(schedule|destination)(=|$)/.test(arg)) {
      const eq = arg.indexOf('=');
      const flag = eq === -1 ? arg : arg.slice(0, eq);
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) throw usageError(`Option ${flag} needs a value`);
      if (flag === '--schedule') out.schedule = value;
      else out.destination = value;
    } else throw usageError(`Unknown argument ${arg}; init-workflow takes --schedule, --destination, --force`);
  }
  return out;
}

export function initWorkflowUsage(): string {
  return [
    'Usage: pgvector-backup init-workflow [--schedule "0 2 * * *"] [--destination artifact,s3://bucket/prefix] [--force]',
    '',
    'Writes, from the examples in this package:',
    `  .github/workflows/${WORKFLOW_FILES.backup}        scheduled backup (verify, test restore, retention, metrics)`,
    `  .github/workflows/${WORKFLOW_FILES.restore}       manual restore (workflow_dispatch, protected environment)`,
    `  .github/workflows/${WORKFLOW_FILES['test-restore']}  on pull requests: restore the latest backup, run migrations, compare`,
    '',
    '--schedule     When the backup runs, five cron fields in UTC (GitHub runs schedules in UTC). Default "0 2 * * *".',
    '--destination  Where backups are stored (artifact, cache, s3://bucket/prefix, comma-separated). Default as in the',
    '               example. The backup also stores to cache, where the pull-request workflow finds it without secrets.',
    '--force        Overwrite existing files (otherwise nothing is written when one exists).',
    '',
    'Run it in the root of your repository; then commit the files and add the secrets it lists.',
  ].join('\n');
}

function checkDestination(d: string): string[] {
  const parts = d
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!parts.length) throw usageError('--destination is empty');
  for (const p of parts) {
    if (p === 'local') throw usageError('--destination local is the runner\'s disk, which is gone after the job: use artifact, cache or s3://bucket/prefix');
    if (!/^(artifact|cache|[a-z][a-z0-9+.-]*:\/\/\S+)$/.test(p)) throw usageError(`--destination "${p}" is not a destination; use artifact, cache or s3://bucket/prefix, comma-separated`);
  }
  return parts;
}

/** Replaces the value of the first `key:` line (keeping its indentation and comment); fails when there is none. */
function setValue(text: string, key: string, value: string, file: string): string {
  const re = new RegExp(`^(\\s*(?:- )?${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\s*)(?:'[^']*'|"[^"]*"|[^\\s#]+)([ \\t]*#.*)?$`, 'm');
  if (!re.test(text)) throw new Error(`${file} has no ${key}: line to set`);
  return text.replace(re, (_m, head: string, comment: string | undefined) => `${head}${value}${comment ?? ''}`);
}

/** Drops AWS_* lines, and an `env:` mapping left empty by that. */
function dropAws(text: string): string {
  const lines = text.split('\n').filter((l) => !/^\s*AWS_[A-Z_]+:/.test(l));
  return lines
    .filter((l, i) => {
      const m = /^(\s*)env:\s*$/.exec(l);
      if (!m) return true;
      const next = lines[i + 1] ?? '';
      return /^\s*$/.test(next) ? false : (/^(\s*)/.exec(next)![1]!.length > m[1]!.length);
    })
    .join('\n');
}

const yamlScalar = (s: string): string => (/^[A-Za-z0-9_./:,@-]+$/.test(s) && !/^[-:,]/.test(s) ? s : `'${s.replace(/'/g, "''")}'`);

/** The three workflows' file names and contents. Pure; tested. */
export function renderWorkflows(opts: { schedule?: string; destination?: string }): Array<{ kind: WorkflowKind; file: string; text: string }> {
  const schedule = opts.schedule === undefined ? undefined : parseSchedule(opts.schedule, { tz: 'UTC', flag: '--schedule' }).expression;
  const dest = opts.destination === undefined ? undefined : checkDestination(opts.destination);
  return (Object.keys(WORKFLOW_TEMPLATES) as WorkflowKind[]).map((kind) => {
    const t = WORKFLOW_TEMPLATES[kind];
    let text: string = t.text;
    if (kind === 'backup' && schedule) text = text.replace(/^(\s*- cron:\s*)'[^']*'.*$/m, `$1'${schedule}'        # UTC`);
    if (dest && kind !== 'test-restore') {
      // The pull-request workflow restores from the cache (pull requests may read it without secrets).
      const d = kind === 'backup' && !dest.includes('cache') ? [...dest, 'cache'] : dest;
      text = setValue(text, 'destination', yamlScalar(d.join(',')), t.source);
      if (!d.some((x) => x.startsWith('s3://'))) text = dropAws(text);
    }
    const header = `# Written by \`pgvector-backup init-workflow\` from ${t.source}; edit freely.\n`;
    return { kind, file: path.join('.github', 'workflows', WORKFLOW_FILES[kind]), text: header + text };
  });
}

/** The secrets (or, with `vars`, the variables) a workflow text uses, in order of appearance. */
export function secretsUsed(text: string, kind: 'secrets' | 'vars' = 'secrets'): string[] {
  return [...new Set([...text.matchAll(new RegExp(`\\b${kind}\\.([A-Za-z_][A-Za-z0-9_]*)`, 'g'))].map((m) => m[1]!))];
}

export async function initWorkflowCommand(argv: string[], io: CliIo): Promise<number> {
  const opts = parseInitArgs(argv);
  if (opts.help) {
    io.stdout(initWorkflowUsage() + '\n');
    return 0;
  }
  const files = renderWorkflows(opts);
  const root = path.resolve(io.cwd);
  const existing: string[] = [];
  for (const f of files) {
    if (await fs.stat(path.join(root, f.file)).then(() => true, () => false)) existing.push(f.file);
  }
  if (existing.length && !opts.force) {
    throw new ConfigurationError(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}; nothing was written. Pass --force to overwrite, or move ${existing.length === 1 ? 'it' : 'them'} away first`, {
      code: 'config-workflow-exists',
    });
  }
  await fs.mkdir(path.join(root, '.github', 'workflows'), { recursive: true });
  for (const f of files) {
    await fs.writeFile(path.join(root, f.file), f.text);
    io.stdout(`${existing.includes(f.file) ? 'Overwrote' : 'Wrote'} ${f.file}\n`);
  }
  if (!(await fs.stat(path.join(root, '.git')).then(() => true, () => false))) {
    io.stderr(`warning: ${root} is not the root of a git repository; GitHub reads workflows only from .github/workflows/ at the root\n`);
  }
  const backup = files.find((f) => f.kind === 'backup')!;
  const cron = /^\s*- cron:\s*'([^']*)'/m.exec(backup.text)?.[1];
  const secrets = [...new Set(files.flatMap((f) => secretsUsed(f.text)))];
  const vars = [...new Set(files.flatMap((f) => secretsUsed(f.text, 'vars')))];
  const describe = (s: string): string => `   ${s}${SECRET_HELP[s] ? `: ${SECRET_HELP[s]}` : ''}`;
  const next = [
    '',
    'Next:',
    `1. Add these repository secrets (Settings > Secrets and variables > Actions):`,
    ...secrets.map(describe),
    ...(vars.length ? ['   and these variables (the Variables tab):', ...vars.map(describe)] : []),
    `2. Create the environment "production" (Settings > Environments) with required reviewers: ${WORKFLOW_FILES.restore} runs in it.`,
    `3. Commit the files. ${cron ? `The backup runs at ${cron} (UTC; next ${parseSchedule(cron, { tz: 'UTC' }).next(1).map((d) => formatRunTime(d, true))[0]}); ` : ''}run it once by hand first (Actions > the workflow > Run workflow).`,
  ];
  io.stdout(next.join('\n') + '\n');
  return 0;
}
