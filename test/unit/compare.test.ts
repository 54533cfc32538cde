import { describe, expect, test } from 'vitest';
import { compareInventory, compareVersions, describeMismatch, type Mismatch } from '../../src/archive/compare.js';
import type { Manifest } from '../../src/archive/manifest.js';
import type { Inventory } from '../../src/postgres/inventory.js';

describe('compareVersions', () => {
  test.each([
    ['0.8.0', '0.7.4', 1],
    ['0.7.4', '0.8.0', -1],
    ['0.8.0', '0.8.0', 0],
    ['0.8', '0.8.0', 0],
    ['0.8.0', '0.8', 0],
    ['0.10.0', '0.9.9', 1],
    ['0.9.9', '0.10.0', -1],
    ['1.0', '0.99', 1],
    ['1.2.3', '1.2.10', -1],
    ['2', '10', -1],
    ['1.0-beta', '1.0-alpha', 1],
    ['1.0-alpha', '1.0-alpha', 0],
    ['1.5', '1.5.1', -1],
  ])('compareVersions(%s, %s) = %i', (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected);
  });
});

type Expected = Pick<Manifest, 'tables' | 'indexes' | 'sequences' | 'extensions' | 'largeObjects' | 'knn'>;

/** A small RAG-like database: documents with an embedding, an HNSW index and a sequence. */
function expectedFixture(): Expected {
  return {
    tables: [
      {
        schema: 'public',
        name: 'documents',
        kind: 'table',
        unlogged: false,
        rows: 1000,
        vectorColumns: [
          { name: 'embedding', type: 'vector', dimensions: 384, nonNull: 990 },
          { name: 'sparse', type: 'sparsevec', dimensions: 30000, nonNull: 12 },
        ],
        hasData: true,
      },
      { schema: 'public', name: 'tags', kind: 'table', unlogged: false, rows: 5, vectorColumns: [], hasData: true },
    ],
    indexes: [
      { schema: 'public', table: 'documents', name: 'documents_pkey', method: 'btree', definition: 'CREATE UNIQUE INDEX documents_pkey ON public.documents USING btree (id)', valid: true },
      {
        schema: 'public',
        table: 'documents',
        name: 'documents_embedding_idx',
        method: 'hnsw',
        definition: 'CREATE INDEX documents_embedding_idx ON public.documents USING hnsw (embedding vector_cosine_ops) WITH (m=16)',
        valid: true,
      },
    ],
    sequences: [
      { schema: 'public', name: 'documents_id_seq', lastValue: '1000' },
      { schema: 'public', name: 'unused_seq', lastValue: null },
    ],
    extensions: [
      { name: 'plpgsql', version: '1.0', schema: 'pg_catalog' },
      { name: 'vector', version: '0.8.0', schema: 'public' },
    ],
    largeObjects: 2,
    knn: {
      schema: 'public',
      table: 'documents',
      column: 'embedding',
      key: 'id',
      keyType: 'bigint',
      operator: '<=>',
      k: 3,
      samples: [
        { id: '1', neighbours: ['1', '7', '9'] },
        { id: '42', neighbours: ['42', '3', '8'] },
      ],
    },
  };
}

/** The restored inventory: an exact copy of the expected one, as a restore that worked produces. */
function actualFixture(): Inventory {
  const e = structuredClone(expectedFixture());
  return {
    database: 'restore_1',
    serverVersion: '16.4',
    serverVersionNum: 160004,
    extensions: e.extensions,
    tables: e.tables,
    indexes: e.indexes,
    sequences: e.sequences,
    largeObjects: e.largeObjects,
    roles: [],
    knn: e.knn!,
  };
}

function compareWith(change: (actual: Inventory) => void): Mismatch[] {
  const actual = actualFixture();
  change(actual);
  return compareInventory(expectedFixture(), actual).mismatches;
}

