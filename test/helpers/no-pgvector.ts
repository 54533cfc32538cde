// A real PostgreSQL server without pgvector: a copy of the local installation with the extension's files
// removed (PostgreSQL binaries find share/ and lib/ relative to themselves, so the copy runs as it is).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chown } from 'node:fs/promises';
import { clusterUser, findServers, startCluster, type Cluster } from '../../src/postgres/cluster.js';

export async function startServerWithoutPgvector(password: string): Promise<{ cluster: Cluster; remove: () => Promise<void> }> {
  const server = (await findServers(process.env)).find((s) => s.extensionDir);
  if (!server) throw new Error('no local PostgreSQL server installation');
  const pgConfig = path.join(server.dir, 'pg_config');
  const q = (flag: string): string => execFileSync(pgConfig, [flag], { encoding: 'utf8' }).trim();
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgvb-nopgvector-'));
  for (const dir of [q('--bindir'), q('--sharedir'), q('--pkglibdir')]) cpSync(dir, path.join(root, dir), { recursive: true });
  const ext = path.join(root, q('--sharedir'), 'extension');
  for (const f of readdirSync(ext)) if (f.startsWith('vector')) rmSync(path.join(ext, f));
  rmSync(path.join(root, q('--pkglibdir'), 'vector.so'), { force: true });
  const user = clusterUser();
  if (user) await chown(root, user.uid, user.gid);
  const cluster = await startCluster({ binDir: path.join(root, q('--bindir')), auth: 'scram', password });
  return {
    cluster,
    remove: async () => {
      await cluster.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
