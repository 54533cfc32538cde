// The sftp:// destination against a real OpenSSH server (Debian's sshd on a loopback port, keys made by
// ssh-keygen), through the bundled action as the runner runs it: uploads under .partial names renamed into
// place with the manifest last, lookups that download and check, list, retention, directory format, host key
// and login failures with their fixes, a connection cut half way through an upload, agent login, the CLI's
// ~/.ssh/known_hosts, and the key and passphrase never leaking.
import { createHash } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, watch, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Manifest } from '../../src/archive/manifest.js';
import { runAction, runCli, type RunResult } from '../helpers/action.js';
import { createDatabase, dropDatabase } from '../helpers/pg.js';
import { startSshd, type SshServer } from '../helpers/sshd.js';

let sshd: SshServer;
let db: { name: string; url: string };
/** The server's file system is this machine's: what the tests look at directly. */
let root: string;

beforeAll(async () => {
  sshd = await startSshd();
  root = mkdtempSync(path.join(os.tmpdir(), 'pgvb-sftp-remote-'));
  // About 12 MB uncompressed: an upload that takes many round trips.
  db = await createDatabase('sftp_db', async (c) => {
    await c.query(`CREATE EXTENSION vector; CREATE TABLE items (id bigserial PRIMARY KEY, e vector(64))`);
    await c.query(`INSERT INTO items (e) SELECT (SELECT array_agg(random()::real) FROM generate_series(1, 64) WHERE g > 0)::vector FROM generate_series(1, 20000) g`);
  });
});
afterAll(async () => {
  await sshd?.stop();
  if (db) await dropDatabase(db.name);
});

const tmp = (tag: string): string => mkdtempSync(path.join(os.tmpdir(), `pgvb-sftp-${tag}-`));
const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

function run(inputs: Record<string, string>, env: Record<string, string> = {}, watchArgv = false): Promise<RunResult> {
  // (gzip: archive names end in .dump whatever the default compression is.)
  return runAction({ 'database-url': db.url, 'ssh-private-key': sshd.client.private, 'known-hosts': sshd.knownHosts(), verify: 'none', compression: 'gzip', ...inputs }, { env, watchArgv });
}

/** The remote directory's entries (sorted), or undefined when it does not exist. */
function remote(dir: string): string[] | undefined {
  return existsSync(dir) ? readdirSync(dir).sort() : undefined;
}

