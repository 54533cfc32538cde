// Quick verification, cheapest first: the manifest matches the file (size, sha256 of every stored byte) and the
// structure is complete: custom and directory archives through pg_restore --list (TABLE DATA for every table and
// the extensions), a zstd container walked block by block in the checksum's own read, a plain dump by its header,
// completion footer and a COPY for every table (which means decompressing a compressed plain dump: its structure
// is in its text). Decompressing a custom archive's data is left to the test restore (verify: full).
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { PassThrough, Writable, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupError, type ErrorCode } from '../errors.js';
import { describeExit, lastLines, spawnCommand, Tail, waitForExit } from '../exec.js';
import { PG_RESTORE_CANNOT_READ, PG_RESTORE_DAMAGED } from '../postgres/restore-errors.js';
import { toolCommand, type PgTools } from '../postgres/tools.js';
import type { Manifest } from './manifest.js';
import { decoderRefused, decompressor, formatBytes, hashDirectory, hashFile, Meter } from './pipeline.js';
import { ZstdFrameWalker, ZstdStructureError, type ZstdStructure } from './zstd-frames.js';
import { normalizeQualified, PlainScanner } from './dump-check.js';
import { NO_DECRYPTION, type DecryptionSettings } from './crypto.js';
import { storedDigest, withPlaintext } from './encrypted.js';

export interface QuickResult {
  checks: string[];
}

const PLAIN_HEADER = '-- PostgreSQL database dump';
const PLAIN_FOOTER = '-- PostgreSQL database dump complete';
// The plain dump scanner lives with the other completeness checks; exported here for existing callers.
export { normalizeQualified, PlainScanner };

/** A check found the archive damaged or incomplete: evidence about the archive itself (it makes the backup bad). */
function fail(name: string, check: string, code: ErrorCode, hint = 'The backup is damaged or incomplete; use another backup and run a new one'): never {
  throw new BackupError(`Backup ${name} failed the ${check} check`, hint, { code, damage: true });
}

/** A missing archive is a fact about the backup (undefined); an unreadable one proves nothing (thrown). */
function unreadable(name: string, archivePath: string, err: unknown): undefined {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  throw new BackupError(`Backup ${name} could not be read to check it (${archivePath}: ${(err as Error).message})`, 'This says nothing about the archive: check the file\'s permissions and the disk, then verify again', { code: 'verify-could-not-check', cause: err });
}

/**
 * A decompression that failed: the stream's own bytes are bad (a decoder's data error, or the zstd program refusing
 * the input), or the check could not run (no zstd program, the archive unreadable, a decoder killed): rethrown.
 */
function decompressionFailure(name: string, err: unknown): never {
  if (err instanceof BackupError) throw err;
  const e = err as Error;
  if (decoderRefused(err)) fail(name, `decompression (${e.message})`, 'verify-decompression');
  throw new BackupError(`Backup ${name} could not be decompressed to check it: ${e.message}`, 'This says nothing about the archive: check the zstd program (PGVB_ZSTD), free memory and the file\'s permissions, then verify again', { code: 'verify-could-not-check', cause: err });
}

/**
 * Runs every quick check; throws a BackupError naming the backup and the failed check. An encrypted archive is
 * checked as stored (size, sha256), then decrypted (which authenticates it) and checked like a plaintext one.
 */
export async function quickVerify(
  manifest: Manifest,
  archivePath: string,
  tools: PgTools | undefined,
  decryption: DecryptionSettings = NO_DECRYPTION,
  onCancel?: (fn: () => Promise<void>) => () => void,
): Promise<QuickResult> {
  const enc = manifest.encryption;
  if (!enc) return quickVerifyPlain(manifest, archivePath, tools);
  const stored = await storedDigest(manifest, archivePath).catch((err: unknown) => unreadable(manifest.name, archivePath, err));
  if (!stored) fail(manifest.name, `archive exists (${path.basename(archivePath)} is missing)`, 'verify-missing-archive');
  if (stored.size !== manifest.archive.size) fail(manifest.name, `size (${stored.size} bytes, manifest says ${manifest.archive.size})`, 'verify-checksum');
  if (stored.sha256 !== manifest.archive.sha256) fail(manifest.name, 'sha256 (the archive differs from what was written)', 'verify-checksum');
  const checks = [`size ${formatBytes(stored.size)} and sha256 of the encrypted archive match the manifest`];
  return withPlaintext(manifest, archivePath, decryption, onCancel, async (view, plain) => {
    checks.push(`decrypted (${enc.method}) and authenticated; plaintext sha256 matches the manifest`);
    const r = await quickVerifyPlain(view, plain, tools);
    return { checks: [...checks, ...r.checks.slice(1)] };
  });
}

