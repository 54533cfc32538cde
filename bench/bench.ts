// npm run bench: measures our backup, verify, test-restore and restore side by side with the raw floor, the old
// kit and plain pg_dump/pg_restore, on one reproducible pgvector dataset in a throwaway cluster, and writes the
// table (stdout), bench/results/<date>-<machine>.json and .md, and bench/results/latest.svg.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { INPUTS } from '../src/inputs.js';
import { findServers, providesExtensions, startCluster, type Cluster } from '../src/postgres/cluster.js';
import { fingerprint, seed, type Table } from './dataset.js';
import { DEFAULTS, defaultVariants, parseBenchArgs, planVariants, roundsFor, USAGE, UsageError, type BenchOptions, type Compression, type Format } from './options.js';
import { describeDataset, describeMachine, renderMarkdown, renderSvg, renderTable, type DatasetInfo, type MachineInfo, type RunInfo } from './render.js';
import { checkTargets, summarize, type VariantResult } from './stats.js';
import { runVariant, VariantFailed, type BenchContext } from './variants.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TEXT_CHARS = 500;
const SOURCE_DB = 'bench';

const log = (s: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);
};

function productDefault(name: 'format' | 'compression'): string {
  return INPUTS.find((i) => i.name === name)!.default;
}

/** PG* variables would point the tools elsewhere: children get only the cluster's. */
function cleanEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !/^(PG|GITHUB_|INPUT_|ACTIONS_|RUNNER_)/.test(k)));
}

async function countCopyBytes(psql: string, env: NodeJS.ProcessEnv, tables: Table[]): Promise<number> {
  const child = spawn(psql, ['-X', '-q', '-d', SOURCE_DB, ...tables.flatMap((t) => ['-c', `COPY ${t.schema}.${t.name} TO STDOUT`])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let bytes = 0;
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (bytes += d.length));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`COPY TO STDOUT failed: ${stderr.trim()}`);
  return bytes;
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (m) return `${m[1]}, Linux ${os.release()}`;
  } catch {
    /* not Linux-like */
  }
  return `${os.type()} ${os.release()}`;
}

export function machineSlug(cpus: number, model: string): string {
  const words = model
    .toLowerCase()
    .replace(/\(.*?\)/g, ' ')
    .replace(/[^a-z0-9]+/g, ' ')
    .trim()
    .split(' ')
    .filter((w) => w && !['processor', 'cpu', 'core'].includes(w))
    .slice(0, 2);
  return [`${cpus}cpu`, ...words].join('-');
}

export function resultsBase(date: string, slugText: string, o: Pick<BenchOptions, 'rows' | 'dims' | 'halfvec' | 'tables'>): string {
  const isDefault = o.rows === DEFAULTS.rows && o.dims === DEFAULTS.dims && !o.halfvec && o.tables === DEFAULTS.tables;
  return `${date}-${slugText}` + (isDefault ? '' : `-${o.rows}x${o.dims}${o.halfvec ? 'h' : ''}${o.tables > 1 ? `-${o.tables}t` : ''}`);
}

