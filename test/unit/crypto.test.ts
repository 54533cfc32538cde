// Encryption stages against the standard tools: Debian's age (1.1.x) and GnuPG (2.2.x) read what we write and we
// read what they write; tampering and wrong keys fail; memory stays flat for a large stream.
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  decryptor,
  encryptor,
  NO_DECRYPTION,
  parseIdentities,
  parseRecipients,
  splitArmored,
  withRunKey,
  type DecryptionSettings,
  type EncryptionSettings,
} from '../../src/archive/crypto.js';
import { keygen } from '../../src/keygen.js';
import { BackupError, ConfigurationError } from '../../src/errors.js';

const hasAge = spawnSync('age', ['--version']).status === 0;
const hasGpg = spawnSync('gpg', ['--version']).status === 0;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-crypto-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic pseudo-random bytes (incompressible, so chunk boundaries are exercised). */
function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function through(stage: NodeJS.ReadWriteStream, input: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([input.subarray(0, 70_000), input.subarray(70_000)]), stage, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

const age = (s: Partial<EncryptionSettings>): EncryptionSettings => ({ method: 'age', recipients: [], gpgPublicKeys: [], ...s });
const dec = (d: Partial<DecryptionSettings>): DecryptionSettings => ({ ...NO_DECRYPTION, ...d });

describe('age', () => {
  const data = bytes(300_000);

  test('round trip to a recipient; several recipients; the other identity fails with the fix', async () => {
    const a = await keygen();
    const b = await keygen();
    const idA = parseIdentities(a.file);
    const idB = parseIdentities(b.file);
    const enc = await through(encryptor(age({ recipients: [a.recipient] })), data);
    expect(enc.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(enc.includes(data.subarray(1000, 1064))).toBe(false);
    expect((await through(decryptor('age', dec({ identities: idA }), 'x'), enc)).equals(data)).toBe(true);
    const wrong = through(decryptor('age', dec({ identities: idB }), 'backup x'), enc);
    await expect(wrong).rejects.toBeInstanceOf(BackupError);
    await expect(wrong).rejects.toThrow(/Cannot decrypt backup x: the key does not match/);
    const both = await through(encryptor(age({ recipients: [a.recipient, b.recipient] })), data);
    expect((await through(decryptor('age', dec({ identities: idB }), 'x'), both)).equals(data)).toBe(true);
  });

  test('a flipped byte in the payload fails authentication', async () => {
    const a = await keygen();
    const enc = await through(encryptor(age({ recipients: [a.recipient] })), data);
    enc[enc.length - 5000] = enc[enc.length - 5000]! ^ 1;
    await expect(through(decryptor('age', dec({ identities: parseIdentities(a.file) }), 'backup x'), enc)).rejects.toThrow(/Decrypting backup x failed/);
    const cut = enc.subarray(0, enc.length - 70_000);
    await expect(through(decryptor('age', dec({ identities: parseIdentities(a.file) }), 'backup x'), cut)).rejects.toThrow(BackupError);
  });

  test('no key at all: a configuration error naming the inputs', () => {
    expect(() => decryptor('age', NO_DECRYPTION, 'backup x')).toThrow(/set decryption-identity/);
    expect(() => decryptor('gpg', NO_DECRYPTION, 'backup x')).toThrow(/decryption-gpg-private-key/);
  });

  test('a run key decrypts what the run wrote; the user recipient is kept', async () => {
    const a = await keygen();
    const run = await withRunKey(age({ recipients: [a.recipient] }));
    expect(run.settings.recipients[0]).toBe(a.recipient);
    expect(run.settings.recipients).toHaveLength(2);
    const enc = await through(encryptor(run.settings), data);
    expect((await through(decryptor('age', run.decryption, 'x'), enc)).equals(data)).toBe(true);
    expect((await through(decryptor('age', dec({ identities: parseIdentities(a.file) }), 'x'), enc)).equals(data)).toBe(true);
  });

  test.skipIf(!hasAge)('Debian age decrypts ours, and we decrypt age\'s (recipients)', async () => {
    const k = await keygen();
    const keyFile = path.join(dir, 'key.txt');
    writeFileSync(keyFile, k.file, { mode: 0o600 });
    const enc = await through(encryptor(age({ recipients: [k.recipient] })), data);
    writeFileSync(path.join(dir, 'ours.age'), enc);
    const out = execFileSync('age', ['-d', '-i', keyFile, path.join(dir, 'ours.age')], { maxBuffer: 1 << 24 });
    expect(out.equals(data)).toBe(true);
    // age-keygen's identity and age's encryption, decrypted by us.
    execFileSync('age-keygen', ['-o', path.join(dir, 'theirs.txt')], { stdio: 'ignore' });
    const theirs = readFileSync(path.join(dir, 'theirs.txt'), 'utf8');
    const recipient = /public key: (age1\S+)/.exec(theirs)![1]!;
    writeFileSync(path.join(dir, 'plain.bin'), data);
    execFileSync('age', ['-r', recipient, '-o', path.join(dir, 'theirs.age'), path.join(dir, 'plain.bin')]);
    const back = await through(decryptor('age', dec({ identities: parseIdentities(theirs) }), 'x'), readFileSync(path.join(dir, 'theirs.age')));
    expect(back.equals(data)).toBe(true);
  });

  test.skipIf(!hasAge || spawnSync('script', ['--version']).status !== 0)('passphrase: age -d reads ours (through a pseudo-terminal), and we read age -p', async () => {
    const pass = 'correct horse battery staple';
    const enc = await through(encryptor(age({ passphrase: pass })), data.subarray(0, 50_000));
    const encFile = path.join(dir, 'pass.age');
    const outFile = path.join(dir, 'pass.out');
    writeFileSync(encFile, enc);
    const r = spawnSync('script', ['-qec', `age -d -o ${outFile} ${encFile}`, '/dev/null'], { input: pass + '\n', timeout: 200_000 });
    expect(r.status).toBe(0);
    expect(readFileSync(outFile).equals(data.subarray(0, 50_000))).toBe(true);
    writeFileSync(path.join(dir, 'p.bin'), data.subarray(0, 50_000));
    const theirs = path.join(dir, 'theirs-pass.age');
    const e = spawnSync('script', ['-qec', `age -p -o ${theirs} ${path.join(dir, 'p.bin')}`, '/dev/null'], { input: `${pass}\n${pass}\n`, timeout: 200_000 });
    expect(e.status).toBe(0);
    const back = await through(decryptor('age', dec({ passphrase: pass }), 'x'), readFileSync(theirs));
    expect(back.equals(data.subarray(0, 50_000))).toBe(true);
    await expect(through(decryptor('age', dec({ passphrase: 'wrong' }), 'backup x'), readFileSync(theirs))).rejects.toThrow(/key does not match|Decrypting/);
  }, 240_000);

  test('a 64 MiB stream keeps memory flat', async () => {
    const k = await keygen();
    const chunk = bytes(1 << 20, 7);
    let n = 0;
    const src = new Readable({ read() { this.push(n++ < 64 ? chunk : null); } });
    const before = process.memoryUsage().rss;
    let peak = before;
    let total = 0;
    await pipeline(src, encryptor(age({ recipients: [k.recipient] })), decryptor('age', dec({ identities: parseIdentities(k.file) }), 'x'), new Writable({
      write(c: Buffer, _e, cb) {
        total += c.length;
        peak = Math.max(peak, process.memoryUsage().rss);
        cb();
      },
    }));
    expect(total).toBe(64 << 20);
    expect(peak - before).toBeLessThan(48 << 20);
  }, 240_000);
});

describe.skipIf(!hasGpg)('OpenPGP with GnuPG', () => {
  let home: string;
  let pub: string;
  let priv: string;
  const data = bytes(200_000, 3);
  beforeAll(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'pgvb-gnupg-'));
    const env = { ...process.env, GNUPGHOME: home };
    execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', 'Backup Test <backup@example.invalid>', 'future-default', 'default', 'never'], { env, stdio: 'ignore' });
    pub = execFileSync('gpg', ['--batch', '--armor', '--export', 'backup@example.invalid'], { env }).toString();
    priv = execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--armor', '--export-secret-keys', 'backup@example.invalid'], { env }).toString();
  }, 240_000);
  afterAll(() => {
    spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: home } });
    rmSync(home, { recursive: true, force: true });
  });

  test('gpg --decrypt reads ours; we read gpg --encrypt --recipient; tampering fails', async () => {
    const env = { ...process.env, GNUPGHOME: home };
    const enc = await through(encryptor({ method: 'gpg', recipients: [], gpgPublicKeys: splitArmored(pub, 'PUBLIC', 'x') }), data);
    writeFileSync(path.join(dir, 'ours.gpg'), enc);
    const out = execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--decrypt', path.join(dir, 'ours.gpg')], { env, maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'ignore'] });
    expect(out.equals(data)).toBe(true);

    writeFileSync(path.join(dir, 'g.bin'), data);
    execFileSync('gpg', ['--batch', '--trust-model', 'always', '--encrypt', '--recipient', 'backup@example.invalid', '-o', path.join(dir, 'theirs.gpg'), path.join(dir, 'g.bin')], { env, stdio: 'ignore' });
    const d = dec({ gpgPrivateKeys: splitArmored(priv, 'PRIVATE', 'x') });
    const theirs = readFileSync(path.join(dir, 'theirs.gpg'));
    expect((await through(decryptor('gpg', d, 'x'), theirs)).equals(data)).toBe(true);
    const bad = Buffer.from(theirs);
    bad[bad.length - 100] = bad[bad.length - 100]! ^ 1;
    await expect(through(decryptor('gpg', d, 'backup x'), bad)).rejects.toThrow(BackupError);
  }, 240_000);

  test('key inputs: a private key where a public one belongs is refused, and the reverse', () => {
    expect(() => splitArmored(priv, 'PUBLIC', 'encryption-gpg-public-key')).toThrow(/holds a private key/);
    expect(() => splitArmored(pub, 'PRIVATE', 'decryption-gpg-private-key')).toThrow(/holds a public key/);
    expect(() => splitArmored('hello', 'PUBLIC', 'encryption-gpg-public-key')).toThrow(ConfigurationError);
  });
});

