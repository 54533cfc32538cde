// mode: test-restore (and verify: full after a backup). Restores the archive into a throwaway target and
// compares the result with the manifest exactly: rows, vector columns, indexes, sequences, extensions, large
// objects and an exact nearest-neighbour spot check. The target is always removed, even on failure.
import { keepPlaintext } from '../archive/encrypted.js';
import { describeMismatch, type Comparison } from '../archive/compare.js';
import { cancelledError, isCancelled, type Context } from '../context.js';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BackupError, ConfigurationError, describeError, isDamage, type ErrorCode } from '../errors.js';
import { libpqEnv, toUrl, type ConnInfo } from '../postgres/connection.js';
import { compareRestored, createMissingRoles, restoreArchive } from '../postgres/restore.js';
import { acquireTarget } from '../postgres/targets.js';
import { table } from '../report/reporter.js';
import type { LocalBackup } from '../storage/local.js';
import type { Verification } from '../archive/manifest.js';
import { resolveBackup } from '../storage/index.js';
import { couldNotCheck, recordVerification, verifyOne } from './verify.js';
import { setBackupOutputs } from './backup.js';

export interface TestRestoreOutcome {
  ok: boolean;
  restoreSeconds?: number;
  indexBuildSeconds?: number | null;
  comparison?: Comparison;
  failure?: string;
  code?: ErrorCode;
}

/** With `deferred`: the passed checks so far, recorded together with this one (see recordVerification). */
export async function testRestore(ctx: Context, b: LocalBackup, deferred?: Verification[]): Promise<TestRestoreOutcome> {
  const { config, logger, reporter } = ctx;
  const m = b.manifest;
  return logger.group(`Test restore ${b.name}`, async () => {
    let outcome: TestRestoreOutcome;
    let targetDesc = '';
    let migrate: { code: number; seconds: number } | undefined;
    let migrateFailure: BackupError | undefined;
    try {
      const target = await acquireTarget(m, {
        env: config.env,
        logger,
        ...(config.testRestoreUrl ? { testRestoreUrl: config.testRestoreUrl } : {}),
        ...(config.pgBinDir ? { pgBinDir: config.pgBinDir } : {}),
      });
      targetDesc = target.description;
      const unregister = ctx.onCancel(() => target.cleanup());
      try {
        logger.info(`Target: ${target.description}`);
        // Plain SQL carries owners and grants that cannot be skipped at restore time: it needs the roles.
        const noOwner = !config.createRoles && m.format !== 'plain';
        if (!noOwner) target.createdRoles.push(...(await createMissingRoles(target.conn, m.roles)));
        const timing = await restoreArchive(m, b.archivePath, target, {
          jobs: config.jobs,
          noOwner,
          logger,
          progressSeconds: config.progressSeconds,
          env: config.env,
          onCancel: ctx.onCancel,
          decryption: config.decryption,
        });
        for (const w of timing.warnings) logger.warning(w);
        // The restore is compared with the manifest before the migrations change it: the backup's standing rests on
        // the comparison alone, and a failing migration (the pull request's code) says nothing about the archive.
        const comparison = await compareRestored(target.conn, m);
        if (config.migrateCommand && comparison.mismatches.length === 0) {
          migrate = await runMigrations(ctx, target.conn);
          if (migrate.code !== 0) migrateFailure = new BackupError(`The migrate command failed on the restored backup (exit code ${migrate.code}) after ${migrate.seconds.toFixed(1)} s`, 'The migrations do not apply to production-shaped data; see their output above (the backup itself restored and matched its manifest)', { code: 'restore-migrate-failed' });
        }
        outcome = {
          ok: comparison.mismatches.length === 0,
          restoreSeconds: timing.restoreSeconds,
          indexBuildSeconds: timing.indexBuildSeconds,
          comparison,
        };
        logger.info(
          `Restored in ${timing.restoreSeconds.toFixed(1)} s` +
            (timing.indexBuildSeconds !== null ? ` (post-data: ${timing.indexBuildSeconds.toFixed(1)} s)` : '') +
            `; ${comparison.tables.length} tables compared, ${comparison.mismatches.length} mismatches` +
            (comparison.knn ? `; kNN check on ${comparison.knn.table}: ${comparison.knn.ok ? 'same neighbours' : 'DIFFERENT'}` : ''),
        );
        for (const mm of comparison.mismatches.slice(0, 50)) logger.error(describeMismatch(mm));
        if (comparison.mismatches.length > 50) logger.error(`... and ${comparison.mismatches.length - 50} more mismatches`);
      } finally {
        await target.cleanup().catch((err: unknown) => logger.warning(`Cleaning up the test-restore target failed: ${(err as Error).message}`));
        unregister();
      }
    } catch (err) {
      const e = couldNotCheck(ctx, err);
      // Could not check (no target, no tools, the migrations failed, cancelled ...): nothing is recorded.
      if (!isDamage(e)) {
        reporter.output('verified', false);
        if (!isCancelled()) await reporter.summary(restoreSummary(b, { ok: false, failure: `could not check (nothing recorded about the backup): ${describeError(e)}` }, targetDesc, migrate && config.migrateCommand ? { ...migrate, command: config.migrateCommand } : undefined));
        throw e;
      }
      outcome = { ok: false, failure: describeError(e), ...(e.code ? { code: e.code } : {}) };
    }
    if (isCancelled()) throw cancelledError();

    reporter.output('verified', outcome.ok);
    reporter.output('mismatches', outcome.comparison?.mismatches.length ?? (outcome.ok ? 0 : ''));
    if (outcome.restoreSeconds !== undefined) reporter.output('restore-seconds', outcome.restoreSeconds);
    if (outcome.indexBuildSeconds !== undefined && outcome.indexBuildSeconds !== null) reporter.output('index-build-seconds', outcome.indexBuildSeconds);
    if (migrate) reporter.output('migrate-seconds', migrate.seconds);
    await reporter.summary(restoreSummary(b, outcome, targetDesc, migrate && config.migrateCommand ? { ...migrate, command: config.migrateCommand } : undefined));
    // Passed, or evidence about the archive (its data differs from the manifest, it does not decompress).
    await recordVerification(ctx, b, [...(deferred ?? []), {
      level: 'full',
      ok: outcome.ok,
      at: new Date().toISOString(),
      checks: outcome.ok ? ['test restore matches the manifest'] : [],
      ...(outcome.failure ? { failure: outcome.failure } : {}),
      ...(outcome.code ? { code: outcome.code } : !outcome.ok && outcome.comparison?.mismatches.length ? { code: 'verify-mismatch' } : {}),
      ...(outcome.comparison ? { mismatches: outcome.comparison.mismatches.length } : {}),
      ...(outcome.restoreSeconds !== undefined ? { restoreSeconds: outcome.restoreSeconds } : {}),
      ...(outcome.indexBuildSeconds != null ? { indexBuildSeconds: outcome.indexBuildSeconds } : {}),
      ...(targetDesc ? { target: targetDesc } : {}),
    }]);
    if (deferred) deferred.length = 0;
    if (migrateFailure) throw migrateFailure;
    return outcome;
  });
}

