// mode: list. This database's backups in backup-dir (all databases' when none is named), newest first.
import { formatBytes } from '../archive/pipeline.js';
import type { Context } from '../context.js';
import { table } from '../report/reporter.js';
import { scanLocal, type LocalBackup } from '../storage/local.js';

function verifiedText(b: LocalBackup): string {
  const v = b.manifest.verification;
  if (!v) return 'not yet';
  return v.ok ? `yes (${v.level})` : `FAILED (${v.level})`;
}

export async function runList(ctx: Context): Promise<LocalBackup[]> {
  const { config, logger, reporter } = ctx;
  const database = config.databaseNamed ? config.source.database : undefined;
  const scan = await scanLocal(config.backupDir, database);
  const rows = scan.backups.map((b) => [
    b.name,
    b.manifest.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    formatBytes(b.manifest.archive.size),
    `${b.manifest.format}/${b.manifest.compression.method}`,
    verifiedText(b),
    b.archivePath,
  ]);
  const header = ['Name', 'Created (UTC)', 'Size', 'Format', 'Verified', 'Path'];
  logger.info(`${scan.backups.length} backup(s) of ${database ?? 'all databases'} in ${config.backupDir}`);
  for (const r of rows) logger.info(`  ${r.slice(0, 5).join('  ')}`);
  for (const i of scan.invalid) logger.warning(`${i.path}: ${i.reason} (not a usable backup)`);
  for (const p of scan.partials) logger.info(`  leftover of an interrupted run: ${p.path}`);
  await reporter.summary(
    [`## pgvector-backup: ${scan.backups.length} backup(s) in \`${config.backupDir}\``, '', rows.length ? table(header, rows) : '_none_', ''].join('\n'),
  );
  const newest = scan.backups[0];
  if (newest) {
    reporter.output('backup-name', newest.name);
    reporter.output('backup-path', newest.archivePath);
    reporter.output('manifest-path', newest.manifestPath);
  }
  return scan.backups;
}