describe('upload', () => {
  test('backup to local and sftp: archive and manifest on the server, each through a .partial name, the manifest last', async () => {
    const dir = path.join(root, 'nightly', 'backups');
    mkdirSync(dir, { recursive: true });
    // The kernel's record (inotify) of names appearing in the server's directory, in order.
    const seen: string[] = [];
    const watcher = watch(dir, (event, file) => {
      if (event === 'rename' && file && seen.at(-1) !== file) seen.push(file);
    });
    const r = await run({ destination: `local,${sshd.url(dir)}`, 'backup-dir': tmp('a'), compression: 'none' });
    watcher.close();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const name = r.outputs['backup-name']!;
    expect(remote(dir)).toEqual([`${name}.dump`, `${name}.json`]);
    expect(seen).toEqual([`${name}.dump.partial`, `${name}.dump`, `${name}.json.partial`, `${name}.json`]);
    // Byte-identical to the local archive; the manifest is the backup's; both private.
    expect(statSync(r.outputs['backup-path']!).size).toBeGreaterThan(5 * 1024 * 1024);
    expect(sha256(path.join(dir, `${name}.dump`))).toBe(r.outputs.sha256);
    const m = JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')) as Manifest;
    expect([m.name, m.archive.sha256, m.archive.size]).toEqual([name, r.outputs.sha256, Number(r.outputs['size-bytes'])]);
    for (const f of remote(dir)!) expect(statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
    expect(r.stdout).toContain(`Stored at ${sshd.url(dir)}/${name}.dump`);
  });

  test('a connection cut half way through the upload: the run fails naming sftp, no manifest, the local copy kept; prune removes the leftover later', async () => {
    const dir = path.join(root, 'cut');
    const dest = sshd.url(dir, sshd.proxy.port);
    const known = sshd.knownHosts(sshd.proxy.port);
    const backupDir = tmp('cut');
    sshd.proxy.cutAfter(1024 * 1024);
    const cutsBefore = sshd.proxy.cuts();
    const r = await run({ destination: `local,${dest}`, 'backup-dir': backupDir, compression: 'none', 'known-hosts': known });
    sshd.proxy.cutAfter(undefined);
    expect(r.code).not.toBe(0);
    expect(sshd.proxy.cuts()).toBe(cutsBefore + 1);
    const name = r.outputs['backup-name']!;
    expect(r.stdout).toMatch(new RegExp(`::error::Upload to sftp://root@127\\.0\\.0\\.1:${sshd.proxy.port}/.* failed: SFTP failed uploading ${name} at sftp://.*: the connection to the server was lost`));
    expect(r.stdout).toContain(`::error::The backup ${name} could not be stored in ${dest}`);
    // Nothing under a final name on the server: only the .partial, which no listing shows.
    expect(remote(dir)).toEqual([`${name}.dump.partial`]);
    expect(statSync(path.join(dir, `${name}.dump.partial`)).size).toBeLessThan(statSync(r.outputs['backup-path']!).size);
    expect(existsSync(r.outputs['backup-path']!)).toBe(true);
    const list = await run({ mode: 'list', destination: dest, 'backup-dir': tmp('cutl'), 'known-hosts': known });
    expect(list.code, list.stdout).toBe(0);
    expect(list.summary).not.toContain(name);
    // A young leftover may be a running upload: kept. Once older than the grace period, prune removes it.
    const prune = { mode: 'prune', destination: dest, 'dry-run': 'false', 'backup-dir': tmp('cutp'), 'known-hosts': known };
    const young = await run(prune);
    expect(young.code, young.stdout).toBe(0);
    expect(remote(dir)).toEqual([`${name}.dump.partial`]);
    const old = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(path.join(dir, `${name}.dump.partial`), old, old);
    const aged = await run(prune);
    expect(aged.code, aged.stdout).toBe(0);
    expect(aged.stdout).toContain(`deleted leftover ${dest}/${name}.dump.partial (no manifest`);
    expect(remote(dir)).toEqual([]);
  });
});

describe('lookup, list and retention', () => {
  let dir: string;
  const names: string[] = [];

  beforeAll(async () => {
    dir = path.join(root, 'lookup');
    for (let i = 0; i < 2; i++) {
      const r = await run({ destination: sshd.url(dir), 'backup-dir': tmp('c') });
      expect(r.code, r.stdout).toBe(0);
      // Without local among the destinations, backup-dir was only the staging area.
      expect(r.outputs['backup-path']).toBe(`${sshd.url(dir)}/${r.outputs['backup-name']}.dump`);
      names.push(r.outputs['backup-name']!);
      await new Promise((res) => setTimeout(res, 1100));
    }
  });

  test('test-restore of latest downloads it into a fresh backup-dir, checks it and restores it', async () => {
    const backupDir = tmp('d');
    const r = await run({ mode: 'test-restore', destination: sshd.url(dir), 'backup-dir': backupDir });
    expect(r.code, r.stdout).toBe(0);
    expect(r.outputs['backup-name']).toBe(names[1]);
    expect(r.stdout).toContain(`Downloading ${names[1]} from ${sshd.url(dir)}/${names[1]}.dump`);
    expect(r.outputs.verified).toBe('true');
    // The download sits in backup-dir under its final names, private, byte-identical; nothing partial.
    expect(readdirSync(backupDir).sort()).toEqual([`${names[1]}.dump`, `${names[1]}.json`]);
    expect(sha256(path.join(backupDir, `${names[1]}.dump`))).toBe(sha256(path.join(dir, `${names[1]}.dump`)));
    expect(statSync(path.join(backupDir, `${names[1]}.dump`)).mode & 0o777).toBe(0o600);
  });

  test('verify of a named backup from sftp; a damaged copy on the server is caught by the download check', async () => {
    const ok = await run({ mode: 'verify', destination: sshd.url(dir), 'backup-dir': tmp('v'), backup: names[0]! });
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.outputs['backup-name']).toBe(names[0]);
    const damagedDir = path.join(root, 'damaged');
    const r0 = await run({ destination: sshd.url(damagedDir), 'backup-dir': tmp('v0') });
    expect(r0.code, r0.stdout).toBe(0);
    const file = path.join(damagedDir, `${r0.outputs['backup-name']}.dump`);
    const bytes = readFileSync(file);
    bytes[100]! ^= 0xff;
    writeFileSync(file, bytes);
    const into = tmp('v1');
    const r = await run({ mode: 'verify', destination: sshd.url(damagedDir), 'backup-dir': into });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::The download of .* from sftp:\/\/.* does not match its manifest/);
    expect(readdirSync(into)).toEqual([]);
  });

  test('list (known-hosts from ssh-keyscan, hashed by ssh-keygen -H) shows the backups newest first', async () => {
    const scan = execFileSync('ssh-keyscan', ['-p', String(sshd.port), '-t', 'ed25519', '127.0.0.1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const file = path.join(tmp('kh'), 'known_hosts');
    writeFileSync(file, scan);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const hashed = readFileSync(file, 'utf8');
    expect(hashed).toMatch(/^\|1\|/m);
    expect(hashed).not.toContain('127.0.0.1');
    const r = await run({ mode: 'list', destination: `local,${sshd.url(dir)}`, 'backup-dir': tmp('g'), 'known-hosts': hashed });
    expect(r.code, r.stdout).toBe(0);
    const at = r.summary.indexOf(names[1]!);
    expect(at).toBeGreaterThan(-1);
    expect(r.summary.indexOf(names[0]!)).toBeGreaterThan(at);
    for (const n of names) expect(r.summary).toMatch(new RegExp(`\\| ${n} \\| .* \\| ${sshd.url(dir).replace(/[.]/g, '\\.')} \\| ${sshd.url(dir).replace(/[.]/g, '\\.')}/${n}\\.dump \\|`));
  });

  test('retention orders by the manifest time, not by name, deletes manifest and archive, keeps the newest', async () => {
    const d = path.join(root, 'order');
    const r = await run({ destination: sshd.url(d), 'backup-dir': tmp('i') });
    expect(r.code, r.stdout).toBe(0);
    const m = JSON.parse(readFileSync(path.join(d, `${r.outputs['backup-name']}.json`), 'utf8')) as Manifest;
    // Two more copies whose names sort the other way round from their times.
    for (const [name, daysAgo] of [
      [`${db.name}_20990101_000000`, 30],
      [`${db.name}_20000101_000000`, 20],
    ] as const) {
      const copy: Manifest = { ...m, name, archive: { ...m.archive, file: `${name}.dump` }, createdAt: new Date(Date.now() - daysAgo * 86_400_000).toISOString() };
      writeFileSync(path.join(d, `${name}.dump`), readFileSync(path.join(d, m.archive.file)));
      writeFileSync(path.join(d, `${name}.json`), JSON.stringify(copy));
    }
    const p = await run({ mode: 'prune', destination: sshd.url(d), 'retention-days': '25', 'keep-min': '1', 'dry-run': 'false', 'backup-dir': tmp('j') });
    expect(p.code, p.stdout).toBe(0);
    expect(p.stdout).toContain(`deleted ${db.name}_20990101_000000`);
    expect(remote(d)).toEqual([`${db.name}_20000101_000000.dump`, `${db.name}_20000101_000000.json`, `${r.outputs['backup-name']}.dump`, `${r.outputs['backup-name']}.json`].sort());
  });

  test('the directory format: uploaded as a directory, renamed whole, restored from a download', async () => {
    const d = path.join(root, 'directory');
    const r = await run({ destination: sshd.url(d), 'backup-dir': tmp('k'), format: 'directory', jobs: '2' });
    expect(r.code, r.stdout).toBe(0);
    const name = r.outputs['backup-name']!;
    expect(remote(d)).toEqual([`${name}.dir`, `${name}.json`]);
    // The directory the upload made (and the archive directory) are private.
    expect(statSync(d).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(d, `${name}.dir`)).mode & 0o777).toBe(0o700);
    const m = JSON.parse(readFileSync(path.join(d, `${name}.json`), 'utf8')) as Manifest;
    expect(readdirSync(path.join(d, `${name}.dir`)).sort()).toEqual(m.archive.files!.map((f) => f.path).sort());
    expect(m.archive.files!.map((f) => f.path)).toContain('toc.dat');
    for (const f of m.archive.files!) expect(sha256(path.join(d, `${name}.dir`, f.path))).toBe(f.sha256);
    const backupDir = tmp('l');
    const t = await run({ mode: 'test-restore', destination: sshd.url(d), 'backup-dir': backupDir });
    expect(t.code, t.stdout).toBe(0);
    expect(t.outputs.verified).toBe('true');
    expect(readdirSync(backupDir).sort()).toEqual([`${name}.dir`, `${name}.json`]);
  });
});

