// Did pg_dump finish? A pg_dump (or a wrapper around it) can exit 0 having written nothing, or only its first
// megabyte. The bytes it wrote say so, and they are checked here as they stream past, before our compression or
// encryption, in memory bounded by the table of contents (never by the data):
// - custom format: the header, every TOC entry, then every data block walked to its end marker (payload bytes
//   are counted and skipped, never copied); each entry that has data must get one complete block;
// - plain format: the header, the completion footer at the very end, and a COPY (or REFRESH) per table;
// - directory format: toc.dat parsed the same way, and a data file for every entry that has data.
// The layout is pg_dump's (src/bin/pg_dump/pg_backup_archiver.c ReadHead/ReadToc, pg_backup_custom.c,
// pg_backup_directory.c) for archive versions 1.12 to 1.16 (pg_dump 10 to 18). A version outside that range is not
// guessed at: the result says the walk was not possible, and the caller checks the TOC with pg_restore --list.
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';

/** The archive's bytes are not a complete pg_dump archive; the message says where and why. */
export class ArchiveStructureError extends Error {
  override readonly name = 'ArchiveStructureError';
}

/** What the checks need of a manifest table (src/postgres/inventory.ts TableInfo). */
export interface DumpTable {
  schema: string;
  name: string;
  /** 'table' | 'partitioned table' | 'partition' | 'materialized view' */
  kind: string;
  rows: number;
  /** pg_dump writes its data: a table, or a populated materialized view (as a REFRESH). */
  hasData: boolean;
}

export interface ArchiveHeader {
  intSize: number;
  offSize: number;
  /** The header's format code: 1 custom, 3 tar (also written into a directory archive's toc.dat). */
  format: number;
  /** How pg_dump compressed the data blocks (or the directory's data files). */
  compression: 'none' | 'gzip' | 'lz4' | 'zstd' | `unknown (${number})`;
  /** pg_dump's local time when it started, as written ("YYYY-MM-DD HH:MM:SS"). */
  created: string;
  database: string | null;
  serverVersion: string | null;
  dumpVersion: string | null;
}

export interface TocEntrySummary {
  dumpId: number;
  desc: string;
  namespace: string | null;
  tag: string | null;
  /** pg_dump had a data dumper for it: the archive must carry its data (a block, or a file). */
  hadDumper: boolean;
  /** Its data is COPY text (the entry has a COPY statement). */
  copy: boolean;
  /** Custom format: 1 offset not set (written to a pipe), 2 set, 3 no data. */
  dataState?: number;
  /** Custom format with dataState 2: where its data block starts. */
  dataOffset?: number;
  /** Directory format: the data file's name (without a compression suffix). */
  file?: string;
}

export interface DataBlockSummary {
  dumpId: number;
  type: 'data' | 'blobs';
  /** Payload bytes (as stored: compressed when the archive is). */
  bytes: number;
  chunks: number;
  /** BLOBS blocks: the large objects in it. */
  largeObjects: number;
  /** The payload is exactly COPY's end-of-data marker: an uncompressed block of a table with no rows. */
  onlyEndOfCopy: boolean;
  /** Newlines in an uncompressed payload (COPY rows + the 3 of its end marker); undefined when compressed. */
  newlines?: number;
  /** Byte offsets in the archive: the block type byte, and just after the block's end marker. */
  start: number;
  end: number;
}

export interface CustomArchiveStructure {
  /** As pg_restore --list shows it: "1.14-0". */
  version: string;
  /** False when the archive version is outside 1.12-1.16: nothing past the version was read (see reason). */
  walked: boolean;
  reason?: string;
  header?: ArchiveHeader;
  entries: TocEntrySummary[];
  /** Byte range of the table of contents (from its entry count to the first data block). */
  toc?: { start: number; end: number };
  /** The data blocks walked to their end marker, by dump ID. */
  blocks: ReadonlyMap<number, DataBlockSummary>;
  /** Bytes pushed. */
  bytes: number;
}

const MAGIC = Buffer.from('PGDMP', 'latin1');
const MIN_MINOR = 12;
const MAX_MINOR = 16;
/** The most of a kept TOC string (tag, desc, namespace, file name) held: identifiers are far shorter. */
const KEEP_MAX = 4096;
/** COPY's end-of-data marker, as pg_dump's dumpTableData_copy ends every table's data. */
const END_OF_COPY = Buffer.from('\\.\n\n\n', 'latin1');

const BLK_DATA = 1;
const BLK_BLOBS = 3;
const FORMAT_CUSTOM = 1;
const FORMAT_TAR = 3;
const FORMAT_DIRECTORY = 5;
const OFFSET_POS_SET = 2;
const OFFSET_NO_DATA = 3;

// The walker's states: what the next item is. Header and TOC fields in file order, then the data section.
const S_MAGIC = 0;
const S_VMAJ = 1;
const S_VMIN = 2;
const S_VREV = 3;
const S_INTSIZE = 4;
const S_OFFSIZE = 5;
const S_FORMAT = 6;
const S_COMPRESSION = 7;
const S_TIME = 8;
const S_DBNAME = 9;
const S_SERVERVER = 10;
const S_DUMPVER = 11;
const S_TOCCOUNT = 12;
const S_DUMPID = 13;
const S_HADDUMPER = 14;
const S_TABLEOID = 15;
const S_OID = 16;
const S_TAG = 17;
const S_DESC = 18;
const S_SECTION = 19;
const S_DEFN = 20;
const S_DROP = 21;
const S_COPY = 22;
const S_NAMESPACE = 23;
const S_TABLESPACE = 24;
const S_TABLEAM = 25;
const S_RELKIND = 26;
const S_OWNER = 27;
const S_WITHOIDS = 28;
const S_DEP = 29;
const S_OFFFLAG = 30;
const S_OFFSET = 31;
const S_FILENAME = 32;
const S_BLOCKTYPE = 33;
const S_BLOCKID = 34;
const S_CHUNKLEN = 35;
const S_LOOID = 36;
/** An archive version this walker does not know: the rest is counted, not read. */
const S_IGNORE = 37;
/** A directory archive's toc.dat ends with its TOC. */
const S_TRAILER = 38;

const K_BYTE = 0;
const K_INT = 1;
const K_MAGIC = 2;
const K_RAW = 3;

