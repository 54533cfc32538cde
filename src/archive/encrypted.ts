// Encrypted archives on disk: a directory archive is encrypted file by file after pg_dump wrote it (file and
// stream archives are encrypted in the dump's stream), and every reader first decrypts into a private temporary
// directory. Decryption authenticates every byte before anything uses the plaintext: a wrong key or a tampered
// archive fails here, before any restore step, and the partial plaintext is removed.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BackupError, ConfigurationError } from '../errors.js';
import { decryptor, encryptionSuffix, encryptor, type DecryptionSettings, type EncryptionMethod, type EncryptionSettings } from './crypto.js';
import type { Manifest } from './manifest.js';
import { hashDirectory, hashFile, Meter } from './pipeline.js';

/** Encrypts every file of a directory archive in place (`toc.dat` -> `toc.dat.age`); returns the plaintext digest. */
export async function encryptDirectory(dir: string, s: EncryptionSettings): Promise<{ size: number; sha256: string }> {
  const plain = await hashDirectory(dir);
  for (const f of plain.files) {
    const src = path.join(dir, f.path);
    await pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), encryptor(s), createWriteStream(src + encryptionSuffix(s.method), { flags: 'wx', mode: 0o600, flush: true }));
    await fs.rm(src);
  }
  return { size: plain.size, sha256: plain.sha256 };
}

function stripSuffix(name: string, method: EncryptionMethod): string {
  const suffix = encryptionSuffix(method);
  return name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
}

async function decryptFile(src: string, dst: string, method: EncryptionMethod, d: DecryptionSettings, what: string): Promise<{ size: number; sha256: string }> {
  const meter = new Meter(true);
  await fs.mkdir(path.dirname(dst), { recursive: true, mode: 0o700 });
  const dec = decryptor(method, d, what);
  // The decryptor's own verdict (wrong key, damaged ciphertext) wins over whatever the pipeline reports first (a
  // neighbouring stage's "Premature close" when the decryptor fails).
  let decryptError: unknown;
  dec.once('error', (e: unknown) => (decryptError = e));
  try {
    await pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), dec, meter, createWriteStream(dst, { flags: 'wx', mode: 0o600 }));
  } catch (err) {
    if (decryptError instanceof BackupError || decryptError instanceof ConfigurationError) throw decryptError;
    if (err instanceof BackupError || err instanceof ConfigurationError) throw err;
    // Reading the archive or writing the plaintext failed (a full TMPDIR): the check could not run.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new BackupError(`No space left in ${path.dirname(dst)} to decrypt ${what}`, 'This says nothing about the backup: free space in TMPDIR (or point TMPDIR at a larger volume) and run again', { code: 'disk-full', cause: err });
    }
    throw new BackupError(`Decrypting ${what} could not run: ${(err as Error).message}`, 'This says nothing about the backup: check the file and TMPDIR, then run again', { code: 'verify-could-not-check', cause: err });
  }
  return { size: meter.bytes, sha256: meter.digest() };
}

/**
 * Decrypts an encrypted archive into `dir` and checks the plaintext against the manifest. Returns the plaintext
 * archive's path and a manifest that describes it (unencrypted; size and sha256 of the plaintext), which every
 * existing reader (verify, restore) takes as it is.
 */
