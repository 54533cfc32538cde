// The completeness checks on archives from the real pg_dump (the server's major): complete ones pass however they
// are chunked, and every way of stopping short is refused: nothing, a cut header or TOC, a cut block or chunk, a
// clean cut between blocks, the first megabyte; bytes appended; a block taken out.
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, cpSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ArchiveStructureError,
  checkCustomComplete,
  checkDirectoryComplete,
  checkPlainComplete,
  CustomArchiveWalker,
  PlainDumpChecker,
  type DumpTable,
} from '../../src/archive/dump-check.js';
import { spawnCommand, waitForExit, run, Tail } from '../../src/exec.js';
import { MemoryLogger } from '../../src/logger.js';
import { libpqEnv, resolveConnection } from '../../src/postgres/connection.js';
import { readInventory } from '../../src/postgres/inventory.js';
import { findClientTools, serverMajor, toolCommand, type PgTools } from '../../src/postgres/tools.js';
import { createDatabase, dropDatabase, withClient } from '../helpers/pg.js';
import { scanPlainReusing, walk, walkReusing } from '../helpers/walk.js';

/** Small on purpose (every cut point of its archives is tried): each shape a completeness check must get right. */
async function seedShapes(c: pg.Client): Promise<void> {
  await c.query(`
    CREATE EXTENSION vector;
    CREATE TABLE docs (id int PRIMARY KEY, body text, embedding vector(4));
    INSERT INTO docs SELECT g, 'doc ' || g, ('[' || g || ',1,2,3]')::vector FROM generate_series(1, 120) g;
    CREATE SCHEMA "Search Space";
    CREATE TABLE "Search Space"."My ""Docs"" ü" (id int, "Tëxt" text);
    INSERT INTO "Search Space"."My ""Docs"" ü" VALUES (1, 'ä'), (2, 'line
break'), (3, 'tab	and \\ backslash');
    CREATE TABLE empty_table (id int);
    CREATE TABLE events (id int, at date NOT NULL) PARTITION BY RANGE (at);
    CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    INSERT INTO events SELECT g, date '2025-06-01' + g * 3 FROM generate_series(1, 40) g;
    CREATE MATERIALIZED VIEW doc_count AS SELECT count(*) AS n FROM docs;
    CREATE MATERIALIZED VIEW not_populated AS SELECT 1 AS one WITH NO DATA;
    CREATE TABLE "zz last" (id int);
    INSERT INTO "zz last" VALUES (1);
    SELECT lo_from_bytea(0, 'large object payload'), lo_from_bytea(0, '');
  `);
}

/** The shapes plus a table of 768-dimension vectors: an archive of a few megabytes. */
async function seedMedium(c: pg.Client): Promise<void> {
  await seedShapes(c);
  await c.query(`CREATE TABLE big (id int PRIMARY KEY, e vector(768))`);
  await c.query(`INSERT INTO big SELECT g, (SELECT array_agg(random()::real) FROM generate_series(1, 768) WHERE g > 0)::vector FROM generate_series(1, 400) g`);
}

let small: { name: string; url: string };
let medium: { name: string; url: string };
let tools: PgTools;
let tmp: string;
let smallTables: DumpTable[];
let mediumTables: DumpTable[];
const archives: Record<string, Buffer> = {};

function envFor(url: string): NodeJS.ProcessEnv {
  return libpqEnv(resolveConnection(url, {}), process.env);
}

/** pg_dump's stdout (a pipe: the custom format cannot seek back, so its TOC has no data offsets). */
async function dumpToPipe(url: string, args: string[], onChunk?: (b: Buffer) => void): Promise<Buffer> {
  const child = spawnCommand(toolCommand(tools, 'pg_dump', args, envFor(url)), ['ignore', 'pipe', 'pipe']);
  const parts: Buffer[] = [];
  const err = new Tail();
  child.stdout!.on('data', (b: Buffer) => {
    parts.push(b);
    onChunk?.(b);
  });
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  const { code } = await waitForExit(child);
  expect(code, err.toString()).toBe(0);
  return Buffer.concat(parts);
}

