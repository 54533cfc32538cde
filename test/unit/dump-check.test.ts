// The completeness checks on hand-built pg_dump byte sequences (no server): headers and TOCs at archive versions
// 1.12 to 1.16, a version from the future, every place a stream can stop, and the rules against a manifest.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  ArchiveStructureError,
  checkCustomComplete,
  checkDirectoryComplete,
  checkPlainComplete,
  CustomArchiveWalker,
  PlainDumpChecker,
  type DumpTable,
} from '../../src/archive/dump-check.js';
import { scanPlainReusing, walk, walkReusing } from '../helpers/walk.js';

// ---- a small pg_dump archive writer (pg_backup_archiver.c WriteHead/WriteToc, pg_backup_custom.c) ----

interface Entry {
  dumpId: number;
  desc: string;
  tag?: string | null;
  namespace?: string | null;
  hadDumper?: boolean;
  copy?: string | null;
  defn?: string;
  deps?: number[];
  /** custom: 1 not set, 2 set, 3 no data (default: from hadDumper) */
  dataState?: number;
  offset?: number;
  /** directory */
  file?: string;
}

interface Spec {
  minor: number;
  major?: number;
  rev?: number;
  intSize?: number;
  format?: number;
  /** < 1.15: the level (an int); from 1.15: the algorithm (a byte). */
  compression?: number;
  mode?: 'custom' | 'directory';
  entries: Entry[];
}

