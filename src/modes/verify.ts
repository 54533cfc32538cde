// mode: verify. Quick checks of one backup (latest, a name or a path) or of all of them (the old
// verify_backup.sh --all); each result is recorded in the backup's manifest and reported.
import path from 'node:path';
import { addVerification, standing, standingOf, writeManifest, type Manifest, type Verification } from '../archive/manifest.js';
import { quickVerify } from '../archive/verify.js';
import { cancelledError, isCancelled, type Context } from '../context.js';
import { BackupError, ConfigurationError, describeError, errorCode, errorLine, isDamage, type ErrorCode } from '../errors.js';
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
  /** The failure as the error line prints it (with its pointer to the troubleshooting entry). */
  line?: string;
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

/**
 * Quick-verifies one backup, logs each check and records a conclusive result in its manifest's history. A check
 * that could not run (no matching key, no pg_restore able to read it, an unreadable file, cancellation) throws
 * and records nothing: it says nothing about the archive.
 */
export async function verifyOne(ctx: Context, b: LocalBackup, deferred?: Verification[]): Promise<VerifyOutcome> {
  return ctx.logger.group(`Verify ${b.name} (checksum, structure)`, () =>
    checkAndRecord(ctx, b, 'quick', async () => {
      const tools = b.manifest.format === 'plain' ? undefined : await restoreTools(ctx, b.manifest.pgDump.major);
      const r = await quickVerify(b.manifest, b.archivePath, tools, ctx.config.decryption, ctx.onCancel);
      for (const c of r.checks) ctx.logger.info(`  ok: ${c}`);
      return r.checks;
    }, deferred),
  );
}

/**
 * The state rule of every check, in one place: `check` returns what it proved, or throws. A pass is recorded
 * (or collected in `deferred`); damage (BackupError.damage) is recorded at once and returned as a failed outcome;
 * anything else (the check could not run, or the run was cancelled) is rethrown and records nothing.
 */
export async function checkAndRecord(ctx: Context, b: LocalBackup, level: Verification['level'], check: () => Promise<string[]>, deferred?: Verification[]): Promise<VerifyOutcome> {
  let checks: string[];
  try {
    checks = await check();
  } catch (err) {
    const e = couldNotCheck(ctx, err);
    if (!isDamage(e)) throw e;
    // Evidence about the archive itself: recorded, and the backup is bad from now on (never deferred).
    const outcome: VerifyOutcome = { name: b.name, ok: false, checks: [], failure: describeError(e), line: errorLine(e), ...(e.code ? { code: e.code } : {}) };
    await recordVerification(ctx, b, [...(deferred ?? []), { level, ok: false, at: new Date().toISOString(), checks: [], failure: outcome.failure!, ...(e.code ? { code: e.code } : {}) }]);
    if (deferred) deferred.length = 0;
    return outcome;
  }
  if (isCancelled()) throw cancelledError();
  await recordVerification(ctx, b, { level, ok: true, at: new Date().toISOString(), checks }, deferred);
  return { name: b.name, ok: true, checks };
}

/**
 * What a failed check means for the run: damage passes through (the caller records it); cancellation becomes the
 * cancellation error; anything else is "could not check" (counted for the metrics, recorded nowhere).
 */
export function couldNotCheck(ctx: Context, err: unknown): unknown {
  if (isCancelled()) return cancelledError();
  if (isDamage(err)) return err;
  ctx.facts.verification = 'inconclusive';
  // A system error (a file that cannot be read, a TMPDIR that cannot be written) gets the same plain words.
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  if (!(err instanceof BackupError || err instanceof ConfigurationError) && err instanceof Error && typeof errno === 'string') {
    return new BackupError(`The check could not run: ${err.message}`, 'This says nothing about the backup and nothing was recorded: check the file permissions, TMPDIR and the disk, then run again', { code: 'verify-could-not-check', cause: err });
  }
  return err;
}

/**
 * Appends conclusive checks to the backup's history (atomically). A quick check never lowers the standing a full
 * one earned (standingOf), so it is recorded as it is. With `deferred`, a passed check is collected there instead
 * (a backup's own verification records its passes only once the level it asked for finished). A read-only
 * backup-dir only earns a warning; a full disk fails the run with nothing half-written.
 */
export async function recordVerification(ctx: Context, b: LocalBackup, v: Verification | Verification[], deferred?: Verification[]): Promise<void> {
  const checks = Array.isArray(v) ? v : [v];
  // A run being cancelled may still finish a step on its way out: it records nothing.
  if (isCancelled() || checks.length === 0) return;
  if (deferred && checks.every((c) => c.ok)) {
    deferred.push(...checks);
    return;
  }
  ctx.facts.verification = checks.every((c) => c.ok) ? 'passed' : 'failed';
  const updated: Manifest = { ...b.manifest };
  for (const c of checks) addVerification(updated, c);
  try {
    await writeManifest(path.dirname(b.manifestPath), updated);
  } catch (err) {
    if (errorCode(err) === 'disk-permission') {
      ctx.logger.warning(`Could not record the verification in ${b.manifestPath}: ${describeError(err)}`);
    } else {
      throw err;
    }
  }
  b.manifest = updated;
  b.good = standing(updated) === 'good';
}

