// `schedule run`: the schedule in the foreground, for containers (there is no cron daemon in one, and supercronic
// is not in Debian). Sleeps until the next time, runs `backup` as a child process (a fresh process per run: the
// environment and .env are read again, memory is returned, a crash does not end the loop), and streams its output
// to our stdout and to the day's log file, as the cron entry does. SIGTERM/SIGINT (docker stop) stop the loop,
// and a backup in progress is cancelled the way the CLI cancels (it leaves nothing under a final name).
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { spawnCommand, waitForExit } from '../exec.js';
import { formatRunTime, type Schedule } from './cron.js';

export interface RunOptions {
  schedule: Schedule;
  cwd: string;
  node: string;
  script: string;
  /** Options after `backup`. */
  args: string[];
  /** Directory for backup_YYYYMMDD.log, relative to cwd; undefined: no log files (output only). */
  logDir?: string;
  env: NodeJS.ProcessEnv;
  /** Status lines of the loop itself. */
  log: (line: string) => void;
  /** The backup's output (stdout and stderr, as they come, decoded). */
  output: (text: string) => void;
  /** Aborting stops the loop (and cancels a running backup). */
  signal: AbortSignal;
}

/** Longest single timer: long waits are taken in steps so that clock changes and timer limits do not matter. */
const STEP_MS = 60_000;

function sleepUntil(at: Date, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    let timer: NodeJS.Timeout;
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const tick = (): void => {
      const left = at.getTime() - Date.now();
      if (left <= 0) return done();
      timer = setTimeout(tick, Math.min(left, STEP_MS));
    };
    signal.addEventListener('abort', done);
    tick();
  });
}

const p2 = (n: number): string => String(n).padStart(2, '0');
/** backup_YYYYMMDD.log in local time, like `date +%Y%m%d` in the cron entry. */
export function logFileName(d: Date): string {
  return `backup_${d.getFullYear()}${p2(d.getMonth() + 1)}${p2(d.getDate())}.log`;
}

/** Runs the loop until `signal` aborts; returns the number of backups that ran and how many failed. */
export async function runSchedule(o: RunOptions): Promise<{ runs: number; failures: number }> {
  let runs = 0;
  let failures = 0;
  let last = new Date(0);
  o.log(`schedule "${o.schedule.expression}": backups run in ${o.cwd}${o.logDir ? `, logs in ${path.resolve(o.cwd, o.logDir)}` : ''}`);
  while (!o.signal.aborted) {
    // Strictly after the last run, so a timer that fires a little early never runs the same slot twice.
    const from = new Date(Math.max(Date.now(), last.getTime()));
    const next = o.schedule.next(1, from)[0]!;
    o.log(`next backup at ${formatRunTime(next)}`);
    await sleepUntil(next, o.signal);
    if (o.signal.aborted) break;
    last = next;
    runs++;
    const code = await runOnce(o, next);
    if (code !== 0) failures++;
    o.log(code === 0 ? `backup finished (ok)` : `backup failed (exit ${code}); the next run is on schedule`);
  }
  o.log('stopped');
  return { runs, failures };
}

async function runOnce(o: RunOptions, at: Date): Promise<number> {
  let file: WriteStream | undefined;
  if (o.logDir) {
    const dir = path.resolve(o.cwd, o.logDir);
    mkdirSync(dir, { recursive: true });
    file = createWriteStream(path.join(dir, logFileName(at)), { flags: 'a', mode: 0o600 });
    file.on('error', (err) => o.log(`warning: cannot write the log file: ${err.message}`));
    file.write(`== scheduled backup at ${formatRunTime(at)}\n`);
  }
  o.log(`backup started (scheduled ${formatRunTime(at)})`);
  const child = spawnCommand({ file: o.node, args: [o.script, 'backup', ...o.args], env: o.env, cwd: o.cwd }, ['ignore', 'pipe', 'pipe']);
  // One decoder per stream: a chunk may end inside a multi-byte character.
  for (const stream of [child.stdout, child.stderr]) {
    const decoder = new StringDecoder('utf8');
    stream?.on('data', (d: Buffer) => {
      o.output(decoder.write(d));
      file?.write(d);
    });
  }
  // docker stop: let the backup cancel cleanly (it removes its .partial files) before we exit.
  const cancel = (): void => {
    child.kill('SIGTERM');
  };
  o.signal.addEventListener('abort', cancel);
  let code: number;
  try {
    const r = await waitForExit(child);
    code = r.code ?? 128 + (r.signal === 'SIGTERM' ? 15 : r.signal === 'SIGINT' ? 2 : 9);
  } catch (err) {
    o.log(`error: cannot start the backup: ${(err as Error).message}`);
    code = 1;
  } finally {
    o.signal.removeEventListener('abort', cancel);
  }
  if (file) {
    file.write(`== backup ${code === 0 ? 'finished (ok)' : `failed (exit ${code})`}\n`);
    await new Promise<void>((resolve) => file!.end(resolve));
  }
  return code;
}
