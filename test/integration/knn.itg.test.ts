// The kNN spot check on a real pgvector server, against an independent oracle: distances computed here in
// JavaScript from the stored vectors. Vectors have small integer components, so squared distances are exact in
// pgvector's float arithmetic and in ours, and ties (frequent) must break by key on both sides.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import pg from 'pg';
import { compareInventory } from '../../src/archive/compare.js';
import { readInventory, runKnn, type Inventory, type KnnCheck } from '../../src/postgres/inventory.js';
import { createDatabase, dropDatabase, withClient } from '../helpers/pg.js';

const DIMS = 8;
const ROWS = 300;
const WINDOW = 100;
let db: { name: string; url: string };
let uuidDb: { name: string; url: string };

/** A deterministic pseudo-random vector of integers 0..9. */
function vec(seed: number): number[] {
  let x = (seed * 2654435761) >>> 0;
  return Array.from({ length: DIMS }, () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return (x >>> 16) % 10;
  });
}

/** The k nearest rows to `of` among `rows` (exact L2, ties by key), as the check must report them. */
function oracle(rows: Array<{ key: string; sort: string | number; v: number[] | null }>, of: string, k = 10): string[] {
  const q = rows.find((r) => r.key === of)!.v!;
  return rows
    .filter((r) => r.v !== null)
    .map((r) => ({ r, d: r.v!.reduce((s, x, i) => s + (x - q[i]!) ** 2, 0) }))
    .sort((a, b) => a.d - b.d || (a.r.sort < b.r.sort ? -1 : a.r.sort > b.r.sort ? 1 : 0))
    .slice(0, k)
    .map((x) => x.r.key);
}

async function inventory(url: string, opts: Parameters<typeof readInventory>[1]): Promise<Inventory> {
  return withClient(url, async (c) => {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      return await readInventory(c, opts);
    } finally {
      await c.query('ROLLBACK');
    }
  });
}

async function stored(c: pg.Client, table: string, key: string): Promise<Array<{ key: string; sort: string | number; v: number[] | null }>> {
  const r = await c.query<{ k: string; v: string | null }>(`SELECT ${key}::text AS k, embedding::text AS v FROM ${table}`);
  return r.rows.map((row) => ({ key: row.k, sort: /^\d+$/.test(row.k) ? Number(row.k) : row.k, v: row.v === null ? null : (JSON.parse(row.v) as number[]) }));
}

beforeAll(async () => {
  db = await createDatabase('knn', async (c) => {
    await c.query('CREATE EXTENSION vector');
    await c.query(`CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(${DIMS}))`);
    // Inserted in a shuffled order: the window follows the key, not the physical order.
    const ids = Array.from({ length: ROWS }, (_, i) => i + 1).sort((a, b) => ((a * 7919) % ROWS) - ((b * 7919) % ROWS));
    for (const id of ids) await c.query('INSERT INTO items VALUES ($1, $2)', [id, id % 37 === 0 ? null : `[${vec(id).join(',')}]`]);
    await c.query(`CREATE INDEX ON items USING hnsw (embedding vector_l2_ops)`);
  });
  uuidDb = await createDatabase('knn_uuid', async (c) => {
    await c.query('CREATE EXTENSION vector');
    await c.query(`CREATE TABLE docs (doc uuid PRIMARY KEY, embedding vector(${DIMS}))`);
    for (let i = 1; i <= ROWS; i++) await c.query('INSERT INTO docs VALUES (gen_random_uuid(), $1)', [`[${vec(i + 1000).join(',')}]`]);
  });
});
afterAll(async () => {
  await dropDatabase(db.name);
  await dropDatabase(uuidDb.name);
});

