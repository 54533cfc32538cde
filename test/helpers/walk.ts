// Feeding a custom-archive walker the way its callers do: in chunks of any size, or through one buffer that is
// overwritten after each push (a read loop reusing its buffer).
import { CustomArchiveWalker, type CustomArchiveStructure } from '../../src/archive/dump-check.js';

export function walk(buf: Buffer, chunk = buf.length || 1): CustomArchiveStructure {
  const w = new CustomArchiveWalker();
  for (let i = 0; i < buf.length; i += chunk) w.push(buf.subarray(i, i + chunk));
  return w.end();
}

export function walkReusing(buf: Buffer, size: number): CustomArchiveStructure {
  const w = new CustomArchiveWalker();
  const scratch = Buffer.alloc(size);
  for (let i = 0; i < buf.length; i += size) {
    const n = buf.copy(scratch, 0, i, i + size);
    w.push(scratch.subarray(0, n));
    scratch.fill(0xa5);
  }
  return w.end();
}
