// The structure of a zstd file without decompressing it (RFC 8878, section 3.1): every frame's header, every block's
// 3-byte header (type, size, last-block flag), the content checksum when the frame announces one, and the file
// ending exactly where the last frame does. Fed with the chunks of the checksum's read, so it costs no extra pass:
// a truncated archive, bytes appended, a reserved block type or an oversized block are found here; damage inside a
// compressed block is left to the sha256 (and to a test restore, which decompresses everything).

const ZSTD_MAGIC = 0xfd2fb528;
const BLOCK_MAX = 128 * 1024;

export interface ZstdStructure {
  frames: number;
  blocks: number;
  /** Frames that carry a content checksum. */
  checksummed: number;
  /** Sum of the frames' declared content sizes, when every frame declares one. */
  contentSize?: number;
}

export class ZstdStructureError extends Error {}

type State = 'magic' | 'skippable-size' | 'frame-header' | 'frame-header-rest' | 'block';

export class ZstdFrameWalker {
  private state: State = 'magic';
  private need = 4;
  private readonly pending = Buffer.alloc(16);
  private have = 0;
  private skip = 0;
  /** Offset in the file of the next byte pushed. */
  private offset = 0;
  private descriptor = 0;
  /** Where the header being parsed starts (for messages). */
  private headerAt = 0;
  private contentSizes: Array<number | undefined> = [];
  private readonly result: ZstdStructure = { frames: 0, blocks: 0, checksummed: 0 };

  private broken: ZstdStructureError | undefined;

  /** Never throws: a broken structure is kept and reported by end(), after the caller's checksum had its say. */
  push(chunk: Buffer): void {
    if (this.broken) return;
    try {
      this.walk(chunk);
    } catch (err) {
      if (!(err instanceof ZstdStructureError)) throw err;
      this.broken = err;
    }
  }

  private walk(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const s = Math.min(this.skip, chunk.length - i);
        this.skip -= s;
        i += s;
        this.offset += s;
        continue;
      }
      const take = Math.min(this.need - this.have, chunk.length - i);
      chunk.copy(this.pending, this.have, i, i + take);
      this.have += take;
      i += take;
      this.offset += take;
      if (this.have === this.need) {
        this.have = 0;
        this.headerAt = this.offset - this.need;
        this.step(this.pending.subarray(0, this.need));
      }
    }
  }

  /** The structure, or a ZstdStructureError saying where it breaks. */
  end(): ZstdStructure {
    if (this.broken) throw this.broken;
    if (this.state !== 'magic' || this.have > 0 || this.skip > 0) {
      const where = this.state === 'block' || this.skip > 0 ? 'inside a frame (the file is truncated)' : 'in a frame header';
      throw new ZstdStructureError(`the zstd stream ends ${where} at byte ${this.offset}`);
    }
    if (this.result.frames === 0) throw new ZstdStructureError('no zstd frame');
    const sizes = this.contentSizes;
    if (sizes.length && sizes.every((s) => s !== undefined)) this.result.contentSize = sizes.reduce<number>((a, b) => a + b!, 0);
    return { ...this.result };
  }

  private fail(what: string): never {
    throw new ZstdStructureError(`${what} at byte ${this.headerAt}`);
  }

  private step(b: Buffer): void {
    switch (this.state) {
      case 'magic': {
        const magic = b.readUInt32LE(0);
        if (magic === ZSTD_MAGIC) {
          this.state = 'frame-header';
          this.need = 1;
        } else if ((magic & 0xfffffff0) === 0x184d2a50) {
          this.state = 'skippable-size';
          this.need = 4;
        } else {
          this.fail(this.result.frames ? 'bytes after the last zstd frame' : 'not a zstd frame (bad magic number)');
        }
        return;
      }
      case 'skippable-size':
        this.skip = b.readUInt32LE(0);
        this.state = 'magic';
        this.need = 4;
        return;
      case 'frame-header': {
        const d = b[0]!;
        if (d & 0x08) this.fail('a reserved bit set in a zstd frame header');
        this.descriptor = d;
        const singleSegment = (d >> 5) & 1;
        const fcsFlag = d >> 6;
        const dictBytes = [0, 1, 2, 4][d & 3]!;
        const fcsBytes = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag]!;
        const rest = (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
        if (rest === 0) return this.startBlocks(undefined);
        this.state = 'frame-header-rest';
        this.need = rest;
        return;
      }
      case 'frame-header-rest': {
        const d = this.descriptor;
        const singleSegment = (d >> 5) & 1;
        const fcsFlag = d >> 6;
        const dictBytes = [0, 1, 2, 4][d & 3]!;
        const fcsBytes = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag]!;
        const at = (singleSegment ? 0 : 1) + dictBytes;
        let size: number | undefined;
        if (fcsBytes === 1) size = b[at]!;
        else if (fcsBytes === 2) size = b.readUInt16LE(at) + 256;
        else if (fcsBytes === 4) size = b.readUInt32LE(at);
        else if (fcsBytes === 8) size = Number(b.readBigUInt64LE(at));
        return this.startBlocks(size);
      }
      case 'block': {
        const h = b[0]! | (b[1]! << 8) | (b[2]! << 16);
        const last = h & 1;
        const type = (h >> 1) & 3;
        const size = h >>> 3;
        if (type === 3) this.fail('a reserved zstd block type');
        // Raw and RLE sizes are what the block regenerates, compressed ones what it stores: 128 KiB at most either way.
        if (size > BLOCK_MAX) this.fail(`a zstd block of ${size} bytes (at most ${BLOCK_MAX})`);
        this.result.blocks++;
        this.skip = type === 1 ? 1 : size;
        if (last) {
          const checksum = (this.descriptor >> 2) & 1;
          if (checksum) this.result.checksummed++;
          this.skip += checksum ? 4 : 0;
          this.result.frames++;
          this.state = 'magic';
          this.need = 4;
        }
        return;
      }
    }
  }

  private startBlocks(contentSize: number | undefined): void {
    this.contentSizes.push(contentSize);
    this.state = 'block';
    this.need = 3;
  }
}