describe('key parsing', () => {
  test('recipients: separators, comments, duplicates; a secret key or junk is refused', async () => {
    const a = (await keygen()).recipient;
    const b = (await keygen()).recipient;
    expect(parseRecipients(`${a}, ${b}\n# team\n${a}`)).toEqual([a, b]);
    expect(() => parseRecipients('AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ')).toThrow(/holds a private key/);
    expect(() => parseRecipients('ssh-ed25519 AAAA')).toThrow(/is not an age recipient/);
  });

  test('identities: age-keygen file format; nothing usable is refused', async () => {
    const k = await keygen();
    expect(parseIdentities(k.file)).toHaveLength(1);
    expect(() => parseIdentities('# only a comment\n')).toThrow(/holds no age identity/);
    expect(() => parseIdentities('age1abc')).toThrow(ConfigurationError);
  });
});

test('keygen prints the identity file age reads and the guidance', async () => {
  const k = await keygen(new Date('2026-01-02T03:04:05Z'));
  expect(k.file).toMatch(/^# created: 2026-01-02T03:04:05Z\n# public key: age1[a-z0-9]+\nAGE-SECRET-KEY-1[A-Z0-9]+\n$/);
  expect(k.guidance).toContain(`BACKUP_AGE_RECIPIENT --body ${k.recipient}`);
  expect(k.guidance).not.toContain('AGE-SECRET-KEY-1' + k.file.split('AGE-SECRET-KEY-1')[1]!.trim());
});

// (createReadStream/createWriteStream are used by the archive-level tests in the integration suite.)
void createReadStream;
void createWriteStream;
