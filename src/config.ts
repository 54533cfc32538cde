// One typed Config, built in one place from the inputs (action) or flags (CLI); bad values throw a
// ConfigurationError whose message names the input and the fix.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CompressionMethod, Format } from './archive/manifest.js';
import { ConfigurationError } from './errors.js';
import { INPUTS, MODES, type InputName, type Mode } from './inputs.js';
import { resolveConnection, type ConnInfo } from './postgres/connection.js';
import type { RetentionPolicy } from './retention.js';
import type { PushOptions } from './metrics/metrics.js';
import { parseS3Destination, type S3Options } from './storage/s3-location.js';
import { parseSftpDestination, sftpSettings, type SftpOptions } from './storage/sftp.js';
import { progressSecondsFrom } from './progress.js';
import { parseIdentities, parseRecipients, splitArmored, type DecryptionSettings, type EncryptionSettings } from './archive/crypto.js';

export type VerifyLevel = 'none' | 'quick' | 'full';

export interface Config {
  mode: Mode;
  /** The source connection, resolved like libpq (URL, then PG* environment, then defaults). */
  source: ConnInfo;
  /** True when a database was named (database-url or PGDATABASE): list/prune then show only its backups. */
  databaseNamed: boolean;
  /** local, s3://bucket/prefix, sftp://user@host/path (each validated). */
  destination: string[];
  s3: S3Options;
  /** Key or agent and known hosts for sftp:// destinations (checked when there is one). */
  sftp: SftpOptions;
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
  /** network-timeout: how long a remote call may go without moving a byte (also in s3, sftp and pushgateway). */
  networkTimeoutMs: number;
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
  /** Encrypt stored archives (backup). */
  encryption?: EncryptionSettings;
  /** Keys that decrypt (verify, test-restore, restore; a backup adds its own run key). */
  decryption: DecryptionSettings;
  allowUnencrypted: boolean;
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
  throw new ConfigurationError(`Input ${name} must be one of ${allowed.join(', ')}; got "${value}"`, { code: 'config-invalid-input' });
}

export function parseBoolean(name: InputName, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off'].includes(v)) return false;
  throw new ConfigurationError(`Input ${name} must be true or false; got "${value}"`, { code: 'config-invalid-input' });
}

export function parseWholeNumber(name: InputName, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = value.trim();
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ConfigurationError(`Input ${name} must be a whole number from ${min} to ${max}; got "${value}"`, { code: 'config-invalid-input' });
  }
  return Number(v);
}

/** network-timeout: whole seconds, in ms. */
export function parseNetworkTimeout(value: string): number {
  const v = value.trim();
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 86400) {
    throw new ConfigurationError(
      `Input network-timeout must be a whole number of seconds from 1 to 86400 (how long a remote call may go without moving a byte before it is abandoned), such as 60; got "${value}"`,
      { code: 'config-invalid-input' },
    );
  }
  return Number(v) * 1000;
}