/** pg_dump writing a file itself (custom: it rewrites the TOC with each block's offset) or a directory. */
async function dumpToPath(url: string, args: string[], out: string): Promise<void> {
  const r = await run(toolCommand(tools, 'pg_dump', [...args, '-f', out], envFor(url), [path.dirname(out)]));
  expect(r.code, r.stderr).toBe(0);
}

async function tablesOf(url: string): Promise<DumpTable[]> {
  return withClient(url, async (c) => (await readInventory(c, { knnMaxRows: 0 })).tables);
}

beforeAll(async () => {
  small = await createDatabase('dc_shapes', seedShapes);
  medium = await createDatabase('dc_medium', seedMedium);
  const major = await withClient(small.url, async (c) => serverMajor(Number((await c.query<{ n: string }>("SELECT current_setting('server_version_num') AS n")).rows[0]!.n)));
  tools = await findClientTools(major, { env: process.env, logger: new MemoryLogger(), allowInstall: false });
  tmp = mkdtempSync(path.join(os.tmpdir(), 'pgvb-dc-'));
  smallTables = await tablesOf(small.url);
  mediumTables = await tablesOf(medium.url);
  archives.pipeZ0 = await dumpToPipe(small.url, ['-Fc', '-Z0']);
  archives.pipeZ6 = await dumpToPipe(small.url, ['-Fc', '-Z6']);
  await dumpToPath(small.url, ['-Fc', '-Z0'], path.join(tmp, 'file-z0.dump'));
  archives.fileZ0 = readFileSync(path.join(tmp, 'file-z0.dump'));
  await dumpToPath(small.url, ['-Fc', '-Z6'], path.join(tmp, 'file-z6.dump'));
  archives.fileZ6 = readFileSync(path.join(tmp, 'file-z6.dump'));
  archives.plain = await dumpToPipe(small.url, ['-Fp']);
  archives.medium = await dumpToPipe(medium.url, ['-Fc', '-Z0']);
}, 240_000);

