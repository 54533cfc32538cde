// Throwaway PostgreSQL clusters in a temp directory: the test restore's default target, the demo's source and
// the test bed. initdb refuses to run as root, so as root the cluster runs as an unprivileged system user.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BackupError } from '../errors.js';
import { lastLines, run, type Command } from '../exec.js';
import type { Logger } from '../logger.js';
import type { ConnInfo } from './connection.js';
import { discover, extensionDir, type Candidate } from './tools.js';

export interface ClusterOptions {
  binDir: string;
  /** 'trust': Unix socket only, no TCP (the test restore). 'scram': TCP on 127.0.0.1 with a password (test bed). */
  auth: 'trust' | 'scram';
  password?: string;
  superuser?: string;
  /** Extra postgresql.conf settings. */
  settings?: Record<string, string | number>;
  logger?: Logger;
}

export interface Cluster {
  dir: string;
  binDir: string;
  port: number;
  /** Socket directory (trust) or 127.0.0.1 (scram). */
  host: string;
  superuser: string;
  conn(database?: string): ConnInfo;
  stop(): Promise<void>;
}

interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

/** The unprivileged account to run a cluster as when we are root: postgres, else nobody. */
export function clusterUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const wanted of ['postgres', 'nobody']) {
    const line = passwd.split('\n').find((l) => l.startsWith(wanted + ':'));
    if (!line) continue;
    const [name, , uid, gid] = line.split(':');
    return { name: name!, uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Memory for index builds in a throwaway cluster: a quarter of RAM, at most 2 GB (HNSW builds need it). */
export function maintenanceWorkMem(totalBytes = os.totalmem()): string {
  const mb = Math.max(64, Math.min(2048, Math.floor(totalBytes / 4 / 1024 / 1024)));
  return `${mb}MB`;
}

/** Settings for a cluster whose data may be lost: fast restore, no durability. */
export function throwawaySettings(): Record<string, string | number> {
  const cpus = Math.max(1, os.availableParallelism());
  return {
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    wal_level: 'minimal',
    max_wal_senders: 0,
    max_wal_size: '8GB',
    checkpoint_timeout: '30min',
    shared_buffers: '256MB',
    maintenance_work_mem: maintenanceWorkMem(),
    max_parallel_maintenance_workers: Math.max(0, cpus - 1),
    max_worker_processes: Math.max(8, cpus * 2),
    autovacuum: 'off',
    max_connections: 50,
    logging_collector: 'off',
  };
}

function conf(settings: Record<string, string | number>): string {
  return Object.entries(settings)
    .map(([k, v]) => `${k} = ${typeof v === 'number' ? v : `'${String(v).replace(/'/g, "''")}'`}`)
    .join('\n');
}

/**
 * Where to put a cluster that runs as `runAs`: the temp directory when that user can reach it (every ancestor
 * searchable by others), else /tmp.
 */
export function clusterBaseDir(runAs: RunAs | undefined, tmp = os.tmpdir()): string {
  if (!runAs) return tmp;
  let dir = path.resolve(tmp);
  for (;;) {
    try {
      if ((statSync(dir).mode & 0o001) === 0) return '/tmp';
    } catch {
      return '/tmp';
    }
    const parent = path.dirname(dir);
    if (parent === dir) return tmp;
    dir = parent;
  }
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const runAs = clusterUser();
  const dir = await fs.mkdtemp(path.join(clusterBaseDir(runAs), 'pgvb-cluster-'));
  const dataDir = path.join(dir, 'data');
  const superuser = opts.superuser ?? 'postgres';
  const as = (file: string, args: string[]): Command => ({
    file: path.join(opts.binDir, file),
    args,
    env: { ...stripPg(process.env), LC_ALL: 'C' },
    cwd: dir,
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
  });
  let started = false;
  const remove = (): void => {
    process.removeListener('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
  };
  // A run cancelled (or dying) at any point, even while initdb or pg_ctl runs: the server is stopped and its
  // directory removed on the way out, synchronously (the exit handler cannot wait).
  const onExit = (): void => {
    try {
      if (existsSync(path.join(dataDir, 'postmaster.pid'))) {
        const c = as('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', '-t', '10', '-s', 'stop']);
        spawnSync(c.file, c.args, { env: c.env, cwd: c.cwd, stdio: 'ignore', timeout: 15_000, ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}) });
      }
    } catch {
      /* best effort on the way out */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  try {
    if (runAs) await fs.chown(dir, runAs.uid, runAs.gid);
    await fs.chmod(dir, 0o700);
    const initArgs = ['-D', dataDir, '-U', superuser, '-E', 'UTF8', '--locale=C', '--no-sync'];
    if (opts.auth === 'scram') {
      const pwfile = path.join(dir, 'pwfile');
      await fs.writeFile(pwfile, (opts.password ?? '') + '\n', { mode: 0o600 });
      if (runAs) await fs.chown(pwfile, runAs.uid, runAs.gid);
      initArgs.push('--auth-local=scram-sha-256', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`);
    } else {
      initArgs.push('--auth=trust');
    }
    const init = await run(as('initdb', initArgs));
    await fs.rm(path.join(dir, 'pwfile'), { force: true });
    if (init.code !== 0) throw new BackupError(`initdb failed: ${lastLines(init.stderr)}`, 'Check that the PostgreSQL server binaries work and the temp directory is writable', { code: 'target-cluster' });
    const port = await freePort();
    const settings: Record<string, string | number> = {
      port,
      listen_addresses: opts.auth === 'scram' ? '127.0.0.1' : '',
      unix_socket_directories: dir,
      ...throwawaySettings(),
      ...(opts.settings ?? {}),
    };
    if (opts.auth === 'scram') settings.password_encryption = 'scram-sha-256';
    await fs.appendFile(path.join(dataDir, 'postgresql.conf'), '\n' + conf(settings) + '\n');
    const logFile = path.join(dir, 'server.log');
    const start = await run(as('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', '-s', 'start']));
    if (start.code !== 0) {
      let log = '';
      try {
        log = readFileSync(logFile, 'utf8');
      } catch {
        /* no log */
      }
      throw new BackupError(`Starting a throwaway PostgreSQL cluster failed: ${lastLines(start.stderr + '\n' + log)}`, 'Check the PostgreSQL server installation', { code: 'target-cluster' });
    }
    started = true;
    const host = opts.auth === 'scram' ? '127.0.0.1' : dir;
    const cluster: Cluster = {
      dir,
      binDir: opts.binDir,
      port,
      host,
      superuser,
      conn: (database = 'postgres') => {
        const c: ConnInfo = { host, port, user: superuser, database, params: { sslmode: 'disable' } };
        if (opts.password !== undefined) c.password = opts.password;
        return c;
      },
      stop: async () => {
        if (!existsSync(dir)) return;
        await run(as('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', '-s', 'stop'])).catch(() => undefined);
        remove();
      },
    };
    return cluster;
  } catch (err) {
    if (started) await run(as('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', '-s', 'stop'])).catch(() => undefined);
    remove();
    throw err;
  }
}

function stripPg(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('PG')));
}

export interface ServerInstall extends Candidate {
  extensionDir?: string;
}

/** Local server installations (initdb + pg_ctl + postgres), newest first, with their extension directory. */
export async function findServers(env: NodeJS.ProcessEnv, pgBinDir?: string): Promise<ServerInstall[]> {
  const found = await discover('initdb', env, pgBinDir);
  const out: ServerInstall[] = [];
  for (const c of found) {
    if (!existsSync(path.join(c.dir, 'pg_ctl')) || !existsSync(path.join(c.dir, 'postgres'))) continue;
    const ext = await extensionDir(c.dir, c.major);
    out.push(ext ? { ...c, extensionDir: ext } : c);
  }
  return out.sort((a, b) => b.major - a.major);
}

/** Whether a server installation can CREATE EXTENSION each of `extensions` (its control file is present). */
export function providesExtensions(server: ServerInstall, extensions: string[]): string[] {
  const missing: string[] = [];
  for (const e of extensions) {
    if (e === 'plpgsql') continue;
    if (!server.extensionDir || !existsSync(path.join(server.extensionDir, `${e}.control`))) missing.push(e);
  }
  return missing;
}
