// A real OpenSSH server for the sftp:// tests: /usr/sbin/sshd -D -e on a free loopback port with its own host key,
// root login by a client key made by ssh-keygen (no passwords, no PAM), sftp served by internal-sftp. In front of
// it, a loopback TCP proxy that can cut a connection after so many bytes (an upload that dies half way).
// Everything lives in one temp dir, removed by stop().
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/postgres/cluster.js';

export const SSHD = '/usr/sbin/sshd';

export interface KeyPair {
  file: string;
  /** The private key file's text. */
  private: string;
  /** The public key line (type base64 comment). */
  public: string;
}

export interface SshServer {
  host: '127.0.0.1';
  port: number;
  /** The key the server accepts for root (unencrypted). */
  client: KeyPair;
  /** Also accepted: the same kind of key, encrypted with `passphrase`. */
  encrypted: KeyPair;
  passphrase: string;
  /** A key the server does not accept. */
  stranger: KeyPair;
  /** The server's host public key line (type base64). */
  hostKey: string;
  /** Another host key, of the same type, that is not this server's. */
  otherHostKey: string;
  /** A known_hosts line for this server's key at `port` (default: the server's own port). */
  knownHosts(port?: number, key?: string): string;
  /** sftp://root@127.0.0.1:PORT<dir> */
  url(dir: string, port?: number): string;
  /** sshd's log (connections, logins; internal-sftp's own log goes to syslog), so far. */
  log(): string;
  proxy: {
    port: number;
    /** Cut every connection opened from now on once it has carried this many client-to-server bytes; undefined: never. */
    cutAfter(bytes: number | undefined): void;
    /** How many connections were cut. */
    cuts(): number;
  };
  stop(): Promise<void>;
}

function keygen(dir: string, name: string, passphrase = ''): KeyPair {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', `pgvb-test-${name}`, '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  return { file, private: readFileSync(file, 'utf8'), public: readFileSync(`${file}.pub`, 'utf8').trim() };
}

/** Resolves once something on the port answers with an SSH banner. */
async function waitForBanner(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      let got = '';
      s.setTimeout(1000, () => {
        s.destroy();
        resolve(false);
      });
      s.on('data', (d) => {
        got += d.toString();
        if (got.startsWith('SSH-2.0-')) {
          s.destroy();
          resolve(true);
        }
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not answer on port ${port}: ${log()}`);
}

export async function startSshd(): Promise<SshServer> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: run bash test/setup/ensure-openssh.sh (npm test does)`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-sshd-'));
  const hostKeyPair = keygen(dir, 'host_ed25519');
  const other = keygen(dir, 'other_host_ed25519');
  const client = keygen(dir, 'client_ed25519');
  const passphrase = 'kw8 ü$:/%"secret';
  const encrypted = keygen(dir, 'client_encrypted', passphrase);
  const stranger = keygen(dir, 'stranger_ed25519');
  writeFileSync(path.join(dir, 'authorized_keys'), `${client.public}\n${encrypted.public}\n`, { mode: 0o600 });
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKeyPair.file}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'LogLevel VERBOSE',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  // sshd's privilege separation directory (normally made by the system service).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => {
    log += d.toString();
    if (log.length > 4_000_000) log = log.slice(-2_000_000);
  });
  await waitForBanner(port, child, () => log);

  let cutAfter: number | undefined;
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((down) => {
    const limit = cutAfter;
    const up = net.connect(port, '127.0.0.1');
    sockets.add(down).add(up);
    let sent = 0;
    down.on('data', (d: Buffer) => {
      sent += d.length;
      if (limit !== undefined && sent > limit) {
        cuts++;
        down.destroy();
        up.destroy();
        return;
      }
      if (!up.write(d)) down.pause();
    });
    up.on('drain', () => down.resume());
    up.pipe(down);
    const close = (): void => {
      down.destroy();
      up.destroy();
      sockets.delete(down);
      sockets.delete(up);
    };
    down.on('end', () => up.end());
    down.on('error', close).on('close', close);
    up.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxyPort = (proxy.address() as net.AddressInfo).port;
  const hostKey = hostKeyPair.public.split(' ').slice(0, 2).join(' ');
  const otherHostKey = other.public.split(' ').slice(0, 2).join(' ');

  return {
    host: '127.0.0.1',
    port,
    client,
    encrypted,
    passphrase,
    stranger,
    hostKey,
    otherHostKey,
    knownHosts: (p = port, key = hostKey) => `[127.0.0.1]:${p} ${key}`,
    url: (d, p = port) => `sftp://root@127.0.0.1:${p}${d}`,
    log: () => log,
    proxy: { port: proxyPort, cutAfter: (n) => (cutAfter = n), cuts: () => cuts },
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