type Mode = 'custom' | 'directory';

/** Walks pg_dump's header, TOC and (custom format) data section as they stream past. */
class ArchiveWalker {
  private state = S_MAGIC;
  private kind = K_MAGIC;
  /** Bytes of the current small item (a byte, an int, the magic, an offset). */
  private need = MAGIC.length;
  private readonly scratch = Buffer.alloc(16);
  private have = 0;
  /** Bytes to step over: a data chunk's payload, a TOC string we do not keep, a data offset. */
  private skip = 0;
  /** The skip ends a TOC field (a skipped string or offset): step() runs when it is done. */
  private skipEndsField = false;
  /** The current field is a string whose length is being read. */
  private strLength = false;
  private strKeep = false;
  private strLen = 0;
  /** The chunk being walked and where the string after its length starts (a kept string read in place). */
  private pendingChunk: Buffer | undefined;
  private pendingAt = 0;
  private consumed = 0;
  private collect: Buffer | undefined;
  private collectHave = 0;
  private collectLeft = 0;
  /** Stream offset of the first byte of the chunk being walked, and of the item being read. */
  private base = 0;
  private at = 0;
  private broken: ArchiveStructureError | undefined;

  private vmaj = 0;
  private vmin = 0;
  private vrev = 0;
  private intSize = 4;
  private intNeed = 5;
  private offSize = 8;
  private format = 0;
  private compression: ArchiveHeader['compression'] = 'none';
  private readonly time: number[] = [];
  private database: string | null = null;
  private serverVersion: string | null = null;
  private dumpVersion: string | null = null;
  private reason: string | undefined;

  private tocCount = 0;
  private tocStart = 0;
  private tocEnd = -1;
  private readonly entries: TocEntrySummary[] = [];
  private readonly byId = new Map<number, TocEntrySummary>();
  private cur: TocEntrySummary | undefined;
  private dataEntries = 0;

  /**
   * Where a copy of the TOC starts after the last block, else -1: pg_dump 16+ writing the custom format to its
   * stdout when that is a regular file appends its TOC rewrite (the one with data offsets) there instead of
   * overwriting the first TOC (stdout is shared with a handle opened for appending). pg_restore reads the first
   * TOC and never looks past the last block; the copy is accepted when it repeats the TOC exactly.
   */
  private copyStart = -1;
  private copyIndex = 0;

  private readonly blocks = new Map<number, DataBlockSummary>();
  private block: DataBlockSummary | undefined;
  private blockEntry: TocEntrySummary | undefined;
  private chunkLen = 0;
  /** The first payload bytes of the current block, to recognise a block that holds only COPY's end marker. */
  private readonly blockHead = Buffer.alloc(END_OF_COPY.length);
  private blockHeadHave = 0;

  /** Newlines of the current block's payload are counted (uncompressed data blocks: COPY text, one row a line). */
  private get countRows(): boolean {
    return this.block?.newlines !== undefined;
  }

  constructor(private readonly mode: Mode) {}

  /**
   * Feeds the next bytes. The buffer may be reused by the caller once this returns: nothing of it is kept but
   * copies of TOC strings. Never throws for a broken archive: end() reports it.
   */
  push(chunk: Buffer): void {
    if (this.broken) {
      this.base += chunk.length;
      return;
    }
    try {
      this.walk(chunk);
    } catch (err) {
      if (!(err instanceof ArchiveStructureError)) throw err;
      this.broken = err;
    }
    this.base += chunk.length;
  }

  /** The first problem found so far, if any (end() throws it). */
  get error(): ArchiveStructureError | undefined {
    return this.broken;
  }

  /** The structure of a complete archive, or an ArchiveStructureError saying where it breaks off. */
  end(): CustomArchiveStructure {
    if (this.broken) throw this.broken;
    const bytes = this.base;
    if (bytes === 0) throw new ArchiveStructureError('the archive is empty (0 bytes)');
    if (this.state === S_MAGIC) {
      if (!MAGIC.subarray(0, this.have).equals(this.scratch.subarray(0, this.have))) throw this.notPgdmp();
      throw new ArchiveStructureError(`the archive ends after ${bytes} byte${bytes === 1 ? '' : 's'}, inside its header`);
    }
    if (this.state === S_IGNORE) {
      return { version: this.versionString(), walked: false, reason: this.reason!, entries: [], blocks: new Map(), bytes };
    }
    if (this.copyStart >= 0 && this.state !== S_TRAILER) throw new ArchiveStructureError(`bytes after the last data block, at byte ${this.copyStart}`);
    if (this.state < S_TOCCOUNT) throw new ArchiveStructureError(`the archive ends inside its header, at byte ${bytes}`);
    if (this.state === S_TOCCOUNT) throw new ArchiveStructureError(`the archive ends after its header, before its table of contents, at byte ${bytes}`);
    if (this.state < S_BLOCKTYPE) {
      throw new ArchiveStructureError(`the archive ends inside its table of contents (entry ${this.entries.length + 1} of ${this.tocCount}), at byte ${bytes}`);
    }
    // Between blocks (a byte-sized item, so nothing half-read), or a toc.dat after its TOC: complete.
    if (this.state === S_BLOCKTYPE || this.state === S_TRAILER) return this.structure(bytes);
    if (this.state === S_BLOCKID || !this.blockEntry) throw new ArchiveStructureError(`the archive ends inside a data block's header, at byte ${bytes}`);
    const where =
      this.skip > 0
        ? `inside a chunk (${this.skip} of its ${this.chunkLen} bytes missing)`
        : this.have > 0
          ? this.state === S_LOOID
            ? 'inside a large object\'s OID'
            : 'inside a chunk\'s length'
          : 'before the block\'s end marker';
    throw new ArchiveStructureError(`the archive ends inside the data of ${describe(this.blockEntry)} (dump ID ${this.blockEntry.dumpId}), ${where}, at byte ${bytes}`);
  }