class Writer {
  readonly parts: Buffer[] = [];
  constructor(readonly intSize = 4) {}
  byte(b: number): this {
    this.parts.push(Buffer.from([b]));
    return this;
  }
  raw(b: Buffer | string): this {
    this.parts.push(typeof b === 'string' ? Buffer.from(b, 'utf8') : b);
    return this;
  }
  int(v: number): this {
    const b = Buffer.alloc(this.intSize + 1);
    b[0] = v < 0 ? 1 : 0;
    let m = Math.abs(v);
    for (let k = 1; k <= this.intSize; k++) {
      b[k] = m % 256;
      m = Math.floor(m / 256);
    }
    return this.raw(b);
  }
  str(s: string | null): this {
    if (s === null) return this.int(-1);
    const b = Buffer.from(s, 'utf8');
    return this.int(b.length).raw(b);
  }
  get length(): number {
    return this.parts.reduce((n, p) => n + p.length, 0);
  }
  buffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function header(w: Writer, s: Spec): void {
  const minor = s.minor;
  w.raw('PGDMP').byte(s.major ?? 1).byte(minor).byte(s.rev ?? 0).byte(w.intSize).byte(8);
  w.byte(s.format ?? (s.mode === 'directory' ? 3 : 1));
  if (minor >= 15) w.byte(s.compression ?? 0);
  else w.int(s.compression ?? 0);
  for (const v of [47, 16, 5, 3, 11, 126, 0]) w.int(v);
  w.str('db').str('15.20').str('15.20');
}

function toc(w: Writer, s: Spec): void {
  w.int(s.entries.length);
  for (const e of s.entries) {
    const had = e.hadDumper ?? false;
    w.int(e.dumpId).int(had ? 1 : 0).str('1259').str('16384');
    w.str(e.tag === undefined ? 'x' : e.tag).str(e.desc).int(had ? 3 : 2);
    w.str(e.defn ?? 'CREATE something;\n').str('').str(e.copy === undefined ? (had ? 'COPY x FROM stdin;\n' : '') : e.copy);
    w.str(e.namespace === undefined ? 'public' : e.namespace).str('');
    if (s.minor >= 14) w.str('heap');
    if (s.minor >= 16) w.int(114);
    w.str('postgres').str('false');
    for (const d of e.deps ?? [1]) w.str(String(d));
    w.str(null);
    if ((s.mode ?? 'custom') === 'custom') {
      w.byte(e.dataState ?? (had ? 1 : 3));
      const o = Buffer.alloc(8);
      o.writeBigUInt64LE(BigInt(e.offset ?? 0));
      w.raw(o);
    } else w.str(e.file ?? (had ? `${e.dumpId}.dat` : ''));
  }
}

function dataBlock(w: Writer, dumpId: number, chunks: Array<string | Buffer>): void {
  w.byte(1).int(dumpId);
  for (const c of chunks) {
    const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
    w.int(b.length).raw(b);
  }
  w.int(0);
}

function blobsBlock(w: Writer, dumpId: number, los: Array<[number, string[]]>): void {
  w.byte(3).int(dumpId);
  for (const [oid, chunks] of los) {
    w.int(oid);
    for (const c of chunks) w.int(Buffer.byteLength(c)).raw(c);
    w.int(0);
  }
  w.int(0);
}

const END = '\\.\n\n\n';
const ENTRIES: Entry[] = [
  { dumpId: 9, desc: 'ENCODING', tag: 'ENCODING', namespace: null, defn: "SET client_encoding = 'UTF8';\n" },
  { dumpId: 10, desc: 'TABLE', tag: 'docs' },
  { dumpId: 11, desc: 'TABLE', tag: 'My "Docs" ü', namespace: 'Search Space' },
  { dumpId: 12, desc: 'TABLE', tag: 'empty' },
  { dumpId: 20, desc: 'TABLE DATA', tag: 'docs', hadDumper: true, deps: [10] },
  { dumpId: 21, desc: 'TABLE DATA', tag: 'My "Docs" ü', namespace: 'Search Space', hadDumper: true, deps: [11] },
  { dumpId: 22, desc: 'TABLE DATA', tag: 'empty', hadDumper: true, deps: [12] },
  { dumpId: 23, desc: 'BLOBS', tag: 'BLOBS', namespace: null, hadDumper: true, copy: null, deps: [] },
  { dumpId: 30, desc: 'MATERIALIZED VIEW DATA', tag: 'mv', defn: 'REFRESH MATERIALIZED VIEW public.mv;\n' },
];
const TABLES: DumpTable[] = [
  { schema: 'public', name: 'docs', kind: 'table', rows: 3, hasData: true },
  { schema: 'Search Space', name: 'My "Docs" ü', kind: 'table', rows: 1, hasData: true },
  { schema: 'public', name: 'empty', kind: 'table', rows: 0, hasData: true },
  { schema: 'public', name: 'events', kind: 'partitioned table', rows: 0, hasData: false },
  { schema: 'public', name: 'mv', kind: 'materialized view', rows: 1, hasData: true },
  { schema: 'public', name: 'mv_unpopulated', kind: 'materialized view', rows: 0, hasData: false },
];

/** A complete custom archive at `minor`, with the byte offsets where each data block starts. */
function sample(minor: number, opts: { intSize?: number; compression?: number; offsets?: boolean } = {}): { buf: Buffer; blockStarts: number[]; tocEnd: number } {
  const spec: Spec = { minor, entries: ENTRIES, ...opts };
  const sizes = (entries: Entry[]): { w: Writer; starts: number[]; tocEnd: number } => {
    const w = new Writer(opts.intSize ?? 4);
    header(w, spec);
    toc(w, { ...spec, entries });
    const tocEnd = w.length;
    const starts: number[] = [];
    starts.push(w.length);
    dataBlock(w, 20, ['1\tone\n', '2\ttwo\n', '3\tthree\n', END]);
    starts.push(w.length);
    dataBlock(w, 21, ['1\tü\n', END]);
    starts.push(w.length);
    dataBlock(w, 22, [END]);
    starts.push(w.length);
    blobsBlock(w, 23, [
      [16743, ['hello ', 'large object']],
      [16744, []],
    ]);
    return { w, starts, tocEnd };
  };
  let r = sizes(ENTRIES);
  if (opts.offsets) {
    // As pg_dump does on a seekable file: the TOC rewritten (same length) with each block's offset.
    const ids = [20, 21, 22, 23];
    r = sizes(ENTRIES.map((e) => (ids.includes(e.dumpId) ? { ...e, dataState: 2, offset: r.starts[ids.indexOf(e.dumpId)]! } : e)));
  }
  return { buf: r.w.buffer(), blockStarts: r.starts, tocEnd: r.tocEnd };
}

function walkError(buf: Buffer, chunk?: number): string {
  try {
    walk(buf, chunk);
  } catch (err) {
    expect(err).toBeInstanceOf(ArchiveStructureError);
    return (err as Error).message;
  }
  throw new Error('expected an ArchiveStructureError');
}

describe('CustomArchiveWalker: headers and TOCs of archive versions 1.12 to 1.16', () => {
  test.each([12, 13, 14, 15, 16])('1.%i: every entry, every block, the header', (minor) => {
    const { buf } = sample(minor);
    const s = walk(buf);
    expect(s.walked).toBe(true);
    expect(s.version).toBe(`1.${minor}-0`);
    expect(s.bytes).toBe(buf.length);
    expect(s.header).toEqual({ intSize: 4, offSize: 8, format: 1, compression: 'none', created: '2026-12-03 05:16:47', database: 'db', serverVersion: '15.20', dumpVersion: '15.20' });
    expect(s.entries.map((e) => [e.dumpId, e.desc, e.namespace, e.tag, e.hadDumper])).toEqual(ENTRIES.map((e) => [e.dumpId, e.desc, e.namespace === undefined ? 'public' : e.namespace, e.tag === undefined ? 'x' : e.tag, e.hadDumper ?? false]));
    expect([...s.blocks.values()].map((b) => [b.dumpId, b.type, b.bytes, b.chunks, b.largeObjects, b.onlyEndOfCopy])).toEqual([
      [20, 'data', 6 + 6 + 8 + 5, 4, 0, false],
      [21, 'data', 5 + 5, 2, 0, false],
      [22, 'data', 5, 1, 0, true],
      [23, 'blobs', 18, 2, 2, false],
    ]);
    expect(checkCustomComplete(s, TABLES)).toEqual([]);
  });

  test.each([
    { minor: 14, compression: 0, expected: 'none' },
    { minor: 14, compression: 6, expected: 'gzip' },
    { minor: 14, compression: -1, expected: 'gzip' },
    { minor: 15, compression: 0, expected: 'none' },
    { minor: 15, compression: 1, expected: 'gzip' },
    { minor: 15, compression: 2, expected: 'lz4' },
    { minor: 16, compression: 3, expected: 'zstd' },
    { minor: 16, compression: 9, expected: 'unknown (9)' },
  ])('1.$minor compression field $compression -> $expected (a level before 1.15, an algorithm byte from 1.15)', ({ minor, compression, expected }) => {
    expect(walk(sample(minor, { compression }).buf).header!.compression).toBe(expected);
  });

  test('8-byte integers', () => {
    const s = walk(sample(16, { intSize: 8 }).buf, 7);
    expect(s.header!.intSize).toBe(8);
    expect(s.blocks.get(23)!.largeObjects).toBe(2);
  });

  test.each([1, 2, 7, 64 * 1024])('the same structure when fed in chunks of %i bytes into a reused buffer', (size) => {
    const { buf } = sample(16, { offsets: true });
    const whole = walk(buf);
    const s = walkReusing(buf, size);
    expect(s.entries).toEqual(whole.entries);
    expect([...s.blocks.values()]).toEqual([...whole.blocks.values()]);
    expect(s.entries.find((e) => e.dumpId === 21)!.tag).toBe('My "Docs" ü');
  });

  test('offsets written into a rewritten TOC are checked against where each block starts', () => {
    const { buf, blockStarts } = sample(14, { offsets: true });
    const s = walk(buf);
    expect(s.entries.filter((e) => e.hadDumper).map((e) => e.dataOffset)).toEqual(blockStarts);
    expect(s.blocks.get(21)!.start).toBe(blockStarts[1]);
    expect(s.blocks.get(21)!.end).toBe(blockStarts[2]);
    // The first table's block cut out: the next block is not where the TOC says.
    const spliced = Buffer.concat([buf.subarray(0, blockStarts[0]), buf.subarray(blockStarts[1]!)]);
    expect(walkError(spliced)).toBe(`the data of TABLE DATA Search Space.My "Docs" ü (dump ID 21) starts at byte ${blockStarts[0]}, but the table of contents places it at byte ${blockStarts[1]}`);
  });

  test('pg_dump 16+ on a regular-file stdout: the TOC rewrite appended after the last block is accepted only as an exact copy', () => {
    const first = sample(16).buf;
    const rewritten = sample(16, { offsets: true }).buf;
    const { toc } = walk(rewritten);
    const copy = rewritten.subarray(toc!.start, toc!.end);
    const buf = Buffer.concat([first, copy]);
    for (const size of [1, 7, buf.length]) {
      const s = walk(buf, size);
      expect(checkCustomComplete(s, TABLES)).toEqual([]);
      expect(s.entries.filter((e) => e.hadDumper).every((e) => e.dataState === 1)).toBe(true);
      expect(s.toc).toEqual(toc);
    }
    expect(walkError(Buffer.concat([buf, Buffer.from('x')]))).toBe(`bytes after the copy of the table of contents, at byte ${buf.length}`);
    // Cut short, or not the same TOC: just bytes after the last block.
    expect(walkError(buf.subarray(0, buf.length - 1))).toBe(`bytes after the last data block, at byte ${first.length}`);
    expect(walkError(Buffer.concat([first, copy.subarray(0, 3)]))).toBe(`bytes after the last data block, at byte ${first.length}`);
    // The first table's offset one byte off (a NO_DATA entry's offset bytes are ignored, as pg_restore does).
    const wrongOffset = Buffer.from(copy);
    const offset = Buffer.alloc(9);
    offset[0] = 2;
    offset.writeBigUInt64LE(BigInt(sample(16).blockStarts[0]!), 1);
    const where = wrongOffset.indexOf(offset);
    expect(where).toBeGreaterThan(0);
    wrongOffset[where + 1]! += 1;
    expect(walkError(Buffer.concat([first, wrongOffset]))).toBe(`bytes after the last data block, at byte ${first.length}`);
    const other = walk(sample(14, { offsets: true }).buf);
    expect(walkError(Buffer.concat([first, sample(14, { offsets: true }).buf.subarray(other.toc!.start, other.toc!.end)]))).toBe(`bytes after the last data block, at byte ${first.length}`);
    // Without the copy it is the complete archive pg_dump writes to a pipe; every other prefix is refused.
    for (let cut = first.length; cut < buf.length; cut++) {
      if (cut === first.length) expect(checkCustomComplete(walk(buf.subarray(0, cut)), TABLES)).toEqual([]);
      else expect(() => walk(buf.subarray(0, cut))).toThrow(ArchiveStructureError);
    }
  });

  test('a long definition is stepped over, not kept, whatever the chunking', () => {
    const big = 'x'.repeat(300_000);
    const w = new Writer();
    const spec: Spec = { minor: 16, entries: [{ dumpId: 1, desc: 'FUNCTION', tag: 'f', defn: big }] };
    header(w, spec);
    toc(w, spec);
    const s = walk(w.buffer(), 1000);
    expect(s.entries).toEqual([{ dumpId: 1, desc: 'FUNCTION', tag: 'f', namespace: 'public', hadDumper: false, copy: false, dataState: 3 }]);
  });
});

describe('CustomArchiveWalker: versions it does not know are not guessed at', () => {
  test.each([
    { major: 1, minor: 99, word: 'newer' },
    { major: 1, minor: 17, word: 'newer' },
    { major: 2, minor: 0, word: 'newer' },
    { major: 1, minor: 11, word: 'older' },
  ])('$word version $major: walked false, nothing misparsed, no error', ({ major, minor, word }) => {
    // What follows the version bytes could be anything in a format we do not know.
    const buf = Buffer.concat([Buffer.from('PGDMP'), Buffer.from([major, minor, 0]), Buffer.from('whatever a future pg_dump writes \x00\xff\x03')]);
    for (const chunk of [1, 3, buf.length]) {
      const s = walk(buf, chunk);
      expect(s).toEqual({ version: `${major}.${minor}-0`, walked: false, reason: expect.stringContaining(`archive version ${major}.${minor}-0 is ${word} than`), entries: [], blocks: new Map(), bytes: buf.length });
      expect(() => checkCustomComplete(s, TABLES)).toThrow('pg_restore --list');
    }
  });

  test('a version cut short is still a truncated header', () => {
    expect(walkError(Buffer.from('PGDMP\x01'))).toBe('the archive ends inside its header, at byte 6');
  });
});

describe('CustomArchiveWalker: every way a stream stops short', () => {
  const { buf, blockStarts, tocEnd } = sample(14);

  test('empty, or not PGDMP', () => {
    expect(walkError(Buffer.alloc(0))).toBe('the archive is empty (0 bytes)');
    expect(walkError(Buffer.from('PGD'))).toBe('the archive ends after 3 bytes, inside its header');
    expect(walkError(Buffer.from('PGDMQ\x01\x0e'))).toBe('not a pg_dump archive: it starts with "PGDMQ", not "PGDMP"');
    expect(walkError(Buffer.from('--\n-- PostgreSQL database dump'), 1)).toBe('not a pg_dump archive: it starts with "-", not "PGDMP"');
    // Found at the first wrong byte, without waiting for the end.
    const w = new CustomArchiveWalker();
    w.push(Buffer.from([0x1f, 0x8b]));
    expect(w.error?.message).toBe('not a pg_dump archive: it starts with "..", not "PGDMP"');
  });

  test.each([
    { where: 'inside the header', cut: 20, message: 'the archive ends inside its header, at byte 20' },
    { where: 'inside the TOC', cut: 200, message: 'the archive ends inside its table of contents (entry 1 of 9), at byte 200' },
    { where: 'inside the last TOC entry', cut: tocEnd - 3, message: `the archive ends inside its table of contents (entry 9 of 9), at byte ${tocEnd - 3}` },
    { where: 'inside a data block header', cut: blockStarts[1]! + 3, message: `the archive ends inside a data block's header, at byte ${blockStarts[1]! + 3}` },
    { where: 'inside a chunk length', cut: blockStarts[1]! + 8, message: `the archive ends inside the data of TABLE DATA Search Space.My "Docs" ü (dump ID 21), inside a chunk's length, at byte ${blockStarts[1]! + 8}` },
    { where: 'inside a chunk', cut: blockStarts[1]! + 13, message: `the archive ends inside the data of TABLE DATA Search Space.My "Docs" ü (dump ID 21), inside a chunk (3 of its 5 bytes missing), at byte ${blockStarts[1]! + 13}` },
    { where: 'before a block end marker', cut: blockStarts[2]! - 5, message: `the archive ends inside the data of TABLE DATA Search Space.My "Docs" ü (dump ID 21), before the block's end marker, at byte ${blockStarts[2]! - 5}` },
    { where: 'inside the large objects', cut: buf.length - 1, message: `the archive ends inside the data of BLOBS (dump ID 23), inside a large object's OID, at byte ${buf.length - 1}` },
  ])('cut $where', ({ cut, message }) => {
    for (const chunk of [1, 7, cut]) expect(walkError(buf.subarray(0, cut), chunk)).toBe(message);
  });

  test('cut exactly after the TOC or at a block boundary: a complete structure, with the later tables missing', () => {
    expect(checkCustomComplete(walk(buf.subarray(0, tocEnd)), TABLES)).toEqual([
      'public.docs: no data block: the archive ends before it (dump ID 20)',
      'Search Space.My "Docs" ü: no data block: the archive ends before it (dump ID 21)',
      'public.empty: no data block: the archive ends before it (dump ID 22)',
      'BLOBS (dump ID 23): no data block: the archive ends before it (dump ID 23)',
    ]);
    expect(checkCustomComplete(walk(buf.subarray(0, blockStarts[1])), TABLES)).toEqual([
      'Search Space.My "Docs" ü: no data block: the archive ends before it (dump ID 21)',
      'public.empty: no data block: the archive ends before it (dump ID 22)',
      'BLOBS (dump ID 23): no data block: the archive ends before it (dump ID 23)',
    ]);
    expect(checkCustomComplete(walk(buf.subarray(0, blockStarts[3])), TABLES)).toEqual(['BLOBS (dump ID 23): no data block: the archive ends before it (dump ID 23)']);
  });

  test('every proper prefix is refused, fed whole or byte by byte', () => {
    for (let cut = 0; cut < buf.length; cut++) {
      for (const chunk of [cut || 1, 1]) {
        let problems: string[];
        try {
          problems = checkCustomComplete(walk(buf.subarray(0, cut), chunk), TABLES);
        } catch (err) {
          expect(err, `cut at ${cut}`).toBeInstanceOf(ArchiveStructureError);
          continue;
        }
        expect(problems.length, `cut at ${cut}`).toBeGreaterThan(0);
      }
    }
  });

  test('bytes after the last block', () => {
    for (const tail of ['\x00', '\x01', 'garbage', '\x01\x00\x14\x00\x00\x00']) {
      expect(walkError(Buffer.concat([buf, Buffer.from(tail, 'latin1')]))).toBe(`bytes after the last data block, at byte ${buf.length}`);
    }
  });

  test('blocks the TOC does not explain', () => {
    const head = buf.subarray(0, blockStarts[0]);
    const block = (fn: (w: Writer) => void): Buffer => {
      const w = new Writer();
      fn(w);
      return Buffer.concat([head, w.buffer()]);
    };
    const at = blockStarts[0]!;
    expect(walkError(block((w) => w.byte(2)))).toBe(`unknown data block type 2, at byte ${at}`);
    expect(walkError(block((w) => dataBlock(w, 77, ['x'])))).toBe(`a data block for dump ID 77, which the table of contents does not list, at byte ${at}`);
    expect(walkError(block((w) => dataBlock(w, 10, ['x'])))).toBe(`a data block for TABLE public.docs (dump ID 10), which has no data, at byte ${at}`);
    expect(walkError(block((w) => dataBlock(w, 23, ['x'])))).toBe(`a data block (type 1) for BLOBS (dump ID 23), at byte ${at}`);
    expect(walkError(block((w) => blobsBlock(w, 20, [])))).toBe(`a large-object block (type 3) for TABLE DATA public.docs (dump ID 20), at byte ${at}`);
    expect(walkError(block((w) => w.byte(1).int(20).int(-5)))).toBe(`a chunk of negative length (-5) in the data of TABLE DATA public.docs, at byte ${at + 6}`);
    expect(walkError(block((w) => (dataBlock(w, 20, ['1\n']), dataBlock(w, 20, ['1\n']))))).toBe(`a second data block for TABLE DATA public.docs (dump ID 20), at byte ${at + 18}`);
  });

  test('a TOC that cannot be pg_dump\'s', () => {
    const bad = (entries: Entry[], minor = 14): string => {
      const w = new Writer();
      header(w, { minor, entries });
      toc(w, { minor, entries });
      return walkError(w.buffer());
    };
    expect(bad([{ dumpId: 0, desc: 'TABLE' }])).toMatch(/^TOC entry 1 has dump ID 0, at byte \d+$/);
    expect(bad([{ dumpId: 1, desc: 'TABLE' }, { dumpId: 1, desc: 'TABLE' }])).toMatch(/^dump ID 1 appears twice in the table of contents/);
    expect(bad([{ dumpId: 1, desc: 'TABLE', dataState: 7 }])).toMatch(/^data offset flag 7 in TOC entry 1 \(dump ID 1\)/);
    const w = new Writer();
    header(w, { minor: 14, format: 3, entries: [] });
    expect(walkError(w.buffer())).toBe('format code 3 in the header: not a custom-format archive, at byte 10');
  });
});

describe('checkCustomComplete: the manifest\'s rules', () => {
  const s = walk(sample(15).buf);

  test('a table with rows needs more than an empty block; a table without rows does not', () => {
    const tables: DumpTable[] = [
      { schema: 'public', name: 'empty', kind: 'table', rows: 5, hasData: true },
      { schema: 'public', name: 'docs', kind: 'table', rows: 0, hasData: true },
    ];
    expect(checkCustomComplete(s, tables)).toEqual([
      "public.empty: its data block holds no rows, only COPY's end marker (the table has 5 rows)",
      // Rows are counted exactly in uncompressed blocks: more than the snapshot had is as wrong as fewer.
      'public.docs: its data block holds 3 rows, the snapshot has 0',
    ]);
  });

  test('entries the manifest expects', () => {
    const tables: DumpTable[] = [
      { schema: 'public', name: 'gone', kind: 'table', rows: 0, hasData: true },
      { schema: 'public', name: 'gone_mv', kind: 'materialized view', rows: 0, hasData: true },
      { schema: 'other', name: 'docs', kind: 'partition', rows: 1, hasData: true },
      { schema: 'public', name: 'unpopulated', kind: 'materialized view', rows: 0, hasData: false },
    ];
    expect(checkCustomComplete(s, tables)).toEqual([
      'public.gone: no TABLE DATA entry in the table of contents',
      'public.gone_mv: no MATERIALIZED VIEW DATA entry in the table of contents',
      'other.docs: no TABLE DATA entry in the table of contents',
    ]);
  });

  test('an empty block for a table with rows; compressed data is judged by its bytes only', () => {
    const w = new Writer();
    const entries: Entry[] = [{ dumpId: 20, desc: 'TABLE DATA', tag: 'docs', hadDumper: true }];
    header(w, { minor: 15, compression: 1, entries });
    toc(w, { minor: 15, entries });
    dataBlock(w, 20, []);
    const t: DumpTable[] = [{ schema: 'public', name: 'docs', kind: 'table', rows: 3, hasData: true }];
    expect(checkCustomComplete(walk(w.buffer()), t)).toEqual(['public.docs: its data block is empty (the table has 3 rows)']);
  });
});

// ---- plain format ----

const PLAIN = [
  '--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n',
  'COPY public.docs (id, body) FROM stdin;\n1\tone\n2\ttwo\n3\tthree\n\\.\n\n',
  'COPY "Search Space"."My ""Docs"" ü" (id) FROM stdin;\n1\n\\.\n\n',
  'COPY public.empty (id) FROM stdin;\n\\.\n\n',
  'REFRESH MATERIALIZED VIEW public.mv;\n\n',
  '--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n',
].join('');

function plain(text: string | Buffer, size = 7): ReturnType<PlainDumpChecker['end']> {
  return scanPlainReusing(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, size);
}

describe('PlainDumpChecker', () => {
  test.each([1, 2, 7, 4096, 1 << 16])('a complete dump in %i-byte pushes into a reused buffer', (size) => {
    const r = plain(PLAIN, size);
    expect(r.header).toBe(true);
    expect(r.footer).toBe(true);
    expect([...r.copyRows]).toEqual([
      ['public.docs', 3],
      ['Search Space.My "Docs" ü', 1],
      ['public.empty', 0],
    ]);
    expect([...r.refreshes]).toEqual(['public.mv']);
    expect(checkPlainComplete(r, TABLES)).toEqual([]);
  });

  test.each([
    ['without \\unrestrict (older pg_dump)', PLAIN.replace('\\unrestrict abc\n\n', ''), true],
    ['cut after the footer line', PLAIN.slice(0, PLAIN.indexOf('complete') + 9), true],
    ['cut inside the footer', PLAIN.slice(0, PLAIN.indexOf('complete') + 4), false],
    ['cut before the footer', PLAIN.slice(0, PLAIN.indexOf('REFRESH')), false],
    ['garbage after the footer', PLAIN + 'SELECT 1;\n', false],
    ['another dump appended', PLAIN + PLAIN.slice(0, 200), false],
  ])('footer %s', (_name, text, footer) => {
    expect(plain(text).footer).toBe(footer);
  });

  test('what checkPlainComplete reports', () => {
    const cut = plain(PLAIN.slice(0, PLAIN.indexOf('2\ttwo')));
    expect(checkPlainComplete(cut, TABLES)).toEqual([
      'no completion footer ("-- PostgreSQL database dump complete") at the end: the dump is truncated, or bytes follow it',
      'public.docs: its COPY holds 1 rows, the snapshot has 3',
      'Search Space.My "Docs" ü: no COPY',
      'public.empty: no COPY',
      'public.mv: no REFRESH MATERIALIZED VIEW',
    ]);
    expect(cut.copyRows.get('public.docs')).toBe(1);
    const headless = plain(PLAIN.replace('-- PostgreSQL database dump\n', '-- something else\n'));
    expect(checkPlainComplete(headless, TABLES)).toEqual(['no pg_dump header ("-- PostgreSQL database dump") at the start']);
    const emptied = plain(PLAIN.replace('1\tone\n2\ttwo\n3\tthree\n', ''));
    expect(checkPlainComplete(emptied, TABLES)).toEqual(['public.docs: its COPY holds no rows (the table has 3 rows)']);
    // Every other row dropped (a wrapper, or a broken pipe that lost data): the counts are exact.
    const thinned = plain(PLAIN.replace('1\tone\n2\ttwo\n3\tthree\n', '1\tone\n3\tthree\n'));
    expect(checkPlainComplete(thinned, TABLES)).toEqual(['public.docs: its COPY holds 2 rows, the snapshot has 3']);
  });

  test('a COPY line longer than the scanned prefix still counts its rows; the end marker split across pushes', () => {
    const cols = Array.from({ length: 800 }, (_, i) => `column_${i}`).join(', ');
    const text = `COPY public.wide (${cols}) FROM stdin;\n1\n2\n\\.\n\n`;
    const buf = Buffer.from(text);
    for (const size of [1, 3, 4097]) expect([...plain(buf, size).copyRows]).toEqual([['public.wide', 2]]);
  });
});

// ---- directory format ----

describe('checkDirectoryComplete', () => {
  const entries: Entry[] = [
    { dumpId: 10, desc: 'TABLE', tag: 'docs' },
    { dumpId: 20, desc: 'TABLE DATA', tag: 'docs', hadDumper: true },
    { dumpId: 22, desc: 'TABLE DATA', tag: 'empty', hadDumper: true },
    { dumpId: 23, desc: 'BLOBS', tag: 'BLOBS', namespace: null, hadDumper: true, copy: null, file: 'blobs.toc' },
    { dumpId: 30, desc: 'MATERIALIZED VIEW DATA', tag: 'mv' },
  ];
  const tables: DumpTable[] = [
    { schema: 'public', name: 'docs', kind: 'table', rows: 2, hasData: true },
    { schema: 'public', name: 'empty', kind: 'table', rows: 0, hasData: true },
    { schema: 'public', name: 'mv', kind: 'materialized view', rows: 1, hasData: true },
  ];

  const made: string[] = [];
  const tempDir = (): string => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-dc-'));
    made.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });

