// Command-line options of `npm run bench` and the catalogue of variants. Pure; table-tested.
import type { Owner, VariantKind } from './stats.js';

export interface BenchOptions {
  rows: number;
  dims: number;
  halfvec: boolean;
  tables: number;
  /** Rounds of fast variants. */
  rounds: number;
  /** Rounds of slow variants (gzip at level 6, the old kit's restore, pg_restore with server defaults). */
  slowRounds: number;
  /** Rounds of our test-restore and restore. */
  restoreRounds: number;
  /** Variant ids to run (their prerequisites are added); undefined: the default set. */
  only?: string[];
  out: string;
  seed: number;
  /** An earlier run's JSON to compare our peak RSS with (the 5x dataset check). */
  baseline?: string;
  /** The bundled CLI to measure (default dist/cli/index.js): another build, to compare a change. */
  cli?: string;
  /** Skip the HNSW indexes (backup-only runs such as the memory check on a large dataset). */
  noIndex: boolean;
  help: boolean;
}

export const DEFAULTS: BenchOptions = { rows: 200_000, dims: 768, halfvec: false, tables: 1, rounds: 3, slowRounds: 1, restoreRounds: 2, out: 'bench/results', seed: 42, noIndex: false, help: false };

export const USAGE = `Usage: npm run bench -- [options]

Starts a throwaway PostgreSQL + pgvector cluster, seeds a reproducible dataset, and measures backups, verification
and restores: ours (the bundled CLI) side by side with the raw floor (COPY TO STDOUT), the old kit (pg_dump | gzip,
gunzip -c | psql) and plain pg_dump / pg_restore. Build first (npm run build): ours runs as dist/cli/index.js.

Options:
  --rows N            rows in total, split evenly across the tables (default ${DEFAULTS.rows})
  --dims N            vector dimensions (default ${DEFAULTS.dims})
  --halfvec           halfvec(N) columns instead of vector(N)
  --tables N          number of tables (default ${DEFAULTS.tables})
  --rounds N          rounds of fast variants (default ${DEFAULTS.rounds})
  --slow-rounds N     rounds of slow variants: gzip backups, the old kit's restore, pg_restore (default ${DEFAULTS.slowRounds})
  --restore-rounds N  rounds of our test-restore and restore (default ${DEFAULTS.restoreRounds})
  --only LIST         comma-separated variant ids (prerequisites are added), e.g. floor,backup:custom/zstd-1
  --out DIR           where results go (default ${DEFAULTS.out})
  --seed N            dataset seed (default ${DEFAULTS.seed})
  --baseline FILE     an earlier run's JSON: compare our backup's peak RSS with it (the 5x dataset check)
  --cli FILE          the bundled CLI to measure (default dist/cli/index.js), e.g. another build to compare
  --no-index          no HNSW indexes (backup-only runs, such as the peak-RSS check on a 5x dataset)

Variants: floor; kit:backup, kit:verify, kit:restore; pg_dump:custom, pg_dump:directory, pg_restore:custom;
backup:<format>/<compression>[-<level>], verify:..., test-restore:..., restore:... with format custom | plain |
directory and compression gzip | zstd | none (e.g. backup:custom/zstd, restore:custom/zstd-1).
`;

export class UsageError extends Error {}