async function quickVerifyPlain(manifest: Manifest, archivePath: string, tools: PgTools | undefined): Promise<QuickResult> {
  const name = manifest.name;
  const checks: string[] = [];
  const st = await fs.stat(archivePath).catch((err: unknown) => unreadable(name, archivePath, err));
  if (!st) fail(name, `archive exists (${path.basename(archivePath)} is missing)`, 'verify-missing-archive');

  if (manifest.format === 'directory') {
    if (!st.isDirectory()) fail(name, 'archive is a directory', 'verify-checksum');
    const h = await hashDirectory(archivePath);
    const expected = new Map((manifest.archive.files ?? []).map((f) => [f.path, f]));
    for (const f of h.files) {
      const e = expected.get(f.path);
      if (!e) fail(name, `file list (unexpected file ${f.path})`, 'verify-checksum');
      if (e.size !== f.size || e.sha256 !== f.sha256) fail(name, `sha256 of ${f.path}`, 'verify-checksum');
      expected.delete(f.path);
    }
    if (expected.size) fail(name, `file list (missing ${[...expected.keys()].join(', ')})`, 'verify-checksum');
    if (h.size !== manifest.archive.size) fail(name, `size (${h.size} bytes, manifest says ${manifest.archive.size})`, 'verify-checksum');
    if (h.sha256 !== manifest.archive.sha256) fail(name, 'sha256', 'verify-checksum');
    checks.push(`size ${formatBytes(h.size)} and sha256 of ${h.files.length} files match the manifest`);
  } else {
    if (!st.isFile()) fail(name, 'archive is a file', 'verify-checksum');
    if (st.size !== manifest.archive.size) fail(name, `size (${st.size} bytes, manifest says ${manifest.archive.size})`, 'verify-checksum');
    if (manifest.format === 'custom' && manifest.compression.applied === 'stream' && manifest.compression.method === 'zstd') {
      // Checksum and structure in one read: the zstd container is walked block by block (no decompression) while
      // the bytes are hashed; the archive's first bytes and its table of contents are checked on their way into
      // pg_restore --list below. Decompressing the data is the test restore's job (verify: full), as it is for
      // archives that pg_dump compressed itself (issue 8: 2.9 s -> ~1 s for a 757 MB archive).
      const walker = new ZstdFrameWalker();
      const h = await hashFile(archivePath, (c) => walker.push(c));
      if (h.sha256 !== manifest.archive.sha256) fail(name, 'sha256 (the archive differs from what was written)', 'verify-checksum');
      checks.push(`size ${formatBytes(st.size)} and sha256 match the manifest`);
      let z: ZstdStructure;
      try {
        z = walker.end();
      } catch (err) {
        if (!(err instanceof ZstdStructureError)) throw err;
        fail(name, `zstd structure (${err.message})`, 'verify-structure');
      }
      if (z.contentSize !== undefined && z.contentSize !== manifest.archive.dumpBytes) fail(name, `zstd structure (frames declare ${z.contentSize} bytes, pg_dump wrote ${manifest.archive.dumpBytes})`, 'verify-structure');
      checks.push(`zstd stream complete (walked, not decompressed): ${z.frames} frame${z.frames === 1 ? '' : 's'}, ${z.blocks} blocks${z.checksummed === z.frames ? ', ending with its content checksum' : ''}`);
    } else if (manifest.compression.applied !== 'stream' && manifest.format === 'custom') {
      // Nothing to decompress here (pg_dump compressed inside the archive, or not at all): checksum, then the header.
      const h = await hashFile(archivePath);
      if (h.sha256 !== manifest.archive.sha256) fail(name, 'sha256 (the archive differs from what was written)', 'verify-checksum');
      checks.push(`size ${formatBytes(st.size)} and sha256 match the manifest`);
      const fh = await fs.open(archivePath, 'r');
      const head = Buffer.alloc(5);
      try {
        await fh.read(head, 0, 5, 0);
      } finally {
        await fh.close();
      }
      if (head.toString('latin1') !== 'PGDMP') fail(name, 'archive header (not a pg_dump custom archive)', 'verify-structure');
    } else {
      const stored = new Meter(true);
      const stages: Array<Readable | Duplex | Writable> = [createReadStream(archivePath, { highWaterMark: 1 << 20 }), stored];
      const dec = manifest.compression.applied === 'stream' ? decompressor(manifest.compression.method) : undefined;
      const plain = new Meter(false);
      if (dec) stages.push(dec);
      stages.push(plain);
      const scanner = manifest.format === 'plain' ? new PlainScanner() : undefined;
      const magic = new PassThrough();
      let first = Buffer.alloc(0);
      if (scanner) stages.push(scanner);
      else {
        magic.on('data', (d: Buffer) => {
          if (first.length < 5) first = Buffer.concat([first, d.subarray(0, 5)]);
        });
        stages.push(magic, new Writable({ write: (_c, _e, cb) => cb() }));
      }
      try {
        await (pipeline as (...s: unknown[]) => Promise<void>)(...stages);
      } catch (err) {
        decompressionFailure(name, err);
      }
      if (stored.digest() !== manifest.archive.sha256) fail(name, 'sha256 (the archive differs from what was written)', 'verify-checksum');
      checks.push(`size ${formatBytes(st.size)} and sha256 match the manifest`);
      if (dec) {
        if (plain.bytes !== manifest.archive.dumpBytes) fail(name, `decompression (${plain.bytes} bytes, pg_dump wrote ${manifest.archive.dumpBytes})`, 'verify-decompression');
        checks.push(`decompresses to ${formatBytes(plain.bytes)}, the size pg_dump wrote`);
      }
      if (scanner) {
        if (!scanner.head.startsWith('--\n' + PLAIN_HEADER) && !scanner.head.includes(PLAIN_HEADER)) fail(name, 'plain dump header', 'verify-structure');
        if (!scanner.tail.includes(PLAIN_FOOTER)) fail(name, 'plain dump footer (the dump is truncated)', 'verify-structure');
        const missing = manifest.tables
          .filter((t) => t.hasData && t.kind !== 'materialized view')
          .filter((t) => !scanner.copies.has(`${t.schema}.${t.name}`))
          .map((t) => `${t.schema}.${t.name}`);
        const missingMv = manifest.tables.filter((t) => t.hasData && t.kind === 'materialized view' && !scanner.refreshes.has(`${t.schema}.${t.name}`));
        if (missing.length || missingMv.length) fail(name, `structure (no data for ${[...missing, ...missingMv.map((t) => `${t.schema}.${t.name}`)].slice(0, 5).join(', ')})`, 'verify-structure');
        checks.push(`plain dump header and completion footer present; COPY for all ${manifest.tables.filter((t) => t.hasData).length} tables with data`);
      } else if (first.subarray(0, 5).toString('latin1') !== 'PGDMP') {
        fail(name, 'archive header (not a pg_dump custom archive)', 'verify-structure');
      }
    }
  }

  if (manifest.format !== 'plain') {
    if (!tools) throw new Error('pg_restore is needed for the structure check');
    const toc = await restoreList(manifest, archivePath, tools);
    const missing: string[] = [];
    for (const t of manifest.tables) {
      if (!t.hasData) continue;
      const entry = t.kind === 'materialized view' ? 'MATERIALIZED VIEW DATA' : 'TABLE DATA';
      if (!tocHas(toc, entry, t.schema, t.name)) missing.push(`${t.schema}.${t.name}`);
    }
    for (const e of manifest.extensions) {
      if (e.name === 'plpgsql') continue;
      if (!new RegExp(`\\bEXTENSION - ${escapeRe(e.name)}\\b`).test(toc)) missing.push(`extension ${e.name}`);
    }
    if (missing.length) fail(name, `structure (pg_restore --list lacks ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ' ...' : ''})`, 'verify-structure');
    checks.push(`pg_restore --list: data for all ${manifest.tables.filter((t) => t.hasData).length} tables, ${manifest.extensions.filter((e) => e.name !== 'plpgsql').length} extensions`);
  }
  return { checks };
}