function restoreSummary(b: LocalBackup, o: TestRestoreOutcome, target: string, migrate?: { code: number; seconds: number; command: string }): string {
  const lines = [`## pgvector-backup: test restore of ${b.name}: ${o.ok ? 'passed' : '**FAILED**'}`, ''];
  if (target) lines.push(`Target: ${target}`, '');
  if (migrate) {
    lines.push(
      migrate.code === 0
        ? `Migrations (\`${migrate.command}\`) apply to production-shaped data: ${migrate.seconds.toFixed(1)} s`
        : `**Migrations (\`${migrate.command}\`) failed** on production-shaped data with exit code ${migrate.code} after ${migrate.seconds.toFixed(1)} s`,
      '',
    );
  }
  if (o.failure) lines.push(`**${o.failure}**`, '');
  if (o.restoreSeconds !== undefined) {
    lines.push(`Restore: ${o.restoreSeconds.toFixed(1)} s` + (o.indexBuildSeconds != null ? `, of which post-data (index builds): ${o.indexBuildSeconds.toFixed(1)} s` : ''), '');
  }
  const c = o.comparison;
  if (c) {
    lines.push(
      table(
        ['Table', 'Rows expected', 'Rows restored', 'Vectors (restored/expected)', 'Indexes valid', 'OK'],
        c.tables.map((t) => [t.table, t.expectedRows, t.restoredRows ?? 'missing', t.vectors, t.indexes, t.ok ? 'yes' : '**no**']),
      ),
      '',
    );
    if (c.knn) lines.push(`Nearest-neighbour check on ${c.knn.table}: ${c.knn.samples} samples, top ${c.knn.k}: ${c.knn.ok ? 'identical' : '**different**'}`, '');
    if (c.mismatches.length) {
      lines.push('### Mismatches', '', table(['Kind', 'Object', 'Expected', 'Restored'], c.mismatches.slice(0, 100).map((m) => [m.kind, m.object, m.expected, m.actual])), '');
    }
  }
  return lines.join('\n');
}

/**
 * The user's migrate command (a shell command line, as in a workflow's run:) with DATABASE_URL and PG* set to
 * the restored database; its output goes to the log. It runs the pull request's code, so it gets only the
 * restored copy's connection and the ordinary process variables (migrateEnv): no inputs, tokens, keys or
 * passphrases of this run.
 */