export async function decryptArchive(m: Manifest, archivePath: string, d: DecryptionSettings, dir: string): Promise<{ path: string; manifest: Manifest }> {
  const enc = m.encryption;
  if (!enc) return { path: archivePath, manifest: m };
  const what = `backup ${m.name}`;
  const plainName = stripSuffix(m.archive.file, enc.method);
  const out = path.join(dir, plainName);
  let size: number;
  let sha256: string;
  let files: Manifest['archive']['files'];
  if (m.format === 'directory') {
    await fs.mkdir(out, { mode: 0o700 });
    for (const f of m.archive.files ?? []) {
      await decryptFile(path.join(archivePath, f.path), path.join(out, stripSuffix(f.path, enc.method)), enc.method, d, what);
    }
    const h = await hashDirectory(out);
    ({ size, sha256, files } = h);
  } else {
    ({ size, sha256 } = await decryptFile(archivePath, out, enc.method, d, what));
  }
  if (sha256 !== enc.plaintextSha256 || size !== enc.plaintextSize) {
    throw new BackupError(`Backup ${m.name} decrypts to content that differs from its manifest (${size} bytes, expected ${enc.plaintextSize})`, 'The archive or its manifest was replaced; use another backup', { code: 'verify-decrypted-mismatch', damage: true });
  }
  const view: Manifest = { ...m, encryption: null, archive: { ...m.archive, file: plainName, size, sha256, ...(files ? { files } : {}) } };
  return { path: out, manifest: view };
}

/** Plaintexts decrypted inside a keepPlaintext scope, by archive: kept until the scope ends. */
interface Kept {
  view: Manifest;
  path: string;
  dir: string;
  /** Drops the cancellation hook that would remove `dir`. */
  unregister?: () => void;
}
const scope = new AsyncLocalStorage<Map<string, Kept>>();

/**
 * Runs `fn` with decrypted archives kept until it returns: the quick verify and the restore that follows it (a
 * test restore, `mode: restore`, a backup's own `verify: full`) then share one decryption instead of two. The
 * plaintext stays in its private temporary directory, removed when `fn` ends, fails or the run is cancelled.
 */
export async function keepPlaintext<T>(fn: () => Promise<T>): Promise<T> {
  const kept = new Map<string, Kept>();
  try {
    return await scope.run(kept, fn);
  } finally {
    for (const k of kept.values()) {
      k.unregister?.();
      await fs.rm(k.dir, { recursive: true, force: true });
    }
  }
}

/** Whether a keepPlaintext scope already holds this archive's plaintext (the next withPlaintext reuses it). */
export function plaintextKept(m: Manifest, archivePath: string): boolean {
  return scope.getStore()?.has(keptKey(m, archivePath)) ?? false;
}

function keptKey(m: Manifest, archivePath: string): string {
  return `${archivePath}\0${m.archive.sha256}`;
}

/**
 * Runs `fn` on the decrypted archive (or directly on an unencrypted one). The plaintext lives in a private
 * temporary directory that is removed afterwards, on failure and on cancellation (inside keepPlaintext: when
 * that scope ends, and the next call for the same stored bytes reuses it).
 */
export async function withPlaintext<T>(
  m: Manifest,
  archivePath: string,
  d: DecryptionSettings,
  onCancel: ((fn: () => Promise<void>) => () => void) | undefined,
  fn: (view: Manifest, plainPath: string) => Promise<T>,
): Promise<T> {
  if (!m.encryption) return fn(m, archivePath);
  const kept = scope.getStore();
  const key = keptKey(m, archivePath);
  const ready = kept?.get(key);
  if (ready) return fn(ready.view, ready.path);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgvb-decrypted-'));
  const remove = (): Promise<void> => fs.rm(dir, { recursive: true, force: true });
  const unregister = onCancel?.(remove);
  let keep = false;
  try {
    const plain = await decryptArchive(m, archivePath, d, dir);
    if (kept) {
      // Still removed on cancellation until the scope ends and removes it itself.
      kept.set(key, { view: plain.manifest, path: plain.path, dir, ...(unregister ? { unregister } : {}) });
      keep = true;
    }
    return await fn(plain.manifest, plain.path);
  } finally {
    if (!keep) {
      unregister?.();
      await remove();
    }
  }
}

/** Size and sha256 of the stored bytes (a file, or a directory's digest), for checks before decrypting. */
export async function storedDigest(m: Manifest, archivePath: string): Promise<{ size: number; sha256: string }> {
  return m.format === 'directory' ? hashDirectory(archivePath) : hashFile(archivePath);
}