describe('refusals', () => {
  test('a host key that does not match known-hosts: the run fails with the fix, nothing reaches the server', async () => {
    const dir = path.join(root, 'wrong-host-key');
    const logBefore = sshd.log().length;
    const r = await run({ destination: `local,${sshd.url(dir)}`, 'backup-dir': tmp('m'), 'known-hosts': sshd.knownHosts(sshd.port, sshd.otherHostKey) });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(new RegExp(`::error::Upload to sftp://.* failed: The host key of \\[127\\.0\\.0\\.1\\]:${sshd.port} \\(ssh-ed25519 SHA256:\\S+\\) does not match Input known-hosts`));
    expect(r.stdout).toContain(`ssh-keyscan -p ${sshd.port} 127.0.0.1`);
    expect(remote(dir)).toBeUndefined();
    // The host key was refused before any login was tried: the server saw no key at all.
    expect(sshd.log().slice(logBefore)).not.toMatch(/publickey|Accepted|Failed/);
  });

  test('no known-hosts: refused before the dump, with the ssh-keyscan line to run', async () => {
    const backupDir = tmp('n');
    const r = await run({ destination: `local,${sshd.url(path.join(root, 'no-known-hosts'))}`, 'backup-dir': backupDir, 'known-hosts': '' });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain(`::error::Input known-hosts is empty, so the sftp:// server cannot be told from an impostor. Get its key lines with: ssh-keyscan -p ${sshd.port} 127.0.0.1`);
    expect(readdirSync(backupDir)).toEqual([]);
    // known-hosts for another host only: the same refusal, naming the host.
    const other = await run({ destination: sshd.url(path.join(root, 'no-known-hosts')), 'backup-dir': backupDir, 'known-hosts': `otherhost ${sshd.hostKey}` });
    expect(other.code).not.toBe(0);
    expect(other.stdout).toContain(`::error::Input known-hosts has no host key for [127.0.0.1]:${sshd.port}, and an unknown host key is never accepted`);
  });

  test('a key the server does not accept: a clear login error naming authorized_keys', async () => {
    const dir = path.join(root, 'stranger');
    const r = await run({ destination: `local,${sshd.url(dir)}`, 'backup-dir': tmp('o'), 'ssh-private-key': sshd.stranger.private });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::Upload to sftp:\/\/.* failed: root@\[127\.0\.0\.1\]:\d+ refused the login \(All configured authentication methods failed\)/);
    expect(r.stdout).toContain('Add the public half of ssh-private-key (ssh-keygen -y -f <key file> prints it) to ~root/.ssh/authorized_keys on the server');
    expect(remote(dir)).toBeUndefined();
  });

  test('a password in the URL, an unreadable key, an encrypted key without its passphrase: configuration errors', async () => {
    const pw = await run({ destination: `sftp://root:hunter2hunter2@127.0.0.1:${sshd.port}/x`, 'backup-dir': tmp('p') });
    expect(pw.code).not.toBe(0);
    expect(pw.stdout).toContain('::error::Destination "sftp://root:***@127.0.0.1');
    expect(pw.stdout).toContain('log in with a key instead');
    expect(pw.visible + pw.stderr + pw.summary).not.toContain('hunter2hunter2');
    const garbage = await run({ destination: sshd.url('/x'), 'backup-dir': tmp('q'), 'ssh-private-key': 'not a key at all' });
    expect(garbage.code).not.toBe(0);
    expect(garbage.stdout).toMatch(/::error::Input ssh-private-key could not be read \(.*\): give the whole private key file/);
    const locked = await run({ destination: sshd.url('/x'), 'backup-dir': tmp('r'), 'ssh-private-key': sshd.encrypted.private });
    expect(locked.code).not.toBe(0);
    expect(locked.stdout).toMatch(/::error::Input ssh-private-key could not be read \(.*passphrase.*\): set ssh-passphrase/);
  });
});

