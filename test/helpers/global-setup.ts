// Starts one throwaway PostgreSQL + pgvector cluster with password (scram-sha-256) authentication for the whole
// run, or uses PGVB_TEST_DATABASE_URL (a pgvector/pgvector service container on GitHub). Test files create their
// own databases on it.
import type { TestProject } from 'vitest/node';
import { findServers, providesExtensions, startCluster, type Cluster } from '../../src/postgres/cluster.js';

export const TEST_PASSWORD = 'p@ss:/w%rd ü';

let cluster: Cluster | undefined;

export async function setup(project: TestProject): Promise<void> {
  let adminUrl = process.env.PGVB_TEST_DATABASE_URL;
  if (!adminUrl) {
    const servers = (await findServers(process.env)).filter((s) => providesExtensions(s, ['vector']).length === 0);
    const server = servers[0];
    if (!server) throw new Error('No PostgreSQL server with pgvector: run bash test/setup/ensure-pgvector.sh (npm test does)');
    cluster = await startCluster({ binDir: server.dir, auth: 'scram', password: TEST_PASSWORD, settings: { max_connections: 200 } });
    adminUrl = `postgresql://postgres:${encodeURIComponent(TEST_PASSWORD)}@127.0.0.1:${cluster.port}/postgres`;
  }
  project.provide('adminUrl', adminUrl);
  // The leak checks look for the server's password in every form: ours, or the one in PGVB_TEST_DATABASE_URL.
  const given = /^postgres(?:ql)?:\/\/[^:@/]*:([^@/]*)@/.exec(adminUrl)?.[1];
  project.provide('password', cluster ? TEST_PASSWORD : given ? decodeURIComponent(given) : '');
}

export async function teardown(): Promise<void> {
  await cluster?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    password: string;
  }
}
