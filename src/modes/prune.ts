// Retention: after a successful backup, and as mode: prune (a dry run unless dry-run: false), in every
// destination. Only this database's complete backups count; the newest good one is never deleted; a listing that
// failed anywhere deletes nothing there; leftovers of interrupted local runs (.partial) are removed after a day;
// an archive without a manifest is never touched.
import type { Context } from '../context.js';
import { BackupError, describeError } from '../errors.js';
import { table } from '../report/reporter.js';
import { planRetention, type RetentionDecision } from '../retention.js';
import { LocalStorage } from '../storage/local.js';
import { storages } from '../storage/index.js';
import { ORPHAN_GRACE_MS, type Storage } from '../storage/storage.js';

export interface RetentionOutcome {
  destination: string;
  decisions: RetentionDecision[];
  /** Why nothing was decided there (the listing failed). */
  failure?: string;
}

export async function applyRetention(ctx: Context, database: string | undefined, opts: { dryRun: boolean; places?: Storage[]; now?: Date }): Promise<RetentionOutcome[]> {
  const { config, logger } = ctx;
  const now = opts.now ?? new Date();
  const verb = opts.dryRun ? 'would delete' : 'deleted';
  const outcomes: RetentionOutcome[] = [];
  const places = opts.places ?? storages(ctx);
  for (const storage of places) {
    let listed;
    try {
      listed = await storage.list(database);
    } catch (err) {
      logger.warning(`Retention skipped for ${storage.id}: the listing failed, so nothing there is deleted (${describeError(err)})`);
      outcomes.push({ destination: storage.id, decisions: [], failure: describeError(err) });
      continue;
    }
    // Each database's backups are planned on their own: keep-min and "the newest good one" are per database.
    const byDb = new Map<string, typeof listed>();
    for (const b of listed) byDb.set(b.manifest.database, [...(byDb.get(b.manifest.database) ?? []), b]);
    const plan = [...byDb.values()].flatMap((group) => planRetention(group, config.retention, now));
    const byName = new Map(listed.map((b) => [b.name, b]));
    let deleted = 0;
    for (const d of plan) {
      if (d.keep) {
        logger.debug(`keep ${d.name} in ${storage.id}: ${d.reasons.join(', ')}`);
        continue;
      }
      if (!opts.dryRun) await storage.delete(byName.get(d.name)!);
      deleted++;
      logger.info(`  ${verb} ${d.name} (created ${d.createdAt.toISOString()}) in ${storage.id}`);
    }
    logger.info(`Retention in ${storage.id} (${config.retention.days} days, keep-min ${config.retention.keepMin}): ${plan.length - deleted} kept, ${deleted} ${verb}`);
    outcomes.push({ destination: storage.id, decisions: plan });
  }
  // Leftovers without a manifest (interrupted runs and uploads), once older than the grace period. backup-dir's
  // are always looked at, whatever the destinations.
  const grace = config.env.PGVB_ORPHAN_GRACE_SECONDS !== undefined ? Number(config.env.PGVB_ORPHAN_GRACE_SECONDS) * 1000 : ORPHAN_GRACE_MS;
  if (!places.some((s) => s.id === 'local')) places.push(new LocalStorage(config.backupDir));
  for (const storage of places) {
    const orphans = await storage.orphans(database).catch((err: unknown) => {
      logger.warning(`Could not look for leftovers in ${storage.id}: ${describeError(err)}`);
      return [];
    });
    for (const o of orphans) {
      if (now.getTime() - o.modified.getTime() < grace) continue;
      if (!opts.dryRun) await o.remove();
      logger.info(`  ${verb} leftover ${o.location} (no manifest, from ${o.modified.toISOString()})`);
    }
  }
  return outcomes;
}

export async function runPrune(ctx: Context): Promise<RetentionOutcome[]> {
  const { config, reporter } = ctx;
  const database = config.databaseNamed ? config.source.database : undefined;
  const outcomes = await applyRetention(ctx, database, { dryRun: config.dryRun });
  const rows = outcomes.flatMap((o) =>
    o.failure
      ? [['-', '-', o.destination, `listing failed: nothing deleted`, o.failure]]
      : o.decisions.map((d) => [d.name, d.createdAt.toISOString(), o.destination, d.keep ? 'keep' : config.dryRun ? 'would delete' : 'deleted', d.reasons.join(', ')]),
  );
  await reporter.summary(
    [
      `## pgvector-backup: prune${config.dryRun ? ' (dry run: nothing deleted; set dry-run: false to delete)' : ''}`,
      '',
      table(['Backup', 'Created (UTC)', 'Where', 'Decision', 'Why kept'], rows),
      '',
    ].join('\n'),
  );
  const failed = outcomes.filter((o) => o.failure);
  if (failed.length) throw new BackupError(`Listing ${failed.map((f) => f.destination).join(', ')} failed, so nothing was deleted there`, 'Fix access to the destination and run prune again', { code: 'storage-list-failed' });
  return outcomes;
}
