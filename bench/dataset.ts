// The benchmark's dataset: tables of (id, text, jsonb metadata, vector) generated from a seeded PRNG in this
// process and streamed into the server as binary COPY (psql reads it from its stdin), so the same seed and
// options give the same rows on any machine and PostgreSQL version. Then the primary keys, the HNSW indexes and
// VACUUM (FREEZE, ANALYZE), so that every round reads the same, fully hinted pages.
import { spawn } from 'node:child_process';
import os from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';

/** sfc32, seeded through splitmix32: small, fast and the same everywhere. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  const split = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
}

const WORDS = (
  'retrieval augmented generation keeps answers grounded in documents that were chunked embedded and indexed ' +
  'the vector index returns nearest neighbours by cosine distance while a reranker orders candidates by relevance ' +
  'latency budget recall precision context window prompt citation source paragraph section manual policy invoice ' +
  'customer ticket release note changelog incident postmortem runbook deployment cluster replica backup restore ' +
  'schema migration table column row transaction snapshot checkpoint query planner statistics vacuum analyze'
).split(' ');
const SOURCES = ['wiki', 'docs', 'tickets', 'slack', 'email', 'pdf', 'web', 'code'];
const LANGS = ['en', 'de', 'fr', 'es'];

export function bodyText(rand: () => number, chars: number): string {
  let s = '';
  while (s.length < chars) s += WORDS[Math.floor(rand() * WORDS.length)]! + (rand() < 0.08 ? '. ' : ' ');
  return s.slice(0, chars);
}

export function metadata(rand: () => number, id: number): string {
  return JSON.stringify({
    source: SOURCES[Math.floor(rand() * SOURCES.length)],
    lang: LANGS[Math.floor(rand() * LANGS.length)],
    page: 1 + Math.floor(rand() * 400),
    doc: `doc-${Math.floor(id / 7)}`,
    tags: [WORDS[Math.floor(rand() * WORDS.length)], WORDS[Math.floor(rand() * WORDS.length)]],
    score: Math.round(rand() * 1000) / 1000,
  });
}

/** A unit-length vector of Gaussian components (Box-Muller), like a normalised embedding. */
export function embedding(rand: () => number, dims: number, out: Float64Array): void {
  let norm = 0;
  for (let i = 0; i < dims; i += 2) {
    const u = 1 - rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < dims) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  for (let i = 0; i < dims; i++) norm += out[i]! * out[i]!;
  const k = 1 / Math.sqrt(norm);
  for (let i = 0; i < dims; i++) out[i]! *= k;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 bits of x (round to nearest), for halfvec's binary input. */
export function halfBits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 0xff) - 127 + 15;
  const mant = b & 0x7fffff;
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    return sign | (((mant | 0x800000) >>> (1 - exp)) + 0x1000) >>> 13;
  }
  return (sign | (exp << 10) | (mant >>> 13)) + ((mant >>> 12) & 1);
}

const HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);

/** Binary COPY rows of one table: (id int8, body text, metadata jsonb, embedding vector|halfvec). */
export function copyStream(o: { firstId: number; rows: number; dims: number; halfvec: boolean; textChars: number; seed: number }): Readable {
  const rand = prng(o.seed);
  const values = new Float64Array(o.dims);
  const vecBytes = 4 + o.dims * (o.halfvec ? 2 : 4);
  let i = 0;
  let done = false;
  return new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (done) return;
      const parts: Buffer[] = i === 0 ? [HEADER] : [];
      const end = Math.min(o.rows, i + 256);
      for (; i < end; i++) {
        const id = o.firstId + i;
        const body = Buffer.from(bodyText(rand, o.textChars), 'utf8');
        const meta = Buffer.from(metadata(rand, id), 'utf8');
        embedding(rand, o.dims, values);
        const row = Buffer.alloc(2 + 12 + 4 + body.length + 5 + meta.length + 4 + vecBytes);
        let p = row.writeInt16BE(4, 0);
        p = row.writeInt32BE(8, p);
        p = row.writeBigInt64BE(BigInt(id), p);
        p = row.writeInt32BE(body.length, p);
        p += body.copy(row, p);
        p = row.writeInt32BE(meta.length + 1, p);
        p = row.writeUInt8(1, p); // jsonb binary format version
        p += meta.copy(row, p);
        p = row.writeInt32BE(vecBytes, p);
        p = row.writeInt16BE(o.dims, p);
        p = row.writeInt16BE(0, p);
        for (let d = 0; d < o.dims; d++) p = o.halfvec ? row.writeUInt16BE(halfBits(values[d]!), p) : row.writeFloatBE(values[d]!, p);
        parts.push(row);
      }
      if (i >= o.rows) {
        parts.push(Buffer.from([0xff, 0xff]));
        done = true;
      }
      this.push(Buffer.concat(parts));
      if (done) this.push(null);
    },
  });
}