  function makeDir(files: Record<string, string | Buffer>, opts: { minor?: number; compression?: number; tocTail?: number; extra?: string } = {}): string {
    const dir = tempDir();
    const w = new Writer();
    const spec: Spec = { minor: opts.minor ?? 14, mode: 'directory', entries, ...(opts.compression !== undefined ? { compression: opts.compression } : {}) };
    header(w, spec);
    toc(w, spec);
    let t = w.buffer();
    if (opts.tocTail !== undefined) t = t.subarray(0, t.length + opts.tocTail);
    if (opts.extra) t = Buffer.concat([t, Buffer.from(opts.extra)]);
    writeFileSync(path.join(dir, 'toc.dat'), t);
    for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
    return dir;
  }
  const good = { '20.dat': '1\n2\n' + END, '22.dat': END, 'blobs.toc': '16743 blob_16743.dat\n', 'blob_16743.dat': 'hello' };

  test('complete', async () => {
    const r = await checkDirectoryComplete(makeDir(good), tables);
    expect(r.problems).toEqual([]);
    expect(r.checked).toBe(true);
    expect(r.structure!.entries.filter((e) => e.hadDumper).map((e) => e.file)).toEqual(['20.dat', '22.dat', 'blobs.toc']);
  });

  test('compressed files are found by their suffix', async () => {
    const gz = (text: string): Buffer => gzipSync(Buffer.from(text, 'latin1'));
    const dir = makeDir({ '20.dat.gz': gz(`1\ta\n2\tb\n${END}`), '22.dat.gz': gz(END), 'blobs.toc': '16743 blob_16743.dat\n', 'blob_16743.dat.gz': gz('lo') }, { compression: 6 });
    expect((await checkDirectoryComplete(dir, tables)).problems).toEqual([]);
  });

