// Runs the selected mode. Shared by the action and the CLI.
import type { Context } from './context.js';
import { databaseError } from './postgres/connection.js';
import { runBackup } from './modes/backup.js';
import { runList } from './modes/list.js';
import { runPrune } from './modes/prune.js';
import { runTestRestore } from './modes/test-restore.js';
import { runVerify } from './modes/verify.js';

export async function runMode(ctx: Context): Promise<void> {
  try {
    await dispatch(ctx);
  } catch (err) {
    throw databaseError(err, ctx.config.mode);
  }
}

async function dispatch(ctx: Context): Promise<void> {
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
    case 'list':
      await runList(ctx);
      return;
    case 'prune':
      await runPrune(ctx);
      return;
  }
}