afterAll(async () => {
  for (const db of [small, medium]) if (db) await dropDatabase(db.name);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The ArchiveStructureError's message, or the completeness problems of what was walked. */
function refusal(buf: Buffer, tables: DumpTable[], chunk?: number): string[] {
  try {
    return checkCustomComplete(walk(buf, chunk), tables);
  } catch (err) {
    if (!(err instanceof ArchiveStructureError)) throw err;
    return [err.message];
  }
}

const CUSTOM = ['pipeZ0', 'pipeZ6', 'fileZ0', 'fileZ6'] as const;

describe('custom archives from the real pg_dump', () => {
  test('the fixture has every shape: quoted, spaced and non-ASCII names, a partition, matviews, an empty table, large objects', () => {
    const s = walk(archives.fileZ0!);
    expect(s.version).toMatch(/^1\.1[2-6]-\d+$/);
    const data = s.entries.filter((e) => e.desc === 'TABLE DATA').map((e) => `${e.namespace}.${e.tag}`);
    expect(data).toEqual(expect.arrayContaining(['Search Space.My "Docs" ü', 'public.docs', 'public.empty_table', 'public.events_2025', 'public.events_2026', 'public.zz last']));
    expect(s.entries.find((e) => e.desc === 'MATERIALIZED VIEW DATA')).toMatchObject({ tag: 'doc_count', hadDumper: false });
    expect(s.entries.some((e) => e.tag === 'not_populated' && e.desc === 'MATERIALIZED VIEW DATA')).toBe(false);
    const blobs = [...s.blocks.values()].filter((b) => b.type === 'blobs');
    expect(blobs.reduce((n, b) => n + b.largeObjects, 0)).toBe(2);
    expect(smallTables.filter((t) => t.hasData).map((t) => t.name)).toEqual(expect.arrayContaining(['doc_count', 'events_2025', 'empty_table']));
    // Written to a file, pg_dump goes back and fills in each block's offset; through a pipe it cannot.
    expect(s.entries.filter((e) => e.hadDumper).every((e) => e.dataState === 2 && e.dataOffset === s.blocks.get(e.dumpId)!.start)).toBe(true);
    expect(walk(archives.pipeZ0!).entries.filter((e) => e.hadDumper).every((e) => e.dataState === 1)).toBe(true);
    const empty = s.entries.find((e) => e.tag === 'empty_table' && e.desc === 'TABLE DATA')!;
    expect(s.blocks.get(empty.dumpId)!.onlyEndOfCopy).toBe(true);
  });

  test.each(CUSTOM)('%s: complete, fed whole or in chunks of 1 byte, 7 bytes and 64 KiB', (key) => {
    const buf = archives[key]!;
    const whole = walk(buf);
    expect(whole.header!.compression).toBe(key.endsWith('Z0') ? 'none' : 'gzip');
    expect(checkCustomComplete(whole, smallTables)).toEqual([]);
    for (const size of [1, 7, 64 * 1024]) {
      const s = walkReusing(buf, size);
      expect(s.entries).toEqual(whole.entries);
      expect(s.blocks).toEqual(whole.blocks);
    }
  });

  test('fed straight from pg_dump\'s stdout as it writes', async () => {
    const w = new CustomArchiveWalker();
    let pushes = 0;
    await dumpToPipe(small.url, ['-Fc', '-Z0'], (b) => {
      w.push(b);
      pushes++;
    });
    expect(pushes).toBeGreaterThan(0);
    expect(checkCustomComplete(w.end(), smallTables)).toEqual([]);
  });

  test.each(CUSTOM)('%s: every proper prefix is refused', (key) => {
    const buf = archives[key]!;
    for (let cut = 0; cut < buf.length; cut++) expect(refusal(buf.subarray(0, cut), smallTables).length, `cut at ${cut} of ${buf.length}`).toBeGreaterThan(0);
  });

  test('each kind of cut says where it is', () => {
    const buf = archives.pipeZ0!;
    const s = walk(buf);
    const blocks = [...s.blocks.values()].sort((a, b) => a.start - b.start);
    const tocEnd = blocks[0]!.start;
    const docs = s.entries.find((e) => e.desc === 'TABLE DATA' && e.tag === 'docs')!;
    const docsBlock = s.blocks.get(docs.dumpId)!;
    expect(refusal(buf.subarray(0, 0), smallTables)).toEqual(['the archive is empty (0 bytes)']);
    expect(refusal(buf.subarray(0, 30), smallTables)).toEqual(['the archive ends inside its header, at byte 30']);
    expect(refusal(buf.subarray(0, Math.floor(tocEnd / 2)), smallTables)).toEqual([expect.stringMatching(/^the archive ends inside its table of contents \(entry \d+ of \d+\), at byte \d+$/)]);
    expect(refusal(buf.subarray(0, docsBlock.start + 3), smallTables)).toEqual([`the archive ends inside a data block's header, at byte ${docsBlock.start + 3}`]);
    // Type byte, dump ID and the first chunk's length are 11 bytes; two bytes into the first row.
    expect(refusal(buf.subarray(0, docsBlock.start + 13), smallTables)).toEqual([
      expect.stringMatching(new RegExp(`^the archive ends inside the data of TABLE DATA public\\.docs \\(dump ID ${docs.dumpId}\\), inside a chunk \\(\\d+ of its \\d+ bytes missing\\), at byte ${docsBlock.start + 13}$`)),
    ]);
    // Exactly after the first table's block: a complete structure, so the tables after it are named.
    const first = blocks[0]!;
    const after = refusal(buf.subarray(0, first.end), smallTables);
    expect(after.length).toBe(blocks.length - 1);
    for (const p of after) expect(p).toMatch(/no data block: the archive ends before it \(dump ID \d+\)$/);
    expect(after.some((p) => p.startsWith('public.zz last: '))).toBe(true);
  });

  test('the first megabyte of a larger archive (head -c 1M)', () => {
    const buf = archives.medium!;
    expect(buf.length).toBeGreaterThan(2 << 20);
    expect(checkCustomComplete(walk(buf, 64 * 1024), mediumTables)).toEqual([]);
    const [problem] = refusal(buf.subarray(0, 1 << 20), mediumTables, 64 * 1024);
    expect(problem).toMatch(/^the archive ends inside the data of TABLE DATA public\.big \(dump ID \d+\), inside a chunk \(\d+ of its \d+ bytes missing\), at byte 1048576$/);
  });

  test('bytes appended after a complete archive', () => {
    for (const key of CUSTOM) {
      const buf = archives[key]!;
      expect(refusal(Buffer.concat([buf, Buffer.from('x')]), smallTables)).toEqual([`bytes after the last data block, at byte ${buf.length}`]);
      expect(refusal(Buffer.concat([buf, Buffer.alloc(1 << 20)]), smallTables, 64 * 1024)).toEqual([`bytes after the last data block, at byte ${buf.length}`]);
      // Another whole archive appended (a retried dump written to the same output).
      expect(refusal(Buffer.concat([buf, buf]), smallTables)).toEqual([`bytes after the last data block, at byte ${buf.length}`]);
    }
  });

  test('a data block taken out of the middle', () => {
    for (const key of ['pipeZ0', 'fileZ0'] as const) {
      const buf = archives[key]!;
      const s = walk(buf);
      const docs = s.entries.find((e) => e.desc === 'TABLE DATA' && e.tag === 'docs')!;
      const b = s.blocks.get(docs.dumpId)!;
      expect(b.end).toBeLessThan(buf.length);
      const spliced = Buffer.concat([buf.subarray(0, b.start), buf.subarray(b.end)]);
      if (key === 'pipeZ0') {
        // No offsets to go by: the structure is whole, the table's data is not.
        expect(refusal(spliced, smallTables)).toEqual([`public.docs: no data block: the archive ends before it (dump ID ${docs.dumpId})`]);
      } else {
        // pg_restore would seek to the recorded offset and find another block there.
        expect(refusal(spliced, smallTables)).toEqual([expect.stringMatching(new RegExp(`^the data of .+ starts at byte ${b.start}, but the table of contents places it at byte ${b.end}$`))]);
      }
    }
  });

  test('the layout of pg_dump 16+ writing to a regular-file stdout (its TOC rewrite appended after the data) is accepted', () => {
    // pg_dump 15 rewrites the TOC in place; 16+ (seen with 17.11 and 18.6) appends that rewrite after the last block.
    // The same layout from pg_dump 15's own bytes: the piped archive, then the TOC it writes to a file.
    const file = walk(archives.fileZ0!);
    const copy = archives.fileZ0!.subarray(file.toc!.start, file.toc!.end);
    const buf = Buffer.concat([archives.pipeZ0!, copy]);
    for (const size of [7, 64 * 1024, buf.length]) expect(refusal(buf, smallTables, size)).toEqual([]);
    expect(refusal(buf.subarray(0, buf.length - 1), smallTables)).toEqual([`bytes after the last data block, at byte ${archives.pipeZ0!.length}`]);
  });

  test('an archive whose tables hold no rows although the manifest counted some', () => {
    const s = walk(archives.pipeZ0!);
    const claimed = smallTables.map((t) => (t.name === 'empty_table' ? { ...t, rows: 10 } : t));
    expect(checkCustomComplete(s, claimed)).toEqual(["public.empty_table: its data block holds no rows, only COPY's end marker (the table has 10 rows)"]);
  });
});

describe('plain dumps from the real pg_dump', () => {
  const scan = (buf: Buffer, size = buf.length || 1): ReturnType<PlainDumpChecker['end']> => scanPlainReusing(buf, size);

  test('complete, fed whole or in chunks of 1 byte, 7 bytes and 64 KiB; rows counted per COPY', () => {
    const buf = archives.plain!;
    for (const size of [buf.length, 1, 7, 64 * 1024]) {
      const r = scan(buf, size);
      expect(checkPlainComplete(r, smallTables)).toEqual([]);
      expect(r.copyRows.get('public.docs')).toBe(120);
      expect(r.copyRows.get('Search Space.My "Docs" ü')).toBe(3);
      expect(r.copyRows.get('public.empty_table')).toBe(0);
    }
  });

  test('every cut before the end of the completion footer is refused; bytes appended are refused', () => {
    const buf = archives.plain!;
    const footerEnd = buf.lastIndexOf('-- PostgreSQL database dump complete\n') + '-- PostgreSQL database dump complete\n'.length;
    for (let cut = 0; cut < footerEnd; cut += 3) expect(checkPlainComplete(scan(buf.subarray(0, cut)), smallTables).length, `cut at ${cut}`).toBeGreaterThan(0);
    expect(checkPlainComplete(scan(buf.subarray(0, footerEnd)), smallTables)).toEqual([]);
    expect(checkPlainComplete(scan(Buffer.concat([buf, Buffer.from('DROP TABLE docs;\n')])), smallTables)).toEqual([
      'no completion footer ("-- PostgreSQL database dump complete") at the end: the dump is truncated, or bytes follow it',
    ]);
  });
});

describe('directory archives from the real pg_dump', () => {
  const dirs: Record<string, string> = {};
  beforeAll(async () => {
    for (const [key, args] of Object.entries({ z0: ['-Fd', '-Z0'], gzip: ['-Fd'] })) {
      dirs[key] = path.join(tmp, `dir-${key}`);
      await dumpToPath(small.url, args, dirs[key]);
    }
  });

  function copy(key: string): string {
    const to = mkdtempSync(path.join(tmp, `${key}-copy-`));
    cpSync(dirs[key]!, to, { recursive: true });
    return to;
  }

  test.each(['z0', 'gzip'])('%s: complete', async (key) => {
    const r = await checkDirectoryComplete(dirs[key]!, smallTables);
    expect(r.problems).toEqual([]);
    expect(r.checked).toBe(true);
    expect(r.structure!.header!.compression).toBe(key === 'z0' ? 'none' : 'gzip');
    if (key === 'gzip') expect(readdirSync(dirs[key]!).some((f) => f.endsWith('.dat.gz'))).toBe(true);
  });

  test.each(['z0', 'gzip'])('%s: a data file missing or emptied, a large object missing, toc.dat cut', async (key) => {
    const s = (await checkDirectoryComplete(dirs[key]!, smallTables)).structure!;
    const docs = s.entries.find((e) => e.desc === 'TABLE DATA' && e.tag === 'docs')!;
    const file = readdirSync(dirs[key]!).find((f) => f.startsWith(`${docs.dumpId}.dat`))!;

    const missing = copy(key);
    unlinkSync(path.join(missing, file));
    expect((await checkDirectoryComplete(missing, smallTables)).problems).toEqual([`public.docs: its data file ${docs.file} is missing`]);

    const emptied = copy(key);
    truncateSync(path.join(emptied, file), 0);
    expect((await checkDirectoryComplete(emptied, smallTables)).problems).toEqual([`public.docs: its data file ${file} is empty (the table has 120 rows)`]);

    if (key === 'z0') {
      const noRows = copy(key);
      writeFileSync(path.join(noRows, file), '\\.\n\n\n');
      expect((await checkDirectoryComplete(noRows, smallTables)).problems).toEqual([`public.docs: its data file ${file} holds no rows, only COPY's end marker (the table has 120 rows)`]);
    }

    const noLo = copy(key);
    unlinkSync(path.join(noLo, readdirSync(noLo).find((f) => f.startsWith('blob_'))!));
    expect((await checkDirectoryComplete(noLo, smallTables)).problems).toEqual([expect.stringMatching(/^BLOBS \(dump ID \d+\): 1 large object file of blobs(_\d+)?\.toc missing \(blob_\d+\.dat \.\.\.\)$/)]);

    const cutToc = copy(key);
    const toc = readFileSync(path.join(cutToc, 'toc.dat'));
    for (const len of [0, 5, 40, Math.floor(toc.length / 2), toc.length - 1]) {
      writeFileSync(path.join(cutToc, 'toc.dat'), toc.subarray(0, len));
      expect((await checkDirectoryComplete(cutToc, smallTables)).problems, `toc.dat cut at ${len}`).toEqual([expect.stringMatching(/^toc\.dat: the archive (is empty|ends)/)]);
    }
    rmSync(path.join(cutToc, 'toc.dat'));
    expect((await checkDirectoryComplete(cutToc, smallTables)).problems).toEqual(['toc.dat is missing']);
  });
});
