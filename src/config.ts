// One typed Config, built in one place from the inputs (action) or flags (CLI); bad values throw a
// ConfigurationError whose message names the input and the fix.
import os from 'node:os';
import path from 'node:path';
import type { CompressionMethod, Format } from './archive/manifest.js';
import { ConfigurationError } from './errors.js';
import { INPUTS, MODES, type InputName, type Mode } from './inputs.js';
import { resolveConnection, type ConnInfo } from './postgres/connection.js';
import type { RetentionPolicy } from './retention.js';
import type { PushOptions } from './metrics/metrics.js';
import { parseS3Destination, type S3Options } from './storage/s3.js';

export type VerifyLevel = 'none' | 'quick' | 'full';

export interface Config {
  mode: Mode;
  /** The source connection, resolved like libpq (URL, then PG* environment, then defaults). */
  source: ConnInfo;
  /** True when a database was named (database-url or PGDATABASE): list/prune then show only its backups. */
  databaseNamed: boolean;
  /** local, s3://bucket/prefix (each validated). */
  destination: string[];
  s3: S3Options;
  backupDir: string;
  format: Format;
  compression: { method: CompressionMethod; level?: number };
  verify: VerifyLevel;
  backup: string;
  all: boolean;
  testRestoreUrl?: string;
  createRoles: boolean;
  retention: RetentionPolicy;
  dryRun: boolean;
  jobs: number;
  lockWaitTimeout: string;
  pgBinDir?: string;
  /** Seconds between progress lines during long work. */
  progressSeconds: number;
  /** The environment children inherit (minus PG* settings, which come from `source`). */
  env: NodeJS.ProcessEnv;
  /** restore: the target (database-url's when not given). */
  target: ConnInfo;
  confirm?: string;
  strategy: 'swap' | 'in-place';
  migrateCommand?: string;
  /** For listing and pruning artifacts of earlier runs. */
  githubToken?: string;
  /** Absolute path of the Prometheus textfile; undefined: none. */
  metricsFile?: string;
  metricsPrefix: string;
  pushgateway?: PushOptions;
  /** Secret values to mask: password, URLs. */
  secrets: string[];
  /** Things worth a warning about the settings (not errors). */
  warnings: string[];
}

/**
 * Returns the raw input: undefined when absent (the CLI without that flag: the default applies), '' when set
 * empty (the runner always passes action.yml's defaults, so '' there is the user's choice).
 */
export type InputGetter = (name: InputName) => string | undefined;

export function inputDefault(name: InputName): string {
  return INPUTS.find((i) => i.name === name)!.default;
}

function oneOf<T extends string>(name: InputName, value: string, allowed: readonly T[]): T {
  const v = value.trim().toLowerCase();
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw new ConfigurationError(`Input ${name} must be one of ${allowed.join(', ')}; got "${value}"`);
}

export function parseBoolean(name: InputName, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off'].includes(v)) return false;
  throw new ConfigurationError(`Input ${name} must be true or false; got "${value}"`);
}

export function parseWholeNumber(name: InputName, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = value.trim();
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ConfigurationError(`Input ${name} must be a whole number from ${min} to ${max}; got "${value}"`);
  }
  return Number(v);
}

/** A PostgreSQL interval that lock_timeout and pg_dump --lock-wait-timeout both accept. */
export function parseTimeout(name: InputName, value: string): string {
  const v = value.trim();
  if (!/^\d+\s*(ms|s|min|h)?$/.test(v)) {
    throw new ConfigurationError(`Input ${name} must be a duration such as 500ms, 60s, 5min or 1h; got "${value}"`);
  }
  return v.replace(/\s+/g, '');
}

