import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { buildConfig, type InputGetter } from '../../src/config.js';
import { ConfigurationError } from '../../src/errors.js';
import type { InputName } from '../../src/inputs.js';

const URL = 'postgresql://alice:p%40ss%3A%2Fw%25rd%20%C3%BC@db.example.com:5433/vectors?sslmode=require';

function getter(inputs: Partial<Record<InputName, string>>): InputGetter {
  return (name) => inputs[name];
}

// (These tests are about other inputs: the default destination, artifact, then takes plaintext.)
function build(inputs: Partial<Record<InputName, string>>, env: NodeJS.ProcessEnv = {}) {
  return buildConfig(getter({ 'database-url': URL, 'allow-unencrypted': 'true', ...inputs }), env);
}

const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';

describe('buildConfig', () => {
  test('defaults', () => {
    const env = { PATH: '/bin' };
    const c = buildConfig(getter({ 'database-url': URL, 'encryption-recipients': RECIPIENT }), env);
    expect(c).toEqual({
      mode: 'backup',
      source: { host: 'db.example.com', port: 5433, user: 'alice', password: 'p@ss:/w%rd ü', database: 'vectors', params: { sslmode: 'require' } },
      databaseNamed: true,
      // The action's default; the CLI passes its own default (local).
      destination: ['artifact'],
      backupDir: path.resolve('backups/postgres'),
      format: 'custom',
      compression: { method: 'zstd' },
      verify: 'full',
      backup: 'latest',
      all: false,
      createRoles: false,
      retention: { days: 7, keepMin: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 },
      dryRun: true,
      jobs: Math.max(1, os.availableParallelism()),
      lockWaitTimeout: '60s',
      networkTimeoutMs: 60_000,
      progressSeconds: 10,
      env,
      s3: { forcePathStyle: false, checksums: 'when-required', networkTimeoutMs: 60_000 },
      sftp: { networkTimeoutMs: 60_000 },
      metricsPrefix: 'pgvector_backup',
      metricsFile: path.resolve('metrics/backup.prom'),
      secrets: [URL, 'p@ss:/w%rd ü'],
      warnings: [],
      target: c.source,
      strategy: 'swap',
      encryption: { method: 'age', recipients: [RECIPIENT], gpgPublicKeys: [] },
      decryption: { identities: [], gpgPrivateKeys: [] },
      allowUnencrypted: false,
    });
    expect('testRestoreUrl' in c).toBe(false);
    expect('pgBinDir' in c).toBe(false);
  });

  test('every input set explicitly', () => {
    const c = build({
      mode: ' Prune ',
      destination: 'local, s3://my-bucket/nightly/',
      's3-endpoint': 'https://minio.example.com:9000',
      's3-region': 'eu-west-1',
      's3-force-path-style': 'true',
      's3-checksums': 'when-supported',
      's3-part-size': '16',
      'metrics-file': '/var/lib/node_exporter/backup.prom',
      'metrics-prefix': 'rag_backup',
      'backup-dir': '/var/backups/pg',
      format: 'DIRECTORY',
      compression: 'zstd',
      'compression-level': '19',
      verify: 'quick',
      backup: '  vector_db_20260107_143022  ',
      all: 'yes',
      'test-restore-url': 'postgresql://postgres:other-secret@127.0.0.1:5432/postgres',
      'create-roles': 'on',
      'retention-days': '30',
      'keep-min': '3',
      'keep-daily': '7',
      'keep-weekly': '4',
      'keep-monthly': '12',
      'keep-yearly': '2',
      'dry-run': 'false',
      jobs: '8',
      'lock-wait-timeout': '5 min',
      'network-timeout': ' 120 ',
      'pg-bin-dir': '/usr/lib/postgresql/16/bin/',
    });
    expect({ ...c, source: undefined, env: undefined, target: undefined }).toEqual({
      mode: 'prune',
      source: undefined,
      databaseNamed: true,
      destination: ['local', 's3://my-bucket/nightly'],
      s3: { forcePathStyle: true, checksums: 'when-supported', endpoint: 'https://minio.example.com:9000', region: 'eu-west-1', partSize: 16 * 1024 * 1024, networkTimeoutMs: 120_000 },
      sftp: { networkTimeoutMs: 120_000 },
      metricsFile: '/var/lib/node_exporter/backup.prom',
      metricsPrefix: 'rag_backup',
      decryption: { identities: [], gpgPrivateKeys: [] },
      allowUnencrypted: true,
      warnings: [],
      target: undefined,
      strategy: 'swap',
      backupDir: '/var/backups/pg',
      format: 'directory',
      compression: { method: 'zstd', level: 19 },
      verify: 'quick',
      backup: 'vector_db_20260107_143022',
      all: true,
      testRestoreUrl: 'postgresql://postgres:other-secret@127.0.0.1:5432/postgres',
      createRoles: true,
      retention: { days: 30, keepMin: 3, daily: 7, weekly: 4, monthly: 12, yearly: 2 },
      dryRun: false,
      jobs: 8,
      lockWaitTimeout: '5min',
      networkTimeoutMs: 120_000,
      pgBinDir: '/usr/lib/postgresql/16/bin',
      progressSeconds: 10,
      env: undefined,
      secrets: [URL, 'postgresql://postgres:other-secret@127.0.0.1:5432/postgres', 'p@ss:/w%rd ü'],
    });
  });

  test('artifact retention that would expire backups the policy keeps is a warning', () => {
    expect(build({ destination: 'artifact', 'retention-days': '7' }).warnings).toEqual([]);
    expect(build({ destination: 'local', 'keep-monthly': '12' }).warnings).toEqual([]);
    const w = build({ destination: 'artifact', 'keep-monthly': '12' }).warnings;
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/GitHub deletes artifacts after the repository's artifact retention \(90 days by default/);
    expect(build({ destination: 'artifact', 'retention-days': '120' }).warnings[0]).toMatch(/at most 400 for private repositories/);
    // retention-days 0 keeps all by age: artifacts would still expire.
    expect(build({ destination: 'artifact', 'retention-days': '0' }).warnings).toHaveLength(1);
  });

  test('verify: none warns that its backups are unverified and never count as good', () => {
    expect(build({ verify: 'none' }).warnings.join('\n')).toMatch(/verify: none writes unverified backups: they never count as good/);
    expect(build({ verify: 'quick' }).warnings.join('\n')).not.toMatch(/unverified/);
    expect(build({ verify: 'none', mode: 'verify' }).warnings.join('\n')).not.toMatch(/unverified/);
  });

  test('an empty input is the same as an absent one', () => {
    const c = build({ 'compression-level': '  ', jobs: '', 'pg-bin-dir': '' });
    expect(c.compression).toEqual({ method: 'zstd' });
    expect(c.jobs).toBe(Math.max(1, os.availableParallelism()));
    expect(c.pgBinDir).toBeUndefined();
  });

  test.each([
    { name: 'mode', inputs: { mode: 'restor' }, message: 'Input mode must be one of backup, verify, test-restore, restore, list, prune; got "restor"' },
    { name: 'format', inputs: { format: 'tar' }, message: 'Input format must be one of custom, plain, directory; got "tar"' },
    { name: 'compression', inputs: { compression: 'bzip2' }, message: 'Input compression must be one of gzip, zstd, none; got "bzip2"' },
    { name: 'verify', inputs: { verify: 'yes' }, message: 'Input verify must be one of none, quick, full; got "yes"' },
    { name: 'retention-days negative', inputs: { 'retention-days': '-1' }, message: 'Input retention-days must be a whole number from 0 to 36500; got "-1"' },
    { name: 'retention-days text', inputs: { 'retention-days': 'week' }, message: 'Input retention-days must be a whole number from 0 to 36500; got "week"' },
    { name: 'retention-days fraction', inputs: { 'retention-days': '1.5' }, message: 'Input retention-days must be a whole number from 0 to 36500; got "1.5"' },
    { name: 'keep-min 0', inputs: { 'keep-min': '0' }, message: 'Input keep-min must be a whole number from 1 to 100000; got "0"' },
    { name: 'keep-weekly', inputs: { 'keep-weekly': 'x' }, message: 'Input keep-weekly must be a whole number from 0 to 100000; got "x"' },
    { name: 'jobs 0', inputs: { jobs: '0' }, message: 'Input jobs must be a whole number from 1 to 64; got "0"' },
    { name: 'jobs 65', inputs: { jobs: '65' }, message: 'Input jobs must be a whole number from 1 to 64; got "65"' },
    { name: 'jobs auto', inputs: { jobs: 'auto' }, message: 'Input jobs must be a whole number from 1 to 64; got "auto"' },
    { name: 'lock-wait-timeout unit', inputs: { 'lock-wait-timeout': '5 minutes' }, message: 'Input lock-wait-timeout must be a duration such as 500ms, 60s, 5min or 1h; got "5 minutes"' },
    { name: 'lock-wait-timeout negative', inputs: { 'lock-wait-timeout': '-1s' }, message: 'Input lock-wait-timeout must be a duration such as 500ms, 60s, 5min or 1h; got "-1s"' },
    { name: 'compression-level with none', inputs: { compression: 'none', 'compression-level': '5' }, message: 'Input compression-level needs compression gzip or zstd' },
    { name: 'gzip level 10', inputs: { compression: 'gzip', 'compression-level': '10' }, message: 'Input compression-level must be a whole number from 1 to 9; got "10"' },
    { name: 'zstd level 20', inputs: { compression: 'zstd', 'compression-level': '20' }, message: 'Input compression-level must be a whole number from 1 to 19; got "20"' },
    { name: 'level 0', inputs: { 'compression-level': '0' }, message: 'Input compression-level must be a whole number from 1 to 19; got "0"' },
    { name: 'all', inputs: { all: 'maybe' }, message: 'Input all must be true or false; got "maybe"' },
    { name: 'dry-run', inputs: { 'dry-run': 'nope' }, message: 'Input dry-run must be true or false; got "nope"' },
    { name: 'create-roles', inputs: { 'create-roles': '2' }, message: 'Input create-roles must be true or false; got "2"' },
    { name: 'destination s3', inputs: { destination: 's3' }, message: 'Input destination: "s3" is not supported; use local' },
    { name: 'destination list with s3', inputs: { destination: 'local,s3' }, message: 'Input destination: "s3" is not supported; use local' },
    { name: 'destination empty list', inputs: { destination: ' , ' }, message: 'Input destination is empty; use local' },
    { name: 'backup with a newline', inputs: { backup: 'a\nb' }, message: 'Input backup must not contain newlines or NUL characters' },
    { name: 'backup with a NUL', inputs: { backup: 'a\0b' }, message: 'Input backup must not contain newlines or NUL characters' },
    { name: 'database-url', inputs: { 'database-url': 'not a url' }, message: 'database-url is not a PostgreSQL connection string' },
  ])('invalid $name throws a ConfigurationError naming the input', ({ inputs, message }) => {
    expect(() => build(inputs as Partial<Record<InputName, string>>)).toThrow(ConfigurationError);
    expect(() => build(inputs as Partial<Record<InputName, string>>)).toThrow(message);
  });

  test.each([
    { compression: 'gzip', level: '9', expected: { method: 'gzip', level: 9 } },
    { compression: 'zstd', level: '10', expected: { method: 'zstd', level: 10 } },
    { compression: 'none', level: undefined, expected: { method: 'none' } },
  ])('compression $compression level $level', ({ compression, level, expected }) => {
    const inputs: Partial<Record<InputName, string>> = { compression };
    if (level !== undefined) inputs['compression-level'] = level;
    expect(build(inputs).compression).toEqual(expected);
  });

  test.each([
    { value: '500ms', expected: '500ms' },
    { value: '60', expected: '60' },
    { value: '1h', expected: '1h' },
    { value: ' 2 s ', expected: '2s' },
  ])('lock-wait-timeout "$value" -> $expected', ({ value, expected }) => {
    expect(build({ 'lock-wait-timeout': value }).lockWaitTimeout).toBe(expected);
  });

  test('an invalid test-restore-url port names test-restore-url', () => {
    expect(() => build({ 'test-restore-url': 'postgresql://u@h:0/d' })).toThrow(/^test-restore-url .*port must be a number from 1 to 65535/);
  });

  // Was a bug: parseConnectionString's messages always said "database-url".
  test('a malformed test-restore-url is reported under its own name', () => {
    expect(() => build({ 'test-restore-url': 'not a url' })).toThrow(/^test-restore-url /);
  });

  test('without database-url the PG* environment is the source; databaseNamed follows PGDATABASE', () => {
    const env = { PGHOST: 'envhost', PGUSER: 'envuser', PGPASSWORD: 'envpass', PGDATABASE: 'envdb' };
    const c = buildConfig(getter({ destination: 'local' }), env);
    expect(c.source).toEqual({ host: 'envhost', port: 5432, user: 'envuser', password: 'envpass', database: 'envdb', params: {} });
    expect(c.databaseNamed).toBe(true);
    expect(c.secrets).toEqual(['envpass']);
    const unnamed = buildConfig(getter({ destination: 'local' }), { PGHOST: 'h', PGUSER: 'u' });
    expect(unnamed.databaseNamed).toBe(false);
    expect(unnamed.source.database).toBe('u');
    expect(unnamed.secrets).toEqual([]);
  });

  test('PGVB_PROGRESS_SECONDS sets the progress interval; junk falls back to 10', () => {
    expect(build({}, { PGVB_PROGRESS_SECONDS: '2' }).progressSeconds).toBe(2);
    expect(build({}, { PGVB_PROGRESS_SECONDS: 'x' }).progressSeconds).toBe(10);
  });

  test('a relative backup-dir is resolved', () => {
    expect(build({ 'backup-dir': 'rel/dir' }).backupDir).toBe(path.resolve('rel/dir'));
  });
});

