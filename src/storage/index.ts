// The destinations of a run: building the storages, uploading a finished backup everywhere, finding one
// (latest | name | path) across all of them and bringing it into backup-dir, checked.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeManifest } from '../archive/manifest.js';
import { isCancelled, type Context } from '../context.js';
import { BackupError, ConfigurationError, describeError, errorLine } from '../errors.js';
import { deleteLocal, LocalStorage, noLatest, resolveLocal, type LocalBackup } from './local.js';
import type { ArtifactOptions } from './artifact.js';
import { SftpStorage } from './sftp.js';
import { latestOf, type LatestPurpose, type Orphan, type PutResult, type Storage, type StoredBackup } from './storage.js';
import type { LocalBackup as Local } from './local.js';

/**
 * A destination whose client library loads on first use. @actions/artifact, @actions/cache and the AWS SDK add
 * about 110 MB of memory and 0.6 s of start-up to every process that loads them (issue 8); a run that does not use
 * them never pays for them.
 */
class LazyStorage implements Storage {
  private loaded?: Promise<Storage>;
  constructor(
    readonly id: string,
    private readonly load: () => Promise<Storage>,
  ) {}
  private storage(): Promise<Storage> {
    return (this.loaded ??= this.load());
  }
  async put(b: Local): Promise<PutResult> {
    return (await this.storage()).put(b);
  }
  async list(database?: string): Promise<StoredBackup[]> {
    return (await this.storage()).list(database);
  }
  async get(b: StoredBackup, dir: string): Promise<Local> {
    return (await this.storage()).get(b, dir);
  }
  async delete(b: StoredBackup): Promise<void> {
    return (await this.storage()).delete(b);
  }
  async orphans(database?: string): Promise<Orphan[]> {
    return (await this.storage()).orphans(database);
  }
}

export function createStorage(ctx: Context, dest: string): Storage {
  const { config, logger } = ctx;
  if (dest === 'local') return new LocalStorage(config.backupDir);
  if (dest.startsWith('s3://')) return new LazyStorage(dest, async () => new (await import('./s3.js')).S3Storage(dest, config.s3, logger, config.env));
  if (dest.startsWith('sftp://')) return new SftpStorage(dest, config.sftp, logger, config.env);
  if (dest === 'cache') return new LazyStorage(dest, async () => new (await import('./cache.js')).CacheStorage(config.env, logger, config.networkTimeoutMs));
  if (dest === 'artifact') {
    // No retention of GitHub's own below the repository's: artifacts that expire by themselves would take the last
    // good backups with them when backups fail for a while. They are uploaded with the longest retention the
    // repository allows (its setting) and deleted by our retention, which keeps keep-min and the newest good one.
    const opts: ArtifactOptions = { env: config.env, networkTimeoutMs: config.networkTimeoutMs };
    if (config.githubToken) opts.token = config.githubToken;
    return new LazyStorage(dest, async () => new (await import('./artifact.js')).ArtifactStorage(opts, logger));
  }
  throw new ConfigurationError(`Destination "${dest}" is not supported`, { code: 'config-destination' });
}

/** Every configured destination; local always comes first (it needs no download). */
export function storages(ctx: Context): Storage[] {
  const list = ctx.config.destination.map((d) => createStorage(ctx, d));
  return list.sort((a, b) => (a.id === 'local' ? -1 : b.id === 'local' ? 1 : 0));
}

/**
 * Uploads a complete, verified backup to every destination but local. Every destination is attempted; the run
 * fails if any failed, naming which. The uploads are recorded in the local manifest.
 */