  test('a data file cut short: it lacks COPY\'s end marker, or (compressed) does not decompress to its end', async () => {
    const cutPlain = makeDir({ ...good, '20.dat': '1\ta\n2\tb' });
    expect((await checkDirectoryComplete(cutPlain, tables)).problems).toEqual(["public.docs: its data file 20.dat ends before COPY's end marker: it is cut short"]);
    const whole = gzipSync(Buffer.from(`1\ta\n2\tb\n${END}`, 'latin1'));
    const gz = (b: Buffer): Record<string, string | Buffer> => ({ '20.dat.gz': b, '22.dat.gz': gzipSync(Buffer.from(END, 'latin1')), 'blobs.toc': '16743 blob_16743.dat\n', 'blob_16743.dat.gz': gzipSync(Buffer.from('lo')) });
    const cutGz = makeDir(gz(whole.subarray(0, whole.length - 10)), { compression: 6 });
    expect((await checkDirectoryComplete(cutGz, tables)).problems).toEqual([expect.stringMatching(/^public\.docs: its data file 20\.dat\.gz does not decompress \(unexpected end of file\): it is cut short or damaged$/)]);
    // A whole gzip stream of data cut before the marker (pg_dump's output cut, then compressed).
    // A row dropped inside a whole, well-formed file: its rows are counted.
    const thinnedPlain = makeDir({ ...good, '20.dat': '1\n' + END });
    expect((await checkDirectoryComplete(thinnedPlain, tables)).problems).toEqual(['public.docs: its data file 20.dat holds 1 rows, the snapshot has 2']);
    const shortGz = makeDir(gz(gzipSync(Buffer.from('1\ta\n2\tb\n', 'latin1'))), { compression: 6 });
    expect((await checkDirectoryComplete(shortGz, tables)).problems).toEqual(["public.docs: its data file 20.dat.gz ends before COPY's end marker: it is cut short"]);
  });