describe('encryption inputs', () => {
  const IDENTITY = 'AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX';

  test('the action\'s defaults (artifact, no key) are refused before anything runs, naming the fix', () => {
    const run = () => buildConfig(getter({ 'database-url': URL }), {});
    expect(run).toThrow(ConfigurationError);
    expect(run).toThrow(/Refusing to store an unencrypted dump in artifact: anyone with read access/);
    expect(run).toThrow(/keygen/);
    // Reading modes and local/s3 destinations are not affected.
    expect(buildConfig(getter({ 'database-url': URL, mode: 'test-restore' }), {}).encryption).toBeUndefined();
    expect(buildConfig(getter({ 'database-url': URL, destination: 'local,s3://bucket/p' }), {}).encryption).toBeUndefined();
    expect(buildConfig(getter({ 'database-url': URL, destination: 'cache', 'allow-unencrypted': 'true' }), {}).allowUnencrypted).toBe(true);
    expect(() => buildConfig(getter({ 'database-url': URL, destination: 'local,cache' }), {})).toThrow(/unencrypted dump in cache/);
  });

  test('recipients, passphrase and gpg are exclusive; secret inputs are masked line by line', () => {
    expect(() => build({ 'encryption-recipients': RECIPIENT, 'encryption-passphrase': 'x'.repeat(12) })).toThrow(/not both/);
    expect(() => build({ 'encryption-recipients': RECIPIENT, 'encryption-gpg-public-key': '-----BEGIN PGP PUBLIC KEY BLOCK-----\nx\n-----END PGP PUBLIC KEY BLOCK-----' })).toThrow(/Choose one encryption/);
    const p = build({ 'encryption-passphrase': 'correct horse battery', 'decryption-identity': `# created: today\n${IDENTITY}\n` });
    expect(p.encryption).toEqual({ method: 'age', recipients: [], passphrase: 'correct horse battery', gpgPublicKeys: [] });
    expect(p.decryption).toEqual({ identities: [IDENTITY], gpgPrivateKeys: [], passphrase: 'correct horse battery' });
    expect(p.secrets).toEqual(expect.arrayContaining(['correct horse battery', IDENTITY]));
    expect(() => build({ 'encryption-recipients': IDENTITY })).toThrow(/holds a private key/);
    expect(() => build({ 'decryption-identity': 'not a key' })).toThrow(/must hold age identities/);
  });

  test('backup names with .. are refused; paths are not names', () => {
    expect(() => build({ mode: 'verify', backup: 'db_2026..x' })).toThrow(/not a valid backup name/);
    expect(build({ mode: 'verify', backup: '../elsewhere/db_20260101_000000.json' }).backup).toBe('../elsewhere/db_20260101_000000.json');
  });
});