  private structure(bytes: number): CustomArchiveStructure {
    const t = this.time;
    const pad = (n: number | undefined): string => String(n ?? 0).padStart(2, '0');
    const header: ArchiveHeader = {
      intSize: this.intSize,
      offSize: this.offSize,
      format: this.format,
      compression: this.compression,
      created: `${1900 + (t[5] ?? 0)}-${pad((t[4] ?? 0) + 1)}-${pad(t[3])} ${pad(t[2])}:${pad(t[1])}:${pad(t[0])}`,
      database: this.database,
      serverVersion: this.serverVersion,
      dumpVersion: this.dumpVersion,
    };
    const toc = { start: this.tocStart, end: this.tocEnd < 0 ? bytes : this.tocEnd };
    return { version: this.versionString(), walked: true, header, entries: this.entries, toc, blocks: this.blocks, bytes };
  }

  private versionString(): string {
    return `${this.vmaj}.${this.vmin}-${this.vrev}`;
  }

  private notPgdmp(): ArchiveStructureError {
    const shown = this.scratch.subarray(0, this.have).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
    return new ArchiveStructureError(`not a pg_dump archive: it starts with "${shown}", not "PGDMP"`);
  }

  private fail(what: string): never {
    // Whatever does not parse as a copy of the TOC is just bytes that should not be there.
    if (this.copyStart >= 0 && this.state !== S_TRAILER) throw new ArchiveStructureError(`bytes after the last data block, at byte ${this.copyStart}`);
    throw new ArchiveStructureError(`${what}, at byte ${this.at}`);
  }

