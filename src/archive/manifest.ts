// The manifest: written last, it is what makes an archive a backup. It records what the archive holds (exact,
// from the dump's snapshot) and how to check it; it holds no data values and no secrets.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BackupError } from '../errors.js';
import { writeError } from './pipeline.js';
import type { Inventory, KnnCheck } from '../postgres/inventory.js';
import { encryptionSuffix, type EncryptionInfo, type EncryptionMethod } from './crypto.js';

/** 2: `verifications` holds every conclusive check (version 1 had one overwritten `verification` slot). */
export const MANIFEST_VERSION = 2;
/** verification.failure that version 1 wrote while a backup's own verification ran: it never finished then. */
export const PENDING = 'verification did not finish';
export const TOOL_NAME = 'pgvector-backup';

export type Format = 'custom' | 'plain' | 'directory';
export type CompressionMethod = 'gzip' | 'zstd' | 'none';

export interface ArchiveFile {
  path: string;
  size: number;
  sha256: string;
}

/**
 * One conclusive check of the archive: it ran and either passed or found evidence about the archive's own bytes
 * or content (checksum, structure, authentication, restored data). A check that could not run (no key, no tool,
 * no target, cancelled) is never recorded: it proves nothing about the archive.
 */
export interface Verification {
  level: 'quick' | 'full';
  ok: boolean;
  at: string;
  checks: string[];
  failure?: string;
  /** The error code of a failed check (docs/TROUBLESHOOTING.md). */
  code?: string;
  restoreSeconds?: number;
  indexBuildSeconds?: number;
  mismatches?: number;
  target?: string;
}

/** What the archive holds, from the snapshot's inventory. */
type Contents = Pick<Inventory, 'extensions' | 'tables' | 'indexes' | 'sequences' | 'largeObjects' | 'roles'>;

export interface Manifest extends Contents {
  manifestVersion: number;
  tool: { name: string; version: string };
  name: string;
  /** ISO 8601, UTC. Retention and "latest" order by this, never by file name. */
  createdAt: string;
  database: string;
  server: { version: string; versionNum: number; pgvectorVersion: string | null };
  pgDump: { version: string; major: number };
  format: Format;
  compression: {
    method: CompressionMethod;
    level: number | null;
    /** pg_dump: inside the archive; stream: a layer around it (gzip/zstd file); none. */
    applied: 'pg_dump' | 'stream' | 'none';
  };
  /** null: stored as plaintext. The archive's size and sha256 are of the stored (encrypted) bytes. */
  encryption: EncryptionInfo | null;
  archive: {
    /** File or directory name, relative to the manifest. */
    file: string;
    size: number;
    /** Of the bytes as stored; for a directory, of its sorted "sha256  path" lines. */
    sha256: string;
    /** Bytes pg_dump wrote (before stream compression). */
    dumpBytes: number;
    files?: ArchiveFile[];
  };
  durationSeconds: number;
  totals: { tables: number; rows: number; vectors: number };
  knn: KnnCheck | null;
  /** Every conclusive verification, oldest first. A backup's standing is derived from it (standing()). */
  verifications: Verification[];
  /** The newest entry of `verifications`, or null: kept for readers of manifest version 1. */
  verification: Verification | null;
}

/**
 * good: its newest conclusive verification passed (and no failure of a higher level stands after it);
 * unverified: never verified conclusively (verify: none, a run that could not verify it, or was cancelled);
 * bad: a check found the archive damaged or different from what was recorded.
 * Only good backups count for latest, keep-min, "newest good" and the GFS picks.
 */
export type Standing = 'good' | 'unverified' | 'bad';

const LEVEL_RANK = { quick: 1, full: 2 } as const;

export interface StandingInfo {
  standing: Standing;
  /** The highest level of the passed checks that make it good. */
  level?: Verification['level'];
  /** The check that decided the standing (for list and the summaries). */
  decidedBy?: Verification;
  /** The newest conclusive check. */
  last?: Verification;
}

/**
 * Derives a backup's standing from its verification history, in the order the checks were recorded (appended; never
 * by their clocks, which may disagree): a failure makes it bad until a later pass of the same or a higher level (a
 * quick pass never clears a failed test restore); a later quick pass never lowers the level that a full one earned.
 */
