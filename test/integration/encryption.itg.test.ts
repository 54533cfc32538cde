// Encryption end to end through the bundled action: age and OpenPGP archives in every format, verified and
// test-restored by the run that wrote them without the user's private key; decrypted by later runs with it and by
// the standard tools by hand; wrong keys and tampered archives fail before any restore step and leave no
// plaintext; artifact and cache refuse plaintext; a canary value never reaches the uploaded bytes when encrypted.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Manifest } from '../../src/archive/manifest.js';
import { keygen } from '../../src/keygen.js';
import { runAction, runCli } from '../helpers/action.js';
import { createDatabase, dropDatabase, sql, tableCounts, testPassword, urlFor, withClient } from '../helpers/pg.js';

let db: { name: string; url: string };
let work: string;
let key: { file: string; recipient: string };
let keyFile: string;
const hasGpg = spawnSync('gpg', ['--version']).status === 0;
const hasAge = spawnSync('age', ['--version']).status === 0;

beforeAll(async () => {
  db = await createDatabase('enc_db', { documents: 150, dimensions: 16 });
  work = mkdtempSync(path.join(os.tmpdir(), 'pgvb-enc-'));
  key = await keygen();
  keyFile = path.join(work, 'key.txt');
  writeFileSync(keyFile, key.file, { mode: 0o600 });
});
afterAll(async () => {
  await dropDatabase(db.name);
  rmSync(work, { recursive: true, force: true });
});

function freshDir(name: string): string {
  const d = path.join(work, name);
  mkdirSync(d, { recursive: true });
  return d;
}

