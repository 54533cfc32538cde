#!/usr/bin/env node
import readline from 'node:readline/promises';
import { runCli } from './cli.js';
import { runDemo } from './demo/run.js';

process.exitCode = await runCli(
  process.argv.slice(2),
  {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    env: process.env,
    cwd: process.cwd(),
    stderrIsTTY: process.stderr.isTTY === true,
    columns: () => process.stderr.columns,
    ...(process.stdin.isTTY
      ? {
          ask: async (q: string) => {
            const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
            try {
              return await rl.question(q);
            } finally {
              rl.close();
            }
          },
        }
      : {}),
  },
  runDemo,
);

// All work is done: a handle left open by mistake (a socket nobody closed) must not keep the process waiting for
// hours (the timer does not keep it alive itself; it fires only if something else does).
setTimeout(() => {
  process.stderr.write('pgvector-backup: finished, but something kept the process alive; exiting\n');
  process.exit();
}, 10_000).unref();
