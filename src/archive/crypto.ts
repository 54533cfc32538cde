// Encryption of stored archives: age (recommended; X25519 recipients or a passphrase) or OpenPGP (for users of
// the old kit's `gpg --encrypt --recipient`). Both stream in constant memory as stages of a Node pipeline and
// produce files the standard tools read: `age -d -i key.txt`, `gpg --decrypt`.
import { Decrypter, Encrypter, generateIdentity, identityToRecipient } from 'age-encryption';
import * as openpgp from 'openpgp';
import { Duplex, PassThrough, Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { BackupError, ConfigurationError } from '../errors.js';

export type EncryptionMethod = 'age' | 'gpg';

export interface EncryptionSettings {
  method: EncryptionMethod;
  /** age1... recipients (age). */
  recipients: string[];
  /** age's scrypt passphrase (age; exclusive with recipients, as in age). */
  passphrase?: string;
  /** Armored OpenPGP public keys (gpg). */
  gpgPublicKeys: string[];
}

export interface DecryptionSettings {
  /** AGE-SECRET-KEY-1... identities. */
  identities: string[];
  passphrase?: string;
  /** Armored OpenPGP private keys. */
  gpgPrivateKeys: string[];
  gpgPassphrase?: string;
}

export const NO_DECRYPTION: DecryptionSettings = { identities: [], gpgPrivateKeys: [] };

/** What the manifest records about encryption: no key material, only what identifies the keys. */
export interface EncryptionInfo {
  method: EncryptionMethod;
  /** age recipients or OpenPGP key fingerprints the archive is encrypted to (not secret). */
  recipients: string[];
  passphrase: boolean;
  /** Bytes and sha256 before encryption (for a directory: of its sorted "sha256  path" lines). */
  plaintextSize: number;
  plaintextSha256: string;
}

export function encryptionSuffix(method: EncryptionMethod): string {
  return method === 'age' ? '.age' : '.gpg';
}

const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{20,}$/;
const AGE_IDENTITY = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{20,}$/;

/** age recipients from an input: separated by commas, spaces or newlines; `#` comments allowed (a recipients file). */
export function parseRecipients(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const body = line.replace(/#.*$/, '');
    for (const r of body.split(/[\s,]+/).filter(Boolean)) {
      if (r.startsWith('AGE-SECRET-KEY-')) {
        throw new ConfigurationError('Input encryption-recipients holds a private key (AGE-SECRET-KEY-...): put only the public recipient (age1...) there, and the key into a secret for decryption-identity', { code: 'config-encryption-key' });
      }
      if (!AGE_RECIPIENT.test(r)) {
        throw new ConfigurationError(`Input encryption-recipients: "${r.slice(0, 24)}" is not an age recipient (age1...); create a key pair with \`pgvector-backup keygen\` or \`age-keygen\``, { code: 'config-encryption-key' });
      }
      out.push(r);
    }
  }
  return [...new Set(out)];
}

/** age identities from an identity file's text (comments and blank lines allowed, as age-keygen writes it). */
export function parseIdentities(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (!AGE_IDENTITY.test(line)) {
      throw new ConfigurationError('Input decryption-identity must hold age identities (AGE-SECRET-KEY-1..., one per line, as age-keygen or `pgvector-backup keygen` print them)', { code: 'config-encryption-key' });
    }
    out.push(line);
  }
  if (!out.length) throw new ConfigurationError('Input decryption-identity holds no age identity (AGE-SECRET-KEY-1...)', { code: 'config-encryption-key' });
  return out;
}

/** Armored OpenPGP blocks in a text (several keys may be pasted one after another). */
export function splitArmored(text: string, kind: 'PUBLIC' | 'PRIVATE', input: string): string[] {
  const re = new RegExp(`-----BEGIN PGP ${kind} KEY BLOCK-----[\\s\\S]*?-----END PGP ${kind} KEY BLOCK-----`, 'g');
  const blocks = text.match(re) ?? [];
  if (!blocks.length) {
    const other = kind === 'PUBLIC' ? 'PRIVATE' : 'PUBLIC';
    if (text.includes(`BEGIN PGP ${other} KEY BLOCK`)) {
      throw new ConfigurationError(
        kind === 'PUBLIC'
          ? `Input ${input} holds a private key: use the public key (gpg --armor --export KEYID) and keep the private key in a secret for decryption-gpg-private-key`
          : `Input ${input} holds a public key: decryption needs the private key (gpg --armor --export-secret-keys KEYID), stored as a secret`,
        { code: 'config-encryption-key' },
      );
    }
    throw new ConfigurationError(`Input ${input} must be an armored OpenPGP ${kind.toLowerCase()} key (-----BEGIN PGP ${kind} KEY BLOCK-----); export it with gpg --armor --export${kind === 'PRIVATE' ? '-secret-keys' : ''} KEYID`, { code: 'config-encryption-key' });
  }
  return blocks;
}

