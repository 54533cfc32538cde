// destination: cache. The real @actions/cache client saves each backup under the key
// pgvector-backup-<db>-<YYYYMMDD_HHMMSS>; latest is restored by that prefix, so pull-request workflows (which
// may read the default branch's caches) can test-restore without any secret. The cache service keeps only what
// it keeps (entries unused for 7 days are evicted): list shows the newest entry, and prune deletes nothing here.
// Every call runs under net.ts's `bounded`: the client's upload to blob storage has no timeout at all, its Twirp
// calls wait 3 minutes per attempt, so network-timeout without a byte moving abandons the call and fails the
// destination.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as cache from '@actions/cache';
import { readManifest, safeName } from '../archive/manifest.js';
import { BackupError, ConfigurationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { bounded, DEFAULT_NETWORK_TIMEOUT_MS, type Bound } from '../net.js';
import { checkDownload, type LocalBackup } from './local.js';
import { isGoodManifest, type Orphan, type PutResult, type Storage, type StoredBackup } from './storage.js';

export const CACHE_KEY_PREFIX = 'pgvector-backup-';

/**
 * The database part of a key has no '-' (it becomes '_'), so the prefix pgvector-backup-app- can never match the
 * keys of a database app-test.
 */
function keyPart(database: string): string {
  return safeName(database).replace(/-/g, '_');
}

/** pgvector-backup-<db>-<stamp>. */
export function cacheKey(name: string, database: string): string {
  const stamp = /_(\d{8}_\d{6}(?:_\d+)?)$/.exec(name)?.[1] ?? name;
  return `${CACHE_KEY_PREFIX}${keyPart(database)}-${stamp}`;
}

export function cachePrefix(database?: string): string {
  return database ? `${CACHE_KEY_PREFIX}${keyPart(database)}-` : CACHE_KEY_PREFIX;
}

/**
 * Backups pass through this directory, given to the cache client as a relative path (the client resolves it
 * against GITHUB_WORKSPACE): the cache version is a hash of the path strings, so it must be the same in every run,
 * whatever the workspace or backup-dir.
 */
const STAGING = '.pgvector-backup-cache';

export class CacheStorage implements Storage {
  readonly id = 'cache';
  private readonly staging: string;

  constructor(
    env: NodeJS.ProcessEnv,
    private readonly logger: Logger,
    /** network-timeout (ms). */
    private readonly networkTimeoutMs = DEFAULT_NETWORK_TIMEOUT_MS,
  ) {
    this.staging = path.join(env.GITHUB_WORKSPACE ?? process.cwd(), STAGING);
  }

  /** One client call, abandoned when its network goes quiet for network-timeout. */
  private bounded<T>(what: string, size: number | undefined, op: () => Promise<T>): Promise<T> {
    const b: Bound = {
      timeoutMs: this.networkTimeoutMs,
      destination: this.id,
      what,
      check: "Check the connection to GitHub's cache service and its blob storage (https://www.githubstatus.com)",
      logger: this.logger,
    };
    if (size !== undefined) b.size = size;
    return bounded(b, op);
  }

  private async clearStaging(): Promise<void> {
    await fs.rm(this.staging, { recursive: true, force: true });
    await fs.mkdir(this.staging, { recursive: true });
  }

  async put(b: LocalBackup): Promise<PutResult> {
    if (!cache.isFeatureAvailable()) throw new ConfigurationError('The cache destination only works inside GitHub Actions (the cache service is not available here)', { code: 'config-outside-actions' });
    await this.clearStaging();
    try {
      const target = path.join(this.staging, path.basename(b.archivePath));
      await fs.cp(b.archivePath, target, { recursive: true });
      await fs.copyFile(b.manifestPath, path.join(this.staging, path.basename(b.manifestPath)));
      const key = cacheKey(b.name, b.manifest.database);
      let id: number;
      try {
        // (The client reports no byte progress and first runs tar and zstd over the archive: net.ts watches the
        // sockets, and allows that local work up to network-timeout plus the archive's size at 1 MiB/s.)
        id = await this.bounded(`saving the cache ${key}`, b.manifest.archive.size, () => cache.saveCache([STAGING], key));
      } catch (err) {
        if (err instanceof BackupError) throw err;
        throw new BackupError(`Saving the cache ${key} failed: ${(err as Error).message}`, 'See the error; run again', { code: 'storage-cache', cause: err });
      }
      // saveCache reports most failures by returning -1 and logging a warning: that is a failed destination.
      if (id === -1) throw new BackupError(`The cache ${key} was not saved (the cache service refused or failed; see the warning above)`, 'Check the cache service and the repository\'s cache quota, then run again', { code: 'storage-cache' });
      return { location: `cache ${key}` };
    } finally {
      await fs.rm(this.staging, { recursive: true, force: true });
    }
  }

  /** The newest cache entry of the database (restored into the staging path to read its manifest). */
  async list(database?: string): Promise<StoredBackup[]> {
    if (!cache.isFeatureAvailable()) return [];
    await this.clearStaging();
    const prefix = cachePrefix(database);
    let key: string | undefined;
    try {
      // (Size unknown until found: the allowance for unpacking grows with the bytes downloaded.)
      key = await this.bounded(`looking up the cache ${prefix}*`, undefined, () => cache.restoreCache([STAGING], prefix, [prefix]));
    } catch (err) {
      if (err instanceof BackupError) throw err;
      throw new BackupError(`Looking up the cache ${prefix}* failed: ${(err as Error).message}`, 'See the error; run again', { code: 'storage-cache', cause: err });
    }
    if (!key) {
      await fs.rm(this.staging, { recursive: true, force: true });
      return [];
    }
    const manifests = (await fs.readdir(this.staging)).filter((f) => f.endsWith('.json'));
    if (manifests.length !== 1) {
      this.logger.warning(`cache ${key}: holds no single manifest (not a usable backup)`);
      return [];
    }
    const manifest = await readManifest(path.join(this.staging, manifests[0]!));
    // No copy of the data stays in the workspace after a listing; get() restores again.
    await fs.rm(this.staging, { recursive: true, force: true });
    if (database !== undefined && manifest.database !== database) return [];
    return [
      {
        name: manifest.name,
        createdAt: new Date(manifest.createdAt),
        manifest,
        location: `cache ${key}`,
        destination: this.id,
        good: isGoodManifest(manifest),
        ref: { key },
      },
    ];
  }

  async get(b: StoredBackup, dir: string): Promise<LocalBackup> {
    const m = b.manifest;
    // list() restored it into the staging path; restore again if that is gone.
    if (!(await fs.stat(path.join(this.staging, m.archive.file)).catch(() => undefined))) {
      await this.clearStaging();
      const { key } = b.ref as { key: string };
      const got = await this.bounded(`restoring the cache ${key}`, m.archive.size, () => cache.restoreCache([STAGING], key));
      if (got !== key) throw new BackupError(`The cache ${key} could not be restored`, 'It may have been evicted; use another destination', { code: 'storage-cache-evicted' });
    }
    const archivePath = path.join(dir, m.archive.file);
    const manifestPath = path.join(dir, `${m.name}.json`);
    await fs.rm(archivePath, { recursive: true, force: true });
    await fs.rename(path.join(this.staging, m.archive.file), archivePath);
    await fs.rename(path.join(this.staging, `${m.name}.json`), manifestPath);
    await fs.rm(this.staging, { recursive: true, force: true });
    return checkDownload({ name: m.name, manifestPath, archivePath, manifest: m, createdAt: b.createdAt, good: b.good }, b.location);
  }

  /** A cache entry is saved whole or not at all: no leftovers. */
  async orphans(): Promise<Orphan[]> {
    return [];
  }

  async delete(b: StoredBackup): Promise<void> {
    this.logger.info(`  ${b.location} is left to the cache service's eviction`);
  }
}
