import type { Config } from './config.js';
import { BackupError } from './errors.js';
import { terminateChildren } from './exec.js';
import type { Logger } from './logger.js';
import type { Reporter } from './report/reporter.js';

/** What every mode gets: the settings, where to log, where outputs and the summary go. */
export interface Context {
  config: Config;
  logger: Logger;
  reporter: Reporter;
  /** Facts the modes learn for the metrics (the rest comes from the outputs). */
  facts: {
    database?: string;
    dumpBytes?: number;
    /** The run's last verification: it passed, found damage, or could not run (the metrics tell them apart). */
    verification?: 'passed' | 'failed' | 'inconclusive';
  };
  /** Registers cleanup to run if the process is interrupted (SIGINT/SIGTERM); returns the unregister function. */
  onCancel: (fn: () => Promise<void> | void) => () => void;
}

const handlers = new Set<() => Promise<void> | void>();
let installed = false;
let cancelled = false;

/** True once SIGINT/SIGTERM arrived: from then on nothing is recorded as good or uploaded. */
export function isCancelled(): boolean {
  return cancelled;
}

/** The error a step reports once the run was cancelled (instead of whatever the killed children said). */
export function cancelledError(): BackupError {
  return new BackupError('The run was cancelled', 'Nothing from this run was recorded about any backup; run it again', { code: 'run-cancelled' });
}

/** The entry points' onCancel: runs every registered cleanup on SIGINT/SIGTERM, then exits. */
export function onCancel(fn: () => Promise<void> | void): () => void {
  if (!installed) {
    installed = true;
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      process.once(signal, () => {
        cancelled = true;
        process.stderr.write(`The run was cancelled (${signal}): stopping and cleaning up; no check from this run is recorded, and a backup it was writing is removed or left unverified\n`);
        terminateChildren();
        void (async () => {
          for (const h of [...handlers].reverse()) {
            try {
              await h();
            } catch {
              /* best effort while exiting */
            }
          }
          process.exit(code);
        })();
      });
    }
  }
  handlers.add(fn);
  return () => handlers.delete(fn);
}
