// The test restore's verdict: a restored database compared with the manifest, exactly. Pure; table-tested.
import type { Inventory, KnnCheck } from '../postgres/inventory.js';
import type { Manifest } from './manifest.js';

export interface Mismatch {
  kind: 'table' | 'rows' | 'vector column' | 'index' | 'sequence' | 'extension' | 'large objects' | 'knn';
  object: string;
  expected: string;
  actual: string;
}

export interface TableReport {
  table: string;
  expectedRows: number;
  restoredRows: number | null;
  vectors: string;
  indexes: string;
  ok: boolean;
}

export interface Comparison {
  mismatches: Mismatch[];
  tables: TableReport[];
  knn: { table: string; samples: number; k: number; ok: boolean } | null;
}

/** "0.8.0" vs "0.7.4": numeric, part by part; non-numeric parts compare as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const nx = Number(x);
    const ny = Number(y);
    if (Number.isFinite(nx) && Number.isFinite(ny)) {
      if (nx !== ny) return nx < ny ? -1 : 1;
    } else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

type Expected = Pick<Manifest, 'tables' | 'indexes' | 'sequences' | 'extensions' | 'largeObjects' | 'knn'>;

export function compareInventory(expected: Expected, actual: Inventory): Comparison {
  const mismatches: Mismatch[] = [];
  const key = (s: string, n: string): string => `${s}.${n}`;
  const actualTables = new Map(actual.tables.map((t) => [key(t.schema, t.name), t]));
  const actualIndexes = new Map(actual.indexes.map((i) => [key(i.schema, i.name), i]));

  const reports: TableReport[] = [];
  for (const t of expected.tables) {
    const name = key(t.schema, t.name);
    const got = actualTables.get(name);
    const before = mismatches.length;
    const tableIndexes = expected.indexes.filter((i) => i.schema === t.schema && i.table === t.name);
    if (!got) {
      mismatches.push({ kind: 'table', object: name, expected: 'present', actual: 'missing' });
    } else {
      if (got.rows !== t.rows) mismatches.push({ kind: 'rows', object: name, expected: String(t.rows), actual: String(got.rows) });
      for (const c of t.vectorColumns) {
        const gc = got.vectorColumns.find((x) => x.name === c.name);
        const obj = `${name}.${c.name}`;
        if (!gc) mismatches.push({ kind: 'vector column', object: obj, expected: `${c.type}(${c.dimensions ?? ''})`, actual: 'missing' });
        else {
          if (gc.type !== c.type || gc.dimensions !== c.dimensions) {
            mismatches.push({ kind: 'vector column', object: obj, expected: `${c.type}(${c.dimensions ?? ''})`, actual: `${gc.type}(${gc.dimensions ?? ''})` });
          }
          if (gc.nonNull !== c.nonNull) mismatches.push({ kind: 'vector column', object: obj, expected: `${c.nonNull} non-null`, actual: `${gc.nonNull} non-null` });
        }
      }
    }
    for (const i of tableIndexes) {
      const gi = actualIndexes.get(key(i.schema, i.name));
      const obj = key(i.schema, i.name);
      if (!gi) mismatches.push({ kind: 'index', object: obj, expected: i.definition, actual: 'missing' });
      else {
        if (gi.definition !== i.definition) mismatches.push({ kind: 'index', object: obj, expected: i.definition, actual: gi.definition });
        if (!gi.valid) mismatches.push({ kind: 'index', object: obj, expected: 'valid', actual: 'invalid (indisvalid = false)' });
      }
    }
    const validIdx = tableIndexes.filter((i) => actualIndexes.get(key(i.schema, i.name))?.valid).length;
    reports.push({
      table: name,
      expectedRows: t.rows,
      restoredRows: got ? got.rows : null,
      vectors: t.vectorColumns.map((c) => `${c.name}: ${got?.vectorColumns.find((x) => x.name === c.name)?.nonNull ?? 'missing'}/${c.nonNull}`).join(', ') || '-',
      indexes: tableIndexes.length ? `${validIdx}/${tableIndexes.length}` : '-',
      ok: mismatches.length === before,
    });
  }

  const actualSeq = new Map(actual.sequences.map((s) => [key(s.schema, s.name), s]));
  for (const s of expected.sequences) {
    const name = key(s.schema, s.name);
    const got = actualSeq.get(name);
    if (!got) {
      mismatches.push({ kind: 'sequence', object: name, expected: 'present', actual: 'missing' });
      continue;
    }
    // The inventory reads sequences before pg_dump starts, and sequences are not transactional: the restored
    // value may be higher than recorded, never lower.
    if (s.lastValue !== null && (got.lastValue === null || BigInt(got.lastValue) < BigInt(s.lastValue))) {
      mismatches.push({ kind: 'sequence', object: name, expected: `last_value >= ${s.lastValue}`, actual: String(got.lastValue) });
    }
  }

  const actualExt = new Map(actual.extensions.map((e) => [e.name, e]));
  for (const e of expected.extensions) {
    const got = actualExt.get(e.name);
    if (!got) mismatches.push({ kind: 'extension', object: e.name, expected: e.version, actual: 'missing' });
    else if (compareVersions(got.version, e.version) < 0) mismatches.push({ kind: 'extension', object: e.name, expected: `>= ${e.version}`, actual: got.version });
  }

  if (expected.largeObjects !== actual.largeObjects) {
    mismatches.push({ kind: 'large objects', object: 'pg_largeobject_metadata', expected: String(expected.largeObjects), actual: String(actual.largeObjects) });
  }

  let knn: Comparison['knn'] = null;
  if (expected.knn) {
    const before = mismatches.length;
    compareKnn(expected.knn, actual.knn, mismatches);
    knn = { table: key(expected.knn.schema, expected.knn.table), samples: expected.knn.samples.length, k: expected.knn.k, ok: mismatches.length === before };
  }
  return { mismatches, tables: reports, knn };
}

function compareKnn(expected: KnnCheck, actual: KnnCheck | undefined, out: Mismatch[]): void {
  const obj = `${expected.schema}.${expected.table}.${expected.column}`;
  if (!actual) {
    out.push({ kind: 'knn', object: obj, expected: `${expected.samples.length} samples`, actual: 'not run' });
    return;
  }
  for (const s of expected.samples) {
    const got = actual.samples.find((x) => x.id === s.id);
    const exp = s.neighbours.join(',');
    const act = got ? got.neighbours.join(',') : 'missing';
    if (exp !== act) out.push({ kind: 'knn', object: `${obj} nearest ${expected.k} of ${expected.key}=${s.id}`, expected: exp, actual: act });
  }
}

export function describeMismatch(m: Mismatch): string {
  return `${m.kind} ${m.object}: expected ${m.expected}, restored ${m.actual}`;
}
