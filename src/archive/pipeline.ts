// Streaming: pg_dump's stdout flows through optional compression and a sha256/byte counter into a file, with
// backpressure and in constant memory. The exit status of every stage is checked: a dump whose producer failed
// is never mistaken for a complete one (the `pg_dump | gzip` trap of the old kit).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Duplex, PassThrough, Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { BackupError } from '../errors.js';
import { describeExit, lastLines, spawnCommand, Tail, waitForExit, type Command } from '../exec.js';
import type { Logger } from '../logger.js';
import type { CompressionMethod } from './manifest.js';

export const DEFAULT_LEVEL: Record<Exclude<CompressionMethod, 'none'>, number> = { gzip: 6, zstd: 3 };

/** Counts bytes and hashes them as they pass. */
export class Meter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  constructor(private readonly hashing = true) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    if (this.hashing) this.hash.update(chunk);
    cb(null, chunk);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

type ZstdZlib = typeof zlib & {
  createZstdCompress?: (opts?: { params?: Record<number, number> }) => Duplex;
  createZstdDecompress?: () => Duplex;
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number };
};
const z = zlib as ZstdZlib;

/** The zstd program as a stream stage, for Node versions whose zlib lacks zstd. Fails when it exits non-zero. */
function zstdProcess(args: string[]): Duplex {
  const child = spawnCommand({ file: 'zstd', args }, ['pipe', 'pipe', 'pipe']);
  const stderr = new Tail();
  child.stderr!.on('data', (d: Buffer) => stderr.push(d));
  // The readable side ends only after zstd exited 0, so a failing zstd cannot pass for a short stream.
  const out = new PassThrough();
  child.stdout!.pipe(out, { end: false });
  const duplex = Duplex.from({ writable: child.stdin!, readable: out });
  child.once('error', (err) => duplex.destroy(new BackupError('zstd is not available', 'Run on Node 24 (the action does) or install the zstd program', { cause: err })));
  child.once('close', (code, signal) => {
    if (code === 0) out.end();
    else duplex.destroy(new Error(`${describeExit('zstd', code, signal)}: ${lastLines(stderr.toString())}`));
  });
  return duplex;
}

export function compressor(method: CompressionMethod, level?: number): Duplex | undefined {
  if (method === 'none') return undefined;
  const lvl = level ?? DEFAULT_LEVEL[method];
  if (method === 'gzip') return zlib.createGzip({ level: lvl });
  if (z.createZstdCompress && z.constants.ZSTD_c_compressionLevel !== undefined) {
    return z.createZstdCompress({ params: { [z.constants.ZSTD_c_compressionLevel]: lvl } });
  }
  return zstdProcess([`-${lvl}`, '-q', '-c']);
}

export function decompressor(method: CompressionMethod): Duplex | undefined {
  if (method === 'none') return undefined;
  if (method === 'gzip') return zlib.createGunzip();
  if (z.createZstdDecompress) return z.createZstdDecompress();
  return zstdProcess(['-d', '-q', '-c']);
}

export interface DumpResult {
  /** Bytes pg_dump wrote. */
  dumpBytes: number;
  /** Bytes stored. */
  size: number;
  sha256: string;
  /** Per-file hashes (directory format). */
  files?: Array<{ path: string; size: number; sha256: string }>;
}