export interface Table {
  schema: string;
  name: string;
  rows: number;
}

export interface SeedResult {
  tables: Table[];
  seedSeconds: number;
  indexSeconds: number;
}

/** Streams rows into `table` through psql (binary COPY from its stdin). */
async function copyInto(psql: string, env: NodeJS.ProcessEnv, db: string, table: string, data: Readable): Promise<void> {
  const child = spawn(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', `COPY ${table} FROM STDIN WITH (FORMAT binary)`], { env, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  await pipeline(data, child.stdin);
  const code = await exited;
  if (code !== 0) throw new Error(`COPY into ${table} failed (psql exit ${code}): ${stderr.trim()}`);
}

export async function seed(
  client: pg.Client,
  o: { rows: number; dims: number; halfvec: boolean; tables: number; textChars: number; seed: number; index: boolean; psql: string; env: NodeJS.ProcessEnv; db: string; log: (s: string) => void },
): Promise<SeedResult> {
  const type = o.halfvec ? 'halfvec' : 'vector';
  const tables: Table[] = [];
  const t0 = Date.now();
  await client.query('CREATE EXTENSION IF NOT EXISTS vector');
  for (let t = 0; t < o.tables; t++) {
    const name = o.tables === 1 ? 'items' : `items_${t + 1}`;
    const rows = Math.floor(o.rows / o.tables) + (t < o.rows % o.tables ? 1 : 0);
    await client.query(`CREATE TABLE public.${name} (id bigint NOT NULL, body text NOT NULL, metadata jsonb NOT NULL, embedding ${type}(${o.dims}))`);
    o.log(`  seeding public.${name}: ${rows.toLocaleString('en-US')} rows`);
    await copyInto(o.psql, o.env, o.db, `public.${name}`, copyStream({ firstId: 1, rows, dims: o.dims, halfvec: o.halfvec, textChars: o.textChars, seed: o.seed * 1000 + t }));
    await client.query(`ALTER TABLE public.${name} ADD PRIMARY KEY (id)`);
    tables.push({ schema: 'public', name, rows });
  }
  const seedSeconds = (Date.now() - t0) / 1000;
  const t1 = Date.now();
  if (!o.index) {
    await client.query('VACUUM (FREEZE, ANALYZE)');
    return { tables, seedSeconds, indexSeconds: 0 };
  }
  // The source's indexes are built fast (the cluster's own default stays PostgreSQL's 64MB: restores pay that).
  await client.query(`SET maintenance_work_mem = '2GB'`);
  await client.query(`SET max_parallel_maintenance_workers = ${Math.max(0, os.availableParallelism() - 1)}`);
  for (const t of tables) {
    o.log(`  building the HNSW index of ${t.schema}.${t.name}`);
    await client.query(`CREATE INDEX ${t.name}_embedding_hnsw ON ${t.schema}.${t.name} USING hnsw (embedding ${type}_cosine_ops) WITH (m = 16, ef_construction = 64)`);
  }
  await client.query('RESET maintenance_work_mem');
  await client.query('RESET max_parallel_maintenance_workers');
  const indexSeconds = (Date.now() - t1) / 1000;
  await client.query('VACUUM (FREEZE, ANALYZE)');
  return { tables, seedSeconds, indexSeconds };
}

/** md5 over the first rows of every table in text form: equal for equal seeds and options. */
export async function fingerprint(client: pg.Client, tables: Table[]): Promise<string> {
  const parts = tables.map((t) => `(SELECT string_agg(x::text, '' ORDER BY x.id) FROM (SELECT * FROM ${t.schema}.${t.name} ORDER BY id LIMIT 50) x)`);
  const r = await client.query<{ f: string }>(`SELECT md5(${parts.join(' || ')}) AS f`);
  return r.rows[0]!.f;
}
