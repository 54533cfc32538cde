// Runs the selected mode. Shared by the action and the CLI.
import type { Context } from './context.js';
import { reportMetrics } from './metrics/report.js';
import { databaseError } from './postgres/connection.js';
import { runBackup } from './modes/backup.js';
import { runList } from './modes/list.js';
import { runPrune } from './modes/prune.js';
import { runRestore } from './modes/restore.js';
import { runTestRestore, untrustedEvent } from './modes/test-restore.js';
import { ConfigurationError } from './errors.js';
import { runVerify } from './modes/verify.js';

export async function runMode(ctx: Context): Promise<void> {
  // Watch the outputs: the metrics are made from them.
  const outputs: Record<string, string> = {};
  const reporter = ctx.reporter;
  const watched: Context = {
    ...ctx,
    reporter: {
      output: (name, value) => {
        outputs[name] = String(value);
        reporter.output(name, value);
      },
      summary: (md) => reporter.summary(md),
    },
  };
  // Cancellation is handled from the start (SIGINT/SIGTERM: a message, children stopped, cleanups run), not only
  // once some step registered a cleanup.
  ctx.onCancel(() => undefined);
  for (const w of ctx.config.warnings) ctx.logger.warning(w);
  let failure: unknown;
  try {
    await dispatch(watched);
  } catch (err) {
    failure = databaseError(err, ctx.config.mode);
  }
  await reportMetrics(watched, failure === undefined, outputs);
  if (failure !== undefined) throw failure;
}

async function dispatch(ctx: Context): Promise<void> {
  // Secrets (a database password, decryption keys, tokens) never go to a run that code from outside the
  // repository controls: pull_request_target runs with the base repository's secrets beside the PR's code.
  // (restore and test-restore refuse those events themselves, with or without secrets, in their own words.)
  const untrusted = ctx.config.mode === 'restore' || ctx.config.mode === 'test-restore' ? undefined : untrustedEvent(ctx.config.env);
  if (untrusted && ctx.config.secrets.length) {
    throw new ConfigurationError(
      `Refusing to run with secrets on ${untrusted}: code from outside the repository could read them or the backup data. Run backups on schedule or workflow_dispatch, and PR test-restores on pull_request from branches of this repository`,
      { code: 'config-refused-event' },
    );
  }
  switch (ctx.config.mode) {
    case 'backup':
      await runBackup(ctx);
      return;
    case 'verify':
      await runVerify(ctx);
      return;
    case 'test-restore':
      await runTestRestore(ctx);
      return;
    case 'restore':
      await runRestore(ctx);
      return;
    case 'list':
      await runList(ctx);
      return;
    case 'prune':
      await runPrune(ctx);
      return;
  }
}
