// sftp://user@host[:port]/path over SSH (ssh2, pure JavaScript): a private key or the SSH agent logs in, and the
// server's host key must match known-hosts (an unknown or changed key is refused, never accepted silently).
// Every file goes up under a .partial name, its size is checked on the server, it is fsynced and renamed; the
// manifest comes last, also through a rename, as the commit marker. Transfers are pipelined reads/writes of
// 32 KiB chunks (at most 2 MiB in flight), so memory stays flat and latency does not bound throughput.
// Each operation opens its own connection and closes it, so nothing keeps the process alive afterwards.
// network-timeout bounds each operation three ways: the SSH handshake (readyTimeout), a dead connection
// (keepalives unanswered for that long), and a live connection on which nothing moves (no SFTP answer and no
// transfer progress for that long: a server whose disk hangs still answers keepalives).
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { ConnectConfig, FileEntryWithStats, ParsedKey, PublicKeyAuthMethod, SFTPWrapper, Stats } from 'ssh2';
import { namePrefix, parseManifest, writeManifest, type Manifest } from '../archive/manifest.js';
import { BackupError, ConfigurationError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { DEFAULT_NETWORK_TIMEOUT_MS, IdleTimer, seconds, timeoutHint } from '../net.js';
import { byteProgress, progressSecondsFrom, withProgress } from '../progress.js';
import { blobType, fingerprint, hostKeyAlgorithms, knownHostKeys, knownHostName, type KnownHostKeys } from './known-hosts.js';
import { checkDownload, type LocalBackup } from './local.js';
import { isGoodManifest, type Orphan, type PutResult, type Storage, type StoredBackup } from './storage.js';

const { Client, utils } = ssh2;

export interface SftpOptions {
  /** The private key text (OpenSSH or PEM); undefined: the SSH agent. */
  privateKey?: string;
  passphrase?: string;
  /** known_hosts lines (the known-hosts input). */
  knownHosts?: string;
  /** Read when knownHosts is not given (the CLI: ~/.ssh/known_hosts). */
  knownHostsFile?: string;
  /** The agent's socket (SSH_AUTH_SOCK), used when there is no private key. */
  agent?: string;
  /** network-timeout: no answer for this long fails the operation (ms; default 60 s). */
  networkTimeoutMs?: number;
}

export interface SftpLocation {
  user: string;
  host: string;
  port: number;
  /** The remote directory: absolute, or relative to the login directory ('.' for the login directory itself). */
  dir: string;
}

/** The destination with any password in it replaced, for messages. */
function redact(dest: string): string {
  return dest.replace(/^(sftp:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}

/**
 * sftp://user@host[:port]/absolute/path, or sftp://user@host/~/path relative to the login directory. A password
 * in the URL is refused: SSH logins here are by key.
 */
export function parseSftpDestination(dest: string): SftpLocation {
  const usage = 'use sftp://user@host[:port]/path (an absolute path, or /~/path under the login directory)';
  // (URL parsing would quietly resolve /a/../b: such a path is refused as written.)
  let raw = dest;
  try {
    raw = decodeURIComponent(dest);
  } catch {
    /* the URL parser below reports it */
  }
  if (/\/\.\.?(\/|$|[?#])/.test(raw.replace(/^sftp:\/\/[^/]*/i, ''))) {
    throw new ConfigurationError(`Destination "${redact(dest)}": the path must not contain . or .. segments or control characters`, { code: 'config-destination' });
  }
  let u: URL;
  try {
    u = new URL(dest);
  } catch {
    throw new ConfigurationError(`Destination "${redact(dest)}" is not a valid sftp:// location; ${usage}`, { code: 'config-destination' });
  }
  if (u.protocol !== 'sftp:' || !u.hostname) throw new ConfigurationError(`Destination "${redact(dest)}" is not a valid sftp:// location; ${usage}`, { code: 'config-destination' });
  if (u.password) {
    throw new ConfigurationError(
      `Destination "${redact(dest)}" has a password in it, which is refused: log in with a key instead (ssh-keygen -t ed25519, the public half in the server's ~/.ssh/authorized_keys, the private key in the ssh-private-key input from a secret) or an SSH agent`,
      { code: 'config-sftp-password' },
    );
  }
  if (!u.username) throw new ConfigurationError(`Destination "${dest}" names no user; ${usage}`, { code: 'config-destination' });
  if (u.search || u.hash) throw new ConfigurationError(`Destination "${dest}" must not have a ?query or #fragment; ${usage}`, { code: 'config-destination' });
  let p = decodeURIComponent(u.pathname).replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  if (p === '' || p === '/~' || p === '/~/') p = '.';
  else if (p.startsWith('/~/')) p = p.slice(3);
  if (p.split('/').some((s) => s === '..' || (s === '.' && p !== '.')) || /[\0-\x1f]/.test(p)) {
    throw new ConfigurationError(`Destination "${dest}": the path must not contain . or .. segments or control characters`, { code: 'config-destination' });
  }
  return { user: decodeURIComponent(u.username), host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port ? Number(u.port) : 22, dir: p };
}

function keyscanHint(loc: SftpLocation): string {
  return `ssh-keyscan -p ${loc.port} ${loc.host}`;
}

/** The message for a host that known_hosts does not know. */
export function unknownHostMessage(loc: SftpLocation, source: string): string {
  return (
    `${source} has no host key for ${knownHostName(loc.host, loc.port)}, and an unknown host key is never accepted. ` +
    `Get the server's key lines with: ${keyscanHint(loc)} (compare the fingerprints, ssh-keygen -lf, with the server's own) and put them into the known-hosts input`
  );
}

// Decrypting an encrypted OpenSSH key (bcrypt KDF) takes over a second in JavaScript: once per process, not per
// connection.
const parsedKeys = new Map<string, ParsedKey | Error | undefined>();

function parseKeyOnce(key: string, passphrase: string | undefined): ParsedKey | Error | undefined {
  const id = `${passphrase ?? ''}\0${key}`;
  if (!parsedKeys.has(id)) {
    const parsed = utils.parseKey(key, passphrase);
    parsedKeys.set(id, (Array.isArray(parsed) ? parsed[0] : parsed) as ParsedKey | Error | undefined);
  }
  return parsedKeys.get(id);
}

/** Reads the private key (the whole key file's text; \n escapes on one line are accepted), or says what is wrong. */
export function readPrivateKey(text: string, passphrase?: string): string {
  let key = text.trim();
  if (!key.includes('\n') && key.includes('\\n')) key = key.replace(/\\n/g, '\n');
  key = key.replace(/\r\n/g, '\n') + '\n';
  const first = parseKeyOnce(key, passphrase);
  if (!first || first instanceof Error) {
    const why = first instanceof Error ? first.message : 'no key found';
    const fix = /passphrase|decrypt|encrypt/i.test(why)
      ? 'set ssh-passphrase to the key\'s passphrase'
      : 'give the whole private key file (from -----BEGIN to -----END, newlines kept), as ssh-keygen wrote it';
    throw new ConfigurationError(`Input ssh-private-key could not be read (${why}): ${fix}`, { code: 'config-sftp-key' });
  }
  if (!first.isPrivateKey()) throw new ConfigurationError('Input ssh-private-key holds a public key: give the private key (the file without .pub)', { code: 'config-sftp-key' });
  return key;
}

/**
 * The sftp settings from the inputs, checked before anything runs (config.ts): the key is readable, and a host
 * key is known for every sftp:// destination. knownHosts undefined means the input was absent (the CLI):
 * ~/.ssh/known_hosts is read then; the action always passes the input, so empty there is refused.
 */
export function sftpSettings(i: {
  destinations: string[];
  privateKey: string | undefined;
  passphrase: string | undefined;
  knownHosts: string | undefined;
  env: NodeJS.ProcessEnv;
}): { options: SftpOptions; secrets: string[] } {
  const secrets: string[] = [];
  if (i.privateKey) {
    secrets.push(i.privateKey.trim());
    // Each line too: the runner masks line by line, and a message could quote one.
    for (const line of i.privateKey.split(/\\n|\r?\n/)) if (line.trim().length >= 16 && !line.startsWith('-----')) secrets.push(line.trim());
  }
  if (i.passphrase) secrets.push(i.passphrase);
  const options: SftpOptions = {};
  const sftp = i.destinations.filter((d) => d.startsWith('sftp://'));
  if (!sftp.length) return { options, secrets };
  if (i.privateKey) {
    options.privateKey = readPrivateKey(i.privateKey, i.passphrase);
    if (i.passphrase) options.passphrase = i.passphrase;
  } else if (i.env.SSH_AUTH_SOCK) {
    options.agent = i.env.SSH_AUTH_SOCK;
  } else {
    throw new ConfigurationError(
      'The sftp:// destination needs a key: set ssh-private-key to the private key text (from a secret), or run an SSH agent with the key loaded (SSH_AUTH_SOCK)',
      { code: 'config-sftp-key' },
    );
  }
  const known = i.knownHosts?.trim();
  if (i.knownHosts === undefined) {
    options.knownHostsFile = path.join(i.env.HOME || os.homedir(), '.ssh', 'known_hosts');
  } else if (!known) {
    const loc = parseSftpDestination(sftp[0]!);
    throw new ConfigurationError(
      `Input known-hosts is empty, so the sftp:// server cannot be told from an impostor. Get its key lines with: ${keyscanHint(loc)} (compare the fingerprints with the server's own) and set known-hosts to them`,
      { code: 'config-known-hosts' },
    );
  } else {
    options.knownHosts = known;
    for (const d of sftp) {
      const loc = parseSftpDestination(d);
      if (!knownHostKeys(known, loc.host, loc.port).keys.length) throw new ConfigurationError(unknownHostMessage(loc, 'Input known-hosts'), { code: 'config-known-hosts' });
    }
  }
  return { options, secrets };
}

// SFTP status codes (draft-ietf-secsh-filexfer-02).
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;

function sftpCode(err: unknown): number | undefined {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

/** The running operation's idle timer: every SFTP answer and every transfer step is progress. */
const activity = new AsyncLocalStorage<IdleTimer>();

/** An SFTP call as a promise. */
function call<T = void>(fn: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  const idle = activity.getStore();
  return new Promise<T>((resolve, reject) =>
    fn((err, value) => {
      idle?.touch();
      if (err) reject(err);
      else resolve(value as T);
    }),
  );
}

const stat = (s: SFTPWrapper, p: string): Promise<Stats> => call<Stats>((cb) => s.stat(p, cb));

async function statOrUndefined(s: SFTPWrapper, p: string): Promise<Stats | undefined> {
  try {
    return await call<Stats>((cb) => s.lstat(p, cb));
  } catch (err) {
    if (sftpCode(err) === NO_SUCH_FILE) return undefined;
    throw err;
  }
}

async function readdir(s: SFTPWrapper, dir: string): Promise<FileEntryWithStats[] | undefined> {
  try {
    return await call<FileEntryWithStats[]>((cb) => s.readdir(dir, cb));
  } catch (err) {
    if (sftpCode(err) === NO_SUCH_FILE) return undefined;
    throw err;
  }
}

/** mkdir -p, new directories 0700 (backups are private). */
async function mkdirs(s: SFTPWrapper, dir: string): Promise<void> {
  if (dir === '.' || dir === '/') return;
  const st = await statOrUndefined(s, dir);
  if (st?.isDirectory()) return;
  if (st) throw new BackupError(`${dir} exists on the server and is not a directory`, 'Point the destination at a directory', { code: 'storage-sftp' });
  await mkdirs(s, path.posix.dirname(dir));
  try {
    await call((cb) => s.mkdir(dir, { mode: 0o700 }, cb));
  } catch (err) {
    // (Made meanwhile by another run.)
    if (!(await statOrUndefined(s, dir))?.isDirectory()) throw err;
  }
}

/** rm -rf. */
async function removeTree(s: SFTPWrapper, p: string): Promise<void> {
  const st = await statOrUndefined(s, p);
  if (!st) return;
  if (st.isDirectory()) {
    for (const e of (await readdir(s, p)) ?? []) await removeTree(s, path.posix.join(p, e.filename));
    await call((cb) => s.rmdir(p, cb));
  } else {
    await call((cb) => s.unlink(p, cb));
  }
}

/** Renames over an existing file: posix-rename@openssh.com where the server has it (atomic), else unlink + rename. */
async function replace(s: SFTPWrapper, from: string, to: string): Promise<void> {
  // (A directory is never renamed over: an old one of the same name goes first.)
  if ((await statOrUndefined(s, to))?.isDirectory()) await removeTree(s, to);
  try {
    await call((cb) => s.ext_openssh_rename(from, to, cb));
    return;
  } catch (err) {
    if (!/does not support/i.test((err as Error).message)) throw err;
  }
  if (await statOrUndefined(s, to)) await removeTree(s, to);
  await call((cb) => s.rename(from, to, cb));
}

/** fsync@openssh.com on the file, where the server has it: the bytes are on the server's disk before the rename. */
async function syncFile(s: SFTPWrapper, p: string): Promise<void> {
  const handle = await call<Buffer>((cb) => s.open(p, 'r', cb));
  try {
    await call((cb) => s.ext_openssh_fsync(handle, (err) => cb(err))).catch((err: Error) => {
      if (!/does not support/i.test(err.message)) throw err;
    });
  } finally {
    await call((cb) => s.close(handle, cb));
  }
}

interface SftpRef {
  manifestPath: string;
  archivePath: string;
}

export class SftpStorage implements Storage {
  private readonly loc: SftpLocation;
  private readonly progressSeconds: number;
  private readonly timeoutMs: number;

  constructor(
    readonly id: string,
    private readonly opts: SftpOptions,
    private readonly logger: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.loc = parseSftpDestination(id);
    this.progressSeconds = progressSecondsFrom(env);
    this.timeoutMs = opts.networkTimeoutMs ?? DEFAULT_NETWORK_TIMEOUT_MS;
  }

  private remote(file: string): string {
    return this.loc.dir === '.' ? file : path.posix.join(this.loc.dir, file);
  }

  private where(file: string): string {
    return `${this.id.replace(/\/+$/, '')}/${file}`;
  }

  private knownKeys(): { keys: KnownHostKeys; source: string } {
    let text = this.opts.knownHosts;
    let source = 'Input known-hosts';
    if (text === undefined && this.opts.knownHostsFile) {
      source = this.opts.knownHostsFile;
      try {
        text = readFileSync(this.opts.knownHostsFile, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new BackupError(`Cannot read ${source}: ${(err as Error).message}`, 'Check its permissions, or pass --known-hosts', { code: 'config-known-hosts', cause: err });
        text = '';
      }
    }
    const keys = knownHostKeys(text ?? '', this.loc.host, this.loc.port, source);
    if (!keys.keys.length) throw new ConfigurationError(unknownHostMessage(this.loc, source), { code: 'config-known-hosts' });
    return { keys, source };
  }

  /** Connects, checks the host key, logs in, runs fn on the SFTP session and closes the connection. */
  private async session<T>(what: string, fn: (s: SFTPWrapper) => Promise<T>): Promise<T> {
    const { keys, source } = this.knownKeys();
    const name = knownHostName(this.loc.host, this.loc.port);
    let refused: string | undefined;
    const cfg: ConnectConfig = {
      host: this.loc.host,
      port: this.loc.port,
      username: this.loc.user,
      readyTimeout: this.timeoutMs,
      // Three unanswered keepalives, one every third of network-timeout: a dead connection fails after about that.
      keepaliveInterval: Math.max(1000, Math.floor(this.timeoutMs / 3)),
      keepaliveCountMax: 2,
      // Only the key types known for this host, so the server shows one that can be checked.
      algorithms: { serverHostKey: hostKeyAlgorithms(new Set(keys.keys.map((k) => k.type))) as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] },
      hostVerifier: (key: Buffer): boolean => {
        const shown = `${blobType(key) ?? 'unknown type'} ${fingerprint(key)}`;
        if (keys.revoked.some((k) => k.blob.equals(key))) {
          refused = `The host key of ${name} (${shown}) is marked @revoked in ${source}`;
          return false;
        }
        if (keys.keys.some((k) => k.blob.equals(key))) return true;
        refused = `The host key of ${name} (${shown}) does not match ${source} (${keys.keys.map((k) => `${k.type} ${fingerprint(k.blob)}`).join(', ')})`;
        return false;
      },
    };
    if (this.opts.privateKey) {
      const parsed = parseKeyOnce(this.opts.privateKey, this.opts.passphrase);
      if (parsed && !(parsed instanceof Error)) {
        // The parsed key as it is (connect's privateKey would decrypt it again, on every connection).
        const method: PublicKeyAuthMethod = { type: 'publickey', username: this.loc.user, key: parsed };
        cfg.authHandler = [method];
      } else {
        cfg.privateKey = this.opts.privateKey;
        if (this.opts.passphrase) cfg.passphrase = this.opts.passphrase;
      }
    } else if (this.opts.agent) {
      cfg.agent = this.opts.agent;
    }
    const client = new Client();
    // Errors after the first are reported through `lost` below; none may go unhandled.
    client.on('error', () => undefined);
    let connected = false;
    let idle: IdleTimer | undefined;
    let ok = false;
    try {
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => {
        client.once('error', reject);
        client.once('close', () => reject(new Error('The connection closed during the handshake')));
        client.once('ready', () => {
          connected = true;
          // (Logged in: from here on, a server that stops answering is caught by this, the handshake was by readyTimeout.)
          idle = new IdleTimer(
            this.timeoutMs,
            () =>
              new BackupError(
                `SFTP destination ${this.id}: no byte moved for ${seconds(this.timeoutMs)} while ${what}: no SFTP answer and no transfer progress; the connection was abandoned`,
                timeoutHint(this.timeoutMs, 'Anything uploaded stays under a .partial name, which retention removes later; check the server (its disk, its sftp subsystem) and the network'),
                { code: 'storage-timeout' },
              ),
          );
          idle.expired.catch(reject);
          client.sftp((err, s) => {
            idle?.touch();
            if (err) reject(err);
            else resolve(s);
          });
        });
        client.connect(cfg);
      });
      const timer = idle!;
      // Whatever ends the connection now (a reset, a timeout, the server going away) fails the operation.
      const lost = new Promise<never>((_, reject) => {
        client.once('error', (err: Error) => reject(Object.assign(err, { lost: true })));
        client.once('close', () => reject(Object.assign(new Error('The connection closed'), { lost: true })));
      });
      lost.catch(() => undefined);
      const result = await Promise.race([activity.run(timer, () => fn(sftp)), lost, timer.expired]);
      ok = true;
      return result;
    } catch (err) {
      throw this.error(err, what, refused, connected);
    } finally {
      (idle as IdleTimer | undefined)?.stop();
      // A failed operation may have a request outstanding on a stalled connection: end() would wait for the server.
      if (ok) client.end();
      else client.destroy();
    }
  }

  private error(err: unknown, what: string, refused: string | undefined, connected: boolean): Error {
    if (err instanceof BackupError || err instanceof ConfigurationError) return err;
    const e = err as { message?: string; level?: string; code?: unknown };
    const msg = e.message ?? String(err);
    const at = `${this.loc.user}@${knownHostName(this.loc.host, this.loc.port)}`;
    let code: ErrorCode = 'storage-sftp';
    let hint = 'Check the server and the network, then run again';
    let text = `SFTP failed ${what} at ${this.id}: ${msg}`;
    if (refused) {
      code = 'storage-sftp-host-key';
      text = `${refused}: the connection to ${this.id} was refused before logging in`;
      hint = `If the server's key was changed on purpose, get the new lines with: ${keyscanHint(this.loc)} (compare the fingerprints with the server's own) and replace them in known-hosts; otherwise someone may be intercepting the connection`;
    } else if (e.level === 'client-authentication') {
      code = 'storage-sftp-auth';
      text = `${at} refused the login (${msg}) for ${this.id}`;
      hint = this.opts.privateKey
        ? `Add the public half of ssh-private-key (ssh-keygen -y -f <key file> prints it) to ~${this.loc.user}/.ssh/authorized_keys on the server, or fix the user in the destination`
        : `Load a key the server accepts for ${this.loc.user} into the SSH agent (ssh-add), or set ssh-private-key`;
    } else if (/no matching host key format/.test(msg)) {
      code = 'storage-sftp-host-key';
      text = `${at} offers none of the host key types known-hosts has for it (${msg})`;
      hint = `Get the server's current key lines with: ${keyscanHint(this.loc)} and put them into known-hosts`;
    } else if (e.level === 'client-timeout' && /handshake|keepalive/i.test(msg)) {
      code = 'storage-timeout';
      text = connected
        ? `SFTP destination ${this.id}: the server stopped answering (no reply to keepalives for about ${seconds(this.timeoutMs)}) while ${what}; the connection was abandoned`
        : `SFTP destination ${this.id}: ${at} accepted no SSH handshake within ${seconds(this.timeoutMs)} (${msg}) ${what}`;
      hint = timeoutHint(
        this.timeoutMs,
        connected ? 'Anything uploaded stays under a .partial name, which retention removes later; check the server and the network' : 'Check that the host and port in the destination are an SSH server that answers, and that this machine may reach it',
      );
    } else if (connected && ((err as { lost?: boolean }).lost || e.level === 'client-socket' || e.level === 'client-timeout' || /No response from server/.test(msg))) {
      text = `SFTP failed ${what} at ${this.id}: the connection to the server was lost (${msg})`;
      hint = 'Anything uploaded stays under a .partial name, which retention removes later; check the server and the network, then run again';
    } else if (e.level === 'client-timeout' || e.level === 'client-socket' || e.level === 'client-dns' || ['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET'].includes(String(e.code))) {
      code = 'storage-sftp-connect';
      text = `SFTP could not connect to ${at} (${msg}) ${what}`;
      hint = 'Check the host and port in the destination, that the SSH server runs and that this machine may reach it';
    } else if (sftpCode(err) === PERMISSION_DENIED) {
      hint = `Check that ${this.loc.user} may write to ${this.loc.dir} on the server`;
    } else if (sftpCode(err) === 4) {
      hint = 'The server refused the write (a full disk or quota, or a read-only file system): check free space on the server, then run again';
    }
    return new BackupError(text, hint, { code, cause: err });
  }

  private async upload(s: SFTPWrapper, local: string, remote: string, size: number, label: string): Promise<void> {
    const idle = activity.getStore();
    let sent = 0;
    await withProgress(
      this.logger,
      this.progressSeconds,
      byteProgress(`upload ${label}`, () => sent, { total: size, verb: 'sent' }),
      call((cb) =>
        s.fastPut(local, remote, {
          mode: 0o600,
          step: (total) => {
            sent = total;
            idle?.touch();
          },
        }, cb),
      ),
    );
    const st = await stat(s, remote);
    if (st.size !== size) {
      throw new BackupError(`${label} has ${st.size} bytes on the server after the upload, expected ${size}`, 'The upload was damaged; run the backup again', { code: 'storage-upload-damaged' });
    }
    // The server may take a while to flush a large file to its disk before it answers.
    idle?.allow(size);
    await syncFile(s, remote);
  }

  async put(b: LocalBackup): Promise<PutResult> {
    const m = b.manifest;
    const final = this.remote(m.archive.file);
    const partial = `${final}.partial`;
    await this.session(`uploading ${m.name}`, async (s) => {
      await mkdirs(s, this.loc.dir);
      // A leftover of an earlier attempt under this very name.
      await removeTree(s, partial);
      if (m.format === 'directory') {
        await call((cb) => s.mkdir(partial, { mode: 0o700 }, cb));
        for (const f of m.archive.files ?? []) {
          const target = path.posix.join(partial, f.path);
          await mkdirs(s, path.posix.dirname(target));
          await this.upload(s, path.join(b.archivePath, f.path), target, f.size, this.where(`${m.archive.file}/${f.path}`));
        }
      } else {
        await this.upload(s, b.archivePath, partial, m.archive.size, this.where(m.archive.file));
      }
      await replace(s, partial, final);
      // The manifest last: its presence is what makes the upload a backup.
      const manifest = this.remote(`${m.name}.json`);
      await call((cb) => s.writeFile(`${manifest}.partial`, JSON.stringify(m, null, 2) + '\n', { mode: 0o600 }, cb));
      await syncFile(s, `${manifest}.partial`);
      await replace(s, `${manifest}.partial`, manifest);
    });
    return { location: this.where(m.archive.file) };
  }

  async list(database?: string): Promise<StoredBackup[]> {
    const prefix = database === undefined ? undefined : namePrefix(database);
    return this.session(`listing ${this.loc.dir}`, async (s) => {
      const entries = (await readdir(s, this.loc.dir)) ?? [];
      const byName = new Map(entries.map((e) => [e.filename, e]));
      const out: StoredBackup[] = [];
      for (const e of entries) {
        if (!e.filename.endsWith('.json') || (prefix && !e.filename.startsWith(prefix))) continue;
        const manifestPath = this.remote(e.filename);
        const text = (await call<Buffer>((cb) => s.readFile(manifestPath, cb))).toString('utf8');
        let manifest: Manifest;
        try {
          manifest = parseManifest(text, e.filename);
        } catch (err) {
          this.logger.warning(`${this.where(e.filename)}: ${(err as Error).message} (not a usable backup)`);
          continue;
        }
        if (database !== undefined && manifest.database !== database) continue;
        const archive = byName.get(manifest.archive.file);
        const isDir = manifest.format === 'directory';
        if (!archive || archive.attrs.isDirectory() !== isDir || (!isDir && archive.attrs.size !== manifest.archive.size)) {
          this.logger.warning(`${this.where(e.filename)}: archive ${manifest.archive.file} is ${archive ? 'not what the manifest describes' : 'missing'} (not a usable backup)`);
          continue;
        }
        const ref: SftpRef = { manifestPath, archivePath: this.remote(manifest.archive.file) };
        out.push({
          name: manifest.name,
          createdAt: new Date(manifest.createdAt),
          manifest,
          location: this.where(manifest.archive.file),
          destination: this.id,
          good: isGoodManifest(manifest),
          ref,
        });
      }
      return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    });
  }

  private async download(s: SFTPWrapper, remote: string, local: string, size: number, label: string): Promise<void> {
    await fs.mkdir(path.dirname(local), { recursive: true });
    // Created private before any byte arrives.
    await fs.writeFile(local, '', { mode: 0o600 });
    const idle = activity.getStore();
    let got = 0;
    await withProgress(
      this.logger,
      this.progressSeconds,
      byteProgress(`download ${label}`, () => got, { total: size, verb: 'received' }),
      call((cb) =>
        s.fastGet(remote, local, {
          mode: 0o600,
          step: (total) => {
            got = total;
            idle?.touch();
          },
        }, cb),
      ),
    );
  }

  /** Downloads into <name>.partial, checks size and sha256 against the manifest, renames, writes the manifest last. */
  async get(b: StoredBackup, dir: string): Promise<LocalBackup> {
    const { archivePath: remote } = b.ref as SftpRef;
    const m = b.manifest;
    const archivePath = path.join(dir, m.archive.file);
    const manifestPath = path.join(dir, `${m.name}.json`);
    const partial = `${archivePath}.partial`;
    await fs.rm(partial, { recursive: true, force: true });
    try {
      await this.session(`downloading ${m.name}`, async (s) => {
        if (m.format === 'directory') {
          await fs.mkdir(partial, { mode: 0o700 });
          for (const f of m.archive.files ?? []) {
            await this.download(s, path.posix.join(remote, f.path), path.join(partial, f.path), f.size, this.where(`${m.archive.file}/${f.path}`));
          }
        } else {
          await this.download(s, remote, partial, m.archive.size, this.where(m.archive.file));
        }
      });
    } catch (err) {
      await fs.rm(partial, { recursive: true, force: true });
      throw err;
    }
    // (checkDownload removes what it checked when it does not match.)
    await checkDownload({ name: m.name, manifestPath: `${manifestPath}.partial`, archivePath: partial, manifest: m, createdAt: b.createdAt, good: b.good }, this.where(m.archive.file));
    await fs.rm(archivePath, { recursive: true, force: true });
    await fs.rename(partial, archivePath);
    await writeManifest(dir, m);
    return { name: m.name, manifestPath, archivePath, manifest: m, createdAt: b.createdAt, good: b.good };
  }

  async delete(b: StoredBackup): Promise<void> {
    const { manifestPath, archivePath } = b.ref as SftpRef;
    await this.session(`deleting ${b.name}`, async (s) => {
      await removeTree(s, manifestPath);
      await removeTree(s, archivePath);
    });
  }

  /** .partial leftovers of uploads that died (never a complete backup). An archive without a manifest is left alone. */
  async orphans(database?: string): Promise<Orphan[]> {
    const prefix = database === undefined ? undefined : namePrefix(database);
    const entries = await this.session(`listing ${this.loc.dir}`, async (s) => (await readdir(s, this.loc.dir)) ?? []);
    return entries
      .filter((e) => e.filename.endsWith('.partial') && (!prefix || e.filename.startsWith(prefix)))
      .map((e) => ({
        location: this.where(e.filename),
        modified: new Date((e.attrs.mtime ?? 0) * 1000),
        remove: () => this.session(`removing ${this.where(e.filename)}`, (s) => removeTree(s, this.remote(e.filename))),
      }));
  }
}
