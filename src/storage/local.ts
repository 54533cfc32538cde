// The local backup directory: listing complete backups (a manifest and its archive), finding one by
// latest | name | path, and deleting. An archive without a manifest is not a backup and is never listed.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BackupError, ConfigurationError } from '../errors.js';
import { manifestPathFor, namePrefix, readManifest, standing, type Manifest } from '../archive/manifest.js';
import { hashDirectory, hashFile } from '../archive/pipeline.js';
import { isGoodManifest, latestOf, type LatestPurpose, type Orphan, type PutResult, type Storage, type StoredBackup } from './storage.js';

export interface LocalBackup {
  name: string;
  manifestPath: string;
  archivePath: string;
  manifest: Manifest;
  createdAt: Date;
  /** Standing 'good': verified, and not found damaged since. */
  good: boolean;
}

export interface ScanResult {
  backups: LocalBackup[];
  /** Manifests that could not be used, with why. */
  invalid: Array<{ path: string; reason: string }>;
  /** Leftovers of interrupted runs. */
  partials: Array<{ path: string; mtime: Date }>;
}

/** Lists the backups in `dir`, optionally only those of `database`, newest first (by the manifest's time). */
export async function scanLocal(dir: string, database?: string): Promise<ScanResult> {
  const result: ScanResult = { backups: [], invalid: [], partials: [] };
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return result;
    throw new BackupError(`Cannot read backup-dir ${dir}: ${(err as Error).message}`, 'Check backup-dir and its permissions', { code: 'disk-read-failed', cause: err });
  }
  const prefix = database === undefined ? undefined : namePrefix(database);
  for (const e of entries.sort()) {
    const full = path.join(dir, e);
    if (e.endsWith('.partial')) {
      if (prefix && !e.startsWith(prefix)) continue;
      const st = await fs.stat(full).catch(() => undefined);
      if (st) result.partials.push({ path: full, mtime: st.mtime });
      continue;
    }
    if (!e.endsWith('.json')) continue;
    let manifest: Manifest;
    try {
      manifest = await readManifest(full);
    } catch (err) {
      if (!prefix || e.startsWith(prefix)) result.invalid.push({ path: full, reason: (err as Error).message });
      continue;
    }
    if (database !== undefined && manifest.database !== database) continue;
    const archivePath = path.join(dir, manifest.archive.file);
    const st = await fs.stat(archivePath).catch(() => undefined);
    if (!st) {
      result.invalid.push({ path: full, reason: `archive ${manifest.archive.file} is missing` });
      continue;
    }
    result.backups.push({
      name: manifest.name,
      manifestPath: full,
      archivePath,
      manifest,
      createdAt: new Date(manifest.createdAt),
      good: isGoodManifest(manifest),
    });
  }
  result.backups.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  return result;
}

const SUFFIXES = ['.sql.gz', '.sql.zst', '.dump.zst', '.dump.gz', '.sql', '.dump', '.dir', '.json'];

/** The backup a `backup` input names: latest, a backup name, or a path to its archive or manifest. */
export async function resolveLocal(ref: string, dir: string, database?: string, purpose: LatestPurpose = 'restore'): Promise<LocalBackup> {
  if (ref === 'latest') {
    const scan = await scanLocal(dir, database);
    const latest = latestOf(scan.backups, purpose);
    if (!latest) throw noLatest(database, dir, scan.backups, purpose);
    return latest;
  }
  if (/[\0\n\r]/.test(ref)) throw new ConfigurationError('Input backup must not contain newlines or NUL characters', { code: 'config-backup-name' });
  const looksLikePath = ref.includes('/') || ref.includes(path.sep);
  let manifestPath: string;
  if (looksLikePath) {
    const abs = path.resolve(ref);
    const base = path.basename(abs);
    const suffix = SUFFIXES.find((s) => base.endsWith(s));
    const stem = suffix ? base.slice(0, -suffix.length) : base;
    manifestPath = manifestPathFor(path.dirname(abs), stem);
  } else {
    if (ref.includes('..')) throw new ConfigurationError(`Input backup "${ref}" is not a valid backup name`, { code: 'config-backup-name' });
    const suffix = SUFFIXES.find((s) => ref.endsWith(s));
    manifestPath = manifestPathFor(dir, suffix ? ref.slice(0, -suffix.length) : ref);
  }
  const manifest = await readManifest(manifestPath);
  const archivePath = path.join(path.dirname(manifestPath), manifest.archive.file);
  return {
    name: manifest.name,
    manifestPath,
    archivePath,
    manifest,
    createdAt: new Date(manifest.createdAt),
    good: isGoodManifest(manifest),
  };
}

