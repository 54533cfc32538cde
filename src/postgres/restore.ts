// Restoring an archive into an empty database: pre-data, data, post-data as separate pg_restore runs (so the
// extension exists before any vector column, and the index phase is timed on its own), stopping at the first
// error; plain SQL through psql with ON_ERROR_STOP. Decompressed temp files are always removed.
import { createReadStream, createWriteStream, promises as fs, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { compareInventory, type Comparison } from '../archive/compare.js';
import type { Manifest } from '../archive/manifest.js';
import { decoderRefused, decompressor, Meter, withProgress, zstdProgram } from '../archive/pipeline.js';
import { PG_RESTORE_DAMAGED, PG_RESTORE_ENVIRONMENT } from './restore-errors.js';
import { byteProgress, fileReadPosition } from '../progress.js';
import { NO_DECRYPTION, type DecryptionSettings } from '../archive/crypto.js';
import { plaintextKept, withPlaintext } from '../archive/encrypted.js';
import { pgRestoreArgs, psqlRestoreArgs, type Section } from '../archive/plan.js';
import { BackupError, type ErrorCode } from '../errors.js';
import { describeExit, lastLines, run, spawnCommand, Tail, waitForExit } from '../exec.js';
import type { Logger } from '../logger.js';
import { maintenanceWorkMem } from './cluster.js';
import { connect, libpqEnv, type ConnInfo } from './connection.js';
import { readInventory } from './inventory.js';
import { toolCommand, type PgTools } from './tools.js';

export interface RestoreOptions {
  jobs: number;
  /** --no-owner --no-acl (roles are cluster-level and usually absent on a test target). */
  noOwner: boolean;
  logger: Logger;
  progressSeconds: number;
  env: NodeJS.ProcessEnv;
  /** Registers cleanup for interruption. */
  onCancel?: (fn: () => Promise<void>) => () => void;
  /**
   * In place, in one transaction: existing objects of the dump are dropped and recreated (--clean --if-exists for
   * archives), and any error rolls everything back. No sections, no parallel jobs.
   */
  singleTransaction?: boolean;
  /** Keys for an encrypted archive (decrypted into a private temp dir, authenticated, before any restore step). */
  decryption?: DecryptionSettings;
}

export interface RestoreTiming {
  restoreSeconds: number;
  /** Seconds in post-data (indexes, constraints); null for plain SQL, which runs as one stream. */
  indexBuildSeconds: number | null;
  warnings: string[];
}

/** Session settings for restore connections: memory and workers for index builds (HNSW is the slow part). */
export function restoreSessionOptions(cpus = os.availableParallelism()): string {
  return `-c maintenance_work_mem=${maintenanceWorkMem()} -c max_parallel_maintenance_workers=${Math.max(0, Math.min(cpus - 1, 8))} -c statement_timeout=0 -c lock_timeout=0`;
}

/** Creates the roles the dump references that the target lacks (NOLOGIN); returns the names created. */
export async function createMissingRoles(conn: ConnInfo, roles: string[]): Promise<string[]> {
  if (!roles.length) return [];
  const client = await connect(conn);
  const created: string[] = [];
  try {
    const existing = await client.query<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE rolname = ANY($1)`, [roles]);
    const have = new Set(existing.rows.map((r) => r.rolname));
    for (const r of roles) {
      if (have.has(r) || r.startsWith('pg_')) continue;
      await client.query(`CREATE ROLE ${client.escapeIdentifier(r)} NOLOGIN`);
      created.push(r);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  return created;
}

export async function restoreArchive(
  manifest: Manifest,
  archivePath: string,
  target: { conn: ConnInfo; tools: PgTools },
  opts: RestoreOptions,
): Promise<RestoreTiming> {
  if (manifest.encryption) {
    // Decrypting first authenticates the whole archive: a wrong key or a tampered byte fails before any restore step.
    opts.logger.info(
      plaintextKept(manifest, archivePath)
        ? `  using ${manifest.name} as decrypted (${manifest.encryption.method}) and authenticated for the verification`
        : `  decrypting ${manifest.name} (${manifest.encryption.method}) into a private temporary directory`,
    );
    return withPlaintext(manifest, archivePath, opts.decryption ?? NO_DECRYPTION, opts.onCancel, (view, plain) => restoreArchive(view, plain, target, opts));
  }
  const env = libpqEnv(target.conn, opts.env, restoreSessionOptions());
  env.PGAPPNAME = 'pgvector-backup restore';
  const warnings: string[] = [];
  const started = Date.now();
  const { logger } = opts;

  if (manifest.format === 'plain') {
    const read = new Meter(false);
    const total = (await fs.stat(archivePath)).size;
    await withProgress(logger, opts.progressSeconds, byteProgress('psql', () => read.bytes, { total, verb: 'read' }), psqlFromStream(manifest, archivePath, target.tools, env, target.conn.database, warnings, opts.singleTransaction ?? false, read));
    return { restoreSeconds: secondsSince(started), indexBuildSeconds: null, warnings };
  }

  let input = archivePath;
  let tmpDir: string | undefined;
  const unregister = opts.onCancel?.(async () => {
    if (tmpDir) await fs.rm(tmpDir, { recursive: true, force: true });
  });
  try {
    if (manifest.compression.applied === 'stream') {
      // pg_restore needs a seekable file for sections and parallel jobs: decompress to a private temp file.
      tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgvb-restore-'));
      input = path.join(tmpDir, 'archive.dump');
      const program = manifest.compression.method === 'zstd' ? zstdProgram() : undefined;
      if (program) {
        // Native zstd straight into the file: no pass of the plaintext through this process (issue 8).
        const res = await withProgress(logger, opts.progressSeconds, archiveProgress('decompress', archivePath), run({ file: program, args: ['-d', '-q', '-f', '--no-progress', '-o', input, archivePath] }));
        if (res.code !== 0 || res.signal) throw decompressError(manifest.name, `${describeExit('zstd -d', res.code, res.signal)}: ${withoutData(lastLines(res.stderr))}`, res.signal !== null || res.code === null);
      } else {
        const read = new Meter(false);
        const total = (await fs.stat(archivePath)).size;
        await withProgress(logger, opts.progressSeconds, byteProgress('decompress', () => read.bytes, { total, verb: 'read' }), pipeline(createReadStream(archivePath), read, decompressor(manifest.compression.method)!, createWriteStream(input, { mode: 0o600 }))).catch((err: unknown) => {
          if (err instanceof BackupError) throw err;
          throw decompressError(manifest.name, (err as Error).message, !decoderRefused(err), err);
        });
      }
      // Quick verify walks a zstd stream without decompressing it: this is where its size is proven.
      const size = (await fs.stat(input)).size;
      if (size !== manifest.archive.dumpBytes) {
        throw new BackupError(`Decompressing ${manifest.name} gave ${size} bytes, but pg_dump wrote ${manifest.archive.dumpBytes}`, 'The archive is damaged; use another backup and run a new one', { code: 'restore-archive-damaged', damage: true });
      }
      if (target.tools.kind === 'docker') await fs.chmod(tmpDir, 0o755);
    }
    if (opts.singleTransaction) {
      const args = pgRestoreArgs({ format: manifest.format, database: target.conn.database, input, jobs: 1, noOwner: opts.noOwner, singleTransaction: true, clean: true });
      const res = await withProgress(logger, opts.progressSeconds, archiveProgress('pg_restore (one transaction)', input), run(toolCommand(target.tools, 'pg_restore', args, env, [path.dirname(input)])));
      collectWarnings(res.stderr, warnings);
      if (res.code !== 0 || res.signal) {
        const advice = restoreAdvice(res.stderr);
        throw new BackupError(`The restore failed and was rolled back: ${describeExit('pg_restore', res.code, res.signal)}: ${withoutData(lastLines(res.stderr))}`, (res.signal ? KILLED_HINT : advice.hint), { code: advice.code, damage: !res.signal && advice.damage === true });
      }
      return { restoreSeconds: secondsSince(started), indexBuildSeconds: null, warnings };
    }
    let indexBuildSeconds = 0;
    for (const section of ['pre-data', 'data', 'post-data'] as Section[]) {
      const t0 = Date.now();
      const args = pgRestoreArgs({
        format: manifest.format,
        database: target.conn.database,
        input,
        section,
        jobs: opts.jobs,
        noOwner: opts.noOwner,
      });
      const cmd = toolCommand(target.tools, 'pg_restore', args, env, [path.dirname(input)]);
      const res = await withProgress(logger, opts.progressSeconds, section === 'data' ? archiveProgress(`pg_restore ${section}`, input) : byteProgress(`pg_restore ${section}`, () => undefined), run(cmd));
      collectWarnings(res.stderr, warnings);
      if (res.code !== 0 || res.signal) {
        const advice = restoreAdvice(res.stderr);
        throw new BackupError(`The restore failed in ${section}: ${describeExit('pg_restore', res.code, res.signal)}: ${withoutData(lastLines(res.stderr))}`, (res.signal ? KILLED_HINT : advice.hint), { code: advice.code, damage: !res.signal && advice.damage === true });
      }
      const secs = secondsSince(t0);
      logger.info(`  ${section}: ${secs.toFixed(1)} s`);
      if (section === 'post-data') indexBuildSeconds = secs;
    }
    return { restoreSeconds: secondsSince(started), indexBuildSeconds, warnings };
  } finally {
    unregister?.();
    if (tmpDir) await fs.rm(tmpDir, { recursive: true, force: true });
  }
}

/** pg_restore's read position in its archive, of the file's size (none for a directory archive or in Docker). */
function archiveProgress(label: string, input: string): (elapsed: number) => string {
  let total: number | undefined;
  try {
    const st = statSync(input);
    if (st.isFile()) total = st.size;
  } catch {
    /* no total */
  }
  return byteProgress(label, () => (total === undefined ? undefined : fileReadPosition(input)), { verb: 'read', ...(total !== undefined ? { total } : {}) });
}

async function psqlFromStream(manifest: Manifest, archivePath: string, tools: PgTools, env: NodeJS.ProcessEnv, database: string, warnings: string[], singleTransaction: boolean, read?: Meter): Promise<void> {
  const cmd = toolCommand(tools, 'psql', psqlRestoreArgs({ database, singleTransaction }), env);
  const child = spawnCommand(cmd, ['pipe', 'ignore', 'pipe']);
  const stderr = new Tail();
  child.stderr!.on('data', (d: Buffer) => stderr.push(d));
  const exited = waitForExit(child);
  child.stdin!.on('error', () => undefined);
  const stages: unknown[] = [createReadStream(archivePath, { highWaterMark: 1 << 20 })];
  if (read) stages.push(read);
  const dec = manifest.compression.applied === 'stream' ? decompressor(manifest.compression.method) : undefined;
  if (dec) stages.push(dec);
  stages.push(child.stdin!);
  let pipeErr: unknown;
  // psql's input is closed only after every byte arrived: if reading the archive fails, psql is killed first,
  // so that a --single-transaction restore can never commit half a dump.
  await (pipeline as (...s: unknown[]) => Promise<void>)(...stages, { end: false }).catch((err: unknown) => {
    pipeErr = err;
  });
  if (pipeErr) child.kill('SIGKILL');
  child.stdin!.end();
  const { code, signal } = await exited;
  collectWarnings(stderr.toString(), warnings);
  if (pipeErr) {
    if (pipeErr instanceof BackupError) throw pipeErr;
    throw decompressError(manifest.name, `reading the archive failed during the restore${singleTransaction ? ' (rolled back)' : ''}: ${(pipeErr as Error).message}`, !decoderRefused(pipeErr), pipeErr);
  }
  if (code !== 0 || signal) {
    const advice = restoreAdvice(stderr.toString());
    throw new BackupError(`The restore failed${singleTransaction ? ' and was rolled back' : ''}: ${describeExit('psql', code, signal)}: ${withoutData(lastLines(stderr.toString()))}`, advice.hint, { code: advice.code });
  }
}

function collectWarnings(stderr: string, out: string[]): void {
  for (const line of stderr.split('\n')) {
    if (/hnsw graph no longer fits into maintenance_work_mem|ivfflat index created with little data/i.test(line)) out.push(line.replace(/^.*?(NOTICE|WARNING):\s*/, '').trim());
  }
}

/**
 * pg_restore's and psql's error lines without the table data they quote (a row's value in "invalid input syntax",
 * COPY's CONTEXT line, a key in DETAIL): a log must not carry the database's contents.
 */
export function withoutData(text: string): string {
  return text
    .replace(/(invalid input syntax for type [\w ."]+?|invalid input value for [\w ."]+?|malformed [\w ."]+? literal): "[^|]*?"(?=\s*(\||$|\n))/gi, '$1: (value not shown)')
    .replace(/(CONTEXT:\s+COPY [^,|]+, line \d+(?:, column [^:|]+)?): [^|]*/g, '$1: (row not shown)')
    .replace(/\bKey \(([^)]*)\)=\([^|]*?\)/g, 'Key ($1)=(value not shown)');
}

/**
 * Decompressing the archive for a restore failed: damage when the decoder refused its bytes; a full temporary
 * directory, a killed decoder or a missing program say nothing about the archive.
 */
function decompressError(name: string, detail: string, couldNotRun: boolean, cause?: unknown): BackupError {
  if (/no space left|ENOSPC|EDQUOT/i.test(detail)) {
    return new BackupError(`Decompressing ${name} for the restore ran out of space: ${detail}`, 'This says nothing about the backup: free space in the temporary directory (TMPDIR) and run again', { code: 'disk-full', ...(cause ? { cause } : {}) });
  }
  if (couldNotRun) {
    return new BackupError(`Decompressing ${name} for the restore could not run: ${detail}`, 'This says nothing about the backup: check the zstd program, free memory and TMPDIR, then run again', { code: 'verify-could-not-check', ...(cause ? { cause } : {}) });
  }
  return new BackupError(`Decompressing ${name} failed: ${detail}`, 'The archive is damaged; use another backup and run a new one', { code: 'restore-archive-damaged', damage: true, ...(cause ? { cause } : {}) });
}


/** A restore tool killed by a signal (the OOM killer, a crash): never the archive's fault. */
const KILLED_HINT = 'It was killed by a signal (out of memory, or a crash): check the machine\'s memory and the server; this says nothing about the archive';

/** What to do about a failed pg_restore or psql, from its error output. */
export function restoreAdvice(stderr: string): { code: ErrorCode; hint: string; damage?: boolean } {
  if (PG_RESTORE_DAMAGED.test(stderr) && !PG_RESTORE_ENVIRONMENT.test(stderr)) return { code: 'restore-archive-damaged', hint: 'The archive is damaged; use another backup and run a new one', damage: true };
  if (/extension "?vector"? is not available|could not open extension control file/i.test(stderr)) return { code: 'restore-missing-extension', hint: 'The target lacks pgvector: use a pgvector/pgvector image or install pgvector there' };
  if (/role .* does not exist/i.test(stderr)) return { code: 'restore-missing-roles', hint: 'The dump references roles the target lacks: set create-roles: true' };
  if (/out of memory|could not resize shared memory/i.test(stderr)) return { code: 'restore-out-of-memory', hint: 'The target ran out of memory building indexes: lower maintenance_work_mem or give it more memory' };
  if (/no space left/i.test(stderr)) return { code: 'restore-disk-full', hint: 'The target ran out of disk space' };
  if (/must be owner of|permission denied/i.test(stderr)) {
    return { code: 'restore-permission-denied', hint: 'The restoring role may not create or replace those objects: restore as the database owner or a superuser (a member of every role that owns objects in the backup)' };
  }
  return { code: 'restore-failed', hint: 'The archive does not restore cleanly; see the error above' };
}

function secondsSince(t0: number): number {
  return Math.round((Date.now() - t0) / 10) / 100;
}

/** Reads a restored database's inventory (with the manifest's kNN samples) and compares it with the manifest. */
export async function compareRestored(conn: ConnInfo, manifest: Manifest): Promise<Comparison> {
  const client = await connect(conn);
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const inv = await readInventory(client, manifest.knn ? { knnFrom: manifest.knn } : {});
    await client.query('COMMIT');
    return compareInventory(manifest, inv);
  } finally {
    await client.end().catch(() => undefined);
  }
}