function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function tocHas(toc: string, entry: string, schema: string, name: string): boolean {
  return toc.split('\n').some((l) => {
    const i = l.indexOf(` ${entry} ${schema} ${name} `);
    return i > 0 && l.slice(0, i).includes(';');
  });
}

/** pg_restore --list of the archive (decompressing a stream-compressed one into pg_restore's stdin). */
async function restoreList(manifest: Manifest, archivePath: string, tools: PgTools): Promise<string> {
  const streamed = manifest.compression.applied === 'stream';
  const args = ['--list', `--format=${manifest.format}`];
  if (!streamed) args.push(archivePath);
  const cmd = toolCommand(tools, 'pg_restore', args, process.env, streamed ? [] : [path.dirname(archivePath)]);
  const child = spawnCommand(cmd, [streamed ? 'pipe' : 'ignore', 'pipe', 'pipe']);
  let out = '';
  const err = new Tail();
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  // A pg_restore that cannot start (missing, not executable) rejects at once: awaited below, never unhandled.
  const exited = waitForExit(child).then(
    (r) => ({ ...r, startError: undefined as Error | undefined }),
    (e: unknown) => ({ code: null, signal: null, startError: e as Error }),
  );
  let head = Buffer.alloc(0);
  if (streamed) {
    const dec = decompressor(manifest.compression.method)!;
    // The first bytes on their way in: a custom archive starts with PGDMP.
    const tap = new PassThrough();
    tap.on('data', (d: Buffer) => {
      if (head.length < 5) head = Buffer.concat([head, d.subarray(0, 5)]);
    });
    // pg_restore --list stops reading after the table of contents: a closed pipe then is expected.
    child.stdin!.on('error', () => undefined);
    await pipeline(createReadStream(archivePath), dec, tap, child.stdin!).catch(() => undefined);
  }
  const { code, signal, startError } = await exited;
  // The archive's own first bytes (read here, whatever pg_restore did with them) prove a wrong header.
  if (streamed && manifest.format === 'custom' && head.length >= 5 && head.subarray(0, 5).toString('latin1') !== 'PGDMP') {
    fail(manifest.name, 'archive header (not a pg_dump custom archive)', 'verify-structure');
  }
  // pg_restore could not start (tool-not-found): the check could not run.
  if (startError) throw startError;
  if (code !== 0) {
    const words = lastLines(err.toString());
    // Only pg_restore's own words for a broken archive are evidence; a pg_restore that cannot start, was killed, ran
    // out of memory, or refuses what it cannot read (a newer archive, a compression it was built without) says
    // nothing about the archive.
    if (!signal && code !== null && PG_RESTORE_DAMAGED.test(words) && !PG_RESTORE_CANNOT_READ.test(words)) {
      fail(manifest.name, `structure (${describeExit('pg_restore --list', code, signal)}: ${words})`, 'verify-structure', 'The archive is damaged; use another backup and run a new one');
    }
    throw new BackupError(
      `pg_restore ${tools.version} could not read the structure of ${manifest.name} (written by pg_dump ${manifest.pgDump.version}): ${describeExit('pg_restore --list', code, signal)}: ${words || 'no error output'}`,
      `This says nothing about the archive: check the pg_restore in use (pg-bin-dir), which must run and be at least as new as pg_dump ${manifest.pgDump.major} and built with the archive's compression, then verify again`,
      { code: 'verify-could-not-check' },
    );
  }
  if (streamed && manifest.format === 'custom' && head.length < 5) fail(manifest.name, 'archive header (not a pg_dump custom archive)', 'verify-structure');
  return out;
}
