// mode: verify. Quick checks of one backup (latest, a name or a path) or of all of them (the old
// verify_backup.sh --all); each result is recorded in the backup's manifest and reported.
import path from 'node:path';
import { writeManifest, type Verification } from '../archive/manifest.js';
import { quickVerify } from '../archive/verify.js';
import { isCancelled, type Context } from '../context.js';
import { BackupError, describeError, errorLine, type ErrorCode } from '../errors.js';
import { findClientTools, type PgTools } from '../postgres/tools.js';
import { table } from '../report/reporter.js';
import { scanLocal, type LocalBackup } from '../storage/local.js';
import { resolveBackup } from '../storage/index.js';
import { setBackupOutputs } from './backup.js';

export interface VerifyOutcome {
  name: string;
  ok: boolean;
  checks: string[];
  failure?: string;
  code?: ErrorCode;
}

const toolCache = new Map<number, PgTools>();

async function restoreTools(ctx: Context, major: number): Promise<PgTools> {
  const cached = toolCache.get(major);
  if (cached) return cached;
  const t = await findClientTools(major, { env: ctx.config.env, logger: ctx.logger, ...(ctx.config.pgBinDir ? { pgBinDir: ctx.config.pgBinDir } : {}) });
  toolCache.set(major, t);
  return t;
}

/** Quick-verifies one backup, logs each check, records the result in its manifest. */
export async function verifyOne(ctx: Context, b: LocalBackup): Promise<VerifyOutcome> {
  const { logger } = ctx;
  return logger.group(`Verify ${b.name} (checksum, structure)`, async () => {
    let outcome: VerifyOutcome;
    try {
      const tools = b.manifest.format === 'plain' ? undefined : await restoreTools(ctx, b.manifest.pgDump.major);
      const r = await quickVerify(b.manifest, b.archivePath, tools, ctx.config.decryption, ctx.onCancel);
      for (const c of r.checks) logger.info(`  ok: ${c}`);
      outcome = { name: b.name, ok: true, checks: r.checks };
    } catch (err) {
      if (!(err instanceof BackupError)) throw err;
      logger.error(errorLine(err));
      outcome = { name: b.name, ok: false, checks: [], failure: describeError(err), ...(err.code ? { code: err.code } : {}) };
    }
    await recordVerification(ctx, b, {
      level: 'quick',
      ok: outcome.ok,
      at: new Date().toISOString(),
      checks: outcome.checks,
      ...(outcome.failure ? { failure: outcome.failure } : {}),
    });
    return outcome;
  });
}

/** Stores a verification result in the manifest (atomically). A read-only backup-dir only earns a warning. */
export async function recordVerification(ctx: Context, b: LocalBackup, v: Verification): Promise<void> {
  // A run being cancelled may still finish a step on its way out: it never marks a backup verified.
  if (isCancelled()) return;
  // A quick check never replaces a full verification's result (passed, failed or still pending), unless it failed.
  const prev = b.manifest.verification;
  if (prev && prev.level === 'full' && v.level === 'quick' && v.ok) return;
  b.manifest.verification = v;
  b.good = v.ok;
  try {
    await writeManifest(path.dirname(b.manifestPath), b.manifest);
  } catch (err) {
    ctx.logger.warning(`Could not record the verification in ${b.manifestPath}: ${(err as Error).message}`);
  }
}

export async function runVerify(ctx: Context): Promise<VerifyOutcome[]> {
  const { config, reporter } = ctx;
  const database = config.databaseNamed ? config.source.database : undefined;
  let targets: LocalBackup[];
  if (config.all) {
    const scan = await scanLocal(config.backupDir, database);
    targets = scan.backups;
    for (const inv of scan.invalid) ctx.logger.error(`${inv.path}: ${inv.reason}`);
    if (!targets.length && !scan.invalid.length) throw new BackupError(`No backups found in ${config.backupDir}`, 'Set backup-dir to where the backups are', { code: 'storage-not-found' });
    const outcomes = [];
    for (const b of targets) outcomes.push(await verifyOne(ctx, b));
    const failed = outcomes.filter((o) => !o.ok).length + scan.invalid.length;
    await reporter.summary(
      [
        `## pgvector-backup: verify ${outcomes.length + scan.invalid.length} backups`,
        '',
        table(['Backup', 'Result'], [
          ...outcomes.map((o) => [o.name, o.ok ? 'ok' : `FAILED: ${o.failure}`]),
          ...scan.invalid.map((i) => [i.path, `FAILED: ${i.reason}`]),
        ]),
        '',
      ].join('\n'),
    );
    reporter.output('verified', failed === 0);
    if (failed) throw new BackupError(`${failed} of ${outcomes.length + scan.invalid.length} backups failed verification`, 'See the failed checks above; do not rely on those backups', { code: 'verify-failed' });
    return outcomes;
  }
  const b = await resolveBackup(ctx, config.backup, database);
  ctx.facts.database = b.manifest.database;
  setBackupOutputs(ctx, b);
  const outcome = await verifyOne(ctx, b);
  const ok = outcome.ok;
  await reporter.summary(
    [
      `## pgvector-backup: verify ${b.name}`,
      '',
      outcome.ok ? outcome.checks.map((c) => `- ok: ${c}`).join('\n') : `- **FAILED**: ${outcome.failure}`,
      '',
    ].join('\n'),
  );
  reporter.output('verified', ok);
  // The failure already names the backup, the check and what to do.
  if (!ok) throw new BackupError(outcome.failure ?? `Backup ${b.name} failed verification`, undefined, { code: outcome.code ?? 'verify-failed' });
  return [outcome];
}