  private walk(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.skip > 0) {
        const s = this.skip < n - i ? this.skip : n - i;
        if (this.countRows && !this.skipEndsField && this.block) this.block.newlines! += countNewlines(chunk, i, i + s);
        if (this.blockHeadHave < END_OF_COPY.length && !this.skipEndsField) {
          const take = Math.min(END_OF_COPY.length - this.blockHeadHave, s);
          chunk.copy(this.blockHead, this.blockHeadHave, i, i + take);
          this.blockHeadHave += take;
        }
        this.skip -= s;
        i += s;
        if (this.skip === 0 && this.skipEndsField) {
          this.skipEndsField = false;
          this.step(this.strLen, '');
        }
        continue;
      }
      if (this.collectLeft > 0) {
        const s = Math.min(this.collectLeft, n - i);
        const room = this.collect!.length - this.collectHave;
        if (room > 0) {
          const take = Math.min(room, s);
          chunk.copy(this.collect!, this.collectHave, i, i + take);
          this.collectHave += take;
        }
        this.collectLeft -= s;
        i += s;
        if (this.collectLeft === 0) {
          const text = this.collect!.toString('utf8', 0, this.collectHave);
          this.collect = undefined;
          this.step(this.strLen, text);
        }
        continue;
      }
      // The hot loop: one chunk per COPY row (pg_dump -Z0), each an int length and a payload stepped over.
      if (this.state === S_CHUNKLEN && this.intSize === 4 && this.have === 0 && this.blockHeadHave === END_OF_COPY.length) {
        let bytes = 0;
        let chunks = 0;
        while (n - i >= 5 && chunk[i] === 0) {
          const len = chunk.readUInt32LE(i + 1);
          if (len === 0) break;
          i += 5;
          bytes += len;
          chunks++;
          if (len > n - i) {
            if (this.countRows) this.block!.newlines! += countNewlines(chunk, i, n);
            this.chunkLen = len;
            this.skip = len - (n - i);
            i = n;
            break;
          }
          if (this.countRows) this.block!.newlines! += countNewlines(chunk, i, i + len);
          i += len;
        }
        this.block!.bytes += bytes;
        this.block!.chunks += chunks;
        if (i === n) return;
      }
      if (this.state === S_IGNORE) return;
      if (this.state === S_TRAILER) {
        this.at = this.base + i;
        this.fail(this.mode === 'directory' ? 'bytes after the table of contents' : 'bytes after the copy of the table of contents');
      }
      // A small item: straight from the chunk when it is all there, else gathered across chunks.
      const need = this.need;
      let v: number;
      if (this.have === 0 && n - i >= need) {
        this.at = this.base + i;
        v = this.decode(chunk, i);
        i += need;
      } else {
        if (this.have === 0) this.at = this.base + i;
        const take = Math.min(need - this.have, n - i);
        chunk.copy(this.scratch, this.have, i, i + take);
        this.have += take;
        i += take;
        if (this.have < need) {
          if (this.kind === K_MAGIC && !MAGIC.subarray(0, this.have).equals(this.scratch.subarray(0, this.have))) throw this.notPgdmp();
          return;
        }
        this.have = 0;
        v = this.decode(this.scratch, 0);
      }
      if (this.strLength) {
        this.pendingChunk = chunk;
        this.pendingAt = i;
        this.stringLength(v);
        this.pendingChunk = undefined;
        i += this.consumed;
        this.consumed = 0;
      } else this.step(v, '');
    }
  }

  private decode(b: Buffer, at: number): number {
    switch (this.kind) {
      case K_BYTE:
        return b[at]!;
      case K_INT: {
        let v: number;
        if (this.intSize === 4) v = b.readUInt32LE(at + 1);
        else {
          v = 0;
          for (let k = this.intSize; k >= 1; k--) v = v * 256 + b[at + k]!;
        }
        // pg_dump's ReadInt: a sign byte, then the magnitude, least significant byte first.
        return b[at] ? -v : v;
      }
      case K_MAGIC:
        if (!MAGIC.equals(b.subarray(at, at + MAGIC.length))) {
          b.copy(this.scratch, 0, at, at + MAGIC.length);
          this.have = MAGIC.length;
          throw this.notPgdmp();
        }
        return 1;
      default: {
        // An offset (K_RAW): offSize bytes, least significant first.
        let v = 0;
        for (let k = this.need - 1; k >= 0; k--) v = v * 256 + b[at + k]!;
        return v;
      }
    }
  }

  private expect(state: number, kind: number): void {
    this.state = state;
    this.kind = kind;
    this.need = kind === K_INT ? this.intNeed : 1;
  }

  private expectStr(state: number, keep: boolean): void {
    this.expect(state, K_INT);
    this.strLength = true;
    this.strKeep = keep;
  }

  /** A TOC string's length arrived: NULL (negative), empty, kept (collected) or stepped over. */
  private stringLength(len: number): void {
    this.strLength = false;
    if (len <= 0) {
      this.step(len < 0 ? -1 : 0, '');
      return;
    }
    this.strLen = len;
    if (this.strKeep && this.pendingChunk && this.pendingChunk.length - this.pendingAt >= len) {
      // All of it in this chunk: decoded in place, consumed by walk().
      const text = this.pendingChunk.toString('utf8', this.pendingAt, this.pendingAt + Math.min(len, KEEP_MAX));
      this.consumed = len;
      this.step(len, text);
      return;
    }
    if (this.strKeep) {
      this.collect = Buffer.allocUnsafe(Math.min(len, KEEP_MAX));
      this.collectHave = 0;
      this.collectLeft = len;
    } else {
      this.skip = len;
      this.skipEndsField = true;
    }
  }

  private step(v: number, text: string): void {
    switch (this.state) {
      case S_MAGIC:
        return this.expect(S_VMAJ, K_BYTE);
      case S_VMAJ:
        this.vmaj = v;
        return this.expect(S_VMIN, K_BYTE);
      case S_VMIN:
        this.vmin = v;
        // pg_dump's ReadHead: archives newer than 1.0 carry a revision byte.
        if (this.vmaj > 1 || (this.vmaj === 1 && this.vmin > 0)) return this.expect(S_VREV, K_BYTE);
        return this.checkVersion();
      case S_VREV:
        this.vrev = v;
        return this.checkVersion();
      case S_INTSIZE:
        if (v < 1 || v > 8) this.fail(`integer size ${v} in the header (pg_dump writes 4)`);
        this.intSize = v;
        this.intNeed = v + 1;
        return this.expect(S_OFFSIZE, K_BYTE);
      case S_OFFSIZE:
        if (v < 1 || v > 16) this.fail(`offset size ${v} in the header (pg_dump writes 8)`);
        this.offSize = v;
        return this.expect(S_FORMAT, K_BYTE);
      case S_FORMAT: {
        this.format = v;
        const ok = this.mode === 'custom' ? v === FORMAT_CUSTOM : v === FORMAT_TAR || v === FORMAT_DIRECTORY;
        if (!ok) this.fail(`format code ${v} in the header: not a ${this.mode === 'custom' ? 'custom-format archive' : 'directory archive\'s toc.dat'}`);
        // 1.15 replaced the compression level (an int) with the algorithm (a byte).
        return this.expect(S_COMPRESSION, this.vmin >= 15 ? K_BYTE : K_INT);
      }
      case S_COMPRESSION:
        if (this.vmin >= 15) this.compression = (['none', 'gzip', 'lz4', 'zstd'] as const)[v] ?? `unknown (${v})`;
        else this.compression = v === 0 ? 'none' : 'gzip';
        return this.expect(S_TIME, K_INT);
      case S_TIME:
        this.time.push(v);
        if (this.time.length < 7) return this.expect(S_TIME, K_INT);
        return this.expectStr(S_DBNAME, true);
      case S_DBNAME:
        this.database = v < 0 ? null : text;
        return this.expectStr(S_SERVERVER, true);
      case S_SERVERVER:
        this.serverVersion = v < 0 ? null : text;
        return this.expectStr(S_DUMPVER, true);
      case S_DUMPVER:
        this.dumpVersion = v < 0 ? null : text;
        return this.expect(S_TOCCOUNT, K_INT);
      case S_TOCCOUNT:
        if (v < 0) this.fail(`a negative TOC entry count (${v})`);
        if (this.copyStart >= 0) {
          if (v !== this.tocCount) this.fail('not a copy of the table of contents');
          return this.startEntry();
        }
        this.tocCount = v;
        this.tocStart = this.at;
        return v === 0 ? this.afterToc() : this.startEntry();
      case S_DUMPID:
        // pg_dump's ReadToc refuses these too ("entry ID out of range -- perhaps a corrupt TOC").
        if (v <= 0) this.fail(`TOC entry ${this.entries.length + 1} has dump ID ${v}`);
        if (this.copyStart < 0 && this.byId.has(v)) this.fail(`dump ID ${v} appears twice in the table of contents`);
        this.cur!.dumpId = v;
        return this.expect(S_HADDUMPER, K_INT);
      case S_HADDUMPER:
        this.cur!.hadDumper = v !== 0;
        return this.expectStr(S_TABLEOID, false);
      case S_TABLEOID:
        return this.expectStr(S_OID, false);
      case S_OID:
        return this.expectStr(S_TAG, true);
      case S_TAG:
        this.cur!.tag = v < 0 ? null : text;
        return this.expectStr(S_DESC, true);
      case S_DESC:
        if (v < 0) this.fail(`TOC entry ${this.entries.length + 1} (dump ID ${this.cur!.dumpId}) has no description`);
        this.cur!.desc = text;
        return this.expect(S_SECTION, K_INT);
      case S_SECTION:
        return this.expectStr(S_DEFN, false);
      case S_DEFN:
        return this.expectStr(S_DROP, false);
      case S_DROP:
        return this.expectStr(S_COPY, false);
      case S_COPY:
        this.cur!.copy = v > 0;
        return this.expectStr(S_NAMESPACE, true);
      case S_NAMESPACE:
        this.cur!.namespace = v < 0 ? null : text;
        return this.expectStr(S_TABLESPACE, false);
      case S_TABLESPACE:
        if (this.vmin >= 14) return this.expectStr(S_TABLEAM, false);
        return this.afterTableam();
      case S_TABLEAM:
        return this.afterTableam();
      case S_RELKIND:
        return this.expectStr(S_OWNER, false);
      case S_OWNER:
        return this.expectStr(S_WITHOIDS, false);
      case S_WITHOIDS:
        return this.expectStr(S_DEP, false);
      case S_DEP:
        // The dependency list ends with a NULL string.
        if (v >= 0) return this.expectStr(S_DEP, false);
        if (this.mode === 'directory') return this.expectStr(S_FILENAME, true);
        return this.expect(S_OFFFLAG, K_BYTE);
      case S_OFFFLAG:
        if (v < 1 || v > 3) this.fail(`data offset flag ${v} in TOC entry ${this.entries.length + 1} (dump ID ${this.cur!.dumpId})`);
        this.cur!.dataState = v;
        this.expect(S_OFFSET, K_RAW);
        this.need = this.offSize;
        return;
      case S_OFFSET:
        if (this.cur!.dataState === OFFSET_POS_SET) this.cur!.dataOffset = v;
        return this.finishEntry();
      case S_FILENAME:
        if (v > 0) this.cur!.file = text;
        return this.finishEntry();
      case S_BLOCKTYPE:
        if (this.tocEnd < 0) this.tocEnd = this.at;
        if (this.blocks.size === this.dataEntries) {
          if (this.tocCount === 0) this.fail('bytes after the table of contents (it is empty)');
          // Perhaps the TOC again (see copyStart): this byte is the sign byte of its entry count.
          this.copyStart = this.at;
          this.copyIndex = 0;
          this.expect(S_TOCCOUNT, K_INT);
          this.scratch[0] = v;
          this.have = 1;
          return;
        }
        if (v !== BLK_DATA && v !== BLK_BLOBS) this.fail(`unknown data block type ${v}`);
        this.block = { dumpId: 0, type: v === BLK_DATA ? 'data' : 'blobs', bytes: 0, chunks: 0, largeObjects: 0, onlyEndOfCopy: false, ...(this.compression === 'none' && v === BLK_DATA ? { newlines: 0 } : {}), start: this.at, end: 0 };
        return this.expect(S_BLOCKID, K_INT);
      case S_BLOCKID:
        return this.startBlock(v);
      case S_CHUNKLEN:
        if (v < 0) this.fail(`a chunk of negative length (${v}) in the data of ${describe(this.blockEntry!)}`);
        if (v === 0) {
          if (this.block!.type === 'data') return this.finishBlock();
          return this.expect(S_LOOID, K_INT);
        }
        this.block!.bytes += v;
        this.block!.chunks++;
        this.chunkLen = v;
        this.skip = v;
        return;
      case S_LOOID:
        if (v === 0) return this.finishBlock();
        if (v < 0) this.fail(`large object OID ${v} in the data of ${describe(this.blockEntry!)}`);
        this.block!.largeObjects++;
        return this.expect(S_CHUNKLEN, K_INT);
      default:
        throw new Error(`dump-check: unexpected state ${this.state}`);
    }
  }

  private checkVersion(): void {
    if (this.vmaj === 1 && this.vmin >= MIN_MINOR && this.vmin <= MAX_MINOR) return this.expect(S_INTSIZE, K_BYTE);
    const newer = this.vmaj > 1 || this.vmin > MAX_MINOR;
    this.reason = `archive version ${this.versionString()} is ${newer ? 'newer' : 'older'} than the versions this check reads (1.${MIN_MINOR} to 1.${MAX_MINOR}, pg_dump 10 to 18)`;
    this.state = S_IGNORE;
  }

  private afterTableam(): void {
    if (this.vmin >= 16) return this.expect(S_RELKIND, K_INT);
    return this.expectStr(S_OWNER, false);
  }

  private startEntry(): void {
    this.cur = { dumpId: 0, desc: '', namespace: null, tag: null, hadDumper: false, copy: false };
    this.expect(S_DUMPID, K_INT);
  }

  private finishEntry(): void {
    const e = this.cur!;
    if (this.copyStart >= 0) return this.finishCopiedEntry(e);
    this.entries.push(e);
    this.byId.set(e.dumpId, e);
    if (e.hadDumper) this.dataEntries++;
    this.cur = undefined;
    if (this.entries.length < this.tocCount) return this.startEntry();
    return this.afterToc();
  }

  /** An entry of the TOC's copy: the same entry, with its data offset filled in where it has data. */
  private finishCopiedEntry(e: TocEntrySummary): void {
    const o = this.entries[this.copyIndex++]!;
    const same = e.dumpId === o.dumpId && e.desc === o.desc && e.tag === o.tag && e.namespace === o.namespace && e.hadDumper === o.hadDumper && e.copy === o.copy;
    const offset = e.dataState === o.dataState ? e.dataOffset === o.dataOffset : o.dataState === 1 && (e.dataState === 1 || (e.dataState === OFFSET_POS_SET && e.dataOffset === this.blocks.get(e.dumpId)?.start));
    if (!same || !offset) this.fail('not a copy of the table of contents');
    this.cur = undefined;
    if (this.copyIndex < this.tocCount) return this.startEntry();
    this.state = S_TRAILER;
  }

  private afterToc(): void {
    if (this.mode === 'directory') {
      this.state = S_TRAILER;
      return;
    }
    this.expect(S_BLOCKTYPE, K_BYTE);
  }

  private startBlock(id: number): void {
    const b = this.block!;
    const e = this.byId.get(id);
    const kind = b.type === 'data' ? 'data block' : 'large-object block';
    // Problems with the block as a whole are reported where it starts.
    this.at = b.start;
    if (!e) this.fail(`a ${kind} for dump ID ${id}, which the table of contents does not list`);
    if (!e.hadDumper) this.fail(`a ${kind} for ${describe(e)} (dump ID ${id}), which has no data`);
    if (this.blocks.has(id)) this.fail(`a second data block for ${describe(e)} (dump ID ${id})`);
    if ((b.type === 'blobs') !== (e.desc === 'BLOBS')) this.fail(`a ${kind} (type ${b.type === 'data' ? BLK_DATA : BLK_BLOBS}) for ${describe(e)} (dump ID ${id})`);
    // pg_restore seeks to the offset the TOC records: a block elsewhere is one it would not find.
    if (e.dataOffset !== undefined && e.dataOffset !== b.start) {
      throw new ArchiveStructureError(`the data of ${describe(e)} (dump ID ${id}) starts at byte ${b.start}, but the table of contents places it at byte ${e.dataOffset}`);
    }
    b.dumpId = id;
    this.blockEntry = e;
    this.blockHeadHave = 0;
    this.expect(b.type === 'data' ? S_CHUNKLEN : S_LOOID, K_INT);
  }

  private finishBlock(): void {
    const b = this.block!;
    b.end = this.at + this.intNeed;
    b.onlyEndOfCopy = b.type === 'data' && b.bytes === END_OF_COPY.length && this.blockHead.equals(END_OF_COPY);
    this.blocks.set(b.dumpId, b);
    this.block = undefined;
    this.blockEntry = undefined;
    this.expect(S_BLOCKTYPE, K_BYTE);
  }
}

