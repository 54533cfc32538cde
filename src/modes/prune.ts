// Retention: after a successful backup, and as mode: prune (a dry run unless dry-run: false). Only this
// database's complete backups count; the newest good one is never deleted; leftovers of interrupted runs
// (.partial) are removed after a day; an archive without a manifest is never touched.
import { promises as fs } from 'node:fs';
import type { Context } from '../context.js';
import { table } from '../report/reporter.js';
import { planRetention, type RetentionDecision } from '../retention.js';
import { deleteLocal, scanLocal } from '../storage/local.js';

const PARTIAL_GRACE_MS = 86_400_000;

export async function applyRetention(ctx: Context, database: string | undefined, opts: { dryRun: boolean }): Promise<RetentionDecision[]> {
  const { config, logger } = ctx;
  const now = new Date();
  const scan = await scanLocal(config.backupDir, database);
  const plan = planRetention(scan.backups, config.retention, now);
  const byName = new Map(scan.backups.map((b) => [b.name, b]));
  const verb = opts.dryRun ? 'would delete' : 'deleted';
  let deleted = 0;
  for (const d of plan) {
    if (d.keep) {
      logger.debug(`keep ${d.name}: ${d.reasons.join(', ')}`);
      continue;
    }
    if (!opts.dryRun) await deleteLocal(byName.get(d.name)!);
    deleted++;
    logger.info(`  ${verb} ${d.name} (created ${d.createdAt.toISOString()})`);
  }
  for (const p of scan.partials) {
    if (now.getTime() - p.mtime.getTime() < PARTIAL_GRACE_MS) continue;
    if (!opts.dryRun) await fs.rm(p.path, { recursive: true, force: true });
    logger.info(`  ${verb} leftover ${p.path}`);
  }
  logger.info(`Retention (${config.retention.days} days, keep-min ${config.retention.keepMin}): ${plan.length - deleted} kept, ${deleted} ${verb}`);
  return plan;
}

export async function runPrune(ctx: Context): Promise<RetentionDecision[]> {
  const { config, reporter } = ctx;
  const database = config.databaseNamed ? config.source.database : undefined;
  const plan = await applyRetention(ctx, database, { dryRun: config.dryRun });
  await reporter.summary(
    [
      `## pgvector-backup: prune${config.dryRun ? ' (dry run: nothing deleted; set dry-run: false to delete)' : ''}`,
      '',
      table(['Backup', 'Created (UTC)', 'Decision', 'Why kept'], plan.map((d) => [d.name, d.createdAt.toISOString(), d.keep ? 'keep' : config.dryRun ? 'would delete' : 'deleted', d.reasons.join(', ')])),
      '',
    ].join('\n'),
  );
  return plan;
}