/** Logs progress every `seconds` while `work` runs. */
export async function withProgress<T>(logger: Logger, seconds: number, line: (elapsed: number) => string, work: Promise<T>): Promise<T> {
  const start = Date.now();
  const timer = setInterval(() => logger.info(line((Date.now() - start) / 1000)), Math.max(0.2, seconds) * 1000);
  timer.unref();
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/**
 * Runs the dump command and streams its stdout into `outFile` (created exclusively). Resolves only when the
 * command exited 0 and every byte is on disk (fsync); otherwise rejects and leaves the caller to remove outFile.
 */
export async function streamDump(opts: {
  command: Command;
  outFile: string;
  compression?: { method: CompressionMethod; level?: number };
  logger: Logger;
  progressSeconds: number;
  name?: string;
  /** Aborting stops the dump (the caller's other half failed). */
  signal?: AbortSignal;
}): Promise<DumpResult> {
  const name = opts.name ?? path.basename(opts.command.file);
  const child = spawnCommand(opts.command, ['ignore', 'pipe', 'pipe']);
  const stderr = new Tail();
  child.stderr!.on('data', (d: Buffer) => stderr.push(d));
  const exited = waitForExit(child);
  opts.signal?.addEventListener('abort', () => child.kill('SIGTERM'), { once: true });
  const rawMeter = new Meter(false);
  const outMeter = new Meter(true);
  const stages: Array<Readable | Duplex | Writable> = [child.stdout!, rawMeter];
  const comp = opts.compression ? compressor(opts.compression.method, opts.compression.level) : undefined;
  if (comp) stages.push(comp);
  stages.push(outMeter);
  // flush: the file is fsynced before it closes, so a renamed archive is on disk.
  const file = createWriteStream(opts.outFile, { flags: 'wx', mode: 0o600, flush: true });
  stages.push(file);
  const started = Date.now();
  const progress = (elapsed: number): string =>
    `  ${name}: ${formatBytes(rawMeter.bytes)} dumped, ${formatBytes(outMeter.bytes)} written, ` +
    `${formatBytes(rawMeter.bytes / Math.max(elapsed, 0.001))}/s, ${elapsed.toFixed(0)} s`;
  let pipeErr: unknown;
  const flow = (pipeline as (...s: unknown[]) => Promise<void>)(...stages).catch((err: unknown) => {
    pipeErr = err;
    // The file side failed (disk full, I/O error): stop the producer instead of letting it block forever.
    child.kill('SIGTERM');
  });
  const [{ code, signal }] = await withProgress(opts.logger, opts.progressSeconds, progress, Promise.all([exited, flow]));
  // A failed write side (disk full) is the cause when both failed: we stopped pg_dump because of it.
  if (pipeErr) throw writeError(pipeErr, opts.outFile);
  if (code !== 0 || signal) {
    throw new BackupError(`${describeExit(name, code, signal)}: ${lastLines(stderr.toString()) || 'no error output'}`, dumpHint(stderr.toString()));
  }
  opts.logger.debug(`${name} finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { dumpBytes: rawMeter.bytes, size: outMeter.bytes, sha256: outMeter.digest() };
}

function dumpHint(stderr: string): string {
  if (/lock timeout|could not obtain lock/i.test(stderr)) return 'Another session holds a conflicting lock; retry when it finishes or raise lock-wait-timeout';
  if (/terminat|server closed the connection|connection.*lost/i.test(stderr)) return 'The database connection was lost during the dump (server restart, terminated backend or network); run the backup again';
  if (/permission denied/i.test(stderr)) return 'The backup role lacks privileges on an object: grant it SELECT (or use a role with pg_read_all_data)';
  if (/server version mismatch/i.test(stderr)) return 'Use a pg_dump at least as new as the server (pg-bin-dir)';
  if (/invalid snapshot|snapshot/i.test(stderr)) return 'The snapshot could not be shared; connect directly, not through a transaction-mode pooler';
  return 'See the error above; nothing was kept from this run';
}

export function writeError(err: unknown, file: string): BackupError {
  const code = (err as NodeJS.ErrnoException).code;
  const dir = path.dirname(file);
  if (code === 'ENOSPC' || code === 'EDQUOT') return new BackupError(`No space left on the device of ${dir}`, 'Free space there, lower retention-days, or set backup-dir to a larger volume', { cause: err });
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new BackupError(`Cannot write to ${dir} (${code})`, 'Make backup-dir writable by this user or choose another backup-dir', { cause: err });
  if (code === 'ENOTDIR' || code === 'ENOENT') return new BackupError(`backup-dir ${dir} is not a usable directory (${code})`, 'Set backup-dir to a directory path (it is created when missing)', { cause: err });
  if (err instanceof BackupError) return err;
  return new BackupError(`Writing ${file} failed: ${(err as Error).message}`, 'Check the disk and backup-dir', { cause: err });
}

/** sha256 and size of a file, streamed. */
export async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const meter = new Meter(true);
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), meter, new PassThrough().resume());
  return { size: meter.bytes, sha256: meter.digest() };
}

/** Per-file hashes of a directory archive and a digest over the sorted "sha256  path" lines. */
export async function hashDirectory(dir: string): Promise<{ size: number; sha256: string; files: Array<{ path: string; size: number; sha256: string }> }> {
  const names = (await fs.readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
  const files: Array<{ path: string; size: number; sha256: string }> = [];
  let size = 0;
  for (const n of names) {
    const h = await hashFile(path.join(dir, n));
    files.push({ path: n, ...h });
    size += h.size;
  }
  const sha256 = createHash('sha256')
    .update(files.map((f) => `${f.sha256}  ${f.path}\n`).join(''))
    .digest('hex');
  return { size, sha256, files };
}