function manifestOf(r: { outputs: Record<string, string> }): Manifest {
  return JSON.parse(readFileSync(r.outputs['manifest-path']!, 'utf8')) as Manifest;
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** A private TMPDIR, to prove the action leaves no plaintext (nor anything else) behind. */
function privateTmp(): string {
  return mkdtempSync(path.join(work, 'tmp-'));
}

describe('age', () => {
  let dir: string;
  let manifest: Manifest;
  let archive: string;

  test('a custom-format backup is encrypted to the recipient and verified in full by the run, without the private key', async () => {
    dir = freshDir('age-custom');
    const tmp = privateTmp();
    // gzip: pg_dump compresses the custom archive itself, so the decrypted plaintext goes to pg_restore as it is (the default zstd is a .dump.zst stream with pg_dump 15).
    const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, verify: 'full', compression: 'gzip', 'encryption-recipients': key.recipient }, { env: { TMPDIR: tmp } });
    expect(r.code, r.stdout).toBe(0);
    expect(r.outputs.verified).toBe('true');
    archive = r.outputs['backup-path']!;
    manifest = manifestOf(r);
    expect(archive.endsWith('.dump.age')).toBe(true);
    expect(readFileSync(archive).subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(manifest.encryption).toMatchObject({ method: 'age', recipients: [key.recipient], passphrase: false });
    expect(manifest.archive.sha256).toBe(sha256(archive));
    expect(manifest.encryption!.plaintextSha256).not.toBe(manifest.archive.sha256);
    expect(manifest.verification).toMatchObject({ level: 'full', ok: true });
    expect(r.summary).toMatch(/Encryption \| age, to/);
    expect(readdirSync(tmp)).toEqual([]);
  });

  test.skipIf(!hasAge)('age -d -i key.txt | pg_restore restores it by hand (the README recipe)', async () => {
    const plain = execFileSync('age', ['-d', '-i', keyFile, archive], { maxBuffer: 1 << 28 });
    expect(createHash('sha256').update(plain).digest('hex')).toBe(manifest.encryption!.plaintextSha256);
    const target = await createDatabase('enc_by_hand');
    try {
      const u = new URL(target.url.replace(/^postgresql:/, 'http:'));
      const r = spawnSync('pg_restore', ['--no-owner', '--exit-on-error', `--dbname=${target.name}`], {
        input: plain,
        env: { ...process.env, PGHOST: u.hostname, PGPORT: u.port, PGUSER: decodeURIComponent(u.username), PGPASSWORD: testPassword() },
      });
      expect(r.status, r.stderr.toString()).toBe(0);
      expect(await tableCounts(target.url)).toEqual(await tableCounts(db.url));
    } finally {
      await dropDatabase(target.name);
    }
  });

  test('a later run needs the identity: without it a clear error; with it a test restore; the wrong one fails and leaves no plaintext', async () => {
    const without = await runAction({ mode: 'test-restore', backup: archive.replace(/\.dump\.age$/, '.json'), 'backup-dir': dir });
    expect(without.code).not.toBe(0);
    expect(without.stdout).toMatch(/encrypted with age: set decryption-identity/);

    const tmp = privateTmp();
    const ok = await runAction({ mode: 'test-restore', backup: manifest.name, 'backup-dir': dir, 'decryption-identity': key.file }, { env: { TMPDIR: tmp }, watchArgv: true });
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.outputs.mismatches).toBe('0');
    // Decrypted once: the quick verify's plaintext serves the restore, and is gone afterwards.
    expect(ok.stdout).toMatch(/decrypted \(age\) and authenticated; plaintext sha256 matches the manifest/);
    expect(ok.stdout).toMatch(/using \w+ as decrypted \(age\) and authenticated for the verification/);
    expect(ok.stdout).not.toMatch(/decrypting \w+ \(age\) into a private temporary directory/);
    expect(readdirSync(tmp)).toEqual([]);
    // The identity is a secret: not in the visible log, the outputs, the summary, nor any child's argv.
    const secretLine = key.file.trim().split('\n').pop()!;
    expect(ok.visible).not.toContain(secretLine);
    expect(ok.summary).not.toContain(secretLine);
    expect(JSON.stringify(ok.outputs)).not.toContain(secretLine);
    for (const argv of ok.argvSeen) expect(argv).not.toContain(secretLine);
    expect(readFileSync(path.join(dir, `${manifest.name}.json`), 'utf8')).not.toContain(secretLine);

    const other = await keygen();
    const tmp2 = privateTmp();
    const wrong = await runAction({ mode: 'test-restore', backup: manifest.name, 'backup-dir': dir, 'decryption-identity': other.file }, { env: { TMPDIR: tmp2 } });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout).toMatch(/Cannot decrypt backup .*: the key does not match/);
    expect(wrong.stdout).not.toMatch(/Target: /);
    expect(readdirSync(tmp2)).toEqual([]);
  });

  test('a tampered archive (with a manifest rewritten to match) fails authentication; restore changes nothing and leaves no plaintext', async () => {
    const tdir = freshDir('age-tampered');
    for (const f of readdirSync(dir)) if (f.startsWith(manifest.name)) writeFileSync(path.join(tdir, f), readFileSync(path.join(dir, f)));
    const copy = path.join(tdir, path.basename(archive));
    const bytes = readFileSync(copy);
    bytes[Math.floor(bytes.length / 2)] = bytes[Math.floor(bytes.length / 2)]! ^ 0x20;
    writeFileSync(copy, bytes);
    const m = JSON.parse(readFileSync(path.join(tdir, `${manifest.name}.json`), 'utf8')) as Manifest;
    m.archive.sha256 = sha256(copy);
    writeFileSync(path.join(tdir, `${manifest.name}.json`), JSON.stringify(m));

    const tmp = privateTmp();
    const v = await runAction({ mode: 'verify', backup: manifest.name, 'backup-dir': tdir, 'decryption-identity': key.file }, { env: { TMPDIR: tmp } });
    expect(v.code).not.toBe(0);
    expect(v.stdout).toMatch(/Decrypting backup .* failed/);
    expect(v.outputs.verified).toBe('false');
    expect(readdirSync(tmp)).toEqual([]);

    const target = await createDatabase('enc_target', { documents: 5, dimensions: 16 });
    try {
      const before = await tableCounts(target.url);
      // Only the target's own names: other test files create and drop databases on the same server meanwhile.
      const ours = `SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1`;
      const dbsBefore = await sql<{ datname: string }>(db.url, ours, [`${target.name}%`]);
      expect(dbsBefore).toEqual([{ datname: target.name }]);
      const tmp2 = privateTmp();
      const r = await runAction(
        { mode: 'restore', backup: manifest.name, 'backup-dir': tdir, 'target-database-url': target.url, confirm: target.name, 'decryption-identity': key.file },
        { env: { TMPDIR: tmp2 } },
      );
      expect(r.code).not.toBe(0);
      expect(r.stdout).toMatch(/Decrypting backup .* failed/);
      expect(await tableCounts(target.url)).toEqual(before);
      expect(await sql<{ datname: string }>(db.url, ours, [`${target.name}%`])).toEqual(dbsBefore);
      expect(readdirSync(tmp2)).toEqual([]);
    } finally {
      await dropDatabase(target.name);
    }
  });

  test('restore (swap) of the encrypted backup with the identity', async () => {
    const target = await createDatabase('enc_restore', { documents: 3, dimensions: 16 });
    try {
      const tmp = privateTmp();
      const r = await runAction({ mode: 'restore', backup: manifest.name, 'backup-dir': dir, 'target-database-url': target.url, confirm: target.name, 'decryption-identity': key.file }, { env: { TMPDIR: tmp } });
      expect(r.code, r.stdout).toBe(0);
      expect(await tableCounts(target.url)).toEqual(await tableCounts(db.url));
      expect(r.stdout).toMatch(/using \w+ as decrypted \(age\) and authenticated for the verification/);
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      await withClient(urlFor('postgres'), async (c) => {
        const side = await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${target.name}__%`]);
        for (const s of side.rows) await c.query(`DROP DATABASE ${c.escapeIdentifier(s.datname)} WITH (FORCE)`);
      });
      await dropDatabase(target.name);
    }
  });

  // A passphrase costs one scrypt per encrypted file (about a second): the directory format is tested with a
  // recipient, the passphrase with a single-file archive.
  test.each([
    { format: 'plain', compression: 'zstd', suffix: '.sql.zst.age', passphrase: true },
    { format: 'directory', compression: 'gzip', suffix: '.dir', passphrase: false },
  ])('$format/$compression (passphrase: $passphrase): verified in full, and a later run restores it with the same key', async ({ format, compression, suffix, passphrase }) => {
    const d = freshDir(`age-${format}`);
    const pass = 'a long passphrase for tests';
    const enc: Record<string, string> = passphrase ? { 'encryption-passphrase': pass } : { 'encryption-recipients': key.recipient };
    const dec: Record<string, string> = passphrase ? { 'encryption-passphrase': pass } : { 'decryption-identity': key.file };
    const tmp = privateTmp();
    const r = await runAction({ 'database-url': db.url, 'backup-dir': d, verify: 'full', format, compression, ...enc }, { env: { TMPDIR: tmp } });
    expect(r.code, r.stdout).toBe(0);
    // The run's verify: full decrypts once for the quick checks and the test restore, and leaves no plaintext.
    expect(r.stdout).toMatch(/using \w+ as decrypted \(age\) and authenticated for the verification/);
    expect(readdirSync(tmp)).toEqual([]);
    const m = manifestOf(r);
    expect(r.outputs['backup-path']!.endsWith(suffix)).toBe(true);
    expect(m.encryption).toMatchObject(passphrase ? { method: 'age', passphrase: true, recipients: [] } : { method: 'age', passphrase: false, recipients: [key.recipient] });
    if (format === 'directory') {
      expect(m.archive.files!.every((f) => f.path.endsWith('.age'))).toBe(true);
      expect(readFileSync(path.join(r.outputs['backup-path']!, 'toc.dat.age')).subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    }
    expect(r.visible).not.toContain(pass);
    expect(readFileSync(r.outputs['manifest-path']!, 'utf8')).not.toContain(pass);
    const t = await runAction({ mode: 'test-restore', backup: m.name, 'backup-dir': d, ...dec });
    expect(t.code, t.stdout).toBe(0);
    expect(t.outputs.mismatches).toBe('0');
  });
});

describe.skipIf(!hasGpg)('OpenPGP', () => {
  let home: string;
  beforeAll(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'pgvb-gpg-'));
    execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', 'Ops <ops@example.invalid>', 'future-default', 'default', 'never'], { env: { ...process.env, GNUPGHOME: home }, stdio: 'ignore' });
  }, 60_000);
  afterAll(() => {
    spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: home } });
    rmSync(home, { recursive: true, force: true });
  });

  test('encrypted to a gpg public key, verified in full by the run; gpg --decrypt | pg_restore --list reads it; a later run restores with the private key', async () => {
    const env = { ...process.env, GNUPGHOME: home };
    const pub = execFileSync('gpg', ['--batch', '--armor', '--export', 'ops@example.invalid'], { env }).toString();
    const priv = execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--armor', '--export-secret-keys', 'ops@example.invalid'], { env }).toString();
    const fpr = /fpr:+([0-9A-F]{40}):/.exec(execFileSync('gpg', ['--batch', '--with-colons', '--fingerprint', 'ops@example.invalid'], { env }).toString())![1]!;
    const d = freshDir('gpg');
    const r = await runAction({ 'database-url': db.url, 'backup-dir': d, verify: 'full', compression: 'gzip', 'encryption-gpg-public-key': pub });
    expect(r.code, r.stdout).toBe(0);
    const m = manifestOf(r);
    expect(r.outputs['backup-path']!.endsWith('.dump.gpg')).toBe(true);
    expect(m.encryption).toMatchObject({ method: 'gpg', recipients: [fpr] });
    const plain = execFileSync('gpg', ['--batch', '--quiet', '--decrypt', r.outputs['backup-path']!], { env, maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
    const list = spawnSync('pg_restore', ['--list'], { input: plain });
    expect(list.status).toBe(0);
    expect(list.stdout.toString()).toMatch(/TABLE DATA public documents/);
    const t = await runAction({ mode: 'test-restore', backup: m.name, 'backup-dir': d, 'decryption-gpg-private-key': priv });
    expect(t.code, t.stdout).toBe(0);
    expect(t.outputs.mismatches).toBe('0');
  }, 120_000);
});

describe('destinations that anyone with read access can download', () => {
  test.each(['artifact', 'cache', 'local,cache'])('%s without encryption is refused before anything is dumped', async (destination) => {
    const d = freshDir(`refused-${destination.replace(',', '-')}`);
    const r = await runAction({ 'database-url': db.url, 'backup-dir': d, destination });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/Refusing to store an unencrypted dump in (artifact|cache)/);
    expect(r.stdout).toMatch(/keygen/);
    expect(r.stdout).toMatch(/allow-unencrypted: true/);
    expect(r.stdout).not.toMatch(/Find pg_dump|Snapshot /);
    expect(readdirSync(d)).toEqual([]);
  });

  test('pull_request_target with a database password is refused, naming the reason', async () => {
    const d = freshDir('prt');
    const r = await runAction({ 'database-url': db.url, 'backup-dir': d }, { env: { GITHUB_EVENT_NAME: 'pull_request_target' } });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/Refusing to run with secrets on a pull_request_target event/);
    expect(readdirSync(d)).toEqual([]);
  });

  test('a backup name with .. or a newline is refused before connecting', async () => {
    for (const backup of ['..', 'x..y', 'a\nb']) {
      const r = await runAction({ mode: 'test-restore', backup, 'database-url': 'postgresql://u:p@127.0.0.1:1/db', destination: 's3://bucket/prefix' });
      expect(r.code).not.toBe(0);
      expect(r.stdout).toMatch(/not a valid backup name|must not contain newlines/);
      expect(r.stdout).not.toMatch(/connect|ECONNREFUSED/i);
    }
  });
});

describe('keygen and the CLI', () => {
  test.skipIf(!hasAge)('keygen --output writes a 0600 identity file that age-keygen -y reads, never overwrites, and the CLI decrypts with the file path', async () => {
    const cwd = freshDir('cli');
    const r = await runCli(['keygen', '--output', 'key.txt'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    const file = path.join(cwd, 'key.txt');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const recipient = execFileSync('age-keygen', ['-y', file]).toString().trim();
    expect(r.stderr).toContain(recipient);
    expect(r.stderr).toContain('gh secret set BACKUP_AGE_IDENTITY');
    expect(r.stdout).toBe('');
    const again = await runCli(['keygen', '--output', 'key.txt'], { cwd });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists; keygen never overwrites/);

    const b = await runCli(['backup', '--database-url', db.url, '--backup-dir', 'b', '--verify', 'quick', '--encryption-recipients', recipient], { cwd });
    expect(b.code, b.stderr).toBe(0);
    expect(readdirSync(path.join(cwd, 'b')).some((f) => /\.dump(\.zst)?\.age$/.test(f))).toBe(true);
    // The identity by path (like age -i), from the environment so it is not in argv either.
    const t = await runCli(['test-restore', '--backup-dir', 'b', '--database-url', db.url], { cwd, env: { PGVB_DECRYPTION_IDENTITY: file } });
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/mismatches=0/);
  }, 180_000);
});