/**
 * Walks a pg_dump custom-format archive pushed in order (see ArchiveWalker.push); end() returns its structure or
 * throws an ArchiveStructureError when the bytes stop short of a complete archive.
 */
export class CustomArchiveWalker extends ArchiveWalker {
  constructor() {
    super('custom');
  }
}

/** "TABLE DATA public.docs" */
function describe(e: TocEntrySummary): string {
  if (e.tag === e.desc) return e.desc;
  const name = [e.namespace, e.tag].filter((s) => s !== null && s !== '').join('.');
  return name ? `${e.desc} ${name}` : e.desc;
}

function qualified(t: DumpTable): string {
  return `${t.schema}.${t.name}`;
}

function dataDesc(t: DumpTable): string {
  return t.kind === 'materialized view' ? 'MATERIALIZED VIEW DATA' : 'TABLE DATA';
}

/** What the archive holds of one entry's data: a custom block or a directory file. */
interface DataEvidence {
  bytes: number;
  onlyEndOfCopy: boolean;
  /** COPY rows it holds, where they could be counted (uncompressed, or decoded). */
  rows?: number;
  /** "data block", "data file 3609.dat.gz" */
  what: string;
}

/**
 * The rules of verify.ts's pg_restore --list check (a data entry for every table with data, MATERIALIZED VIEW DATA
 * for a populated materialized view) plus the data itself: every entry that has data has it, complete, and a table
 * with rows has more than an empty COPY.
 */