async function runMigrations(ctx: Context, conn: ConnInfo): Promise<{ code: number; seconds: number }> {
  const { config, logger } = ctx;
  return logger.group(`Migrate the restored database: ${config.migrateCommand}`, async () => {
    const env = { ...libpqEnv(conn, migrateEnv(config.env, config.secrets)), DATABASE_URL: toUrl(conn) };
    const t0 = Date.now();
    const child = spawn(config.migrateCommand!, { shell: true, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const forward = (d: Buffer): void => {
      for (const line of d.toString().split('\n')) if (line) logger.info(`  ${line}`);
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    const code = await new Promise<number>((resolve) => {
      child.on('error', () => resolve(127));
      child.on('close', (c) => resolve(c ?? 1));
    });
    const seconds = Math.round((Date.now() - t0) / 10) / 100;
    logger.info(`migrate-command exited with ${code} after ${seconds.toFixed(1)} s`);
    return { code, seconds };
  });
}

/** The ordinary process variables a migration tool needs; everything else (INPUT_*, ACTIONS_*, tokens) stays out. */
const MIGRATE_ENV = /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|TEMP|TMP|TERM|CI|HOSTNAME|PWD|NODE_ENV|GITHUB_(WORKSPACE|SHA|REF|REF_NAME|HEAD_REF|BASE_REF|REPOSITORY|EVENT_NAME|RUN_ID|ACTIONS)|RUNNER_(OS|ARCH|TEMP|TOOL_CACHE))$/;

/**
 * The migrate command's environment before the restored copy's DATABASE_URL and PG* are added: only the
 * variables MIGRATE_ENV names, and none whose value holds one of this run's secrets.
 */
export function migrateEnv(env: NodeJS.ProcessEnv, secrets: readonly string[]): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || !MIGRATE_ENV.test(k)) continue;
    if (secrets.some((sec) => sec.length >= 3 && v.includes(sec))) continue;
    out[k] = v;
  }
  return out;
}

/** A pull_request_target run, or a pull request from a fork: code from outside must not see backup data. */
export function untrustedEvent(env: NodeJS.ProcessEnv): string | undefined {
  if (env.GITHUB_EVENT_NAME === 'pull_request_target') return 'a pull_request_target event (it runs with the base repository\'s secrets)';
  if (env.GITHUB_EVENT_NAME !== 'pull_request' || !env.GITHUB_EVENT_PATH) return undefined;
  try {
    const event = JSON.parse(readFileSync(env.GITHUB_EVENT_PATH, 'utf8')) as { pull_request?: { head?: { repo?: { full_name?: string } } }; repository?: { full_name?: string } };
    const head = event.pull_request?.head?.repo?.full_name;
    const base = event.repository?.full_name;
    if (head && base && head !== base) return `a pull request from the fork ${head}`;
  } catch {
    return 'a pull request whose event payload cannot be read';
  }
  return undefined;
}

/** mode: test-restore: quick checks first (a damaged archive is reported as such), then the restore. */
export async function runTestRestore(ctx: Context): Promise<TestRestoreOutcome> {
  // An encrypted backup is decrypted once, for the quick verify, and restored from that plaintext.
  return keepPlaintext(() => testRestoreKept(ctx));
}

async function testRestoreKept(ctx: Context): Promise<TestRestoreOutcome> {
  const { config } = ctx;
  const untrusted = untrustedEvent(config.env);
  if (untrusted) throw new ConfigurationError(`test-restore is refused on ${untrusted}: backup data must not reach code from outside the repository`, { code: 'config-refused-event' });
  const b = await resolveBackup(ctx, config.backup, config.databaseNamed ? config.source.database : undefined, 'check');
  ctx.facts.database = b.manifest.database;
  setBackupOutputs(ctx, b);
  // The quick pass is recorded with the test restore's result: a run whose restore could not run records nothing.
  const passed: Verification[] = [];
  const quick = await verifyOne(ctx, b, passed);
  if (!quick.ok) {
    ctx.reporter.output('verified', false);
    throw new BackupError(`Backup ${b.name} failed verification before the test restore`, 'See the failed check above; use another backup', { code: quick.code ?? 'verify-failed' });
  }
  const outcome = await testRestore(ctx, b, passed);
  if (!outcome.ok && outcome.failure) throw new BackupError(outcome.failure, undefined, { code: outcome.code ?? 'restore-failed' });
  if (!outcome.ok) {
    const n = outcome.comparison?.mismatches.length;
    throw new BackupError(
      n ? `The test restore of ${b.name} differs from its manifest in ${n} place${n === 1 ? '' : 's'}` : `The test restore of ${b.name} failed`,
      n ? 'The backup does not hold what was recorded; see the mismatches above and do not rely on it' : 'See the error above',
      { code: n ? 'verify-mismatch' : 'restore-failed' },
    );
  }
  return outcome;
}
