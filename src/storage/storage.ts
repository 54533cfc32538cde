// One interface for every place backups go. A backup is only ever stored whole: the archive first, checked,
// then the manifest as the commit marker, so a listing never shows a backup whose upload died half way.
import { standing, type Manifest } from '../archive/manifest.js';
import type { LocalBackup } from './local.js';

export interface StoredBackup {
  name: string;
  /** From the manifest (UTC): retention and "latest" order by this. */
  createdAt: Date;
  manifest: Manifest;
  /** Human-readable location: a path, s3://bucket/key, artifact name and id, cache key. */
  location: string;
  /** The destination it was listed from (local, artifact, cache, s3://bucket/prefix). */
  destination: string;
  /** Standing 'good': verified, and not found damaged since. */
  good: boolean;
  /** Backend-specific handle (object keys, artifact id ...). */
  ref: unknown;
}

export interface PutResult {
  location: string;
  /** A digest the backend reports (artifact digest, S3 ETag). */
  digest?: string;
}

export interface Storage {
  /** The destination as the user wrote it. */
  readonly id: string;
  /** Stores a complete local backup (archive, then manifest). */
  put(b: LocalBackup): Promise<PutResult>;
  /**
   * Complete backups, newest first. Throws if any part of the listing failed: a partial listing must never
   * drive deletions.
   */
  list(database?: string): Promise<StoredBackup[]>;
  /** Downloads archive and manifest into `dir` and checks size and sha256 before returning. */
  get(b: StoredBackup, dir: string): Promise<LocalBackup>;
  /** Deletes a backup, manifest first. */
  delete(b: StoredBackup): Promise<void>;
  /**
   * Leftovers of uploads or runs that died before their manifest was written (never a complete backup), with
   * their age, so retention can remove them after a grace period.
   */
  orphans(database?: string): Promise<Orphan[]>;
}

export interface Orphan {
  location: string;
  modified: Date;
  remove(): Promise<void>;
}

/** How old a leftover without a manifest must be before retention removes it (a running backup is younger). */
export const ORPHAN_GRACE_MS = 86_400_000;

/** Verified and not found damaged since (standing 'good'): only such backups count for latest and retention. */
export function isGoodManifest(m: Manifest): boolean {
  return standing(m) === 'good';
}

/**
 * What `latest` means: the newest good backup for a restore; for a check (verify, test-restore), the newest
 * backup not known to be bad, so an unverified backup can be proven.
 */
export type LatestPurpose = 'restore' | 'check';

export function latestOf<T extends { manifest: Manifest }>(newestFirst: readonly T[], purpose: LatestPurpose): T | undefined {
  return purpose === 'restore' ? newestFirst.find((b) => isGoodManifest(b.manifest)) : newestFirst.find((b) => standing(b.manifest) !== 'bad');
}