function tocProblems(entries: TocEntrySummary[], tables: readonly DumpTable[], evidence: (e: TocEntrySummary) => DataEvidence | string): string[] {
  const problems: string[] = [];
  const index = new Map<string, TocEntrySummary>();
  for (const e of entries) index.set(`${e.desc}\u0000${e.namespace ?? ''}\u0000${e.tag ?? ''}`, e);
  const seen = new Set<number>();
  for (const t of tables) {
    if (!t.hasData) continue;
    const desc = dataDesc(t);
    const e = index.get(`${desc}\u0000${t.schema}\u0000${t.name}`);
    if (!e) {
      problems.push(`${qualified(t)}: no ${desc} entry in the table of contents`);
      continue;
    }
    seen.add(e.dumpId);
    // A materialized view's data is its REFRESH statement, not a data block.
    if (!e.hadDumper) {
      if (desc === 'TABLE DATA' && t.rows > 0) problems.push(`${qualified(t)}: its TABLE DATA entry carries no data (the table has ${t.rows} rows)`);
      continue;
    }
    const d = evidence(e);
    if (typeof d === 'string') {
      problems.push(`${qualified(t)}: ${d}`);
      continue;
    }
    if (t.rows > 0 && d.bytes === 0) problems.push(`${qualified(t)}: its ${d.what} is empty (the table has ${t.rows} rows)`);
    else if (t.rows > 0 && d.onlyEndOfCopy) problems.push(`${qualified(t)}: its ${d.what} holds no rows, only COPY's end marker (the table has ${t.rows} rows)`);
    // Exact: pg_dump read the same snapshot the rows were counted in.
    else if (d.rows !== undefined && d.rows !== t.rows) problems.push(`${qualified(t)}: its ${d.what} holds ${d.rows} rows, the snapshot has ${t.rows}`);
  }
  for (const e of entries) {
    if (!e.hadDumper || seen.has(e.dumpId)) continue;
    const d = evidence(e);
    if (typeof d === 'string') problems.push(`${describe(e)} (dump ID ${e.dumpId}): ${d}`);
  }
  return problems;
}

/**
 * Problems with a walked custom archive's completeness against the manifest's tables: an empty list means every
 * table's data is there, walked to its end marker. Throws (a bug in the caller) for an archive that was not
 * walked: check that one's TOC with pg_restore --list instead.
 */
