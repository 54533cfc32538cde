// Where a test restore goes, in order: test-restore-url (a temporary database there), a throwaway local
// cluster from PostgreSQL binaries that can provide every extension, a pgvector Docker container. Never the
// source server unless test-restore-url points there. Each target knows how to remove itself.
import { randomBytes } from 'node:crypto';
import type { Manifest } from '../archive/manifest.js';
import { compareVersions } from '../archive/compare.js';
import { BackupError } from '../errors.js';
import { run, type Command } from '../exec.js';
import type { Logger } from '../logger.js';
import { startCluster, findServers, providesExtensions, freePort } from './cluster.js';
import { connect, resolveConnection, withDatabase, type ConnInfo } from './connection.js';
import { dockerAvailable, findClientTools, pgvectorImage, serverMajor, type PgTools } from './tools.js';

export interface RestoreTarget {
  kind: 'url' | 'local-cluster' | 'docker';
  description: string;
  /** The (empty) database to restore into. */
  conn: ConnInfo;
  tools: PgTools;
  /** Roles created for this restore (dropped at cleanup on shared servers). */
  createdRoles: string[];
  /** Drops what the target created: database, roles, cluster, container. Safe to call twice. */
  cleanup(): Promise<void>;
}

export interface TargetOptions {
  testRestoreUrl?: string;
  env: NodeJS.ProcessEnv;
  pgBinDir?: string;
  logger: Logger;
}

export function tempDatabaseName(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `pgvb_test_${stamp}_${randomBytes(3).toString('hex')}`;
}

const manifestMajor = (m: Manifest): number => serverMajor(m.server.versionNum);

/** Extensions the target must provide (plpgsql is always there). */
function neededExtensions(m: Manifest): Array<{ name: string; version: string }> {
  return m.extensions.filter((e) => e.name !== 'plpgsql');
}

export async function acquireTarget(manifest: Manifest, opts: TargetOptions): Promise<RestoreTarget> {
  if (opts.testRestoreUrl) return urlTarget(manifest, opts);
  const reasons: string[] = [];
  const local = await localTarget(manifest, opts, reasons);
  if (local) return local;
  if (await dockerAvailable(opts.env)) return dockerTarget(manifest, opts);
  reasons.push('Docker is not available');
  const exts = neededExtensions(manifest).map((e) => e.name).join(', ') || 'none';
  throw new BackupError(
    `No test-restore target can provide PostgreSQL ${manifestMajor(manifest)}+ with the extensions ${exts} (${reasons.join('; ')})`,
    `Fix one of: (1) set test-restore-url to a server with those extensions, e.g. a ${pgvectorImage(manifestMajor(manifest))} service container; ` +
      `(2) install the PostgreSQL server and pgvector on this machine (apt-get install postgresql-${manifestMajor(manifest)}-pgvector); (3) make Docker available. Or set verify: quick to skip the test restore`,
    { code: 'target-none' },
  );
}

