// Feeding a custom-archive walker the way its callers do: in chunks of any size, or through one buffer that is
// overwritten after each push (a read loop reusing its buffer).
import { CustomArchiveWalker, PlainDumpChecker, type CustomArchiveStructure } from '../../src/archive/dump-check.js';

export function walk(buf: Buffer, chunk = buf.length || 1): CustomArchiveStructure {
  const w = new CustomArchiveWalker();
  for (let i = 0; i < buf.length; i += chunk) w.push(buf.subarray(i, i + chunk));
  return w.end();
}

/** Pushes `buf` through one scratch buffer of `size` bytes that is overwritten after each push. */
export function pushReusing(buf: Buffer, size: number, push: (chunk: Buffer) => void, fill = 0xa5): void {
  const scratch = Buffer.alloc(size);
  for (let i = 0; i < buf.length; i += size) {
    const n = buf.copy(scratch, 0, i, i + size);
    push(scratch.subarray(0, n));
    scratch.fill(fill);
  }
}

export function walkReusing(buf: Buffer, size: number): CustomArchiveStructure {
  const w = new CustomArchiveWalker();
  pushReusing(buf, size, (c) => w.push(c));
  return w.end();
}

/** A plain dump scanned through a reused buffer (the byte 'C' written over it, so a kept slice would misread). */
export function scanPlainReusing(buf: Buffer, size: number): ReturnType<PlainDumpChecker['end']> {
  const c = new PlainDumpChecker();
  pushReusing(buf, size, (chunk) => c.push(chunk), 0x43);
  return c.end();
}