export function standingOf(history: readonly Verification[]): StandingInfo {
  const ordered = history;
  let info: StandingInfo = { standing: 'unverified' };
  let failedLevel = 0;
  for (const v of ordered) {
    const rank = LEVEL_RANK[v.level] ?? 1;
    if (!v.ok) {
      failedLevel = Math.max(info.standing === 'bad' ? failedLevel : 0, rank);
      info = { standing: 'bad', decidedBy: v };
    } else if (info.standing === 'bad') {
      if (rank >= failedLevel) info = { standing: 'good', level: v.level, decidedBy: v };
    } else {
      const keep = info.standing === 'good' && info.level !== undefined && LEVEL_RANK[info.level] > rank;
      info = keep ? info : { standing: 'good', level: v.level, decidedBy: v };
    }
  }
  const last = ordered.at(-1);
  return last ? { ...info, last } : info;
}

export function standing(m: Pick<Manifest, 'verifications'>): Standing {
  return standingOf(m.verifications).standing;
}

/** Appends a conclusive check to the history (the manifest object only; writeManifest stores it). */
export function addVerification(m: Manifest, v: Verification): void {
  m.verifications = [...m.verifications, v];
  m.verification = v;
}

/** A database name as it appears in file names, object keys and cache keys: no separators, no leading dot, no "..". */
export function safeName(database: string): string {
  return database.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/\.{2,}/g, '_').replace(/^\./, '_') || 'db';
}