/** A PostgreSQL interval that lock_timeout and pg_dump --lock-wait-timeout both accept. */
export function parseTimeout(name: InputName, value: string): string {
  const v = value.trim();
  if (!/^\d+\s*(ms|s|min|h)?$/.test(v)) {
    throw new ConfigurationError(`Input ${name} must be a duration such as 500ms, 60s, 5min or 1h; got "${value}"`, { code: 'config-invalid-input' });
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
      if (d.startsWith('sftp://')) {
        parseSftpDestination(d);
        return d.replace(/(.)\/+$/, '$1');
      }
      throw new ConfigurationError(`Input destination: "${d}" is not supported; use local, artifact, cache, s3://bucket/prefix or sftp://user@host[:port]/path (comma-separated)`, { code: 'config-destination' });
    });
  if (destination.length === 0) throw new ConfigurationError('Input destination is empty; use local or s3://bucket/prefix', { code: 'config-destination' });
  if (new Set(destination).size !== destination.length) throw new ConfigurationError('Input destination names a destination twice', { code: 'config-destination' });
  // (known-hosts: undefined is the CLI without the flag, which then reads ~/.ssh/known_hosts.)
  const sftp = sftpSettings({ destinations: destination, privateKey: optional('ssh-private-key'), passphrase: optional('ssh-passphrase'), knownHosts: get('known-hosts'), env });

  const format = oneOf('format', input('format'), ['custom', 'plain', 'directory'] as const);
  const method = oneOf('compression', input('compression'), ['gzip', 'zstd', 'none'] as const);
  const levelText = optional('compression-level');
  const compression: Config['compression'] = { method };
  if (levelText !== undefined) {
    if (method === 'none') throw new ConfigurationError('Input compression-level needs compression gzip or zstd', { code: 'config-invalid-input' });
    compression.level = parseWholeNumber('compression-level', levelText, 1, method === 'gzip' ? 9 : 19);
  }

  const databaseUrl = optional('database-url');
  const source = resolveConnection(databaseUrl, env);
  const testRestoreUrl = optional('test-restore-url');
  if (testRestoreUrl) resolveConnection(testRestoreUrl, {}, 'test-restore-url');

  const backup = input('backup').trim();
  if (/[\0\n\r]/.test(backup)) throw new ConfigurationError('Input backup must not contain newlines or NUL characters', { code: 'config-backup-name' });
  // A name (not a path) reaches object keys and artifact names: no traversal.
  if (!backup.includes('/') && !backup.includes(path.sep) && backup.includes('..')) throw new ConfigurationError(`Input backup "${backup}" is not a valid backup name (no ..); use latest, a backup name or a path`, { code: 'config-backup-name' });

  const jobsText = optional('jobs');
  const networkTimeoutMs = parseNetworkTimeout(input('network-timeout'));
  const warnings: string[] = [];
  const config: Config = {
    mode,
    source,
    databaseNamed: databaseUrl !== undefined || !!env.PGDATABASE,
    destination,
    s3: {
      forcePathStyle: parseBoolean('s3-force-path-style', input('s3-force-path-style')),
      checksums: oneOf('s3-checksums', input('s3-checksums'), ['when-required', 'when-supported'] as const),
      networkTimeoutMs,
    },
    sftp: { ...sftp.options, networkTimeoutMs },
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
    networkTimeoutMs,
    progressSeconds: progressSecondsFrom(env),
    env,
    metricsPrefix: input('metrics-prefix').trim(),
    target: databaseUrl === undefined && optional('target-database-url') === undefined ? source : resolveConnection(optional('target-database-url') ?? databaseUrl, env, optional('target-database-url') ? 'target-database-url' : 'database-url'),
    strategy: oneOf('strategy', input('strategy'), ['swap', 'in-place'] as const),
    secrets: [databaseUrl, testRestoreUrl, source.password].filter((s): s is string => !!s),
    decryption: { identities: [], gpgPrivateKeys: [] },
    allowUnencrypted: parseBoolean('allow-unencrypted', input('allow-unencrypted')),
    warnings,
  };
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(config.metricsPrefix)) {
    throw new ConfigurationError(`Input metrics-prefix must be a Prometheus metric name prefix (letters, digits, _ and :, not starting with a digit); got "${config.metricsPrefix}"`, { code: 'config-invalid-input' });
  }
  const targetUrl = optional('target-database-url');
  if (targetUrl) config.secrets.push(targetUrl);
  config.secrets.push(...sftp.secrets);
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
  if (destination.includes('artifact') && (days > 90 || days === 0 || gfs.weekly > 0 || gfs.monthly > 0 || gfs.yearly > 0 || gfs.daily > 90)) {
    warnings.push(
      'GitHub deletes artifacts after the repository\'s artifact retention (90 days by default; at most 400 for private repositories, set in Settings > Actions): backups that keep-daily/-weekly/-monthly/-yearly or retention-days want to keep longer will expire in the artifact destination; add an s3:// destination for long-term copies',
    );
  }
  if (config.mode === 'backup' && config.verify === 'none') {
    warnings.push(
      'verify: none writes unverified backups: they never count as good, so retention keeps the good ones (keep-min, the newest good backup) whatever it deletes, and latest for a restore skips them. Verify them later (mode: verify or test-restore), or use verify: quick (seconds) or full',
    );
  }
  const s3Endpoint = optional('s3-endpoint');
  if (s3Endpoint) {
    if (!/^https?:\/\/[^\s]+$/.test(s3Endpoint)) throw new ConfigurationError('Input s3-endpoint must be an http(s) URL such as https://<account>.r2.cloudflarestorage.com', { code: 'config-invalid-input' });
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
      throw new ConfigurationError('Input pushgateway-url must be an http(s) URL such as http://pushgateway:9091', { code: 'config-invalid-input' });
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigurationError('Input pushgateway-url must be an http(s) URL such as http://pushgateway:9091', { code: 'config-invalid-input' });
    config.pushgateway = { url: gateway, job: input('pushgateway-job').trim() || 'pgvector-backup', timeoutMs: networkTimeoutMs };
    const token = optional('pushgateway-token');
    if (token) config.pushgateway.token = token;
    config.secrets.push(gateway);
    if (u.password) config.secrets.push(decodeURIComponent(u.password));
    if (token) config.secrets.push(token);
  }
  if (testRestoreUrl) config.testRestoreUrl = testRestoreUrl;
  readEncryption(config, optional);
  const pgBinDir = optional('pg-bin-dir');
  if (pgBinDir) config.pgBinDir = path.resolve(pgBinDir);
  return config;
}