/** A new age identity and its recipient (for `keygen` and for a run's own verification key). */
export async function newAgeKeyPair(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateIdentity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/**
 * The settings a backup run encrypts with when it holds no key to decrypt its own archive: an extra recipient
 * whose private key exists only in this process's memory, so that the run can verify and test-restore what it
 * wrote. The key is never stored; later runs decrypt with the user's own keys. Returns the identity to decrypt with.
 */
export async function withRunKey(s: EncryptionSettings): Promise<{ settings: EncryptionSettings; decryption: DecryptionSettings }> {
  if (s.method === 'age') {
    const kp = await newAgeKeyPair();
    return { settings: { ...s, recipients: [...s.recipients, kp.recipient] }, decryption: { ...NO_DECRYPTION, identities: [kp.identity] } };
  }
  const { privateKey, publicKey } = await openpgp.generateKey({ type: 'curve25519', userIDs: [{ name: 'pgvector-backup run key' }], format: 'armored' });
  return { settings: { ...s, gpgPublicKeys: [...s.gpgPublicKeys, publicKey] }, decryption: { ...NO_DECRYPTION, gpgPrivateKeys: [privateKey] } };
}

/** Whether these settings can decrypt an archive encrypted with `method`. */
export function canDecrypt(d: DecryptionSettings, method: EncryptionMethod): boolean {
  return method === 'age' ? d.identities.length > 0 || d.passphrase !== undefined : d.gpgPrivateKeys.length > 0;
}

/** The OpenPGP fingerprints of the public keys (recorded in the manifest). */
export async function describeRecipients(s: EncryptionSettings): Promise<string[]> {
  if (s.method === 'age') return s.recipients;
  const keys = await readPublicKeys(s.gpgPublicKeys);
  return keys.map((k) => k.getFingerprint().toUpperCase());
}

async function readPublicKeys(armored: string[]): Promise<openpgp.Key[]> {
  try {
    return await Promise.all(armored.map((k) => openpgp.readKey({ armoredKey: k })));
  } catch (err) {
    throw new ConfigurationError(`Input encryption-gpg-public-key cannot be read: ${(err as Error).message}; export it with gpg --armor --export KEYID`, { code: 'config-encryption-key' });
  }
}

async function readPrivateKeys(d: DecryptionSettings): Promise<openpgp.PrivateKey[]> {
  const keys: openpgp.PrivateKey[] = [];
  for (const armored of d.gpgPrivateKeys) {
    let key: openpgp.PrivateKey;
    try {
      key = await openpgp.readPrivateKey({ armoredKey: armored });
    } catch (err) {
      throw new ConfigurationError(`Input decryption-gpg-private-key cannot be read: ${(err as Error).message}; export it with gpg --armor --export-secret-keys KEYID`, { code: 'config-encryption-key' });
    }
    if (!key.isDecrypted()) {
      if (d.gpgPassphrase === undefined) throw new ConfigurationError('The OpenPGP private key is protected by a passphrase: set decryption-gpg-passphrase', { code: 'config-gpg-passphrase' });
      try {
        key = await openpgp.decryptKey({ privateKey: key, passphrase: d.gpgPassphrase });
      } catch {
        throw new ConfigurationError('decryption-gpg-passphrase does not unlock the OpenPGP private key', { code: 'config-gpg-passphrase' });
      }
    }
    keys.push(key);
  }
  return keys;
}

type WebBytes = WebReadableStream<Uint8Array>;

/**
 * A Duplex stage around a function from a web stream to a web stream (the crypto libraries' interface), with
 * Node's backpressure on both sides; any error of the function or of its output destroys the stage.
 */
function webStage(fn: (input: WebBytes) => Promise<WebBytes>, describe: (err: unknown) => Error): Duplex {
  const input = new PassThrough({ highWaterMark: 1 << 20 });
  const output = new PassThrough({ highWaterMark: 1 << 20 });
  const stage = Duplex.from({ writable: input, readable: output });
  const failed = (err: unknown): void => {
    // The stage first, with the described error: destroying its input first destroys the composed stage with a
    // bare "Premature close", and the cause (a wrong key, a damaged ciphertext) would be lost.
    stage.destroy(describe(err));
    input.destroy();
  };
  fn(Readable.toWeb(input) as unknown as WebBytes).then((out) => {
    const src = Readable.fromWeb(out as Parameters<typeof Readable.fromWeb>[0]);
    // pipe() (not pipeline) so that the stage fails with the described error, not the library's raw one.
    src.once('error', failed);
    src.pipe(output);
  }, failed);
  return stage;
}

/** A pipeline stage that encrypts what passes through it. */
export function encryptor(s: EncryptionSettings): Duplex {
  return webStage(
    async (input) => {
      if (s.method === 'age') {
        const e = new Encrypter();
        if (s.passphrase !== undefined) e.setPassphrase(s.passphrase);
        else for (const r of s.recipients) e.addRecipient(r);
        return (await e.encrypt(input as unknown as ReadableStream<Uint8Array>)) as unknown as WebBytes;
      }
      const message = await openpgp.createMessage({ binary: input as unknown as ReadableStream<Uint8Array> });
      const encrypted = await openpgp.encrypt({ message, encryptionKeys: await readPublicKeys(s.gpgPublicKeys), format: 'binary' });
      return encrypted as unknown as WebBytes;
    },
    (err) => (err instanceof ConfigurationError || err instanceof BackupError ? err : new BackupError(`Encryption failed: ${(err as Error).message}`, 'Check encryption-recipients / encryption-gpg-public-key', { code: 'crypto-encrypt-failed', cause: err })),
  );
}

/**
 * A pipeline stage that decrypts and authenticates. The output is trustworthy only once the stage finished
 * without error (a tampered chunk fails when it is reached), so callers write it to a private temporary file and
 * use that only after the whole stream succeeded.
 */
export function decryptor(method: EncryptionMethod, d: DecryptionSettings, what: string): Duplex {
  if (!canDecrypt(d, method)) {
    throw new ConfigurationError(
      method === 'age'
        ? `${what} is encrypted with age: set decryption-identity (the AGE-SECRET-KEY-1... line from keygen) or encryption-passphrase`
        : `${what} is encrypted with OpenPGP: set decryption-gpg-private-key (and decryption-gpg-passphrase if the key has one)`,
      { code: 'config-decryption-key' },
    );
  }
  return webStage(
    async (input) => {
      if (method === 'age') {
        const dec = new Decrypter();
        for (const i of d.identities) dec.addIdentity(i);
        if (d.passphrase !== undefined) dec.addPassphrase(d.passphrase);
        return (await dec.decrypt(input as unknown as ReadableStream<Uint8Array>)) as unknown as WebBytes;
      }
      const message = await openpgp.readMessage({ binaryMessage: input as unknown as ReadableStream<Uint8Array> });
      const result = await openpgp.decrypt({
        message,
        decryptionKeys: await readPrivateKeys(d),
        format: 'binary',
        // Stream in constant memory; integrity is checked at the end and fails the stage (callers only use
        // the output after the stage finished).
        config: { allowUnauthenticatedStream: true },
      });
      return result.data as unknown as WebBytes;
    },
    (err) => decryptionError(err, method, what),
  );
}

function decryptionError(err: unknown, method: EncryptionMethod, what: string): Error {
  if (err instanceof ConfigurationError || err instanceof BackupError) return err;
  const msg = (err as Error)?.message ?? String(err);
  if (/no identity matched|incorrect passphrase|Session key decryption failed|No decryption key packets found|Error decrypting message: Session key/i.test(msg)) {
    return new BackupError(
      `Cannot decrypt ${what}: the key does not match (${msg})`,
      method === 'age' ? 'Use the decryption-identity whose recipient the backup was encrypted to (the manifest lists the recipients), or the right encryption-passphrase' : 'Use the OpenPGP private key whose fingerprint the manifest lists',
      { code: 'crypto-wrong-key', cause: err },
    );
  }
  // The key matched (its stanza unwrapped the file key), yet the ciphertext fails authentication: damage.
  return new BackupError(`Decrypting ${what} failed: ${msg}`, 'The encrypted archive was modified or damaged; nothing was restored from it. Use another backup', { code: 'crypto-damaged', cause: err, damage: true });
}