export function checkCustomComplete(structure: CustomArchiveStructure, tables: readonly DumpTable[]): string[] {
  if (!structure.walked) throw new Error(`checkCustomComplete: the archive was not walked (${structure.reason ?? 'unknown version'}); check its TOC with pg_restore --list instead`);
  return tocProblems(structure.entries, tables, (e) => {
    const b = structure.blocks.get(e.dumpId);
    if (!b) return `no data block: the archive ends before it (dump ID ${e.dumpId})`;
    return { bytes: b.bytes, onlyEndOfCopy: b.onlyEndOfCopy, ...(b.newlines !== undefined && e.copy ? { rows: b.newlines - END_NEWLINES } : {}), what: 'data block' };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Plain format

export const PLAIN_HEADER = '-- PostgreSQL database dump';
export const PLAIN_FOOTER = '-- PostgreSQL database dump complete';
const LINE_PREFIX = 4096;
const C = 0x43;
const R = 0x52;
/** What may follow the footer: its closing comment line, blank lines, and psql's \unrestrict (pg_dump 13.22+, 17.6+). */
const AFTER_FOOTER = /^\n(?:--\n)?(?:\n|\\unrestrict [^\n]*\n)*$/;

export interface PlainDumpResult {
  /** pg_dump's header comment within the first bytes. */
  header: boolean;
  /** The completion footer, followed by nothing but what pg_dump writes after it. */
  footer: boolean;
  /** COPY targets and refreshed materialized views, as "schema.name" (unquoted). */
  copies: ReadonlySet<string>;
  refreshes: ReadonlySet<string>;
  /** Data lines of each COPY, by target. */
  copyRows: ReadonlyMap<string, number>;
  bytes: number;
}

/**
 * Scans plain SQL for its header, footer, COPY targets (with their data lines) and matview refreshes, in bounded
 * memory. push() may be given a buffer the caller reuses afterwards: a line carried over to the next push is copied.
 */
export class PlainDumpChecker {
  head = '';
  tail = '';
  readonly copies = new Set<string>();
  readonly refreshes = new Set<string>();
  readonly copyRows = new Map<string, number>();
  // The start of the current line, as bytes: decoding per chunk would split multi-byte characters.
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The COPY whose data lines are being read, until its "\." line. */
  private copyTarget: string | undefined;
  private copyLines = 0;
  private bytes = 0;
  private finished = false;

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.head.length < 256) this.head += chunk.subarray(0, 256).toString('utf8');
    this.tail = (this.tail + chunk.subarray(Math.max(0, chunk.length - 512)).toString('latin1')).slice(-512);
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(10, pos);
      const end = nl === -1 ? chunk.length : nl;
      // Only the first bytes of a line matter (COPY / REFRESH statements); data lines can be huge.
      const take = Math.min(LINE_PREFIX - this.pendingBytes, end - pos);
      if (take > 0) {
        this.pending.push(chunk.subarray(pos, pos + take));
        this.pendingBytes += take;
      }
      if (nl === -1) break;
      this.flushLine();
      pos = nl + 1;
    }
    // The line continues in the next chunk: keep a copy, the caller may reuse this one.
    if (this.pendingBytes) this.pending = [Buffer.concat(this.pending)];
  }

  /** Scans the last line (one without a newline); idempotent. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.pendingBytes) this.flushLine();
    // A COPY cut off before its end marker: its rows so far.
    if (this.copyTarget !== undefined) {
      this.copyRows.set(this.copyTarget, (this.copyRows.get(this.copyTarget) ?? 0) + this.copyLines);
      this.copyTarget = undefined;
    }
  }

  end(): PlainDumpResult {
    this.finish();
    const at = this.tail.lastIndexOf(PLAIN_FOOTER);
    return {
      header: this.head.includes(PLAIN_HEADER),
      footer: at >= 0 && AFTER_FOOTER.test(this.tail.slice(at + PLAIN_FOOTER.length)),
      copies: this.copies,
      refreshes: this.refreshes,
      copyRows: this.copyRows,
      bytes: this.bytes,
    };
  }

  private flushLine(): void {
    const first = this.pending[0];
    const n = this.pendingBytes;
    if (this.copyTarget !== undefined) {
      const two = n === 2 ? (first!.length >= 2 ? first! : Buffer.concat(this.pending)) : undefined;
      if (two && two[0] === 0x5c && two[1] === 0x2e) {
        this.copyRows.set(this.copyTarget, (this.copyRows.get(this.copyTarget) ?? 0) + this.copyLines);
        this.copyTarget = undefined;
      } else this.copyLines++;
    }
    // Only lines that start with COPY or REFRESH are decoded (data lines are most of a dump).
    if (first && (first[0] === C || first[0] === R)) this.line(Buffer.concat(this.pending).toString('utf8'), n >= LINE_PREFIX);
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** `cut`: only the line's first LINE_PREFIX bytes are in l. */
  private line(l: string, cut: boolean): void {
    if (l.startsWith('COPY ')) {
      const m = /^COPY (.+?) (\(|FROM )/.exec(l);
      if (m) {
        const target = normalizeQualified(m[1]!);
        this.copies.add(target);
        // A data COPY ends with FROM stdin; (beyond the scanned prefix for a very wide table).
        if (this.copyTarget === undefined && (cut || / FROM stdin;$/.test(l))) {
          this.copyTarget = target;
          this.copyLines = 0;
        }
      }
    } else if (l.startsWith('REFRESH MATERIALIZED VIEW ')) {
      this.refreshes.add(normalizeQualified(l.slice('REFRESH MATERIALIZED VIEW '.length).replace(/;\s*$/, '')));
    }
  }
}

/** PlainDumpChecker as a Writable (the quick verify's decompression pipeline ends in it). */
export class PlainScanner extends Writable {
  private readonly checker = new PlainDumpChecker();

  get head(): string {
    return this.checker.head;
  }

  get tail(): string {
    return this.checker.tail;
  }

  get copies(): Set<string> {
    return this.checker.copies;
  }

  get refreshes(): Set<string> {
    return this.checker.refreshes;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.checker.push(chunk);
    cb();
  }

  override _final(cb: () => void): void {
    this.checker.finish();
    cb();
  }
}

/** `public."My Table"` -> `public.My Table` (for comparison with the manifest's names). */
export function normalizeQualified(s: string): string {
  const parts: string[] = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] === '"') {
      let j = i + 1;
      let out = '';
      while (j < s.length) {
        if (s[j] === '"' && s[j + 1] === '"') {
          out += '"';
          j += 2;
        } else if (s[j] === '"') break;
        else out += s[j++];
      }
      parts.push(out);
      i = j + 1;
    } else {
      const dot = s.indexOf('.', i);
      const end = dot === -1 ? s.length : dot;
      parts.push(s.slice(i, end));
      i = end;
    }
    if (s[i] === '.') i++;
  }
  return parts.join('.');
}