describe('compareInventory', () => {
  test('an identical restore has no mismatches and an all-ok report', () => {
    expect(compareInventory(expectedFixture(), actualFixture())).toEqual({
      mismatches: [],
      tables: [
        { table: 'public.documents', expectedRows: 1000, restoredRows: 1000, vectors: 'embedding: 990/990, sparse: 12/12', indexes: '2/2', ok: true },
        { table: 'public.tags', expectedRows: 5, restoredRows: 5, vectors: '-', indexes: '-', ok: true },
      ],
      knn: { table: 'public.documents', samples: 2, k: 3, ok: true },
    });
  });

  test.each<{ name: string; change: (a: Inventory) => void; expected: Mismatch[] }>([
    {
      name: 'row count differs',
      change: (a) => (a.tables[1]!.rows = 4),
      expected: [{ kind: 'rows', object: 'public.tags', expected: '5', actual: '4' }],
    },
    {
      name: 'table missing (its indexes with it)',
      change: (a) => {
        a.tables = a.tables.filter((t) => t.name !== 'documents');
        a.indexes = [];
      },
      expected: [
        { kind: 'table', object: 'public.documents', expected: 'present', actual: 'missing' },
        { kind: 'index', object: 'public.documents_pkey', expected: 'CREATE UNIQUE INDEX documents_pkey ON public.documents USING btree (id)', actual: 'missing' },
        {
          kind: 'index',
          object: 'public.documents_embedding_idx',
          expected: 'CREATE INDEX documents_embedding_idx ON public.documents USING hnsw (embedding vector_cosine_ops) WITH (m=16)',
          actual: 'missing',
        },
      ],
    },
    {
      name: 'index missing',
      change: (a) => (a.indexes = a.indexes.filter((i) => i.name !== 'documents_embedding_idx')),
      expected: [
        {
          kind: 'index',
          object: 'public.documents_embedding_idx',
          expected: 'CREATE INDEX documents_embedding_idx ON public.documents USING hnsw (embedding vector_cosine_ops) WITH (m=16)',
          actual: 'missing',
        },
      ],
    },
    {
      name: 'index not valid',
      change: (a) => (a.indexes[1]!.valid = false),
      expected: [{ kind: 'index', object: 'public.documents_embedding_idx', expected: 'valid', actual: 'invalid (indisvalid = false)' }],
    },
    {
      name: 'index definition differs',
      change: (a) => (a.indexes[1]!.definition = 'CREATE INDEX documents_embedding_idx ON public.documents USING ivfflat (embedding vector_cosine_ops)'),
      expected: [
        {
          kind: 'index',
          object: 'public.documents_embedding_idx',
          expected: 'CREATE INDEX documents_embedding_idx ON public.documents USING hnsw (embedding vector_cosine_ops) WITH (m=16)',
          actual: 'CREATE INDEX documents_embedding_idx ON public.documents USING ivfflat (embedding vector_cosine_ops)',
        },
      ],
    },
    {
      name: 'vector column dimension differs',
      change: (a) => (a.tables[0]!.vectorColumns[0]!.dimensions = 768),
      expected: [{ kind: 'vector column', object: 'public.documents.embedding', expected: 'vector(384)', actual: 'vector(768)' }],
    },
    {
      name: 'vector column type differs',
      change: (a) => (a.tables[0]!.vectorColumns[0]!.type = 'halfvec'),
      expected: [{ kind: 'vector column', object: 'public.documents.embedding', expected: 'vector(384)', actual: 'halfvec(384)' }],
    },
    {
      name: 'vector column lost its typmod',
      change: (a) => (a.tables[0]!.vectorColumns[0]!.dimensions = null),
      expected: [{ kind: 'vector column', object: 'public.documents.embedding', expected: 'vector(384)', actual: 'vector()' }],
    },
    {
      name: 'vector column missing',
      change: (a) => (a.tables[0]!.vectorColumns = a.tables[0]!.vectorColumns.slice(1)),
      expected: [{ kind: 'vector column', object: 'public.documents.embedding', expected: 'vector(384)', actual: 'missing' }],
    },
    {
      name: 'non-null vector count differs',
      change: (a) => (a.tables[0]!.vectorColumns[1]!.nonNull = 11),
      expected: [{ kind: 'vector column', object: 'public.documents.sparse', expected: '12 non-null', actual: '11 non-null' }],
    },
    {
      name: 'sequence restored lower than recorded',
      change: (a) => (a.sequences[0]!.lastValue = '999'),
      expected: [{ kind: 'sequence', object: 'public.documents_id_seq', expected: 'last_value >= 1000', actual: '999' }],
    },
    {
      name: 'sequence restored as never used',
      change: (a) => (a.sequences[0]!.lastValue = null),
      expected: [{ kind: 'sequence', object: 'public.documents_id_seq', expected: 'last_value >= 1000', actual: 'null' }],
    },
    {
      name: 'sequence restored higher than recorded is fine',
      change: (a) => (a.sequences[0]!.lastValue = '1005'),
      expected: [],
    },
    {
      name: 'sequence recorded as never used: any restored value is fine',
      change: (a) => (a.sequences[1]!.lastValue = '17'),
      expected: [],
    },
    {
      name: 'sequence missing',
      change: (a) => (a.sequences = a.sequences.slice(0, 1)),
      expected: [{ kind: 'sequence', object: 'public.unused_seq', expected: 'present', actual: 'missing' }],
    },
    {
      name: 'extension missing',
      change: (a) => (a.extensions = a.extensions.filter((e) => e.name !== 'vector')),
      expected: [{ kind: 'extension', object: 'vector', expected: '0.8.0', actual: 'missing' }],
    },
    {
      name: 'extension older',
      change: (a) => (a.extensions[1]!.version = '0.7.4'),
      expected: [{ kind: 'extension', object: 'vector', expected: '>= 0.8.0', actual: '0.7.4' }],
    },
    {
      name: 'extension newer is fine',
      change: (a) => (a.extensions[1]!.version = '0.10.1'),
      expected: [],
    },
    {
      name: 'large objects differ',
      change: (a) => (a.largeObjects = 0),
      expected: [{ kind: 'large objects', object: 'pg_largeobject_metadata', expected: '2', actual: '0' }],
    },
    {
      name: 'kNN neighbours differ',
      change: (a) => (a.knn!.samples[1]!.neighbours = ['42', '8', '3']),
      expected: [{ kind: 'knn', object: 'public.documents.embedding nearest 3 of id=42', expected: '42,3,8', actual: '42,8,3' }],
    },
    {
      name: 'kNN sample missing',
      change: (a) => (a.knn!.samples = a.knn!.samples.slice(1)),
      expected: [{ kind: 'knn', object: 'public.documents.embedding nearest 3 of id=1', expected: '1,7,9', actual: 'missing' }],
    },
    {
      name: 'kNN not run',
      change: (a) => delete a.knn,
      expected: [{ kind: 'knn', object: 'public.documents.embedding', expected: '2 samples', actual: 'not run' }],
    },
    {
      name: 'extra objects in the restore are not mismatches',
      change: (a) => {
        a.tables.push({ schema: 'public', name: 'extra', kind: 'table', unlogged: false, rows: 1, vectorColumns: [], hasData: true });
        a.extensions.push({ name: 'pg_trgm', version: '1.6', schema: 'public' });
      },
      expected: [],
    },
  ])('$name', ({ change, expected }) => {
    expect(compareWith(change)).toEqual(expected);
  });

  test('bigint sequence values compare exactly beyond 2^53', () => {
    const expected = { ...expectedFixture(), sequences: [{ schema: 's', name: 'big', lastValue: '9223372036854775807' }] };
    const lower = { ...actualFixture(), sequences: [{ schema: 's', name: 'big', lastValue: '9223372036854775806' }] };
    expect(compareInventory(expected, lower).mismatches).toEqual([
      { kind: 'sequence', object: 's.big', expected: 'last_value >= 9223372036854775807', actual: '9223372036854775806' },
    ]);
    const equal = { ...actualFixture(), sequences: [{ schema: 's', name: 'big', lastValue: '9223372036854775807' }] };
    expect(compareInventory(expected, equal).mismatches).toEqual([]);
  });

  test('per-table report rows show what went wrong where', () => {
    const actual = actualFixture();
    actual.tables[0]!.rows = 998;
    actual.tables[0]!.vectorColumns[0]!.nonNull = 988;
    actual.indexes[1]!.valid = false;
    const c = compareInventory(expectedFixture(), actual);
    expect(c.tables).toEqual([
      { table: 'public.documents', expectedRows: 1000, restoredRows: 998, vectors: 'embedding: 988/990, sparse: 12/12', indexes: '1/2', ok: false },
      { table: 'public.tags', expectedRows: 5, restoredRows: 5, vectors: '-', indexes: '-', ok: true },
    ]);
    expect(c.mismatches.map((m) => m.kind)).toEqual(['rows', 'vector column', 'index']);
  });

  test('report row for a missing table and a missing vector column', () => {
    const actual = actualFixture();
    actual.tables[0]!.vectorColumns = [actual.tables[0]!.vectorColumns[1]!];
    actual.tables = actual.tables.filter((t) => t.name !== 'tags');
    const c = compareInventory(expectedFixture(), actual);
    expect(c.tables).toEqual([
      { table: 'public.documents', expectedRows: 1000, restoredRows: 1000, vectors: 'embedding: missing/990, sparse: 12/12', indexes: '2/2', ok: false },
      { table: 'public.tags', expectedRows: 5, restoredRows: null, vectors: '-', indexes: '-', ok: false },
    ]);
  });

  test('a kNN mismatch marks the kNN summary not ok', () => {
    const actual = actualFixture();
    actual.knn!.samples[0]!.neighbours = ['1', '9', '7'];
    expect(compareInventory(expectedFixture(), actual).knn).toEqual({ table: 'public.documents', samples: 2, k: 3, ok: false });
  });

  test('no kNN check recorded: no kNN summary', () => {
    const expected = { ...expectedFixture(), knn: null };
    expect(compareInventory(expected, actualFixture()).knn).toBeNull();
  });

  test('describeMismatch', () => {
    expect(describeMismatch({ kind: 'rows', object: 'public.tags', expected: '5', actual: '4' })).toBe('rows public.tags: expected 5, restored 4');
  });
});