export async function runVerify(ctx: Context): Promise<VerifyOutcome[]> {
  const { config, reporter } = ctx;
  const database = config.databaseNamed ? config.source.database : undefined;
  if (config.all) {
    const scan = await scanLocal(config.backupDir, database);
    for (const inv of scan.invalid) ctx.logger.error(`${inv.path}: ${inv.reason}`);
    if (!scan.backups.length && !scan.invalid.length) throw new BackupError(`No backups found in ${config.backupDir}`, 'Set backup-dir to where the backups are', { code: 'storage-not-found' });
    const outcomes: VerifyOutcome[] = [];
    // Checks that could not run, by backup: nothing is recorded about those backups.
    const unchecked: Array<{ name: string; err: unknown }> = [];
    for (const b of scan.backups) {
      try {
        const o = await verifyOne(ctx, b);
        if (!o.ok) ctx.logger.error(o.line ?? `${b.name}: ${o.failure}`);
        outcomes.push(o);
      } catch (err) {
        if (isCancelled() || !(err instanceof BackupError || err instanceof ConfigurationError)) throw err;
        ctx.logger.error(`${b.name}: could not be checked (nothing recorded about it): ${errorLine(err)}`);
        unchecked.push({ name: b.name, err });
      }
    }
    const failed = outcomes.filter((o) => !o.ok).length + scan.invalid.length;
    const total = outcomes.length + unchecked.length + scan.invalid.length;
    // The metrics speak of the whole run: damage anywhere, else a check that could not run, else all passed.
    ctx.facts.verification = failed ? 'failed' : unchecked.length ? 'inconclusive' : 'passed';
    await reporter.summary(
      [
        `## pgvector-backup: verify ${total} backups`,
        '',
        table(['Backup', 'Result'], [
          ...outcomes.map((o) => [o.name, o.ok ? 'ok' : `FAILED: ${o.failure}`]),
          ...unchecked.map((u) => [u.name, `could not check (nothing recorded): ${describeError(u.err)}`]),
          ...scan.invalid.map((i) => [i.path, `FAILED: ${i.reason}`]),
        ]),
        '',
      ].join('\n'),
    );
    reporter.output('verified', failed === 0 && unchecked.length === 0);
    if (failed) throw new BackupError(`${failed} of ${total} backups failed verification`, 'See the failed checks above; do not rely on those backups', { code: 'verify-failed' });
    if (unchecked.length) {
      const first = unchecked[0]!.err;
      throw new BackupError(
        `${unchecked.length} of ${total} backups could not be checked: ${describeError(first)}`,
        'This says nothing about those backups and nothing was recorded about them; fix the cause and verify again',
        { code: errorCode(first) ?? 'verify-could-not-check' },
      );
    }
    return outcomes;
  }
  const b = await resolveBackup(ctx, config.backup, database, 'check');
  ctx.facts.database = b.manifest.database;
  setBackupOutputs(ctx, b);
  let outcome: VerifyOutcome;
  try {
    outcome = await verifyOne(ctx, b);
  } catch (err) {
    reporter.output('verified', false);
    if (!isCancelled()) await reporter.summary([`## pgvector-backup: verify ${b.name}`, '', `- **could not check** (nothing recorded about the backup): ${describeError(err)}`, ''].join('\n'));
    throw err;
  }
  await reporter.summary(
    [
      `## pgvector-backup: verify ${b.name}`,
      '',
      outcome.ok ? outcome.checks.map((c) => `- ok: ${c}`).join('\n') : `- **FAILED** (the backup is bad from now on): ${outcome.failure}`,
      '',
    ].join('\n'),
  );
  // A quick pass does not clear a failed test restore: the backup stays bad, and the run says so.
  const stays = standingOf(b.manifest.verifications);
  const ok = outcome.ok && stays.standing === 'good';
  reporter.output('verified', ok);
  // The failure already names the backup, the check and what to do.
  if (!outcome.ok) throw new BackupError(outcome.failure ?? `Backup ${b.name} failed verification`, undefined, { code: outcome.code ?? 'verify-failed' });
  if (!ok) {
    ctx.facts.verification = 'failed';
    throw new BackupError(
      `Backup ${b.name} passed the quick checks but stays bad: its ${stays.decidedBy?.level ?? 'earlier'} check found ${stays.decidedBy?.failure ?? 'damage'}`,
      'Only a passing check of that level makes it good again (mode: test-restore); use another backup',
      { code: (stays.decidedBy?.code as ErrorCode | undefined) ?? 'verify-failed' },
    );
  }
  return [outcome];
}