  test.each([
    { name: 'a data file missing', files: { ...good, '20.dat': undefined }, problems: ['public.docs: its data file 20.dat is missing'] },
    { name: 'a data file empty', files: { ...good, '20.dat': '' }, problems: ['public.docs: its data file 20.dat is empty (the table has 2 rows)'] },
    { name: 'a data file with no rows', files: { ...good, '20.dat': END }, problems: ["public.docs: its data file 20.dat holds no rows, only COPY's end marker (the table has 2 rows)"] },
    { name: 'the large-object list missing', files: { ...good, 'blobs.toc': undefined }, problems: ['BLOBS (dump ID 23): its data file blobs.toc is missing'] },
    { name: 'a large-object file missing', files: { ...good, 'blob_16743.dat': undefined }, problems: ['BLOBS (dump ID 23): 1 large object file of blobs.toc missing (blob_16743.dat ...)'] },
  ])('$name', async ({ files, problems }) => {
    const present = Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined)) as Record<string, string>;
    expect((await checkDirectoryComplete(makeDir(present), tables)).problems).toEqual(problems);
  });

  test('toc.dat missing, cut or followed by bytes; a version it does not know', async () => {
    const noToc = tempDir();
    expect(await checkDirectoryComplete(noToc, tables)).toEqual({ checked: true, problems: ['toc.dat is missing'] });
    expect((await checkDirectoryComplete(makeDir(good, { tocTail: -4 }), tables)).problems).toEqual([expect.stringMatching(/^toc\.dat: the archive ends inside its table of contents \(entry 5 of 5\), at byte \d+$/)]);
    expect((await checkDirectoryComplete(makeDir(good, { extra: 'x' }), tables)).problems).toEqual([expect.stringMatching(/^toc\.dat: bytes after the table of contents, at byte \d+$/)]);
    const future = tempDir();
    writeFileSync(path.join(future, 'toc.dat'), Buffer.concat([Buffer.from('PGDMP'), Buffer.from([1, 42, 0, 9, 9, 9])]));
    expect(await checkDirectoryComplete(future, tables)).toMatchObject({ checked: false, reason: expect.stringContaining('1.42-0 is newer'), problems: [] });
  });
});