export async function uploadEverywhere(ctx: Context, b: LocalBackup): Promise<string[]> {
  const { logger } = ctx;
  const failed: string[] = [];
  const locations: string[] = [];
  const remotes = storages(ctx).filter((s) => s.id !== 'local');
  if (isCancelled()) throw new BackupError('The run was cancelled before the upload', 'Run the backup again', { code: 'run-cancelled' });
  for (const s of remotes) {
    if ((s.id === 'artifact' || s.id === 'cache') && !b.manifest.encryption) {
      logger.warning(
        `${b.name} is stored unencrypted in the ${s.id} destination: anyone with read access to this repository can download ${s.id === 'artifact' ? 'workflow artifacts' : 'caches (pull requests included)'} (allow-unencrypted is set). Set encryption-recipients, or use s3:// with access control, for production data`,
      );
    }
    try {
      const r = await logger.group(`Upload ${b.name} to ${s.id}`, () => s.put(b));
      logger.info(`Stored at ${r.location}`);
      locations.push(r.location);
    } catch (err) {
      logger.error(`Upload to ${s.id} failed: ${errorLine(err)}`);
      failed.push(s.id);
    }
  }
  if (failed.length) {
    throw new BackupError(
      `The backup ${b.name} could not be stored in ${failed.join(', ')}`,
      `See the errors above; ${remotes.length - failed.length} of ${remotes.length} uploads succeeded and the local copy in ${path.dirname(b.archivePath)} is kept`,
      { code: 'storage-upload-failed' },
    );
  }
  if (remotes.length && !ctx.config.destination.includes('local')) {
    // Without local among the destinations, backup-dir was only the staging area.
    await deleteLocal(b);
  } else if (remotes.length) {
    await writeManifest(path.dirname(b.manifestPath), b.manifest).catch(() => undefined);
  }
  return locations;
}

export interface Listing {
  backups: StoredBackup[];
  /** Destinations whose listing failed, with why. */
  failures: Array<{ destination: string; reason: string }>;
}

export async function listEverywhere(ctx: Context, database?: string): Promise<Listing> {
  const out: Listing = { backups: [], failures: [] };
  for (const s of storages(ctx)) {
    try {
      out.backups.push(...(await s.list(database)));
    } catch (err) {
      out.failures.push({ destination: s.id, reason: describeError(err) });
    }
  }
  out.backups.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  return out;
}

/**
 * The backup that a `backup` input names, as a checked local copy: a path is used where it is; latest (the
 * newest complete, good backup) and names are looked up in every destination, local first, and downloaded
 * into backup-dir with their size and sha256 checked.
 */
export async function resolveBackup(ctx: Context, ref: string, database: string | undefined, purpose: LatestPurpose): Promise<LocalBackup> {
  const { config, logger } = ctx;
  const isPath = ref.includes('/') || ref.includes(path.sep);
  if (isPath || (config.destination.length === 1 && config.destination[0] === 'local')) {
    return resolveLocal(ref, config.backupDir, database, purpose);
  }
  if (ref !== 'latest' && (ref.includes('..') || /[\0\n\r]/.test(ref))) throw new ConfigurationError(`Input backup "${ref}" is not a valid backup name`, { code: 'config-backup-name' });
  const listing = await listEverywhere(ctx, database);
  for (const f of listing.failures) logger.warning(`Listing ${f.destination} failed: ${f.reason}`);
  const wanted = ref === 'latest' ? latestOf(listing.backups, purpose) : listing.backups.find((b) => b.name === ref || b.manifest.archive.file === ref);
  if (!wanted) {
    const where = config.destination.join(', ');
    if (listing.failures.length) {
      throw new BackupError(`${ref === 'latest' ? 'No usable backup' : `No backup named ${ref}`}${database ? ` of database ${database}` : ''} found in ${where}, and some destinations could not be listed`, 'See the warnings above; fix access to those destinations and run again', { code: 'storage-not-found' });
    }
    if (ref === 'latest') throw noLatest(database, where, listing.backups, purpose);
    throw new BackupError(`No backup named ${ref} found in ${where}`, 'Run a backup first, or check destination and backup', { code: 'storage-not-found' });
  }
  if (wanted.destination === 'local') return wanted.ref as LocalBackup;
  logger.info(`Downloading ${wanted.name} from ${wanted.location}`);
  const storage = createStorage(ctx, wanted.destination);
  await fs.mkdir(config.backupDir, { recursive: true });
  return storage.get(wanted, config.backupDir);
}
