// How each variant runs. Ours runs as users run it: the bundled CLI (node dist/cli/index.js) as a child process.
// The old kit's pipelines run through bash exactly as its scripts did (a shell is what is being measured there).
// Every restore ends with a check of its own: the restored database has the source's row counts and all of its
// indexes, each valid and ready (our test-restore drops its database itself, after comparing it with the manifest).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import type { Table } from './dataset.js';
import { measure, type Measured, type Run } from './measure.js';
import type { VariantSpec } from './options.js';

export interface BenchContext {
  /** PostgreSQL programs of the cluster (pg_dump, pg_restore, psql). */
  binDir: string;
  /** The bundled CLI and the node that runs it. */
  cli: string;
  node: string;
  work: string;
  /** Environment of every child: PGHOST (the socket directory), PGPORT, PGUSER, PGDATABASE; nothing inherited from PG*. */
  env: NodeJS.ProcessEnv;
  socketDir: string;
  port: number;
  sourceDb: string;
  tables: Table[];
  /** Index count per access method in the source, the shape every restore must reach. */
  sourceIndexes: Record<string, number>;
  admin: pg.Client;
  postmasterPid: number;
  jobs: number;
  /** Archive written by each backup variant (its last round). */
  archives: Map<string, { path: string; bytes: number; backupDir?: string }>;
  log: (s: string) => void;
}

export interface Outcome {
  measured: Measured;
  archiveBytes: number | null;
  hnsw: number | null;
}

export class VariantFailed extends Error {}

/** A libpq URL for a database of the cluster over its Unix socket: no password anywhere (trust). */
export function socketUrl(ctx: Pick<BenchContext, 'socketDir' | 'port'>, db: string): string {
  return `postgresql://postgres@/${encodeURIComponent(db)}?host=${encodeURIComponent(ctx.socketDir)}&port=${ctx.port}`;
}

export function slug(id: string): string {
  return id.replace(/[^a-zA-Z0-9]+/g, '-').replace(/^-|-$/g, '');
}

async function sizeOf(p: string): Promise<number> {
  const st = await fs.stat(p);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of await fs.readdir(p, { withFileTypes: true })) total += await sizeOf(path.join(p, e.name));
  return total;
}

function must(m: Measured, what: string): void {
  if (m.code !== 0 || m.signal) {
    const tail = m.stderr.trim().split('\n').slice(-5).join(' | ');
    throw new VariantFailed(`${what} exited with ${m.signal ?? `code ${m.code}`}: ${tail}`);
  }
}

function cliOutputs(m: Measured): Record<string, string | number | boolean> {
  try {
    return JSON.parse(m.stdout) as Record<string, string | number | boolean>;
  } catch {
    throw new VariantFailed(`the CLI printed no JSON outputs: ${m.stdout.slice(0, 200)}`);
  }
}

/** Polls pg_stat_activity while `work` runs: the wall seconds during which a CREATE INDEX ... USING hnsw ran. */
async function watchHnsw<T>(admin: pg.Client, work: Promise<T>): Promise<{ value: T; seconds: number }> {
  let done = false;
  let seconds = 0;
  const watcher = (async () => {
    let last = Date.now();
    while (!done) {
      await new Promise((r) => setTimeout(r, 250));
      const r = await admin
        .query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend' AND query ~* 'using\\s+hnsw'`)
        .catch(() => ({ rows: [{ n: 0 }] }));
      const now = Date.now();
      if (r.rows[0]!.n > 0) seconds += (now - last) / 1000;
      last = now;
    }
  })();
  try {
    return { value: await work, seconds };
  } finally {
    done = true;
    await watcher;
  }
}

async function createDb(ctx: BenchContext, db: string): Promise<void> {
  await ctx.admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
  await ctx.admin.query(`CREATE DATABASE "${db}"`);
}

async function dropDb(ctx: BenchContext, db: string): Promise<void> {
  await ctx.admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
}

