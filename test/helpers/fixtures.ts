// A database with the shapes a manifest must get right: partitions, a materialized view, quoted names, another
// schema, every pgvector type, NULL vectors, a large object, sequences in use.
import type pg from 'pg';
import { seedRagDataset } from '../../src/demo/seed.js';

export async function seedVariety(c: pg.Client): Promise<void> {
  await seedRagDataset(c, { documents: 300, dimensions: 32, chunksPerDocument: 2 });
  await c.query(`
    CREATE SCHEMA "Search Space";
    CREATE TABLE "Search Space"."My Docs" (id int PRIMARY KEY, "Embedding" vector(3), sparse sparsevec(10), bits bit(16));
    INSERT INTO "Search Space"."My Docs"
      SELECT g, ('[' || g || ',' || g * 2 || ',' || g * 3 || ']')::vector,
             ('{1:' || g || ',5:1}/10')::sparsevec, (g::bit(16))
        FROM generate_series(1, 120) g;
    UPDATE "Search Space"."My Docs" SET "Embedding" = NULL WHERE id % 10 = 0;
    CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY, at date NOT NULL, embedding halfvec(4), PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
    CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    INSERT INTO events (at, embedding) SELECT date '2025-06-01' + (g % 400), ('[' || g || ',1,2,3]')::halfvec FROM generate_series(1, 250) g;
    CREATE INDEX events_embedding ON events USING hnsw (embedding halfvec_l2_ops);
    CREATE MATERIALIZED VIEW doc_stats AS SELECT metadata->>'source' AS source, count(*) AS n FROM documents GROUP BY 1;
    CREATE UNLOGGED TABLE scratch (k text PRIMARY KEY, v int);
    INSERT INTO scratch SELECT 'k' || g, g FROM generate_series(1, 17) g;
    SELECT lo_from_bytea(0, 'large object payload');
  `);
}

/** One table `big` of `rows` rows (256 characters of text and a random vector each): a dump that takes a while. */
export function seedBigTable(rows: number, dimensions: number): (c: pg.Client) => Promise<void> {
  return async (c) => {
    await c.query(`CREATE EXTENSION vector; CREATE TABLE big (id bigserial PRIMARY KEY, body text, e vector(${dimensions}))`);
    await c.query(
      `INSERT INTO big (body, e) SELECT repeat(md5(g::text), 8), (SELECT array_agg(random()::real) FROM generate_series(1, ${dimensions}) WHERE g > 0)::vector FROM generate_series(1, ${rows}) g`,
    );
  };
}
