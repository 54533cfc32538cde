import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConsoleLogger, MemoryLogger, Secrets, TerminalLine } from '../../src/logger.js';
import {
  byteProgress,
  fileReadPosition,
  formatElapsed,
  formatRate,
  progressSecondsFrom,
  progressStyle,
  renderProgress,
  withProgress,
  type ProgressState,
} from '../../src/progress.js';

const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('formatting', () => {
  test.each([
    [0, '0 s'],
    [0.9, '0 s'],
    [7.6, '7 s'],
    [59.99, '59 s'],
    [60, '1 min 00 s'],
    [125, '2 min 05 s'],
    [3599, '59 min 59 s'],
    [3600, '1 h 00 min'],
    [3725, '1 h 02 min'],
    [90061, '25 h 01 min'],
    [-3, '0 s'],
  ])('formatElapsed(%s) = %s', (s, text) => {
    expect(formatElapsed(s)).toBe(text);
  });

  test.each([
    [10 * MiB, 2, '5.0 MiB/s'],
    [512, 1, '512 B/s'],
    [3 * 1024 ** 3, 1, '3.0 GiB/s'],
    [100, 0, '- B/s'],
  ])('formatRate(%s, %s) = %s', (bytes, secs, text) => {
    expect(formatRate(bytes, secs)).toBe(text);
  });

  test.each<[ProgressState, string]>([
    [{ label: 'pg_dump', elapsed: 10, bytes: 120 * MiB, verb: 'dumped', extra: '31.2 MiB written' }, '  pg_dump: 120.0 MiB dumped, 31.2 MiB written, 12.0 MiB/s, 10 s'],
    [{ label: 'pg_restore data', elapsed: 10, bytes: 50 * MiB, total: 200 * MiB, verb: 'read' }, '  pg_restore data: 50.0 MiB of 200.0 MiB read (25%), 5.0 MiB/s, 10 s, about 30 s left'],
    [{ label: 'upload s3://b/k', elapsed: 125, bytes: 200 * MiB, total: 200 * MiB, verb: 'sent' }, '  upload s3://b/k: 200.0 MiB of 200.0 MiB sent (100%), 1.6 MiB/s, 2 min 05 s'],
    // Nothing read yet: no time left to estimate.
    [{ label: 'psql', elapsed: 1, bytes: 0, total: 10 * MiB, verb: 'read' }, '  psql: 0 B of 10.0 MiB read (0%), 0 B/s, 1 s'],
    // Unknown bytes (pre-data, Docker): elapsed only.
    [{ label: 'pg_restore pre-data', elapsed: 3.7 }, '  pg_restore pre-data: 3 s'],
    [{ label: 'pg_restore data', elapsed: 4, total: 10 * MiB, verb: 'read' }, '  pg_restore data: 4 s'],
    // A total of 0 (an empty file) shows no percentage.
    [{ label: 'x', elapsed: 2, bytes: 0, total: 0 }, '  x: 0 B, 0 B/s, 2 s'],
  ])('renderProgress %#', (state, line) => {
    expect(renderProgress(state)).toBe(line);
  });

  test('byteProgress reads the counter at each call', () => {
    let n = 0;
    const line = byteProgress('dl', () => n, { total: 4 * MiB, verb: 'received' });
    expect(line(1)).toBe('  dl: 0 B of 4.0 MiB received (0%), 0 B/s, 1 s');
    n = 2 * MiB;
    expect(line(2)).toBe('  dl: 2.0 MiB of 4.0 MiB received (50%), 1.0 MiB/s, 2 s, about 2 s left');
    expect(byteProgress('x', () => undefined)(5)).toBe('  x: 5 s');
  });
});

describe('where progress goes', () => {
  test.each<[boolean | undefined, NodeJS.ProcessEnv, 'live' | 'plain']>([
    [true, { TERM: 'xterm-256color' }, 'live'],
    [true, {}, 'live'],
    [false, { TERM: 'xterm' }, 'plain'],
    [undefined, {}, 'plain'],
    [true, { CI: 'true' }, 'plain'],
    [true, { CI: '1' }, 'plain'],
    [true, { CI: 'false' }, 'live'],
    [true, { CI: '' }, 'live'],
    [true, { GITHUB_ACTIONS: 'true' }, 'plain'],
    [true, { TERM: 'dumb' }, 'plain'],
  ])('stderr TTY %s, env %j: %s', (tty, env, style) => {
    expect(progressStyle(tty, env)).toBe(style);
  });

  test.each<[string | undefined, number]>([
    [undefined, 10],
    ['', 10],
    ['2', 2],
    ['0.5', 0.5],
    ['x', 10],
    ['0', 10],
    ['-1', 10],
  ])('PGVB_PROGRESS_SECONDS=%s: every %s s', (v, seconds) => {
    expect(progressSecondsFrom(v === undefined ? {} : { PGVB_PROGRESS_SECONDS: v })).toBe(seconds);
  });
});

