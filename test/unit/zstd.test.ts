// zstd as a pipeline stage: the zstd program when it is there (native, issue 8), Node's zlib otherwise. Both must
// read each other's output, fail loudly on damage, and never leave a program behind when the pipeline stops early.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { afterEach, describe, expect, test } from 'vitest';
import { compressor, decompressor, programStage, zstdCounts, zstdProgram } from '../../src/archive/pipeline.js';

const hasZstd = spawnSync('zstd', ['--version']).status === 0;
const saved = process.env.PGVB_ZSTD;
afterEach(() => {
  if (saved === undefined) delete process.env.PGVB_ZSTD;
  else process.env.PGVB_ZSTD = saved;
});

/** Text like a pgvector dump: rows of float digits. */
function sample(rows = 2000): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) lines.push(`${i}\t[${Array.from({ length: 64 }, (_, j) => Math.sin(i * 7 + j).toFixed(7)).join(',')}]`);
  return Buffer.from(lines.join('\n') + '\n');
}

async function through(stage: NodeJS.ReadWriteStream, input: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([input]), stage, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2]!.startsWith('Z');
  } catch {
    return false;
  }
}

describe.runIf(hasZstd)('zstd program and Node zlib', () => {
  test('the program is found on PATH; PGVB_ZSTD=node turns it off; PGVB_ZSTD names another', () => {
    delete process.env.PGVB_ZSTD;
    expect(zstdProgram()).toMatch(/\/zstd$/);
    expect(zstdProgram({ ...process.env, PGVB_ZSTD: 'node' })).toBeUndefined();
    expect(zstdProgram({ ...process.env, PGVB_ZSTD: '/opt/zstd' })).toBe('/opt/zstd');
    expect(zstdProgram({ PATH: '/nonexistent' })).toBeUndefined();
  });

  test.each([
    ['program', 'node'],
    ['node', 'program'],
    ['program', 'program'],
    ['node', 'node'],
  ])('%s compresses, %s decompresses: identical bytes', async (c, d) => {
    const input = sample();
    process.env.PGVB_ZSTD = c === 'node' ? 'node' : '';
    const packed = await through(compressor('zstd', 1)!, input);
    expect(packed.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    // Content checksum flag (bit 2 of the frame header descriptor), from both: a decompression (zstd -d in the test restore) proves the content.
    expect(packed[4]! & 0x04).toBe(0x04);
    expect(packed.length).toBeLessThan(input.length / 2);
    process.env.PGVB_ZSTD = d === 'node' ? 'node' : '';
    expect((await through(decompressor('zstd')!, packed)).equals(input)).toBe(true);
  });

  test('damaged input fails the program stage with zstd\'s own message', async () => {
    delete process.env.PGVB_ZSTD;
    const packed = zlib.zstdCompressSync(sample());
    const cut = packed.subarray(0, Math.floor(packed.length * 0.6));
    await expect(through(decompressor('zstd')!, cut)).rejects.toThrow(/zstd -d exited with code \d+: .*(truncated|premature|unexpected|error)/i);
  });

  test('a program that cannot start fails with tool-zstd', async () => {
    process.env.PGVB_ZSTD = '/nonexistent/zstd';
    await expect(through(compressor('zstd', 1)!, sample(10))).rejects.toMatchObject({ code: 'tool-zstd' });
  });

  test('stopping the pipeline early stops the program (no zstd left blocked on a full pipe)', async () => {
    const before = new Set(children());
    const stage = programStage('cat', [], 'cat', (e) => e);
    const started = children().filter((p) => !before.has(p));
    expect(started.length).toBe(1);
    const big = randomBytes(8 << 20);
    let got = 0;
    const reader = new Writable({
      highWaterMark: 1,
      write(c: Buffer, _e, cb) {
        got += c.length;
        cb(got > 1 << 20 ? new Error('reader stops') : null);
      },
    });
    const flow = pipeline(Readable.from([big.subarray(0, 4 << 20), big.subarray(4 << 20)]), stage, reader).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(await flow).toMatchObject({ message: 'reader stops' });
    await waitFor(() => !alive(started[0]!));
    expect(alive(started[0]!)).toBe(false);
  });
});

/** Child pids of this process. */
function children(): number[] {
  try {
    return readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}


describe('zstd -vv counts', () => {
  test.each([
    ['/*stdin*\\            : 37.39%   (123456789 B => 46156719 B, /*stdout*\\) \n', { in: 123456789, out: 46156719 }],
    ['*** Zstandard CLI\nDecompression will require 524288 B of memory\n/*stdin*\\            :750.00%   (     2 B =>     15 B, /*stdout*\\) \n/*stdin*\\ : Completed in 0.00 sec\n', { in: 2, out: 15 }],
    ['/*stdin*\\ : 37.36%   (  1.89 GiB =>    706 MiB, /*stdout*\\)\n', undefined],
    ['', undefined],
  ])('%j', (text, expected) => {
    expect(zstdCounts(text)).toEqual(expected);
  });

  test.runIf(hasZstd)('what this machine\'s zstd prints is understood', () => {
    const input = sample(50);
    const r = spawnSync('zstd', ['-1', '-vv', '-c', '--no-progress'], { input });
    expect(r.status).toBe(0);
    expect(zstdCounts(r.stderr.toString())).toEqual({ in: input.length, out: r.stdout.length });
  });
});