/**
 * Encryption (age recipients or passphrase, or OpenPGP public keys) and the keys that decrypt. artifact and cache
 * are readable by anyone with read access to the repository (caches by pull requests too): a backup run refuses
 * to put plaintext there unless allow-unencrypted is set, before anything is dumped.
 */
function readEncryption(config: Config, optional: (name: InputName) => string | undefined): void {
  const recipients = optional('encryption-recipients');
  const passphrase = optional('encryption-passphrase');
  const gpgPublic = optional('encryption-gpg-public-key');
  const identity = keyText(optional('decryption-identity'), 'decryption-identity');
  const gpgPrivate = keyText(optional('decryption-gpg-private-key'), 'decryption-gpg-private-key');
  const gpgPassphrase = optional('decryption-gpg-passphrase');
  for (const secret of [passphrase, gpgPassphrase]) if (secret) config.secrets.push(secret);
  // Multi-line keys: each line on its own too, so a line printed alone is masked as well.
  for (const key of [identity, gpgPrivate]) {
    if (!key) continue;
    config.secrets.push(key);
    for (const line of key.split(/\r?\n/)) if (line.trim().length >= 16 && !line.startsWith('-----') && !line.startsWith('#')) config.secrets.push(line.trim());
  }
  if (gpgPublic && (recipients || passphrase)) {
    throw new ConfigurationError('Choose one encryption: age (encryption-recipients or encryption-passphrase) or OpenPGP (encryption-gpg-public-key), not both', { code: 'config-encryption' });
  }
  if (recipients && passphrase) {
    throw new ConfigurationError('age encrypts to recipients or to a passphrase, not both: keep encryption-recipients (recommended) and remove encryption-passphrase, or the reverse', { code: 'config-encryption' });
  }
  if (gpgPublic) config.encryption = { method: 'gpg', recipients: [], gpgPublicKeys: splitArmored(gpgPublic, 'PUBLIC', 'encryption-gpg-public-key'), };
  else if (recipients) config.encryption = { method: 'age', recipients: parseRecipients(recipients), gpgPublicKeys: [] };
  else if (passphrase) config.encryption = { method: 'age', recipients: [], passphrase, gpgPublicKeys: [] };
  if (config.encryption?.method === 'age' && config.encryption.recipients.length === 0 && passphrase === undefined) {
    throw new ConfigurationError('Input encryption-recipients names no recipient', { code: 'config-encryption' });
  }
  if (config.encryption?.passphrase !== undefined && config.format === 'directory') {
    config.warnings.push('encryption-passphrase with format directory runs scrypt once per file of the archive (about a second each, for the backup and again for every verification and restore): encryption-recipients costs nothing per file');
  }
  const d: DecryptionSettings = { identities: identity ? parseIdentities(identity) : [], gpgPrivateKeys: gpgPrivate ? splitArmored(gpgPrivate, 'PRIVATE', 'decryption-gpg-private-key') : [] };
  if (passphrase !== undefined) d.passphrase = passphrase;
  if (gpgPassphrase !== undefined) d.gpgPassphrase = gpgPassphrase;
  config.decryption = d;
  const exposed = config.destination.filter((x) => x === 'artifact' || x === 'cache');
  if (config.mode === 'backup' && exposed.length && !config.encryption && !config.allowUnencrypted) {
    throw new ConfigurationError(
      `Refusing to store an unencrypted dump in ${exposed.join(' and ')}: anyone with read access to this repository can download workflow artifacts, and pull requests (forks included) can restore caches. ` +
        'Add a key: run `npx pgvector-backup keygen`, put the AGE-SECRET-KEY line into a repository secret (for decryption-identity) and the age1... recipient into a variable, and set encryption-recipients: ${{ vars.BACKUP_AGE_RECIPIENT }}. ' +
        'Or use local/s3:// with access control, or set allow-unencrypted: true if the data is not sensitive',
      { code: 'config-unencrypted' },
    );
  }
}

/** A key given inline, or as the path of a file that holds it (the CLI's habit: age -i key.txt). */
function keyText(value: string | undefined, input: InputName): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v.includes('\n') || v.startsWith('AGE-SECRET-KEY-') || v.startsWith('-----BEGIN') || v.startsWith('#')) return value;
  if (!existsSync(v)) return value;
  try {
    return readFileSync(v, 'utf8');
  } catch (err) {
    throw new ConfigurationError(`Input ${input}: cannot read the key file ${v} (${(err as Error).message})`, { code: 'config-invalid-input' });
  }
}