/** Checks that a server can provide every extension the manifest lists, at the same or a newer version. */
export async function checkExtensions(conn: ConnInfo, manifest: Manifest, where: string): Promise<void> {
  const client = await connect(conn);
  try {
    const r = await client.query<{ name: string; versions: string[] }>(
      `SELECT name, array_agg(version ORDER BY version) AS versions FROM pg_available_extension_versions GROUP BY name`,
    );
    const available = new Map(r.rows.map((x) => [x.name, x.versions]));
    for (const e of neededExtensions(manifest)) {
      const versions = available.get(e.name);
      if (!versions) {
        throw new BackupError(
          `The test-restore target ${where} does not have the ${e.name} extension (the backup needs ${e.name} ${e.version})`,
          e.name === 'vector' ? `Use a server with pgvector ${e.version} or newer, e.g. the ${pgvectorImage(manifestMajor(manifest))} image` : `Install ${e.name} on the target`,
          { code: 'target-extension' },
        );
      }
      const best = [...versions].sort(compareVersions).pop()!;
      if (compareVersions(best, e.version) < 0) {
        throw new BackupError(
          `The test-restore target ${where} has ${e.name} ${best}, older than the backup's ${e.version}`,
          e.name === 'vector' ? `Use pgvector ${e.version} or newer (a current ${pgvectorImage(manifestMajor(manifest))} image)` : `Upgrade ${e.name} on the target`,
          { code: 'target-extension' },
        );
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function urlTarget(manifest: Manifest, opts: TargetOptions): Promise<RestoreTarget> {
  const admin = resolveConnection(opts.testRestoreUrl, {}, 'test-restore-url');
  const where = `${admin.host}:${admin.port}`;
  const client = await connect(admin);
  let major: number;
  try {
    const v = await client.query<{ n: string }>(`SELECT current_setting('server_version_num') AS n`);
    major = serverMajor(Number(v.rows[0]!.n));
  } finally {
    await client.end().catch(() => undefined);
  }
  if (major < manifestMajor(manifest)) {
    throw new BackupError(
      `The test-restore target ${where} runs PostgreSQL ${major}, older than the backup's source (${manifest.server.version})`,
      `Use a PostgreSQL ${manifestMajor(manifest)} or newer server, e.g. the ${pgvectorImage(manifestMajor(manifest))} image`,
      { code: 'target-old-server' },
    );
  }
  await checkExtensions(admin, manifest, where);
  const tools = await findClientTools(Math.max(major, manifest.pgDump.major), { env: opts.env, logger: opts.logger, ...(opts.pgBinDir ? { pgBinDir: opts.pgBinDir } : {}) });
  const dbName = tempDatabaseName();
  const c = await connect(admin);
  try {
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(dbName)} TEMPLATE template0`);
  } catch (err) {
    throw new BackupError(`Cannot create a temporary database on the test-restore target ${where}: ${(err as Error).message}`, 'The test-restore-url user needs CREATEDB', { code: 'target-createdb', cause: err });
  } finally {
    await c.end().catch(() => undefined);
  }
  const target: RestoreTarget = {
    kind: 'url',
    description: `temporary database ${dbName} on ${where}`,
    conn: withDatabase(admin, dbName),
    tools,
    createdRoles: [],
    cleanup: async () => {
      const a = await connect(admin).catch(() => undefined);
      if (!a) return;
      try {
        await a.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [dbName]);
        await a.query(`DROP DATABASE IF EXISTS ${a.escapeIdentifier(dbName)}`);
        for (const r of target.createdRoles.splice(0)) await a.query(`DROP ROLE IF EXISTS ${a.escapeIdentifier(r)}`).catch(() => undefined);
      } finally {
        await a.end().catch(() => undefined);
      }
    },
  };
  return target;
}

async function localTarget(manifest: Manifest, opts: TargetOptions, reasons: string[]): Promise<RestoreTarget | undefined> {
  const need = manifestMajor(manifest);
  const servers = (await findServers(opts.env, opts.pgBinDir)).filter((s) => s.major >= need);
  if (!servers.length) {
    reasons.push(`no local PostgreSQL ${need}+ server binaries`);
    return undefined;
  }
  // Lowest fitting major first: closest to the source.
  servers.sort((a, b) => a.major - b.major);
  const exts = neededExtensions(manifest).map((e) => e.name);
  const server = servers.find((s) => providesExtensions(s, exts).length === 0);
  if (!server) {
    const s = servers[0]!;
    reasons.push(`the local PostgreSQL ${s.major} (${s.dir}) lacks ${providesExtensions(s, exts).join(', ')}`);
    return undefined;
  }
  if (server.major < manifest.pgDump.major) {
    reasons.push(`the local PostgreSQL ${server.major} cannot read a pg_dump ${manifest.pgDump.major} archive`);
    return undefined;
  }
  opts.logger.info(`Starting a throwaway PostgreSQL ${server.version} cluster (${server.dir})`);
  const cluster = await startCluster({ binDir: server.dir, auth: 'trust', logger: opts.logger });
  const conn = cluster.conn('restore');
  try {
    await checkExtensions(cluster.conn('postgres'), manifest, 'local cluster');
    const c = await connect(cluster.conn('postgres'));
    await c.query('CREATE DATABASE restore TEMPLATE template0');
    await c.end();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return {
    kind: 'local-cluster',
    description: `throwaway PostgreSQL ${server.version} cluster`,
    conn,
    tools: { kind: 'local', dir: server.dir, major: server.major, version: server.version },
    createdRoles: [],
    cleanup: () => cluster.stop(),
  };
}

/** `docker run` for a throwaway pgvector server on a loopback port; the password comes from the environment. */
export function dockerRunArgs(name: string, image: string, port: number): string[] {
  return ['run', '-d', '--rm', '--name', name, '-e', 'POSTGRES_PASSWORD', '-p', `127.0.0.1:${port}:5432`, image, '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'maintenance_work_mem=1GB'];
}

async function dockerTarget(manifest: Manifest, opts: TargetOptions): Promise<RestoreTarget> {
  const major = manifestMajor(manifest);
  const image = pgvectorImage(Math.max(major, manifest.pgDump.major));
  const name = `pgvb-test-${randomBytes(4).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  const port = await freePort();
  const env = { ...opts.env, POSTGRES_PASSWORD: password };
  opts.logger.info(`Starting ${image} in Docker for the test restore`);
  const started = await run({ file: 'docker', args: dockerRunArgs(name, image, port), env });
  if (started.code !== 0) throw new BackupError(`docker run ${image} failed: ${started.stderr.trim()}`, 'Check that Docker can pull the image', { code: 'target-docker' });
  const stop = async (): Promise<void> => {
    await run({ file: 'docker', args: ['rm', '-f', name], env: opts.env } satisfies Command).catch(() => undefined);
  };
  const admin: ConnInfo = { host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', params: { sslmode: 'disable' } };
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const c = await connect(admin).catch(() => undefined);
      if (c) {
        await c.query('CREATE DATABASE restore TEMPLATE template0');
        await c.end();
        break;
      }
      if (Date.now() > deadline) throw new BackupError(`${image} did not accept connections within 90 s`, 'Check the Docker daemon', { code: 'target-docker' });
      await new Promise((r) => setTimeout(r, 1000));
    }
    await checkExtensions(admin, manifest, image);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    kind: 'docker',
    description: `${image} container`,
    conn: withDatabase(admin, 'restore'),
    tools: { kind: 'docker', image, major, version: String(major) },
    createdRoles: [],
    cleanup: stop,
  };
}
