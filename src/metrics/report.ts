// After a backup, verify or test-restore (success or failure): the textfile and the Pushgateway. Neither can
// change the run's result: a problem with them is a warning.
import path from 'node:path';
import type { Context } from '../context.js';
import { createStorage } from '../storage/index.js';
import { push, readTextfile, writeTextfile, type RunFacts } from './metrics.js';

const MODES_WITH_METRICS = new Set(['backup', 'verify', 'test-restore']);

export async function reportMetrics(ctx: Context, success: boolean, outputs: Record<string, string>): Promise<void> {
  const { config, logger } = ctx;
  if (!MODES_WITH_METRICS.has(config.mode)) return;
  if (!config.metricsFile && !config.pushgateway) return;
  const database = ctx.facts.database ?? config.source.database;
  const num = (name: string): number | undefined => (outputs[name] !== undefined && outputs[name] !== '' && Number.isFinite(Number(outputs[name])) ? Number(outputs[name]) : undefined);
  const facts: RunFacts = { database, destination: config.destination.join(','), at: new Date() };
  if (config.mode === 'backup') facts.success = success;
  if (config.mode === 'backup') {
    for (const [key, output] of [
      ['durationSeconds', 'duration-seconds'],
      ['sizeBytes', 'size-bytes'],
      ['rows', 'rows'],
      ['vectors', 'vectors'],
      ['tables', 'tables'],
    ] as const) {
      const v = num(output);
      if (v !== undefined) facts[key] = v;
    }
    if (ctx.facts.dumpBytes !== undefined) facts.dumpBytes = ctx.facts.dumpBytes;
  }
  // Only a verification that was attempted reports (a backup that failed before verifying says nothing about it):
  // passed or found damage sets verification_success; a check that could not run leaves it and says so instead.
  const v = ctx.facts.verification;
  if (v === 'passed' || v === 'failed') {
    facts.verificationSuccess = v === 'passed';
    facts.verificationInconclusive = false;
  } else if (v === 'inconclusive') {
    facts.verificationInconclusive = true;
  }
  const restore = num('restore-seconds');
  if (restore !== undefined) facts.restoreSeconds = restore;
  const index = num('index-build-seconds');
  if (index !== undefined) facts.indexBuildSeconds = index;
  // Counted where the backups are kept: the first destination (local, or the first remote one). After a failed
  // run the count carries over: its destination may be the very thing that failed (and would hang again).
  if (success) {
    try {
      const where = createStorage(ctx, config.destination[0]!);
      const kept = (await where.list(database)).filter((b) => b.good);
      facts.totalCount = kept.length;
      const oldest = kept[kept.length - 1];
      if (oldest) facts.oldestBackupSeconds = Math.floor(oldest.createdAt.getTime() / 1000);
    } catch {
      /* the count stays as it was */
    }
  }

  const previous = config.metricsFile ? await readTextfile(config.metricsFile) : [];
  if (config.metricsFile) {
    try {
      await writeTextfile(config.metricsFile, config.metricsPrefix, facts, previous);
      logger.info(`Metrics written to ${path.relative(process.cwd(), config.metricsFile) || config.metricsFile}`);
    } catch (err) {
      logger.warning(`Could not write the metrics file ${config.metricsFile}: ${(err as Error).message}`);
    }
  }
  if (config.pushgateway) {
    try {
      await push(config.metricsPrefix, facts, config.pushgateway, previous);
      logger.info(`Metrics pushed to the Pushgateway (job ${config.pushgateway.job}, database ${database}${facts.success === false ? ', failure only' : ''})`);
    } catch (err) {
      logger.warning(`Pushing metrics to the Pushgateway failed (the backup's result is unchanged): ${(err as Error).message}`);
    }
  }
}

/** A failed backup, recorded by the post step when the main step could not record it itself. */
export async function reportFailure(ctx: Context): Promise<void> {
  await reportMetrics(ctx, false, {});
}
