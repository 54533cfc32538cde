#!/usr/bin/env node
import { runCli } from './cli.js';
import { runDemo } from './demo/run.js';

process.exitCode = await runCli(
  process.argv.slice(2),
  { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s), env: process.env, cwd: process.cwd() },
  runDemo,
);
