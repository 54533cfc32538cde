// mode: list. This database's backups (all databases' when none is named) in every destination, newest first.
import { standingOf, type Manifest } from '../archive/manifest.js';
import { formatBytes } from '../archive/pipeline.js';
import type { Context } from '../context.js';
import { BackupError } from '../errors.js';
import { table } from '../report/reporter.js';
import { scanLocal } from '../storage/local.js';
import { listEverywhere } from '../storage/index.js';
import type { StoredBackup } from '../storage/storage.js';

/** A backup's standing for people: good (and at which level), unverified, or bad (and why). */
export function standingText(m: Manifest): string {
  const s = standingOf(m.verifications);
  if (s.standing === 'good') return `good (${s.level})`;
  if (s.standing === 'unverified') return 'unverified';
  return `BAD (${s.decidedBy?.level ?? 'check'}${s.decidedBy?.code ? `: ${s.decidedBy.code}` : ''})`;
}

/** The newest conclusive check: when, what level, and its outcome. */
export function lastCheckText(m: Manifest): string {
  const last = standingOf(m.verifications).last;
  if (!last) return '-';
  return `${last.level} ${last.ok ? 'passed' : 'FAILED'} ${last.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}`;
}

export async function runList(ctx: Context): Promise<StoredBackup[]> {
  const { config, logger, reporter } = ctx;
  const database = config.databaseNamed ? config.source.database : undefined;
  const listing = await listEverywhere(ctx, database);
  const rows = listing.backups.map((b) => [
    b.name,
    b.manifest.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    formatBytes(b.manifest.archive.size),
    `${b.manifest.format}/${b.manifest.compression.method}`,
    standingText(b.manifest),
    lastCheckText(b.manifest),
    b.destination,
    b.location,
  ]);
  const header = ['Name', 'Created (UTC)', 'Size', 'Format', 'Standing', 'Last check', 'Where', 'Location'];
  logger.info(`${listing.backups.length} backup(s) of ${database ?? 'all databases'} in ${config.destination.join(', ')}`);
  for (const r of rows) logger.info(`  ${r.slice(0, 7).join('  ')}`);
  if (config.destination.includes('local')) {
    const scan = await scanLocal(config.backupDir, database);
    for (const i of scan.invalid) logger.warning(`${i.path}: ${i.reason} (not a usable backup)`);
    for (const p of scan.partials) logger.info(`  leftover of an interrupted run: ${p.path}`);
  }
  await reporter.summary(
    [`## pgvector-backup: ${listing.backups.length} backup(s) in ${config.destination.map((d) => (d === 'local' ? `\`${config.backupDir}\`` : `\`${d}\``)).join(', ')}`, '', rows.length ? table(header, rows) : '_none_', ''].join('\n'),
  );
  const newest = listing.backups[0];
  if (newest) {
    reporter.output('backup-name', newest.name);
    reporter.output('backup-path', newest.location);
  }
  if (listing.failures.length) {
    throw new BackupError(`Listing failed for ${listing.failures.map((f) => `${f.destination} (${f.reason})`).join('; ')}`, 'Check access to those destinations and run again', { code: 'storage-list-failed' });
  }
  return listing.backups;
}