/** Problems with a scanned plain dump's completeness against the manifest's tables (none: complete). */
export function checkPlainComplete(result: PlainDumpResult, tables: readonly DumpTable[]): string[] {
  const problems: string[] = [];
  if (!result.header) problems.push(`no pg_dump header ("${PLAIN_HEADER}") at the start`);
  if (!result.footer) problems.push(`no completion footer ("${PLAIN_FOOTER}") at the end: the dump is truncated, or bytes follow it`);
  for (const t of tables) {
    if (!t.hasData) continue;
    const q = qualified(t);
    if (t.kind === 'materialized view') {
      if (!result.refreshes.has(q)) problems.push(`${q}: no REFRESH MATERIALIZED VIEW`);
      continue;
    }
    if (!result.copies.has(q)) problems.push(`${q}: no COPY`);
    else if (t.rows > 0 && !result.copyRows.get(q)) problems.push(`${q}: its COPY holds no rows (the table has ${t.rows} rows)`);
    // Exact: pg_dump read the same snapshot the rows were counted in (COPY text: one row a line).
    else if ((result.copyRows.get(q) ?? 0) !== t.rows) problems.push(`${q}: its COPY holds ${result.copyRows.get(q) ?? 0} rows, the snapshot has ${t.rows}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Directory format

export interface DirectoryCheck {
  /** False when toc.dat's archive version is outside 1.12-1.16 (see reason): check it with pg_restore --list. */
  checked: boolean;
  reason?: string;
  structure?: CustomArchiveStructure;
  problems: string[];
}

/** pg_dump names a data file <dumpId>.dat and appends the compression's suffix. */
const DATA_SUFFIXES = ['', '.gz', '.lz4', '.zst'];

async function findDataFile(dir: string, name: string): Promise<{ name: string; size: number } | undefined> {
  for (const suffix of DATA_SUFFIXES) {
    const st = await fs.stat(path.join(dir, name + suffix)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw err;
    });
    if (st?.isFile()) return { name: name + suffix, size: st.size };
  }
  return undefined;
}

/** Reads toc.dat of a directory archive with the custom format's header and TOC parser. */
export async function readDirectoryToc(dir: string): Promise<CustomArchiveStructure> {
  const walker = new ArchiveWalker('directory');
  for await (const chunk of createReadStream(path.join(dir, 'toc.dat'), { highWaterMark: 1 << 16 })) walker.push(chunk as Buffer);
  return walker.end();
}

/**
 * A directory archive's completeness against the manifest's tables: toc.dat parses to its end, and every entry
 * that has data has its file (a table with rows: a non-empty one; large objects: every file their list names).
 */
export async function checkDirectoryComplete(dir: string, tables: readonly DumpTable[]): Promise<DirectoryCheck> {
  let structure: CustomArchiveStructure;
  try {
    structure = await readDirectoryToc(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { checked: true, problems: ['toc.dat is missing'] };
    if (err instanceof ArchiveStructureError) return { checked: true, problems: [`toc.dat: ${err.message}`] };
    throw err;
  }
  if (!structure.walked) return { checked: false, reason: structure.reason!, structure, problems: [] };
  const uncompressed = structure.header!.compression === 'none';
  const files = new Map<number, DataEvidence | string>();
  for (const e of structure.entries) {
    if (!e.hadDumper) continue;
    if (!e.file) {
      files.set(e.dumpId, 'no data file named in toc.dat');
      continue;
    }
    const f = await findDataFile(dir, e.file);
    if (!f) {
      files.set(e.dumpId, `its data file ${e.file} is missing`);
      continue;
    }
    if (e.desc === 'BLOBS') {
      const missing = await missingLargeObjectFiles(dir, f.name);
      if (missing) {
        files.set(e.dumpId, missing);
        continue;
      }
    }
    let onlyEndOfCopy = false;
    if (uncompressed && e.copy && f.size === END_OF_COPY.length) onlyEndOfCopy = (await fs.readFile(path.join(dir, f.name))).equals(END_OF_COPY);
    // A table's data file ends with COPY's end marker: a file cut short (or a compressed one that does not decode to
    // its end) lacks it, though it exists and is not empty.
    let rows: number | undefined;
    if (e.copy && e.desc === 'TABLE DATA' && f.size > 0) {
      const read = await copyData(path.join(dir, f.name));
      if (typeof read === 'string') {
        files.set(e.dumpId, `its data file ${f.name} ${read}`);
        continue;
      }
      rows = read.rows;
    }
    files.set(e.dumpId, { bytes: f.size, onlyEndOfCopy, ...(rows !== undefined ? { rows } : {}), what: `data file ${f.name}` });
  }
  return { checked: true, structure, problems: tocProblems(structure.entries, tables, (e) => files.get(e.dumpId)!) };
}

/**
 * Why a table's data file is cut short, or undefined when it ends with COPY's end marker. Compressed files (gzip,
 * zstd) are decoded to their end, in bounded memory; lz4 (Node has no decoder) is left to the verification.
 */
async function copyData(file: string): Promise<string | { rows?: number }> {
  const decoder = file.endsWith('.gz') ? nodeDecoder('gzip') : file.endsWith('.zst') ? nodeDecoder('zstd') : file.endsWith('.lz4') ? null : undefined;
  if (decoder === null) return {};
  let tail = Buffer.alloc(0);
  let newlines = 0;
  const keep = (c: Buffer): void => {
    newlines += countNewlines(c, 0, c.length);
    tail = Buffer.concat([tail, c.subarray(Math.max(0, c.length - END_OF_COPY.length))]).subarray(-END_OF_COPY.length);
  };
  if (!decoder) {
    // Read whole (with the checksum's reused buffer size): the rows are counted as lines.
    for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) keep(c as Buffer);
  } else {
    // The tail is kept by a sink at the end of the pipeline: it resolves only after the decoder ended (or failed).
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        keep(chunk);
        cb();
      },
    });
    try {
      await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), decoder, sink);
    } catch (err) {
      return `does not decompress (${(err as Error).message}): it is cut short or damaged`;
    }
  }
  return tail.equals(END_OF_COPY) ? { rows: newlines - END_NEWLINES } : 'ends before COPY\'s end marker: it is cut short';
}

/** Newlines in COPY's end marker ("\\.\n\n\n"): a data payload's newlines less these are its rows. */
const END_NEWLINES = 3;

/** '\n' bytes in buf[from, to): memchr through indexOf. */
function countNewlines(buf: Buffer, from: number, to: number): number {
  const view = from === 0 && to === buf.length ? buf : buf.subarray(from, to);
  let n = 0;
  for (let at = view.indexOf(10); at !== -1; at = view.indexOf(10, at + 1)) n++;
  return n;
}

/**
 * Node's own decoder for a compression pg_dump or we write (zlib's thread pool, 1 MiB output chunks); null where
 * this Node has none (zstd before Node 23.8, lz4 always).
 */
export function nodeDecoder(method: 'gzip' | 'zstd' | 'lz4'): Duplex | null {
  const z = zlib as typeof zlib & { createZstdDecompress?: (o?: { chunkSize?: number }) => Duplex };
  if (method === 'gzip') return zlib.createGunzip({ chunkSize: 1 << 20 });
  if (method === 'zstd' && z.createZstdDecompress) return z.createZstdDecompress({ chunkSize: 1 << 20 });
  return null;
}

/** The large-object list (blobs.toc, blobs_<id>.toc: "<oid> blob_<oid>.dat" lines) names files that exist. */
async function missingLargeObjectFiles(dir: string, list: string): Promise<string | undefined> {
  const lines = createInterface({ input: createReadStream(path.join(dir, list)), crlfDelay: Infinity });
  let missing = 0;
  let first = '';
  for await (const line of lines) {
    if (!line.trim()) continue;
    const m = /^(\d+) (\S+)$/.exec(line);
    if (!m) return `its list ${list} has a line that is not "<oid> <file>": ${JSON.stringify(line.slice(0, 80))}`;
    if (!(await findDataFile(dir, m[2]!))) {
      missing++;
      first ||= m[2]!;
    }
  }
  return missing ? `${missing} large object file${missing === 1 ? '' : 's'} of ${list} missing (${first} ...)` : undefined;
}
