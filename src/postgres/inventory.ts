// What a database holds, read inside one transaction: at backup time inside the snapshot pg_dump dumps from
// (so row counts are exact for the archive), after a test restore from the restored copy, to compare.
import type pg from 'pg';
import { BackupError } from '../errors.js';

export type TableKind = 'table' | 'partitioned table' | 'partition' | 'materialized view';
export type VectorType = 'vector' | 'halfvec' | 'sparsevec' | 'bit';

export interface VectorColumn {
  name: string;
  type: VectorType;
  /** Declared dimensions (bits for bit); null when the column has no typmod. */
  dimensions: number | null;
  /** Rows where the column is not null. */
  nonNull: number;
}

export interface TableInfo {
  schema: string;
  name: string;
  kind: TableKind;
  unlogged: boolean;
  /** Exact rows in this relation alone (not its partitions or children). */
  rows: number;
  vectorColumns: VectorColumn[];
  /** A populated materialized view / a table whose data pg_dump writes. */
  hasData: boolean;
}

export interface IndexInfo {
  schema: string;
  table: string;
  name: string;
  method: string;
  definition: string;
  valid: boolean;
}

export interface SequenceInfo {
  schema: string;
  name: string;
  /** As text: bigint values exceed JavaScript's safe integers. null when never used. */
  lastValue: string | null;
}

export interface ExtensionInfo {
  name: string;
  version: string;
  schema: string;
}

export interface KnnSample {
  /** The sample row's key, as text. */
  id: string;
  /** The k nearest rows' keys by exact search, nearest first (ties broken by key). */
  neighbours: string[];
}

export interface KnnCheck {
  schema: string;
  table: string;
  column: string;
  key: string;
  /** smallint | integer | bigint | uuid */
  keyType: string;
  operator: string;
  k: number;
  /**
   * The search covers the rows whose key is at most this (the first KNN_WINDOW keys), so its cost stays bounded
   * whatever the table's size; absent in manifests before 0.2: the whole table.
   */
  upto?: string;
  samples: KnnSample[];
}

export interface Inventory {
  database: string;
  serverVersion: string;
  serverVersionNum: number;
  extensions: ExtensionInfo[];
  tables: TableInfo[];
  indexes: IndexInfo[];
  sequences: SequenceInfo[];
  largeObjects: number;
  roles: string[];
  knn?: KnnCheck;
}

export interface ServerInfo {
  database: string;
  serverVersion: string;
  serverVersionNum: number;
  pgvectorVersion?: string;
  inRecovery: boolean;
}

const USER_SCHEMA = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`;
const NOT_EXTENSION_MEMBER = (alias: string, catalog: string): string =>
  `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${alias}.oid AND d.deptype = 'e')`;

export async function readServerInfo(client: pg.Client): Promise<ServerInfo> {
  const r = await client.query<{ db: string; v: string; n: string; pgv: string | null; rec: boolean }>(
    `SELECT current_database() AS db, current_setting('server_version') AS v, current_setting('server_version_num') AS n,
            (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgv, pg_is_in_recovery() AS rec`,
  );
  const row = r.rows[0]!;
  const info: ServerInfo = {
    database: row.db,
    serverVersion: row.v.split(' ')[0]!,
    serverVersionNum: Number(row.n),
    inRecovery: row.rec,
  };
  if (row.pgv) info.pgvectorVersion = row.pgv;
  return info;
}

interface RelRow {
  oid: number;
  schema: string;
  name: string;
  relkind: string;
  relispartition: boolean;
  relpersistence: string;
  relispopulated: boolean;
}

/** The relations whose data a dump carries: user tables, partitions and materialized views. */
export async function listTables(client: pg.Client): Promise<RelRow[]> {
  const r = await client.query<RelRow>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind, c.relispartition,
            c.relpersistence::text AS relpersistence, c.relispopulated
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'm') AND c.relpersistence <> 't' AND ${USER_SCHEMA}
        AND ${NOT_EXTENSION_MEMBER('c', 'pg_class')}
      ORDER BY n.nspname, c.relname`,
  );
  return r.rows;
}

/**
 * Takes ACCESS SHARE locks on every table, one at a time so that a lock held by someone else can be named.
 * `lockTimeout` is a PostgreSQL interval ("60s").
 */
