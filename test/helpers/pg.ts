// Databases for one test file on the shared test server.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { seedRagDataset, type SeedOptions } from '../../src/demo/seed.js';

export const adminUrl = (): string => inject('adminUrl');
export const testPassword = (): string => inject('password');

export function urlFor(database: string, base = adminUrl()): string {
  const u = new URL(base.replace(/^postgres(ql)?:/, 'http:'));
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString().replace(/^http:/, 'postgresql:');
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const u = new URL(url.replace(/^postgres(ql)?:/, 'http:'));
  const c = new pg.Client({
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)),
  });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function sql<T extends pg.QueryResultRow = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  return withClient(url, async (c) => (await c.query<T>(text, params)).rows);
}

/** Creates a fresh database (unique name) and returns its URL. */
export async function createDatabase(prefix: string, seed?: SeedOptions | ((c: pg.Client) => Promise<void>)): Promise<{ name: string; url: string }> {
  const name = `${prefix}_${randomBytes(3).toString('hex')}`;
  await withClient(adminUrl(), (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
  const url = urlFor(name);
  if (seed) {
    await withClient(url, async (c) => {
      if (typeof seed === 'function') await seed(c);
      else await seedRagDataset(c, seed);
    });
  }
  return { name, url };
}

export async function dropDatabase(name: string): Promise<void> {
  await withClient(adminUrl(), (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`));
}

export async function tableCounts(url: string): Promise<Record<string, number>> {
  return withClient(url, async (c) => {
    const rels = await c.query<{ s: string; n: string }>(
      `SELECT n.nspname AS s, c.relname AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1, 2`,
    );
    const out: Record<string, number> = {};
    for (const r of rels.rows) {
      const q = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ONLY ${c.escapeIdentifier(r.s)}.${c.escapeIdentifier(r.n)}`);
      out[`${r.s}.${r.n}`] = Number(q.rows[0]!.n);
    }
    return out;
  });
}
