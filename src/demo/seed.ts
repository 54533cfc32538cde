// A small RAG-shaped dataset: documents with 384-dimensional embeddings and an HNSW index, chunks with a
// halfvec column and an IVFFlat index, a sequence in use. Deterministic (setseed), built server-side.
import type pg from 'pg';

export interface SeedOptions {
  documents?: number;
  dimensions?: number;
  chunksPerDocument?: number;
}

export async function seedRagDataset(client: pg.Client, opts: SeedOptions = {}): Promise<{ documents: number; chunks: number }> {
  const docs = opts.documents ?? 2000;
  const dims = opts.dimensions ?? 384;
  const perDoc = opts.chunksPerDocument ?? 2;
  await client.query('CREATE EXTENSION IF NOT EXISTS vector');
  await client.query('SELECT setseed(0.42)');
  await client.query(`
    CREATE TABLE documents (
      id bigserial PRIMARY KEY,
      title text NOT NULL,
      body text NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}',
      embedding vector(${dims}),
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
  await client.query(`
    INSERT INTO documents (title, body, metadata, embedding)
    SELECT 'Document ' || g,
           repeat('Retrieval augmented generation keeps answers grounded. ', 4 + g % 5),
           jsonb_build_object('source', CASE WHEN g % 3 = 0 THEN 'wiki' ELSE 'docs' END, 'n', g),
           CASE WHEN g % 50 = 0 THEN NULL
                ELSE (SELECT array_agg(random()::real) FROM generate_series(1, ${dims}) WHERE g > 0)::vector END
      FROM generate_series(1, ${docs}) AS g`);
  await client.query(`CREATE INDEX documents_embedding_hnsw ON documents USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)`);
  await client.query(`CREATE INDEX documents_metadata_gin ON documents USING gin (metadata)`);
  await client.query(`
    CREATE TABLE chunks (
      id serial PRIMARY KEY,
      document_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
      ordinal int NOT NULL,
      content text NOT NULL,
      embedding halfvec(64)
    )`);
  await client.query(`
    INSERT INTO chunks (document_id, ordinal, content, embedding)
    SELECT d.id, o, 'chunk ' || o || ' of ' || d.title,
           (SELECT array_agg(random()::real) FROM generate_series(1, 64) WHERE d.id > 0 AND o > 0)::halfvec
      FROM documents d CROSS JOIN generate_series(1, ${perDoc}) AS o`);
  await client.query(`CREATE INDEX chunks_embedding_ivfflat ON chunks USING ivfflat (embedding halfvec_l2_ops) WITH (lists = 10)`);
  await client.query(`CREATE INDEX chunks_document ON chunks (document_id)`);
  await client.query('ANALYZE');
  return { documents: docs, chunks: docs * perDoc };
}