export function buildConfig(get: InputGetter, env: NodeJS.ProcessEnv = process.env): Config {
  const input = (name: InputName): string => get(name) ?? inputDefault(name);
  const optional = (name: InputName): string | undefined => {
    const v = get(name);
    return v === undefined || v.trim() === '' ? undefined : v;
  };

  const mode = oneOf('mode', input('mode'), MODES);
  const destination = input('destination')
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean)
    .map((d) => {
      if (d === 'local' || d === 'artifact' || d === 'cache') return d;
      if (d.startsWith('s3://')) {
        parseS3Destination(d);
        return d.replace(/\/+$/, '');
      }
      throw new ConfigurationError(`Input destination: "${d}" is not supported; use local, artifact, cache or s3://bucket/prefix (comma-separated)`);
    });
  if (destination.length === 0) throw new ConfigurationError('Input destination is empty; use local or s3://bucket/prefix');
  if (new Set(destination).size !== destination.length) throw new ConfigurationError('Input destination names a destination twice');

  const format = oneOf('format', input('format'), ['custom', 'plain', 'directory'] as const);
  const method = oneOf('compression', input('compression'), ['gzip', 'zstd', 'none'] as const);
  const levelText = optional('compression-level');
  const compression: Config['compression'] = { method };
  if (levelText !== undefined) {
    if (method === 'none') throw new ConfigurationError('Input compression-level needs compression gzip or zstd');
    compression.level = parseWholeNumber('compression-level', levelText, 1, method === 'gzip' ? 9 : 19);
  }

  const databaseUrl = optional('database-url');
  const source = resolveConnection(databaseUrl, env);
  const testRestoreUrl = optional('test-restore-url');
  if (testRestoreUrl) resolveConnection(testRestoreUrl, {}, 'test-restore-url');

  const backup = input('backup').trim();
  if (/[\0\n\r]/.test(backup)) throw new ConfigurationError('Input backup must not contain newlines or NUL characters');

  const jobsText = optional('jobs');
  const warnings: string[] = [];
  const config: Config = {
    mode,
    source,
    databaseNamed: databaseUrl !== undefined || !!env.PGDATABASE,
    destination,
    s3: {
      forcePathStyle: parseBoolean('s3-force-path-style', input('s3-force-path-style')),
      checksums: oneOf('s3-checksums', input('s3-checksums'), ['when-required', 'when-supported'] as const),
    },
    backupDir: path.resolve(input('backup-dir')),
    format,
    compression,
    verify: oneOf('verify', input('verify'), ['none', 'quick', 'full'] as const),
    backup: backup || 'latest',
    all: parseBoolean('all', input('all')),
    createRoles: parseBoolean('create-roles', input('create-roles')),
    retention: {
      days: parseWholeNumber('retention-days', input('retention-days'), 0, 36500),
      keepMin: parseWholeNumber('keep-min', input('keep-min'), 1, 100000),
      daily: parseWholeNumber('keep-daily', input('keep-daily'), 0, 100000),
      weekly: parseWholeNumber('keep-weekly', input('keep-weekly'), 0, 100000),
      monthly: parseWholeNumber('keep-monthly', input('keep-monthly'), 0, 100000),
      yearly: parseWholeNumber('keep-yearly', input('keep-yearly'), 0, 100000),
    },
    dryRun: parseBoolean('dry-run', input('dry-run')),
    jobs: jobsText === undefined ? Math.max(1, os.availableParallelism()) : parseWholeNumber('jobs', jobsText, 1, 64),
    lockWaitTimeout: parseTimeout('lock-wait-timeout', input('lock-wait-timeout')),
    progressSeconds: env.PGVB_PROGRESS_SECONDS ? Number(env.PGVB_PROGRESS_SECONDS) || 10 : 10,
    env,
    metricsPrefix: input('metrics-prefix').trim(),
    target: databaseUrl === undefined && optional('target-database-url') === undefined ? source : resolveConnection(optional('target-database-url') ?? databaseUrl, env, optional('target-database-url') ? 'target-database-url' : 'database-url'),
    strategy: oneOf('strategy', input('strategy'), ['swap', 'in-place'] as const),
    secrets: [databaseUrl, testRestoreUrl, source.password].filter((s): s is string => !!s),
    warnings,
  };
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(config.metricsPrefix)) {
    throw new ConfigurationError(`Input metrics-prefix must be a Prometheus metric name prefix (letters, digits, _ and :, not starting with a digit); got "${config.metricsPrefix}"`);
  }
  const targetUrl = optional('target-database-url');
  if (targetUrl) config.secrets.push(targetUrl);
  const confirm = optional('confirm');
  if (confirm !== undefined) config.confirm = confirm.trim();
  const migrate = optional('migrate-command');
  if (migrate) config.migrateCommand = migrate;
  const token = optional('github-token');
  // The CLI sees action.yml's expression default literally: that is no token.
  if (token && !token.startsWith('${{')) {
    config.githubToken = token.trim();
    config.secrets.push(config.githubToken);
  }
  const days = config.retention.days;
  const gfs = config.retention;
  if (destination.includes('artifact') && days > 0 && (days > 90 || gfs.weekly > 0 || gfs.monthly > 0 || gfs.yearly > 0 || gfs.daily > days)) {
    warnings.push(
      `GitHub deletes artifacts after at most 90 days (here ${Math.min(days, 90)}, from retention-days): backups that keep-daily/-weekly/-monthly/-yearly or retention-days want to keep longer will expire in the artifact destination; add an s3:// destination for long-term copies`,
    );
  }
  const s3Endpoint = optional('s3-endpoint');
  if (s3Endpoint) {
    if (!/^https?:\/\/[^\s]+$/.test(s3Endpoint)) throw new ConfigurationError('Input s3-endpoint must be an http(s) URL such as https://<account>.r2.cloudflarestorage.com');
    config.s3.endpoint = s3Endpoint;
  }
  const s3Region = optional('s3-region');
  if (s3Region) config.s3.region = s3Region.trim();
  const partSize = optional('s3-part-size');
  if (partSize) config.s3.partSize = parseWholeNumber('s3-part-size', partSize, 5, 5120) * 1024 * 1024;
  // Set to an empty value to write no file (the runner passes '' through; the CLI's absent flag means the default).
  const metricsFile = input('metrics-file').trim();
  if (metricsFile) config.metricsFile = path.resolve(metricsFile);
  const gateway = optional('pushgateway-url');
  if (gateway) {
    let u: URL;
    try {
      u = new URL(gateway);
    } catch {
      throw new ConfigurationError('Input pushgateway-url must be an http(s) URL such as http://pushgateway:9091');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigurationError('Input pushgateway-url must be an http(s) URL such as http://pushgateway:9091');
    config.pushgateway = { url: gateway, job: input('pushgateway-job').trim() || 'pgvector-backup' };
    const token = optional('pushgateway-token');
    if (token) config.pushgateway.token = token;
    config.secrets.push(gateway);
    if (u.password) config.secrets.push(decodeURIComponent(u.password));
    if (token) config.secrets.push(token);
  }
  if (testRestoreUrl) config.testRestoreUrl = testRestoreUrl;
  const pgBinDir = optional('pg-bin-dir');
  if (pgBinDir) config.pgBinDir = path.resolve(pgBinDir);
  return config;
}