describe('the private key and passphrase never leak', () => {
  function expectNoLeak(r: RunResult, extra: string[] = []): void {
    const everything = [r.visible, r.stderr, JSON.stringify(r.outputs), r.summary, ...extra].join('\n');
    const secrets = [sshd.passphrase, sshd.encrypted.private.trim(), ...sshd.encrypted.private.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'))];
    for (const s of secrets) {
      expect(everything).not.toContain(s);
      for (const argv of r.argvSeen) expect(argv).not.toContain(s);
    }
    expect(everything).not.toContain(Buffer.from(sshd.passphrase).toString('base64'));
  }

  test('through a successful backup and a refused host key, with step debug on', async () => {
    const dir = path.join(root, 'secret');
    const inputs = { destination: `local,${sshd.url(dir)}`, 'ssh-private-key': sshd.encrypted.private, 'ssh-passphrase': sshd.passphrase };
    const debug = { ACTIONS_STEP_DEBUG: 'true', RUNNER_DEBUG: '1' };
    const ok = await run({ ...inputs, 'backup-dir': tmp('s'), verify: 'quick' }, debug, true);
    expect(ok.code, ok.stdout).toBe(0);
    expect(remote(dir)).toEqual([`${ok.outputs['backup-name']}.dump`, `${ok.outputs['backup-name']}.json`]);
    expectNoLeak(ok, [readFileSync(ok.outputs['manifest-path']!, 'utf8'), readFileSync(path.join(dir, `${ok.outputs['backup-name']}.json`), 'utf8')]);
    // The runner is told to mask the passphrase and every line of the key.
    // (Workflow commands escape % as %25.)
    expect(ok.stdout).toContain(`::add-mask::${sshd.passphrase.replace(/%/g, '%25')}`);
    for (const line of sshd.encrypted.private.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'))) expect(ok.stdout).toContain(`::add-mask::${line}`);
    const refused = await run({ ...inputs, 'backup-dir': tmp('t'), 'known-hosts': sshd.knownHosts(sshd.port, sshd.otherHostKey) }, debug, true);
    expect(refused.code).not.toBe(0);
    expectNoLeak(refused);
    const wrongPassphrase = await run({ ...inputs, 'backup-dir': tmp('u'), 'ssh-passphrase': 'not the passphrase' }, debug);
    expect(wrongPassphrase.code).not.toBe(0);
    expectNoLeak(wrongPassphrase);
  });
});

describe('other ways to log in and to know the host', () => {
  let agent: ChildProcess | undefined;
  let agentSock: string;

  beforeAll(async () => {
    agentSock = path.join(tmp('agent'), 'agent.sock');
    agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !existsSync(agentSock); i++) await new Promise((r) => setTimeout(r, 50));
    execFileSync('ssh-add', [sshd.client.file], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: 'ignore' });
  });
  afterAll(() => {
    agent?.kill('SIGTERM');
  });

  test('the SSH agent (SSH_AUTH_SOCK) when ssh-private-key is empty; without either, refused', async () => {
    const dir = path.join(root, 'agent');
    const r = await run({ destination: sshd.url(dir), 'backup-dir': tmp('w'), 'ssh-private-key': '' }, { SSH_AUTH_SOCK: agentSock });
    expect(r.code, r.stdout).toBe(0);
    expect(remote(dir)).toEqual([`${r.outputs['backup-name']}.dump`, `${r.outputs['backup-name']}.json`]);
    const none = await run({ destination: sshd.url(dir), 'backup-dir': tmp('x'), 'ssh-private-key': '' }, { SSH_AUTH_SOCK: '' });
    expect(none.code).not.toBe(0);
    expect(none.stdout).toContain('::error::The sftp:// destination needs a key: set ssh-private-key');
  });

  test('the CLI reads ~/.ssh/known_hosts when --known-hosts is not given, and refuses a host it lacks', async () => {
    const dir = path.join(root, 'lookup');
    const home = tmp('home');
    const env = { HOME: home, SSH_AUTH_SOCK: agentSock };
    const missing = await runCli(['list', '--destination', sshd.url(dir), '--backup-dir', tmp('y')], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`${home}/.ssh/known_hosts has no host key for [127.0.0.1]:${sshd.port}, and an unknown host key is never accepted. Get the server's key lines with: ssh-keyscan -p ${sshd.port} 127.0.0.1`);
    mkdirSync(path.join(home, '.ssh'));
    writeFileSync(path.join(home, '.ssh', 'known_hosts'), `# made by the test\n${sshd.knownHosts()}\n`);
    const listed = await runCli(['list', '--destination', sshd.url(dir), '--backup-dir', tmp('z')], { env });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(`${sshd.url(dir)}/${db.name}_`);
  });
});
