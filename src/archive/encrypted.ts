// Encrypted archives on disk: a directory archive is encrypted file by file after pg_dump wrote it (file and
// stream archives are encrypted in the dump's stream), and every reader first decrypts into a private temporary
// directory. Decryption authenticates every byte before anything uses the plaintext: a wrong key or a tampered
// archive fails here, before any restore step, and the partial plaintext is removed.
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BackupError } from '../errors.js';
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
  await pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), decryptor(method, d, what), meter, createWriteStream(dst, { flags: 'wx', mode: 0o600 }));
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
    throw new BackupError(`Backup ${m.name} decrypts to content that differs from its manifest (${size} bytes, expected ${enc.plaintextSize})`, 'The archive or its manifest was replaced; use another backup', { code: 'verify-decrypted-mismatch' });
  }
  const view: Manifest = { ...m, encryption: null, archive: { ...m.archive, file: plainName, size, sha256, ...(files ? { files } : {}) } };
  return { path: out, manifest: view };
}

/**
 * Runs `fn` on the decrypted archive (or directly on an unencrypted one). The plaintext lives in a private
 * temporary directory that is removed afterwards, on failure and on cancellation.
 */
export async function withPlaintext<T>(
  m: Manifest,
  archivePath: string,
  d: DecryptionSettings,
  onCancel: ((fn: () => Promise<void>) => () => void) | undefined,
  fn: (view: Manifest, plainPath: string) => Promise<T>,
): Promise<T> {
  if (!m.encryption) return fn(m, archivePath);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgvb-decrypted-'));
  const unregister = onCancel?.(() => fs.rm(dir, { recursive: true, force: true }));
  try {
    const plain = await decryptArchive(m, archivePath, d, dir);
    return await fn(plain.manifest, plain.path);
  } finally {
    unregister?.();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Size and sha256 of the stored bytes (a file, or a directory's digest), for checks before decrypting. */
export async function storedDigest(m: Manifest, archivePath: string): Promise<{ size: number; sha256: string }> {
  return m.format === 'directory' ? hashDirectory(archivePath) : hashFile(archivePath);
}