export async function lockTables(client: pg.Client, tables: RelRow[], lockTimeout: string): Promise<void> {
  await client.query(`SELECT set_config('lock_timeout', $1, true)`, [lockTimeout]);
  // LOCK TABLE works on tables and partitioned tables; materialized views cannot be locked (pg_dump skips them too).
  for (const t of tables.filter((r) => r.relkind === 'r' || r.relkind === 'p')) {
    const q = `${client.escapeIdentifier(t.schema)}.${client.escapeIdentifier(t.name)}`;
    try {
      await client.query(`LOCK TABLE ONLY ${q} IN ACCESS SHARE MODE`);
    } catch (err) {
      if ((err as { code?: string }).code === '55P03') {
        throw new BackupError(
          `Timed out after lock-wait-timeout (${lockTimeout}) waiting for a lock on table ${t.schema}.${t.name}: another session holds a conflicting lock`,
          // The name quoted as an identifier inside a literal: the query runs as printed, whatever the name holds.
          `Find it with SELECT * FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT granted OR relation = ${client.escapeLiteral(q)}::regclass; ` +
            'retry when it finishes (ALTER, DROP, TRUNCATE, VACUUM FULL, REINDEX), or raise lock-wait-timeout',
          { code: 'dump-lock-timeout', cause: err },
        );
      }
      throw err;
    }
  }
  await client.query(`SELECT set_config('lock_timeout', '0', true)`);
}

const KIND: Record<string, TableKind> = { r: 'table', p: 'partitioned table', m: 'materialized view' };

export interface InventoryOptions {
  /** Relations already listed (and locked) by the caller. */
  tables?: RelRow[];
  /** Skip the kNN spot check for tables with more rows than this. */
  knnMaxRows?: number;
  /** Rows (the first by key) the kNN spot check searches; default KNN_WINDOW. */
  knnWindow?: number;
  /** Sequences read earlier (before pg_dump started: they are not transactional). */
  sequences?: SequenceInfo[];
  /** Reuse the kNN samples recorded at backup time (after a restore). */
  knnFrom?: KnnCheck;
  onProgress?: (message: string) => void;
}

