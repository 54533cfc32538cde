// Pure argument builders: how a format and compression turn into pg_dump/pg_restore/psql arguments and a file
// suffix. Table-tested; no I/O here.
import { ConfigurationError } from '../errors.js';
import { archiveSuffix, type CompressionMethod, type Format } from './manifest.js';
import { DEFAULT_LEVEL } from './pipeline.js';

export interface CompressionPlan {
  method: CompressionMethod;
  level: number | null;
  applied: 'pg_dump' | 'stream' | 'none';
  /** pg_dump's -Z argument (custom and directory formats). */
  pgDumpZ?: string;
  suffix: string;
}

/**
 * custom/directory archives use pg_dump's own compression when it supports the method (gzip always, zstd from
 * pg_dump 16), so they stay restorable with pg_restore alone; otherwise (plain, or zstd with an older pg_dump)
 * the stream is compressed by us and the file gets .gz/.zst.
 */
export function planCompression(format: Format, method: CompressionMethod, level: number | undefined, pgDumpMajor: number): CompressionPlan {
  const lvl = method === 'none' ? null : (level ?? DEFAULT_LEVEL[method]);
  let plan: Omit<CompressionPlan, 'suffix'>;
  if (method === 'none') {
    plan = { method, level: null, applied: 'none', ...(format === 'plain' ? {} : { pgDumpZ: '0' }) };
  } else if (format === 'plain') {
    plan = { method, level: lvl, applied: 'stream' };
  } else if (method === 'gzip') {
    plan = { method, level: lvl, applied: 'pg_dump', pgDumpZ: pgDumpMajor >= 16 ? `gzip:${lvl}` : String(lvl) };
  } else if (pgDumpMajor >= 16) {
    plan = { method, level: lvl, applied: 'pg_dump', pgDumpZ: `zstd:${lvl}` };
  } else if (format === 'custom') {
    plan = { method, level: lvl, applied: 'stream', pgDumpZ: '0' };
  } else {
    throw new ConfigurationError(`format directory with compression zstd needs pg_dump 16 or newer (found ${pgDumpMajor}); use compression gzip, or format custom`, { code: 'config-compression' });
  }
  return { ...plan, suffix: archiveSuffix(format, plan) };
}

export interface DumpArgsOptions {
  format: Format;
  compression: CompressionPlan;
  snapshot?: string;
  lockWaitTimeout: string;
  jobs: number;
  /** Output directory for the directory format (the others write to stdout). */
  outputDir?: string;
}

/** pg_dump arguments. The connection comes from the environment (PGHOST ... PGPASSWORD), never argv. */
export function pgDumpArgs(o: DumpArgsOptions): string[] {
  const args = ['--no-password', `--lock-wait-timeout=${o.lockWaitTimeout}`];
  if (o.snapshot) args.push(`--snapshot=${o.snapshot}`);
  switch (o.format) {
    case 'custom':
      args.push('--format=custom');
      break;
    case 'plain':
      args.push('--format=plain');
      break;
    case 'directory':
      if (!o.outputDir) throw new Error('directory format needs an output directory');
      args.push('--format=directory', `--jobs=${o.jobs}`, `--file=${o.outputDir}`);
      break;
  }
  if (o.compression.pgDumpZ !== undefined) args.push(`--compress=${o.compression.pgDumpZ}`);
  return args;
}

export type Section = 'pre-data' | 'data' | 'post-data';

export interface RestoreArgsOptions {
  format: Exclude<Format, 'plain'>;
  /** Target database name (host, user and password come from the environment). */
  database: string;
  /** Archive file or directory; omitted to read the archive from stdin. */
  input?: string;
  section?: Section;
  jobs: number;
  noOwner: boolean;
  singleTransaction?: boolean;
  clean?: boolean;
}

/**
 * A conninfo string that names only the database, so that a name with spaces, '=' or a URL-like text cannot be
 * taken for connection settings; host, user and password still come from the environment.
 */
export function conninfoDbname(database: string): string {
  return `dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** pg_restore arguments; the target's host, user and password come from the environment. */
export function pgRestoreArgs(o: RestoreArgsOptions): string[] {
  const args = ['--no-password', '--exit-on-error', `--format=${o.format}`];
  args.push(`--dbname=${conninfoDbname(o.database)}`);
  if (o.section) args.push(`--section=${o.section}`);
  if (o.noOwner) args.push('--no-owner', '--no-acl');
  if (o.singleTransaction) args.push('--single-transaction');
  else if (o.jobs > 1 && o.input && o.section !== 'pre-data') args.push(`--jobs=${o.jobs}`);
  if (o.clean) args.push('--clean', '--if-exists');
  if (o.input) args.push(o.input);
  return args;
}

/** psql arguments for a plain SQL dump read from stdin: stop at the first error, no psqlrc. */
export function psqlRestoreArgs(o: { database: string; singleTransaction?: boolean }): string[] {
  const args = ['--no-password', '--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', '--file=-', '--output=/dev/null', `--dbname=${conninfoDbname(o.database)}`];
  if (o.singleTransaction) args.push('--single-transaction');
  return args;
}