/** The restored database has every table with the source's rows and every index, valid and ready. */
export async function checkRestored(ctx: BenchContext, db: string, connect: (db: string) => Promise<pg.Client>): Promise<void> {
  const c = await connect(db);
  try {
    const idx = await c.query<{ am: string; n: number; bad: number }>(
      `SELECT am.amname AS am, count(*)::int AS n, count(*) FILTER (WHERE NOT (i.indisvalid AND i.indisready AND i.indislive))::int AS bad
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' GROUP BY 1`,
    );
    const got = Object.fromEntries(idx.rows.map((r) => [r.am, r.n]));
    const bad = idx.rows.reduce((a, r) => a + r.bad, 0);
    if (bad) throw new VariantFailed(`${bad} indexes in ${db} are not valid`);
    if (JSON.stringify(sortKeys(got)) !== JSON.stringify(sortKeys(ctx.sourceIndexes))) {
      throw new VariantFailed(`${db} has indexes ${JSON.stringify(got)}, the source ${JSON.stringify(ctx.sourceIndexes)}`);
    }
    for (const t of ctx.tables) {
      const r = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${t.schema}.${t.name}`);
      if (Number(r.rows[0]!.n) !== t.rows) throw new VariantFailed(`${db}: ${t.schema}.${t.name} has ${r.rows[0]!.n} rows, the source ${t.rows}`);
    }
  } finally {
    await c.end();
  }
}

function sortKeys(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

export async function runVariant(spec: VariantSpec, ctx: BenchContext, round: number, connect: (db: string) => Promise<pg.Client>): Promise<Outcome> {
  const bin = (p: string): string => path.join(ctx.binDir, p);
  const kitEnv = { ...ctx.env, PATH: `${ctx.binDir}:${ctx.env.PATH ?? '/usr/bin:/bin'}` };
  const m = (run: Run, ours = false): Promise<Measured> => measure(run, { postmasterPid: ctx.postmasterPid, trackRss: ours });
  const base = { env: ctx.env, cwd: ctx.work };
  const archive = (id: string): { path: string; bytes: number; backupDir?: string } => {
    const a = ctx.archives.get(id);
    if (!a) throw new VariantFailed(`no archive from ${id} (it failed or did not run)`);
    return a;
  };
  const restoreDb = `bench_r_${slug(spec.id).replace(/-/g, '_')}_${round}`;

  switch (spec.id) {
    case 'floor': {
      const args = ['-X', '-q', '-d', ctx.sourceDb, ...ctx.tables.flatMap((t) => ['-c', `COPY ${t.schema}.${t.name} TO STDOUT`])];
      const r = await m({ ...base, file: bin('psql'), args });
      must(r, 'psql COPY TO STDOUT');
      return { measured: r, archiveBytes: null, hnsw: null };
    }
    case 'kit:backup': {
      const dir = path.join(ctx.work, 'kit');
      await fs.rm(dir, { recursive: true, force: true });
      await fs.mkdir(dir, { recursive: true });
      const out = path.join(dir, `${ctx.sourceDb}_20260101_020000.sql.gz`);
      // backup_postgres.sh: pg_dump | gzip > file (pipefail only so that the benchmark notices a failure).
      const r = await m({ ...base, env: { ...kitEnv, OUT: out }, file: '/bin/bash', args: ['-c', 'set -o pipefail; pg_dump -d "$PGDATABASE" | gzip > "$OUT"'] });
      must(r, 'pg_dump | gzip');
      const bytes = await sizeOf(out);
      ctx.archives.set(spec.id, { path: out, bytes });
      return { measured: r, archiveBytes: bytes, hnsw: null };
    }
    case 'kit:verify': {
      const a = archive('kit:backup');
      // verify_backup.sh: gzip -t (integrity), then a look at the header.
      const r = await m({ ...base, env: { ...kitEnv, IN: a.path }, file: '/bin/bash', args: ['-c', 'gzip -t "$IN" && zcat "$IN" | head -n 20 | grep -q "PostgreSQL database dump"'] });
      must(r, 'gzip -t');
      return { measured: r, archiveBytes: a.bytes, hnsw: null };
    }
    case 'kit:restore': {
      const a = archive('kit:backup');
      await createDb(ctx, restoreDb);
      try {
        const { value: r, seconds } = await watchHnsw(
          ctx.admin,
          m({ ...base, env: { ...kitEnv, IN: a.path, DB: restoreDb }, file: '/bin/bash', args: ['-c', 'set -o pipefail; gunzip -c "$IN" | psql -q -d "$DB" > /dev/null'] }),
        );
        must(r, 'gunzip -c | psql');
        if (/ERROR:/.test(r.stderr)) throw new VariantFailed(`psql reported errors: ${r.stderr.split('\n').filter((l) => l.includes('ERROR:')).slice(0, 3).join(' | ')}`);
        await checkRestored(ctx, restoreDb, connect);
        return { measured: r, archiveBytes: a.bytes, hnsw: seconds };
      } finally {
        await dropDb(ctx, restoreDb);
      }
    }
    case 'pg_dump:custom':
    case 'pg_dump:directory': {
      const dir = path.join(ctx.work, slug(spec.id));
      await fs.rm(dir, { recursive: true, force: true });
      await fs.mkdir(dir, { recursive: true });
      const out = path.join(dir, spec.id === 'pg_dump:custom' ? 'bench.dump' : 'bench.dir');
      const args = spec.id === 'pg_dump:custom' ? ['-Fc', '-d', ctx.sourceDb, '-f', out] : ['-Fd', `-j${ctx.jobs}`, '-d', ctx.sourceDb, '-f', out];
      const r = await m({ ...base, file: bin('pg_dump'), args });
      must(r, 'pg_dump');
      const bytes = await sizeOf(out);
      ctx.archives.set(spec.id, { path: out, bytes });
      return { measured: r, archiveBytes: bytes, hnsw: null };
    }
    case 'pg_restore:custom': {
      const a = archive('pg_dump:custom');
      await createDb(ctx, restoreDb);
      try {
        const { value: r, seconds } = await watchHnsw(ctx.admin, m({ ...base, file: bin('pg_restore'), args: [`-j${ctx.jobs}`, '-d', restoreDb, a.path] }));
        must(r, 'pg_restore');
        await checkRestored(ctx, restoreDb, connect);
        return { measured: r, archiveBytes: a.bytes, hnsw: seconds };
      } finally {
        await dropDb(ctx, restoreDb);
      }
    }
  }

  const ours = spec.ours;
  if (!ours) throw new Error(`unknown variant ${spec.id}`);
  const cli = (args: string[]): Promise<Measured> => m({ ...base, file: ctx.node, args: [ctx.cli, ...args, '--json'], captureStdout: true }, true);

  if (spec.kind === 'backup') {
    const dir = path.join(ctx.work, slug(spec.id));
    await fs.rm(dir, { recursive: true, force: true });
    const r = await cli([
      'backup',
      '--format', ours.format,
      '--compression', ours.compression,
      ...(ours.level !== undefined ? ['--compression-level', String(ours.level)] : []),
      '--verify', 'none',
      '--destination', 'local',
      '--backup-dir', dir,
    ]);
    must(r, 'pgvector-backup backup');
    const out = cliOutputs(r);
    const p = String(out['backup-path']);
    const bytes = Number(out['size-bytes']);
    if (bytes !== (await sizeOf(p))) throw new VariantFailed(`size-bytes ${bytes} differs from the archive's size on disk`);
    ctx.archives.set(spec.id, { path: p, bytes, backupDir: dir });
    return { measured: r, archiveBytes: bytes, hnsw: null };
  }

  const a = archive(spec.needs!);
  const backupDir = ['--backup-dir', a.backupDir ?? path.dirname(a.path)];
  if (spec.kind === 'verify') {
    const r = await cli(['verify', a.path, ...backupDir]);
    must(r, 'pgvector-backup verify');
    if (String(cliOutputs(r).verified) !== 'true') throw new VariantFailed('verify did not report verified=true');
    return { measured: r, archiveBytes: a.bytes, hnsw: null };
  }
  if (spec.id.startsWith('test-restore:')) {
    const { value: r, seconds } = await watchHnsw(ctx.admin, cli(['test-restore', a.path, ...backupDir, '--test-restore-url', socketUrl(ctx, 'postgres')]));
    must(r, 'pgvector-backup test-restore');
    const out = cliOutputs(r);
    if (String(out.verified) !== 'true' || Number(out.mismatches) !== 0) throw new VariantFailed(`test-restore: verified=${out.verified}, mismatches=${out.mismatches}`);
    return { measured: r, archiveBytes: a.bytes, hnsw: seconds };
  }
  await dropDb(ctx, restoreDb);
  try {
    const { value: r, seconds } = await watchHnsw(ctx.admin, cli(['restore', a.path, ...backupDir, '--target-database-url', socketUrl(ctx, restoreDb), '--confirm', restoreDb]));
    must(r, 'pgvector-backup restore');
    const out = cliOutputs(r);
    if (String(out.verified) !== 'true') throw new VariantFailed(`restore: verified=${out.verified}`);
    await checkRestored(ctx, restoreDb, connect);
    return { measured: r, archiveBytes: a.bytes, hnsw: seconds };
  } finally {
    await dropDb(ctx, restoreDb);
  }
}