async function main(argv: string[]): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseBenchArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const cliPath = path.resolve(o.cli ?? path.join(ROOT, 'dist', 'cli', 'index.js'));
  if (!existsSync(cliPath)) {
    process.stderr.write(`${cliPath} is missing: run npm run build first (ours is measured as users run it, the bundled CLI)\n`);
    return 2;
  }
  const defaultFormat = productDefault('format') as Format;
  const defaultCompression = productDefault('compression') as Compression;
  const defaultBackup = `backup:${defaultFormat}/${defaultCompression}`;
  const specs = planVariants(o.only ?? defaultVariants(defaultFormat, defaultCompression));
  const server = (await findServers(process.env)).find((s) => providesExtensions(s, ['vector']).length === 0);
  if (!server) {
    process.stderr.write('No local PostgreSQL server with pgvector: run bash test/setup/ensure-pgvector.sh\n');
    return 2;
  }

  // One cluster for everything. Index-build settings stay PostgreSQL's defaults (a stock server, such as the
  // pgvector/pgvector image): what the old kit's restore gets. Ours raises them per session, as it does anywhere.
  const serverSettings = { maintenance_work_mem: '64MB', max_parallel_maintenance_workers: 2 };
  log(`Starting a throwaway PostgreSQL ${server.version} cluster`);
  let cluster: Cluster | undefined = await startCluster({ binDir: server.dir, auth: 'trust', settings: serverSettings });
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'pgvb-bench-'));
  const cleanup = async (): Promise<void> => {
    const c = cluster;
    cluster = undefined;
    await c?.stop().catch(() => undefined);
    await fs.rm(work, { recursive: true, force: true }).catch(() => undefined);
  };
  const onSignal = (): void => {
    log('Interrupted: stopping the cluster');
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const connect = async (db: string): Promise<pg.Client> => {
    const c = new pg.Client({ host: cluster!.host, port: cluster!.port, user: cluster!.superuser, database: db });
    await c.connect();
    return c;
  };
  const admin = await connect('postgres');
  try {
    const env: NodeJS.ProcessEnv = { ...cleanEnv(process.env), PGHOST: cluster.host, PGPORT: String(cluster.port), PGUSER: cluster.superuser, PGDATABASE: SOURCE_DB };
    const psql = path.join(server.dir, 'psql');
    await admin.query(`CREATE DATABASE ${SOURCE_DB}`);
    const src = await connect(SOURCE_DB);
    log(`Seeding ${o.rows.toLocaleString('en-US')} rows x ${o.halfvec ? 'halfvec' : 'vector'}(${o.dims}) in ${o.tables} table(s), seed ${o.seed}`);
    const seeded = await seed(src, { rows: o.rows, dims: o.dims, halfvec: o.halfvec, tables: o.tables, textChars: TEXT_CHARS, seed: o.seed, index: !o.noIndex, psql, env, db: SOURCE_DB, log });
    const fp = await fingerprint(src, seeded.tables);
    const idx = await src.query<{ am: string; n: number }>(
      `SELECT am.amname AS am, count(*)::int AS n FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' GROUP BY 1`,
    );
    const dbSize = Number((await src.query<{ s: string }>(`SELECT pg_database_size(current_database())::text AS s`)).rows[0]!.s);
    const versions = (await src.query<{ pg: string; vec: string }>(`SELECT current_setting('server_version') AS pg, (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS vec`)).rows[0]!;
    await src.end();
    // Counting the COPY text also reads every page once more: all rounds start from a warm cache.
    const sourceBytes = await countCopyBytes(psql, env, seeded.tables);
    const dataset: DatasetInfo = {
      rows: o.rows,
      dims: o.dims,
      type: o.halfvec ? 'halfvec' : 'vector',
      tables: o.tables,
      textChars: TEXT_CHARS,
      seed: o.seed,
      sourceBytes,
      databaseBytes: dbSize,
      seedSeconds: seeded.seedSeconds,
      indexSeconds: seeded.indexSeconds,
      fingerprint: fp,
      hnsw: !o.noIndex,
    };
    log(`Dataset: ${describeDataset(dataset)}`);

    const cpus = os.availableParallelism();
    const cpuModel = os.cpus()[0]?.model.trim() || 'unknown CPU';
    const machine: MachineInfo = {
      slug: machineSlug(cpus, cpuModel),
      cpus,
      cpuModel,
      memoryBytes: os.totalmem(),
      os: osName(),
      node: process.versions.node,
      postgres: versions.pg,
      pgvector: versions.vec,
      pgDump: execFileSync(path.join(server.dir, 'pg_dump'), ['--version'], { encoding: 'utf8' }).trim().replace(/^pg_dump \(PostgreSQL\) /, ''),
      serverSettings: Object.fromEntries(Object.entries(serverSettings).map(([k, v]) => [k, String(v)])),
    };
    log(`Machine: ${describeMachine(machine)}`);

    const postmasterPid = Number(readFileSync(path.join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const ctx: BenchContext = {
      binDir: server.dir,
      cli: cliPath,
      node: process.execPath,
      work,
      env,
      socketDir: cluster.host,
      port: cluster.port,
      sourceDb: SOURCE_DB,
      tables: seeded.tables,
      sourceIndexes: Object.fromEntries(idx.rows.map((r) => [r.am, r.n])),
      admin,
      postmasterPid,
      jobs: cpus,
      archives: new Map(),
      log,
    };

    const results = new Map<string, VariantResult>(
      specs.map((s) => [s.id, { id: s.id, label: s.id, kind: s.kind, owner: s.owner, samples: [], archiveBytes: null }]),
    );
    const maxRounds = Math.max(...specs.map((s) => roundsFor(s, o)));
    for (let round = 0; round < maxRounds; round++) {
      for (const spec of specs) {
        const res = results.get(spec.id)!;
        if (round >= roundsFor(spec, o) || res.error) continue;
        log(`round ${round + 1}/${roundsFor(spec, o)}: ${spec.id} ...`);
        try {
          const out = await runVariant(spec, ctx, round, connect);
          res.samples.push({ wall: out.measured.wall, cpu: out.measured.cpu, serverCpu: out.measured.serverCpu, rss: out.measured.rss, hnsw: out.hnsw, load: Math.round(os.loadavg()[0]! * 100) / 100 });
          res.archiveBytes = out.archiveBytes;
          log(
            `  ${spec.id}: ${out.measured.wall.toFixed(1)} s wall, ${out.measured.cpu.toFixed(1)} s CPU, server ${out.measured.serverCpu.toFixed(1)} s` +
              (out.measured.rss !== null ? `, peak RSS ${(out.measured.rss / 1024 / 1024).toFixed(0)} MiB` : '') +
              (out.archiveBytes !== null ? `, archive ${(out.archiveBytes / 1e6).toFixed(1)} MB` : '') +
              (out.hnsw !== null ? `, HNSW build ${out.hnsw.toFixed(1)} s` : '') +
              `, load ${os.loadavg()[0]!.toFixed(1)}`,
          );
        } catch (err) {
          if (!(err instanceof VariantFailed)) throw err;
          res.error = err.message;
          log(`  ${spec.id} FAILED: ${err.message}`);
        }
      }
    }

    const list = specs.map((s) => results.get(s.id)!);
    const rows = summarize(list, sourceBytes);
    let otherRun: { rss: number | null; sourceBytes: number; label: string } | undefined;
    if (o.baseline) {
      const base = JSON.parse(await fs.readFile(o.baseline, 'utf8')) as { dataset: DatasetInfo; rows: Array<{ id: string; rss: number | null }> };
      otherRun = { rss: base.rows.find((r) => r.id === defaultBackup)?.rss ?? null, sourceBytes: base.dataset.sourceBytes, label: path.basename(o.baseline) };
    }
    const checks = checkTargets({ rows, defaultBackup, sourceBytes, ...(otherRun ? { otherRun } : {}) });
    const date = new Date().toISOString().slice(0, 10);
    const info: RunInfo = {
      date,
      machine,
      dataset,
      rounds: { fast: o.rounds, slow: o.slowRounds },
      notes: [
        `Product defaults: format ${defaultFormat}, compression ${defaultCompression} (${defaultBackup}); our restores use ${o.restoreRounds} round(s).`,
        'Ours runs as users run it: node dist/cli/index.js (the bundled CLI) on Node ' + process.versions.node + '; backups with verify none (dump, compression, checksum); test-restore into a temporary database of the same cluster (test-restore-url); restore with strategy swap into a new database.',
        "The old kit's commands run through bash as its scripts did: pg_dump | gzip > file.sql.gz; gzip -t and a look at the header; gunzip -c file | psql into a fresh database.",
        'Every restore ends checked: the source\'s row counts and every index (by access method) present, valid and ready.',
      ],
    };
    const cliSha256 = createHash('sha256').update(await fs.readFile(cliPath)).digest('hex');
    const json = { ...info, cli: { path: path.relative(ROOT, cliPath) || cliPath, sha256: cliSha256 }, options: o, variants: list, rows, targets: checks };
    const base = resultsBase(date, machine.slug, o);
    await fs.mkdir(o.out, { recursive: true });
    await fs.writeFile(path.join(o.out, `${base}.json`), JSON.stringify(json, null, 2) + '\n');
    await fs.writeFile(path.join(o.out, `${base}.md`), renderMarkdown(info, rows, checks));
    await fs.writeFile(path.join(o.out, 'latest.svg'), renderSvg(rows, `pgvector-backup benchmark ${date}: ${(o.rows / 1000).toFixed(0)}k x ${o.halfvec ? 'halfvec' : 'vector'}(${o.dims}), ${machine.cpus} CPUs`));
    process.stdout.write(`\n${describeDataset(dataset)}\n${describeMachine(machine)}\n\n`);
    process.stdout.write(renderTable(rows));
    process.stdout.write('\nTargets:\n' + checks.map((c) => `  [${c.met === null ? ' ' : c.met ? 'x' : '!'}] ${c.target}: ${c.measured}`).join('\n') + '\n');
    process.stdout.write(`\nWrote ${path.join(o.out, base)}.json, .md and ${path.join(o.out, 'latest.svg')}\n`);
    return list.some((r) => r.error) ? 1 : 0;
  } finally {
    await admin.end().catch(() => undefined);
    await cleanup();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
