// The zstd structure walk of quick verify: the same answer whatever the chunking, and a precise failure for a cut
// stream, appended bytes, a reserved block type or something that is not zstd at all. Streams come from the zstd
// program and from Node's zlib, the two writers of our archives.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { ZstdFrameWalker, ZstdStructureError } from '../../src/archive/zstd-frames.js';

const hasZstd = spawnSync('zstd', ['--version']).status === 0;
const nodeZstd = (zlib as unknown as { zstdCompressSync?: (b: Buffer, o?: object) => Buffer }).zstdCompressSync;

/** Text like a pgvector dump, big enough for several 128 KiB blocks. */
function sample(rows = 6000): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) lines.push(`${i}\t[${Array.from({ length: 64 }, (_, j) => Math.sin(i * 7 + j).toFixed(7)).join(',')}]`);
  return Buffer.from(lines.join('\n') + '\n');
}

/** zstd of `input` as the program writes it from a pipe (no content size) or from a file (with it). */
function programZstd(input: Buffer, fromFile = false): Buffer {
  if (!fromFile) return spawnSync('zstd', ['-1', '-q', '-c'], { input, maxBuffer: 1 << 30 }).stdout;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-zf-'));
  const f = path.join(dir, 'in');
  writeFileSync(f, input);
  return spawnSync('zstd', ['-1', '-q', '-c', f], { maxBuffer: 1 << 30 }).stdout;
}

function walk(data: Buffer, chunk = 1 << 20) {
  const w = new ZstdFrameWalker();
  for (let i = 0; i < data.length; i += chunk) w.push(data.subarray(i, i + chunk));
  return w.end();
}

function walkError(data: Buffer, chunk = 1 << 20): string {
  try {
    walk(data, chunk);
  } catch (err) {
    expect(err).toBeInstanceOf(ZstdStructureError);
    return (err as Error).message;
  }
  throw new Error('the walk did not fail');
}

const input = sample();
const streams: Array<[string, () => Buffer]> = [];
if (hasZstd) streams.push(['the zstd program', () => programZstd(input)]);
if (nodeZstd) streams.push(["Node's zlib", () => nodeZstd(input, { params: { [zlib.constants.ZSTD_c_checksumFlag]: 1 } })]);

describe.each(streams)('a stream written by %s', (_who, make) => {
  const packed = make();

  test('one frame, several blocks, the content checksum; the same for any chunking', () => {
    const whole = walk(packed);
    expect(whole.frames).toBe(1);
    expect(whole.checksummed).toBe(1);
    // 128 KiB blocks at most: the input needs at least this many.
    expect(whole.blocks).toBeGreaterThanOrEqual(Math.ceil(input.length / (128 * 1024)));
    for (const chunk of [1, 2, 3, 7, 4096, 65537]) expect(walk(packed, chunk)).toEqual(whole);
  });

  test('a cut anywhere is found: inside a block, after a block header, before the checksum, in the frame header', () => {
    for (const cut of [2, 5, 7, 100, Math.floor(packed.length / 2), packed.length - 5, packed.length - 4, packed.length - 1]) {
      expect(walkError(packed.subarray(0, cut))).toMatch(/the zstd stream ends (inside a frame \(the file is truncated\)|in a frame header) at byte \d+/);
    }
    expect(walkError(Buffer.alloc(0))).toBe('no zstd frame');
  });

  test('bytes after the last frame, and a reserved block type', () => {
    expect(walkError(Buffer.concat([packed, Buffer.from('trailing garbage')]))).toMatch(/^bytes after the last zstd frame at byte \d+$/);
    expect(walkError(Buffer.concat([packed, Buffer.alloc(4096)]))).toMatch(/^bytes after the last zstd frame/);
    // The first block header follows the 4-byte magic and the frame header; set its type bits to 3 (reserved).
    const copy = Buffer.from(packed);
    const d = copy[4]!;
    const headerLen = 1 + ((d >> 5) & 1 ? 0 : 1) + [0, 1, 2, 4][d & 3]! + (d >> 6 === 0 ? (d >> 5) & 1 : [0, 2, 4, 8][d >> 6]!);
    copy[4 + headerLen] = copy[4 + headerLen]! | 0b110;
    expect(walkError(copy)).toMatch(/^a reserved zstd block type at byte \d+$/);
  });
});

describe.runIf(hasZstd)('frames', () => {
  test('concatenated frames and skippable frames are walked; declared content sizes are summed', () => {
    const a = programZstd(input, true);
    const b = programZstd(input.subarray(0, 1000), true);
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18]), Buffer.from([5, 0, 0, 0]), Buffer.from('hello')]);
    const r = walk(Buffer.concat([skippable, a, b]), 4093);
    expect(r.frames).toBe(2);
    expect(r.contentSize).toBe(input.length + 1000);
    // A stream from a pipe declares no size: none is summed.
    expect(walk(programZstd(input)).contentSize).toBeUndefined();
  });

  test('gzip or a pg_dump archive is not zstd', () => {
    expect(walkError(zlib.gzipSync(input))).toMatch(/^not a zstd frame \(bad magic number\) at byte 0$/);
    expect(walkError(Buffer.from('PGDMP\u0001\u000e\u0000'))).toMatch(/^not a zstd frame/);
  });
});

test('push never throws: the first break is reported by end()', () => {
  const w = new ZstdFrameWalker();
  w.push(Buffer.from('not zstd at all'));
  w.push(Buffer.from('more'));
  expect(() => w.end()).toThrow(/^not a zstd frame \(bad magic number\) at byte 0$/);
});

test('a block header claiming more than 128 KiB (raw or compressed) is refused where it starts', () => {
  const header = (type: number, size: number, last = 1): Buffer => {
    const h = (size << 3) | (type << 1) | last;
    return Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]);
  };
  // Magic, descriptor 0 (no content size, no checksum, not single-segment), window descriptor.
  const frameStart = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50]);
  for (const type of [0, 2]) {
    expect(walkError(Buffer.concat([frameStart, header(type, 200_000), Buffer.alloc(16)]))).toBe('a zstd block of 200000 bytes (at most 131072) at byte 6');
  }
  // A well-formed raw block of 10 bytes then ends the frame.
  expect(walk(Buffer.concat([frameStart, header(0, 10), Buffer.alloc(10)]))).toEqual({ frames: 1, blocks: 1, checksummed: 0 });
});