describe('kNN spot check', () => {
  test('searches the first keys only, and finds exactly the oracle\'s neighbours there', async () => {
    const inv = await inventory(db.url, { knnWindow: WINDOW });
    const knn = inv.knn!;
    expect(knn).toMatchObject({ table: 'items', column: 'embedding', key: 'id', keyType: 'bigint', k: 10, upto: String(WINDOW) });
    expect(knn.samples.length).toBe(3);
    const rows = await withClient(db.url, (c) => stored(c, 'items', 'id'));
    const inWindow = rows.filter((r) => Number(r.key) <= WINDOW);
    for (const s of knn.samples) {
      expect(Number(s.id)).toBeLessThanOrEqual(WINDOW);
      expect(s.neighbours).toEqual(oracle(inWindow, s.id));
      expect(s.neighbours.every((n) => Number(n) <= WINDOW && Number(n) % 37 !== 0)).toBe(true);
    }
    // Not what the whole table would give: the window matters.
    expect(knn.samples.some((s) => oracle(rows, s.id).join() !== s.neighbours.join())).toBe(true);
  });

  test('a manifest without a window (before 0.2) is checked over the whole table', async () => {
    const inv = await inventory(db.url, { knnWindow: WINDOW });
    const { upto: _upto, ...old } = inv.knn!;
    const whole = await withClient(db.url, (c) => runKnn(c, old as KnnCheck));
    const rows = await withClient(db.url, (c) => stored(c, 'items', 'id'));
    for (const s of whole.samples) expect(s.neighbours).toEqual(oracle(rows, s.id));
  });

  test('a changed vector inside the window is a mismatch; outside it is not searched', async () => {
    const before = await inventory(db.url, { knnWindow: WINDOW });
    const sample = before.knn!.samples[0]!;
    const sampleVec = await withClient(db.url, async (c) => (await c.query<{ v: string }>('SELECT embedding::text AS v FROM items WHERE id = $1', [sample.id])).rows[0]!.v);
    const victimOutside = String(WINDOW + 50);
    const victimInside = sample.neighbours.at(-1)!;
    try {
      // Outside: even an exact copy of the sample's vector is not in the window.
      await withClient(db.url, (c) => c.query('UPDATE items SET embedding = $1 WHERE id = $2', [sampleVec, victimOutside]));
      const after = await inventory(db.url, { knnFrom: before.knn! });
      expect(compareInventory({ ...before, knn: before.knn ?? null }, after).knn?.ok).toBe(true);
      // Inside: a row that was the 10th nearest becomes a distance-0 neighbour.
      await withClient(db.url, (c) => c.query('UPDATE items SET embedding = $1 WHERE id = $2', [sampleVec, victimInside]));
      const changed = await inventory(db.url, { knnFrom: before.knn! });
      const cmp = compareInventory({ ...before, knn: before.knn ?? null }, changed);
      expect(cmp.knn?.ok).toBe(false);
      expect(cmp.mismatches.some((m) => m.kind === 'knn' && m.object.includes(`id=${sample.id}`))).toBe(true);
    } finally {
      await withClient(db.url, async (c) => {
        await c.query('UPDATE items SET embedding = $1 WHERE id = $2', [`[${vec(Number(victimOutside)).join(',')}]`, victimOutside]);
        await c.query('UPDATE items SET embedding = $1 WHERE id = $2', [Number(victimInside) % 37 === 0 ? null : `[${vec(Number(victimInside)).join(',')}]`, victimInside]);
      });
    }
  });

  test('uuid keys: the window is the first keys in uuid order', async () => {
    const inv = await inventory(uuidDb.url, { knnWindow: WINDOW });
    const knn = inv.knn!;
    const rows = await withClient(uuidDb.url, (c) => stored(c, 'docs', 'doc'));
    const sorted = rows.map((r) => r.key).sort();
    expect(knn.keyType).toBe('uuid');
    expect(knn.upto).toBe(sorted[WINDOW - 1]);
    const inWindow = rows.filter((r) => r.key <= knn.upto!);
    expect(inWindow.length).toBe(WINDOW);
    for (const s of knn.samples) expect(s.neighbours).toEqual(oracle(inWindow, s.id));
  });

  test('a table smaller than the window is searched whole', async () => {
    const inv = await inventory(db.url, {});
    expect(inv.knn!.upto).toBe(String(ROWS));
    const rows = await withClient(db.url, (c) => stored(c, 'items', 'id'));
    for (const s of inv.knn!.samples) expect(s.neighbours).toEqual(oracle(rows, s.id));
  });
});