function positiveInt(flag: string, v: string | undefined, min = 1): number {
  if (v === undefined || !/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${flag} needs a whole number of at least ${min}; got ${v === undefined ? 'nothing' : `"${v}"`}`);
  return Number(v);
}

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const o: BenchOptions = { ...DEFAULTS };
  let restoreRoundsSet = false;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--rows':
        o.rows = positiveInt(flag, value());
        break;
      case '--dims':
        o.dims = positiveInt(flag, value());
        if (o.dims > 16000) throw new UsageError('--dims must be at most 16000 (pgvector limit)');
        break;
      case '--halfvec':
        o.halfvec = true;
        break;
      case '--tables':
        o.tables = positiveInt(flag, value());
        break;
      case '--rounds':
        o.rounds = positiveInt(flag, value());
        break;
      case '--slow-rounds':
        o.slowRounds = positiveInt(flag, value());
        break;
      case '--restore-rounds':
        o.restoreRounds = positiveInt(flag, value());
        restoreRoundsSet = true;
        break;
      case '--only': {
        const v = value();
        if (!v) throw new UsageError('--only needs a comma-separated list of variant ids');
        o.only = v.split(',').map((s) => s.trim()).filter(Boolean);
        for (const id of o.only) parseVariantId(id);
        break;
      }
      case '--out': {
        const v = value();
        if (!v) throw new UsageError('--out needs a directory');
        o.out = v;
        break;
      }
      case '--seed':
        o.seed = positiveInt(flag, value(), 0);
        break;
      case '--baseline': {
        const v = value();
        if (!v) throw new UsageError('--baseline needs the path of an earlier run\'s JSON');
        o.baseline = v;
        break;
      }
      case '--cli': {
        const v = value();
        if (!v) throw new UsageError('--cli needs the path of a bundled CLI (dist/cli/index.js)');
        o.cli = v;
        break;
      }
      case '--no-index':
        o.noIndex = true;
        break;
      case '--help':
      case '-h':
        o.help = true;
        break;
      default:
        throw new UsageError(`Unknown option ${flag}; see npm run bench -- --help`);
    }
  }
  if (o.tables > o.rows) throw new UsageError('--tables cannot exceed --rows');
  if (!restoreRoundsSet) o.restoreRounds = Math.min(o.rounds, DEFAULTS.restoreRounds);
  return o;
}

export type Format = 'custom' | 'plain' | 'directory';
export type Compression = 'gzip' | 'zstd' | 'none';

export interface VariantSpec {
  id: string;
  kind: VariantKind;
  owner: Owner;
  weight: 'fast' | 'slow' | 'restore';
  /** Our variants: the backup they make or use. */
  ours?: { format: Format; compression: Compression; level?: number };
  /** The variant whose archive this one reads. */
  needs?: string;
}

const OURS_RE = /^(backup|verify|test-restore|restore):(custom|plain|directory)\/(gzip|zstd|none)(?:-(\d{1,2}))?$/;
const FIXED: Record<string, Omit<VariantSpec, 'id'>> = {
  floor: { kind: 'floor', owner: 'postgres', weight: 'fast' },
  'kit:backup': { kind: 'backup', owner: 'kit', weight: 'slow' },
  'kit:verify': { kind: 'verify', owner: 'kit', weight: 'fast', needs: 'kit:backup' },
  'kit:restore': { kind: 'restore', owner: 'kit', weight: 'slow', needs: 'kit:backup' },
  'pg_dump:custom': { kind: 'backup', owner: 'postgres', weight: 'slow' },
  'pg_dump:directory': { kind: 'backup', owner: 'postgres', weight: 'slow' },
  'pg_restore:custom': { kind: 'restore', owner: 'postgres', weight: 'slow', needs: 'pg_dump:custom' },
};

export function parseVariantId(id: string): VariantSpec {
  const fixed = FIXED[id];
  if (fixed) return { id, ...fixed };
  const m = OURS_RE.exec(id);
  if (!m) throw new UsageError(`Unknown variant "${id}"; see npm run bench -- --help`);
  const [, what, format, compression, level] = m as unknown as [string, string, Format, Compression, string | undefined];
  if (level !== undefined) {
    const max = compression === 'gzip' ? 9 : compression === 'zstd' ? 19 : 0;
    if (Number(level) < 1 || Number(level) > max) throw new UsageError(`Variant "${id}": ${compression} has no level ${level}`);
  }
  const ours = { format, compression, ...(level !== undefined ? { level: Number(level) } : {}) };
  const backupId = `backup:${format}/${compression}${level !== undefined ? `-${level}` : ''}`;
  if (what === 'backup') return { id, kind: 'backup', owner: 'ours', weight: compression === 'gzip' ? 'slow' : 'fast', ours };
  if (what === 'verify') return { id, kind: 'verify', owner: 'ours', weight: 'fast', ours, needs: backupId };
  return { id, kind: 'restore', owner: 'ours', weight: 'restore', ours, needs: backupId };
}

/** The default set, around the product's default format and compression. */
export function defaultVariants(defaultFormat: Format, defaultCompression: Compression): string[] {
  const d = `${defaultFormat}/${defaultCompression}`;
  const ids = [
    'floor',
    'kit:backup',
    'pg_dump:custom',
    `backup:${d}`,
    'backup:custom/zstd',
    'backup:custom/gzip',
    'backup:custom/none',
    'backup:plain/zstd',
    'backup:plain/gzip',
    'backup:directory/gzip',
    'kit:verify',
    `verify:${d}`,
    // An archive pg_dump compressed itself (gzip), beside the default's zstd stream: both verify by checksum + structure.
    'verify:custom/gzip',
    'kit:restore',
    'pg_restore:custom',
    `test-restore:${d}`,
    `restore:${d}`,
  ];
  return [...new Set(ids)];
}

const KIND_ORDER: Record<VariantKind, number> = { floor: 0, backup: 1, verify: 2, restore: 3 };

/** The variants to run: the requested ones and their prerequisites, backups before what reads them. */
export function planVariants(requested: readonly string[]): VariantSpec[] {
  const out = new Map<string, VariantSpec>();
  const add = (id: string): void => {
    if (out.has(id)) return;
    const spec = parseVariantId(id);
    if (spec.needs) add(spec.needs);
    out.set(id, spec);
  };
  for (const id of requested) add(id);
  return [...out.values()].map((s, i) => ({ s, i })).sort((a, b) => KIND_ORDER[a.s.kind] - KIND_ORDER[b.s.kind] || a.i - b.i).map(({ s }) => s);
}

/** Rounds of a variant in this run. */
export function roundsFor(spec: VariantSpec, o: Pick<BenchOptions, 'rounds' | 'slowRounds' | 'restoreRounds'>): number {
  return spec.weight === 'slow' ? o.slowRounds : spec.weight === 'restore' ? o.restoreRounds : o.rounds;
}