/** `<db>_YYYYMMDD_HHMMSS`, the old kit's naming; the database part keeps only file-name-safe characters. */
export function backupName(database: string, at: Date): string {
  const safe = safeName(database);
  const p = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}_${p(at.getUTCHours())}${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}`;
  return `${safe}_${stamp}`;
}

/** The file-name prefix of a database's backups (for listing only that database's). */
export function namePrefix(database: string): string {
  return backupName(database, new Date(0)).replace(/_19700101_000000$/, '_');
}

export function archiveSuffix(format: Format, compression: { method: CompressionMethod; applied: string }, encryption?: EncryptionMethod): string {
  // A directory archive's files are encrypted one by one (toc.dat.age ...); the directory keeps its name.
  if (format === 'directory') return '.dir';
  const base = format === 'custom' ? '.dump' : '.sql';
  const compressed = compression.applied !== 'stream' ? base : base + (compression.method === 'gzip' ? '.gz' : '.zst');
  return encryption ? compressed + encryptionSuffix(encryption) : compressed;
}

export function manifestPathFor(dir: string, name: string): string {
  return path.join(dir, `${name}.json`);
}

/**
 * Writes the manifest under a temporary name and renames it into place: readers see all of it or nothing. A
 * failed write (a full disk) leaves no `.partial` behind and the previous manifest untouched, and is reported as
 * the same `disk-full` (or permission) error as a failed dump.
 */
export async function writeManifest(dir: string, manifest: Manifest): Promise<string> {
  const final = manifestPathFor(dir, manifest.name);
  const tmp = `${final}.partial`;
  try {
    const fh = await fs.open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(JSON.stringify(manifest, null, 2) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, final);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw writeError(err, final);
  }
  return final;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** Parses and checks a manifest; every problem is a BackupError naming the file and the fix. */
export function parseManifest(text: string, file: string): Manifest {
  const where = path.basename(file);
  if (text.trim() === '') throw new BackupError(`Manifest ${where} is empty`, 'The backup is incomplete; use another backup or run a new one', { code: 'manifest-invalid' });
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw new BackupError(`Manifest ${where} is not valid JSON (${(err as Error).message})`, 'The backup is incomplete or damaged; use another backup or run a new one', { code: 'manifest-invalid' });
  }
  const problems: string[] = [];
  const obj = m as Partial<Manifest>;
  if (typeof m !== 'object' || m === null) problems.push('not an object');
  else {
    if (obj.tool?.name !== TOOL_NAME) problems.push('tool.name');
    if (typeof obj.manifestVersion !== 'number' || obj.manifestVersion > MANIFEST_VERSION) problems.push('manifestVersion');
    if (typeof obj.name !== 'string' || !obj.name || /[/\\\0\n]|\.\./.test(obj.name)) problems.push('name');
    if (typeof obj.createdAt !== 'string' || Number.isNaN(Date.parse(obj.createdAt))) problems.push('createdAt');
    if (typeof obj.database !== 'string') problems.push('database');
    if (!['custom', 'plain', 'directory'].includes(obj.format as string)) problems.push('format');
    if (!obj.compression || !['gzip', 'zstd', 'none'].includes(obj.compression.method)) problems.push('compression');
    const a = obj.archive;
    if (!a || typeof a.file !== 'string' || !a.file || /[/\\\0\n]|^\.\.?$/.test(a.file)) problems.push('archive.file');
    if (!a || !Number.isSafeInteger(a.size) || a.size < 0) problems.push('archive.size');
    if (!a || typeof a.sha256 !== 'string' || !SHA256.test(a.sha256)) problems.push('archive.sha256');
    if (a?.files && (!Array.isArray(a.files) || a.files.some((f) => f === null || typeof f !== 'object' || typeof f.path !== 'string' || /(^|[/\\])\.\.([/\\]|$)|^\//.test(f.path) || !SHA256.test(f.sha256)))) problems.push('archive.files');
    if (!Array.isArray(obj.tables)) problems.push('tables');
    if (!Array.isArray(obj.extensions)) problems.push('extensions');
    if (!Array.isArray(obj.indexes)) problems.push('indexes');
    if (!Array.isArray(obj.sequences)) problems.push('sequences');
    if (obj.verifications !== undefined && (!Array.isArray(obj.verifications) || obj.verifications.some((v) => v === null || typeof v !== 'object' || typeof v.ok !== 'boolean' || !['quick', 'full'].includes(v.level) || Number.isNaN(Date.parse(v.at))))) {
      problems.push('verifications');
    }
    const e = obj.encryption;
    if (e !== undefined && e !== null && (typeof e !== 'object' || !['age', 'gpg'].includes(e.method) || !Array.isArray(e.recipients) || typeof e.plaintextSha256 !== 'string' || !SHA256.test(e.plaintextSha256) || !Number.isSafeInteger(e.plaintextSize))) {
      problems.push('encryption');
    }
  }
  if (problems.length) {
    throw new BackupError(`Manifest ${where} is invalid (${problems.join(', ')})`, 'The backup cannot be trusted; use another backup or run a new one', { code: 'manifest-invalid' });
  }
  const out = m as Manifest;
  out.knn ??= null;
  out.encryption ??= null;
  out.verification ??= null;
  if (!Array.isArray(out.verifications)) out.verifications = fromVersion1(out.verification);
  out.roles ??= [];
  out.largeObjects ??= 0;
  return out;
}

/**
 * Version 1 kept one overwritten slot, and recorded every failed check there, whether it found damage or could not
 * run (a wrong key, an unreachable target). A failure counts as damage only when its message is one of the checks'
 * own words for damage; any other (and a verification that never finished) reads as unverified.
 */
function fromVersion1(v: Verification | null): Verification[] {
  if (!v) return [];
  if (v.ok) return [v];
  if (v.failure === PENDING) return [];
  return (v.mismatches ?? 0) > 0 || (V1_DAMAGE.test(v.failure ?? '') && !V1_ENVIRONMENT.test(v.failure ?? '')) ? [v] : [];
}

/** Words of a check that could not run, even inside a damage-like message (a full disk while decompressing). */
const V1_ENVIRONMENT = /No space left|out of memory|killed by|could not run|Permission denied|Cannot run|not found/i;

const V1_DAMAGE = /failed the .+ check|differs from (its|the) manifest|decrypts to content that differs|was modified or damaged|^Decompressing .+ failed|gave \d+ bytes, but pg_dump wrote|does not hold what was recorded/;

export async function readManifest(file: string): Promise<Manifest> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BackupError(`Manifest ${path.basename(file)} is missing`, 'A backup without a manifest is incomplete; use another backup or run a new one', { code: 'manifest-missing', cause: err });
    throw new BackupError(`Cannot read manifest ${file}: ${(err as Error).message}`, 'Check the file\'s permissions', { code: 'manifest-unreadable', cause: err });
  }
  return parseManifest(text, file);
}