/** No backup qualifies as `latest`: say which backups there are and how to use one of them. */
export function noLatest(database: string | undefined, where: string, backups: ReadonlyArray<{ name: string; manifest: Manifest }>, purpose: LatestPurpose): BackupError {
  const what = database ? ` of database ${database}` : '';
  const unverified = backups.filter((b) => standing(b.manifest) === 'unverified');
  if (purpose === 'restore' && unverified.length) {
    return new BackupError(
      `No verified backup${what} found in ${where} (${unverified.length} unverified, newest ${unverified[0]!.name})`,
      'latest is the newest good (verified) backup: verify one first (mode: verify, or test-restore), or name it in backup to restore it after its quick check',
      { code: 'storage-not-found' },
    );
  }
  return new BackupError(
    backups.length ? `No ${purpose === 'restore' ? 'good' : 'usable'} backup${what} found in ${where} (${backups.length} found damaged)` : `No complete backup${what} found in ${where}`,
    'Run a backup first, or set backup-dir, destination or backup to where the backups are',
    { code: 'storage-not-found' },
  );
}

/** Deletes a backup: manifest first, so an interrupted delete never leaves a manifest without its archive. */
export async function deleteLocal(b: Pick<LocalBackup, 'manifestPath' | 'archivePath'>): Promise<void> {
  await fs.rm(b.manifestPath, { force: true });
  await fs.rm(b.archivePath, { force: true, recursive: true });
}

/** Checks a downloaded backup against its manifest (size and sha256); removes it and throws when it differs. */
export async function checkDownload(b: LocalBackup, from: string): Promise<LocalBackup> {
  const m = b.manifest;
  const got = m.format === 'directory' ? await hashDirectory(b.archivePath) : await hashFile(b.archivePath);
  if (got.size !== m.archive.size || got.sha256 !== m.archive.sha256) {
    await deleteLocal(b).catch(() => undefined);
    throw new BackupError(
      `The download of ${b.name} from ${from} does not match its manifest (${got.size} bytes, sha256 ${got.sha256.slice(0, 12)}…; expected ${m.archive.size} bytes, ${m.archive.sha256.slice(0, 12)}…)`,
      'The stored copy is damaged; use another backup',
      { code: 'storage-download-damaged' },
    );
  }
  return b;
}

/** backup-dir as a Storage: the backup is written there first, so put() only reports where it is. */
export class LocalStorage implements Storage {
  readonly id = 'local';
  constructor(private readonly dir: string) {}

  async put(b: LocalBackup): Promise<PutResult> {
    return { location: b.archivePath };
  }

  async list(database?: string): Promise<StoredBackup[]> {
    const scan = await scanLocal(this.dir, database);
    return scan.backups.map((b) => ({
      name: b.name,
      createdAt: b.createdAt,
      manifest: b.manifest,
      location: b.archivePath,
      destination: this.id,
      good: b.good,
      ref: b,
    }));
  }

  async get(b: StoredBackup): Promise<LocalBackup> {
    return b.ref as LocalBackup;
  }

  async delete(b: StoredBackup): Promise<void> {
    await deleteLocal(b.ref as LocalBackup);
  }

  /** .partial files of interrupted runs. An archive without a manifest is never an orphan here: it may be a user's. */
  async orphans(database?: string): Promise<Orphan[]> {
    const scan = await scanLocal(this.dir, database);
    return scan.partials.map((p) => ({ location: p.path, modified: p.mtime, remove: () => fs.rm(p.path, { recursive: true, force: true }) }));
  }
}