describe('the live line on a terminal', () => {
  function terminal(columns?: number): { raw: string[]; logger: ConsoleLogger; secrets: Secrets } {
    const raw: string[] = [];
    const secrets = new Secrets();
    const line = new TerminalLine((s) => raw.push(s), () => columns);
    return { raw, logger: new ConsoleLogger(secrets, false, (l) => raw.push(l + '\n'), line), secrets };
  }

  test('updates rewrite the line; a log line is printed above it and the line is redrawn; clear erases it', () => {
    const { raw, logger } = terminal();
    logger.live!.update('  pg_dump: 1.0 MiB dumped');
    logger.live!.update('  pg_dump: 2.0 MiB dumped');
    logger.info('inventory: 3 tables');
    logger.live!.clear();
    logger.live!.clear();
    logger.info('done');
    expect(raw).toEqual([
      '\r\x1b[2K  pg_dump: 1.0 MiB dumped',
      '\r\x1b[2K  pg_dump: 2.0 MiB dumped',
      '\r\x1b[2K',
      'inventory: 3 tables\n',
      '  pg_dump: 2.0 MiB dumped',
      '\r\x1b[2K',
      'done\n',
    ]);
  });

  test('the line is cut to the terminal width, so it never wraps', () => {
    const { raw, logger } = terminal(20);
    logger.live!.update('  pg_dump: 123.4 MiB dumped, 12.0 MiB/s');
    expect(raw[0]).toBe('\r\x1b[2K  pg_dump: 123.4 M…');
    expect([...raw[0]!.slice(5)].length).toBeLessThan(20);
  });

  test('secrets are scrubbed from the live line', () => {
    const { raw, logger, secrets } = terminal();
    secrets.add('hunter2-secret');
    logger.live!.update('  upload https://u:hunter2-secret@h/x: 1 s');
    expect(raw.join('')).not.toContain('hunter2-secret');
    expect(raw.join('')).toContain('***');
  });

  test('withProgress redraws the live line often and clears it at the end; no plain lines', async () => {
    const { raw, logger } = terminal();
    let n = 0;
    const counter = setInterval(() => (n += 1024), 20);
    await withProgress(logger, 10, byteProgress('work', () => n), sleep(1300));
    clearInterval(counter);
    const updates = raw.filter((r) => r.startsWith('\r\x1b[2K  work: '));
    // Every 0.5 s on a terminal, although progressSeconds is 10.
    expect(updates.length).toBeGreaterThanOrEqual(2);
    expect(updates[0]).toMatch(/^\r\x1b\[2K {2}work: [\d.]+ (B|KiB), [\d.]+ (B|KiB)\/s, 0 s$/);
    expect(raw[raw.length - 1]).toBe('\r\x1b[2K');
    expect(raw.some((r) => r.endsWith('\n'))).toBe(false);
  });

  test('withProgress without a terminal logs a plain line every progressSeconds', async () => {
    const logger = new MemoryLogger();
    await withProgress(logger, 0.3, byteProgress('work', () => 2048), sleep(1000));
    expect(logger.lines.length).toBeGreaterThanOrEqual(2);
    expect(logger.lines.length).toBeLessThanOrEqual(4);
    for (const l of logger.lines) expect(l).toMatch(/^ {2}work: 2\.0 KiB, [\d.]+ (B|KiB)\/s, \d+ s$/);
    // Stops with the work.
    const count = logger.lines.length;
    await sleep(700);
    expect(logger.lines.length).toBe(count);
  });

  test('withProgress passes the work\'s failure on and stops', async () => {
    const logger = new MemoryLogger();
    await expect(withProgress(logger, 0.2, () => 'tick', sleep(300).then(() => Promise.reject(new Error('boom'))))).rejects.toThrow('boom');
    const count = logger.lines.length;
    await sleep(500);
    expect(logger.lines.length).toBe(count);
  });
});

describe('fileReadPosition', () => {
  test.runIf(process.platform === 'linux')('is how far a child process has read the file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-pos-'));
    const file = path.join(dir, 'archive.dump');
    writeFileSync(file, Buffer.alloc(100_000, 1));
    expect(fileReadPosition(file)).toBeUndefined();
    // A real reader: opens the file, reads 40,000 bytes, then waits.
    const child = spawn(
      process.execPath,
      ['-e', `const fs=require('fs');const fd=fs.openSync(process.argv[1],'r');fs.readSync(fd,Buffer.alloc(40000),0,40000,null);process.stdout.write('read\\n');setTimeout(()=>{},10000)`, file],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      expect(fileReadPosition(file)).toBe(40_000);
      // Only our descendants count.
      expect(fileReadPosition(file, child.pid)).toBeUndefined();
      expect(fileReadPosition(path.join(dir, 'other'))).toBeUndefined();
    } finally {
      child.kill('SIGKILL');
    }
  });
});
