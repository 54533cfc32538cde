import { runAction } from './action.js';

await runAction();

// All work is done: a handle left open by mistake must not keep the step running until the job's time limit.
setTimeout(() => {
  process.stderr.write('pgvector-backup: finished, but something kept the process alive; exiting\n');
  process.exit();
}, 10_000).unref();
