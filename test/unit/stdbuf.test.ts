// pg_dump's stdout through coreutils' stdbuf with a 1 MiB buffer (issue 8): used when stdbuf works, never when it
// is broken or turned off, and it really changes the writes a stdio program makes.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { withLargeStdoutBuffer } from '../../src/archive/pipeline.js';

const hasStdbuf = spawnSync('stdbuf', ['-o', '1M', 'true']).status === 0;
const hasStrace = spawnSync('strace', ['-V']).status === 0;
const cmd = { file: '/usr/bin/seq', args: ['1', '400000'], env: { PGPASSWORD: 'x' } };

describe('withLargeStdoutBuffer', () => {
  test.runIf(hasStdbuf)('wraps the command in stdbuf -o 1M, keeping its environment', () => {
    const w = withLargeStdoutBuffer(cmd, process.env);
    expect(path.basename(w.file)).toBe('stdbuf');
    expect(w.args).toEqual(['-o', '1M', '/usr/bin/seq', '1', '400000']);
    expect(w.env).toBe(cmd.env);
  });

  test('PGVB_STDBUF=0 turns it off; no stdbuf on PATH leaves the command as it is', () => {
    expect(withLargeStdoutBuffer(cmd, { ...process.env, PGVB_STDBUF: '0' })).toBe(cmd);
    expect(withLargeStdoutBuffer(cmd, { PATH: mkdtempSync(path.join(os.tmpdir(), 'pgvb-empty-')) })).toBe(cmd);
  });

  test('a stdbuf that cannot run commands (its library missing: exit 125) is not used', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-stdbuf-'));
    writeFileSync(path.join(dir, 'stdbuf'), "#!/bin/sh\necho \"stdbuf: failed to find 'libstdbuf.so'\" >&2\nexit 125\n");
    chmodSync(path.join(dir, 'stdbuf'), 0o755);
    expect(withLargeStdoutBuffer(cmd, { PATH: `${dir}:${process.env.PATH}` })).toBe(cmd);
  });

  test.runIf(hasStdbuf && hasStrace)('a stdio program then writes 1 MiB at a time instead of 4 KiB (seen by strace)', () => {
    const writes = (c: { file: string; args: string[] }): number[] => {
      const r = spawnSync('strace', ['-f', '-e', 'trace=write', '-e', 'signal=none', '-qq', c.file, ...c.args], { encoding: 'utf8', maxBuffer: 1 << 26 });
      return [...r.stderr.matchAll(/^(?:\[pid\s+\d+\] )?write\(1, .*\) = (\d+)$/gm)].map((m) => Number(m[1]));
    };
    const plain = writes(cmd);
    const buffered = writes(withLargeStdoutBuffer(cmd, process.env));
    expect(plain.reduce((a, b) => a + b, 0)).toBe(buffered.reduce((a, b) => a + b, 0));
    expect(Math.max(...plain)).toBeLessThanOrEqual(64 * 1024);
    expect(Math.max(...buffered)).toBe(1 << 20);
    expect(buffered.length * 50).toBeLessThan(plain.length);
  });
});