/** Reads the whole inventory in the client's current transaction. */
export async function readInventory(client: pg.Client, opts: InventoryOptions = {}): Promise<Inventory> {
  const server = await readServerInfo(client);
  const rels = opts.tables ?? (await listTables(client));
  const oids = rels.map((r) => r.oid);

  const ext = await client.query<ExtensionInfo>(
    `SELECT e.extname AS name, e.extversion AS version, n.nspname AS schema
       FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY e.extname`,
  );

  const cols = await client.query<{ relid: number; name: string; type: string; typmod: number }>(
    `SELECT a.attrelid::int AS relid, a.attname AS name,
            CASE WHEN t.oid = 'bit'::regtype THEN 'bit' ELSE t.typname::text END AS type, a.atttypmod AS typmod
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
        AND (t.oid = 'bit'::regtype OR (t.typname IN ('vector', 'halfvec', 'sparsevec') AND EXISTS (
              SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
               WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e' AND e.extname = 'vector')))
      ORDER BY a.attrelid, a.attnum`,
    [oids],
  );
  const colsByRel = new Map<number, Array<{ name: string; type: string; typmod: number }>>();
  for (const c of cols.rows) {
    const list = colsByRel.get(c.relid) ?? [];
    list.push(c);
    colsByRel.set(c.relid, list);
  }

  const tables: TableInfo[] = [];
  let done = 0;
  for (const rel of rels) {
    const vcols = colsByRel.get(rel.oid) ?? [];
    const kind: TableKind = rel.relispartition ? 'partition' : KIND[rel.relkind]!;
    const hasData = rel.relkind === 'r' || (rel.relkind === 'm' && rel.relispopulated);
    let rows = 0;
    const nonNull: number[] = vcols.map(() => 0);
    if (hasData) {
      const q = `${client.escapeIdentifier(rel.schema)}.${client.escapeIdentifier(rel.name)}`;
      const counts = vcols.map((c, i) => `count(${client.escapeIdentifier(c.name)})::text AS c${i}`);
      const r = await client.query<Record<string, string>>(`SELECT ${['count(*)::text AS n', ...counts].join(', ')} FROM ONLY ${q}`);
      const row = r.rows[0]!;
      rows = Number(row.n);
      vcols.forEach((_, i) => (nonNull[i] = Number(row[`c${i}`])));
    }
    tables.push({
      schema: rel.schema,
      name: rel.name,
      kind,
      unlogged: rel.relpersistence === 'u',
      rows,
      hasData,
      vectorColumns: vcols.map((c, i) => ({
        name: c.name,
        type: c.type as VectorType,
        dimensions: c.typmod > 0 ? c.typmod : null,
        nonNull: nonNull[i]!,
      })),
    });
    done++;
    if (opts.onProgress && done % 50 === 0) opts.onProgress(`counted ${done}/${rels.length} tables`);
  }

  const idx = await client.query<IndexInfo>(
    `SELECT n.nspname AS schema, t.relname AS table, i.relname AS name, am.amname AS method,
            pg_get_indexdef(i.oid) AS definition, x.indisvalid AS valid
       FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid
       JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = i.relnamespace
       JOIN pg_am am ON am.oid = i.relam
      WHERE x.indrelid = ANY($1::oid[])
      ORDER BY n.nspname, t.relname, i.relname`,
    [oids],
  );

  const sequences = opts.sequences ?? (await readSequences(client));

  const lo = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_largeobject_metadata`);

  const roles = await client.query<{ role: string }>(
    `WITH rels AS (
       SELECT c.relowner, c.relacl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm', 'v', 'S', 'f') AND ${USER_SCHEMA}),
     nsp AS (SELECT n.nspowner, n.nspacl FROM pg_namespace n WHERE ${USER_SCHEMA}),
     ids AS (
       SELECT relowner AS id FROM rels
       UNION SELECT (aclexplode(relacl)).grantee FROM rels WHERE relacl IS NOT NULL
       UNION SELECT nspowner FROM nsp
       UNION SELECT (aclexplode(nspacl)).grantee FROM nsp WHERE nspacl IS NOT NULL)
     SELECT r.rolname AS role FROM ids JOIN pg_roles r ON r.oid = ids.id ORDER BY 1`,
  );

  const inv: Inventory = {
    database: server.database,
    serverVersion: server.serverVersion,
    serverVersionNum: server.serverVersionNum,
    extensions: ext.rows,
    tables,
    indexes: idx.rows,
    sequences,
    largeObjects: Number(lo.rows[0]!.n),
    roles: roles.rows.map((r) => r.role),
  };
  const knn = opts.knnFrom ? await runKnn(client, opts.knnFrom) : await chooseKnn(client, tables, opts.knnMaxRows ?? Number.POSITIVE_INFINITY, opts.knnWindow ?? KNN_WINDOW);
  if (knn) inv.knn = knn;
  return inv;
}

/**
 * Sequences' last values. Sequences are outside transactions: at backup time they are read before pg_dump starts,
 * so whatever pg_dump reads later is the same or higher, and a restore can check "at least".
 */
export async function readSequences(client: pg.Client): Promise<SequenceInfo[]> {
  const seq = await client.query<{ schema: string; name: string; last_value: string | null }>(
    `SELECT n.nspname AS schema, c.relname AS name,
            CASE WHEN has_sequence_privilege(c.oid, 'SELECT') THEN pg_sequence_last_value(c.oid)::text END AS last_value
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'S' AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('c', 'pg_class')}
      ORDER BY n.nspname, c.relname`,
  );
  return seq.rows.map((s) => ({ schema: s.schema, name: s.name, lastValue: s.last_value }));
}

const KNN_K = 10;
const KEY_TYPES = new Set(['smallint', 'integer', 'bigint', 'uuid']);
const KNN_SAMPLES = 3;
/**
 * Rows the kNN check searches: the first this many by key. Computing every distance reads and detoasts each
 * vector once (over 200k x 768 that took 4 s of server CPU here, competing with pg_dump for the same cores and
 * adding ~5 s to the backup); 10,000 rows cost ~0.2 s at any table size and still prove the restored vectors
 * equal, to the last bit of their ordering, over a fixed window.
 */
export const KNN_WINDOW = 10_000;

/**
 * Picks the largest table with a vector/halfvec column and a single-column integer or uuid primary key, and
 * records the exact k nearest neighbours of a few of its rows among its first `window` keys. Keys only: no data
 * values enter the manifest.
 */
async function chooseKnn(client: pg.Client, tables: TableInfo[], maxRows: number, window: number): Promise<KnnCheck | undefined> {
  const candidates = tables
    .filter((t) => t.hasData && t.rows > 0 && t.rows <= maxRows)
    .flatMap((t) => t.vectorColumns.filter((c) => (c.type === 'vector' || c.type === 'halfvec') && c.nonNull > 0).map((c) => ({ t, c })))
    .sort((a, b) => b.t.rows - a.t.rows);
  for (const { t, c } of candidates) {
    const pk = await client.query<{ key: string; type: string }>(
      `SELECT a.attname AS key, format_type(a.atttypid, NULL) AS type
         FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
        WHERE x.indrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND x.indisprimary AND x.indnkeyatts = 1
          AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'uuid'::regtype)`,
      [t.schema, t.name],
    );
    const key = pk.rows[0]?.key;
    const keyType = pk.rows[0]?.type;
    if (!key || !keyType) continue;
    const q = `${client.escapeIdentifier(t.schema)}.${client.escapeIdentifier(t.name)}`;
    const k = client.escapeIdentifier(key);
    const v = client.escapeIdentifier(c.name);
    // The window: keys up to the window-th (all rows of a smaller table), found through the primary key.
    const inWindow = Math.min(t.rows, Math.max(1, Math.floor(window)));
    // Aliases must not be the key's own name: ORDER BY would take the text alias and sort keys as text.
    const last = await client.query<{ pgvb_key: string }>(`SELECT ${k}::text AS pgvb_key FROM ONLY ${q} ORDER BY ${k} OFFSET ${inWindow - 1} LIMIT 1`);
    const upto = last.rows[0]?.pgvb_key;
    if (upto === undefined || upto === null) continue;
    const ids: string[] = [];
    for (const [order, offset] of [
      ['ASC', 0],
      ['DESC', 0],
      ['ASC', Math.floor(inWindow / 2)],
    ] as const) {
      const r = await client.query<{ pgvb_key: string }>(
        `SELECT ${k}::text AS pgvb_key FROM ONLY ${q} WHERE ${v} IS NOT NULL AND ${k} <= $1::${keyType} ORDER BY ${k} ${order} LIMIT 1 OFFSET ${offset}`,
        [upto],
      );
      const id = r.rows[0]?.pgvb_key;
      if (id !== undefined && !ids.includes(id)) ids.push(id);
      if (ids.length >= KNN_SAMPLES) break;
    }
    if (!ids.length) continue;
    const check: KnnCheck = { schema: t.schema, table: t.name, column: c.name, key, keyType, operator: '<->', k: KNN_K, upto, samples: ids.map((id) => ({ id, neighbours: [] })) };
    return runKnn(client, check);
  }
  return undefined;
}

/**
 * Exact nearest-neighbour search for every sample of `check`, in the current transaction, over the rows with a key
 * up to check.upto (the whole table for older manifests), in one pass: each row's distance to every sample is
 * computed in a materialized CTE (so no vector index can answer it, and each vector is read and detoasted once,
 * not once per sample), then each sample's k nearest come from it, ties broken by key.
 */
export async function runKnn(client: pg.Client, check: KnnCheck): Promise<KnnCheck> {
  const q = `${client.escapeIdentifier(check.schema)}.${client.escapeIdentifier(check.table)}`;
  const k = client.escapeIdentifier(check.key);
  const v = client.escapeIdentifier(check.column);
  // The check may come from a manifest on disk: only known operators and key types reach SQL.
  if (check.operator !== '<->') throw new BackupError(`The manifest's kNN check uses an unsupported operator`, 'Re-create the backup', { code: 'manifest-invalid' });
  if (!KEY_TYPES.has(check.keyType)) throw new BackupError(`The manifest's kNN check uses an unsupported key type`, 'Re-create the backup', { code: 'manifest-invalid' });
  const kk = Number(check.k);
  if (!Number.isInteger(kk) || kk < 1 || kk > 1000) throw new BackupError(`The manifest's kNN check asks for ${String(check.k)} neighbours`, 'Re-create the backup', { code: 'manifest-invalid' });
  if (!check.samples.length) return { ...check, samples: [] };
  const params: string[] = check.samples.map((s) => s.id);
  const dists = check.samples.map((_, i) => `t.${v} <-> (SELECT ${v} FROM ONLY ${q} WHERE ${k} = $${i + 1}::${check.keyType}) AS d${i}`);
  let window = '';
  if (check.upto !== undefined) {
    params.push(check.upto);
    window = ` AND t.${k} <= $${params.length}::${check.keyType}`;
  }
  const lists = check.samples.map((_, i) => `ARRAY(SELECT id FROM d ORDER BY d${i}, key LIMIT ${kk}) AS n${i}`);
  const r = await client.query<Record<string, string[]>>(
    `WITH d AS MATERIALIZED (SELECT t.${k} AS key, t.${k}::text AS id, ${dists.join(', ')} FROM ONLY ${q} t WHERE t.${v} IS NOT NULL${window})
     SELECT ${lists.join(', ')}`,
    params,
  );
  const row = r.rows[0]!;
  return { ...check, samples: check.samples.map((s, i) => ({ id: s.id, neighbours: row[`n${i}`] ?? [] })) };
}

export function totals(inv: Pick<Inventory, 'tables'>): { tables: number; rows: number; vectors: number } {
  let rows = 0;
  let vectors = 0;
  for (const t of inv.tables) {
    rows += t.rows;
    for (const c of t.vectorColumns) vectors += c.nonNull;
  }
  return { tables: inv.tables.length, rows, vectors };
}
