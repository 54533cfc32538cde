// Every input and output name is written here once. action.yml and the README's tables are generated from
// this file (scripts/gen-action.mjs), the CLI derives its flags from it, and a test checks they agree.

export interface InputSpec {
  readonly name: string;
  readonly description: string;
  /** The default as the runner injects it; '' means "absent" (the code decides). */
  readonly default: string;
  /** Secret inputs are masked before anything is logged. */
  readonly secret?: boolean;
  /** Extra CLI spellings (the old shell kit's flags). */
  readonly aliases?: readonly string[];
  /** Environment variables the CLI reads when the flag is absent (the old kit's habits). */
  readonly env?: readonly string[];
  /** A CLI flag that takes no value. */
  readonly boolean?: boolean;
  /** The CLI's default where it differs from the action's (the CLI runs outside GitHub). */
  readonly cliDefault?: string;
}

export const INPUTS = [
  {
    name: 'mode',
    description: 'What to do: backup | verify | test-restore | restore | list | prune.',
    default: 'backup',
  },
  {
    name: 'database-url',
    description:
      'Connection URI of the database to back up (postgresql://user:pass@host:5432/db?sslmode=require). Secret. ' +
      "When empty, libpq's PG* environment variables are used (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE).",
    default: '',
    secret: true,
    // The CLI reads it from the environment or ./.env, so a scheduled run (cron) keeps it out of the crontab.
    env: ['DATABASE_URL'],
  },
  {
    name: 'destination',
    description:
      'Where backups are stored, a comma-separated list: local (backup-dir), artifact (workflow artifacts, listed across runs with github-token), cache (the Actions cache, key pgvector-backup-<db>-<timestamp>; pull requests can restore it), s3://bucket/prefix, sftp://user@host[:port]/path (key or agent login, host key checked against known-hosts). Every destination is attempted; the run fails if any failed. The backup is written to backup-dir first; without local there, that copy is removed once every upload succeeded. The CLI\'s default is local.',
    default: 'artifact',
    cliDefault: 'local',
  },
  {
    name: 'backup-dir',
    description: 'Directory that holds the backups and their manifests.',
    default: 'backups/postgres',
    env: ['BACKUP_DIR'],
  },
  {
    name: 'format',
    description:
      'custom (pg_dump -Fc, restore with pg_restore) | plain (SQL, restore with psql) | directory (pg_dump -Fd, parallel with jobs).',
    default: 'custom',
  },
  {
    name: 'compression',
    description:
      'zstd | gzip | none. zstd (the default) needs about a seventh of gzip\'s CPU and writes no larger archives of embeddings; ' +
      'gzip gives the old kit\'s .sql.gz files with format plain. custom and directory archives use pg_dump\'s own compression where it supports the method ' +
      '(zstd needs pg_dump 16+; otherwise a custom archive is streamed through zstd and gets a .zst suffix, and a directory archive needs gzip).',
    default: 'zstd',
  },
  {
    name: 'compression-level',
    description: 'Compression level (gzip 1-9, default 6; zstd 1-19, default 1: on embeddings zstd 1 is both the fastest and the smallest below 12). Empty for the default.',
    default: '',
  },
  {
    name: 'verify',
    description:
      'After a backup: none | quick (checksum and structure) | full (quick + a test restore compared with the manifest).',
    default: 'full',
  },
  {
    name: 'backup',
    description: 'For verify, test-restore and restore: latest (for restore the newest good, verified backup of the database in any destination; for verify and test-restore the newest one not found bad, so an unverified one can be proven), a backup name, or a path.',
    default: 'latest',
  },
  {
    name: 'all',
    description: 'For verify: check every backup in backup-dir instead of one.',
    default: 'false',
    boolean: true,
  },
  {
    name: 'test-restore-url',
    description:
      'A server to test-restore into (for example a pgvector/pgvector service container). A uniquely named temporary ' +
      'database is created there and dropped afterwards. Empty: a throwaway local cluster, else a Docker container. Secret.',
    default: '',
    secret: true,
  },
  {
    name: 'create-roles',
    description:
      'Test restore: create the roles the dump references (NOLOGIN) and restore owners and grants, instead of --no-owner --no-acl.',
    default: 'false',
    boolean: true,
  },
  {
    name: 'target-database-url',
    description: 'For restore: the database to restore (postgresql://...). Empty: database-url. Secret.',
    default: '',
    secret: true,
  },
  {
    name: 'confirm',
    description: 'For restore: must equal the target database\'s name, or nothing is touched. The CLI asks on a terminal; --yes confirms.',
    default: '',
  },
  {
    name: 'strategy',
    description:
      'For restore: swap (restore into a new database, compare it with the manifest, then rename: the old database is kept as <db>__pre_restore_<timestamp>) | in-place (one transaction that drops and recreates the dump\'s objects, for servers that do not allow creating databases).',
    default: 'swap',
  },
  {
    name: 'migrate-command',
    description:
      'For test-restore: a command run after the restore and its comparison with the manifest, with DATABASE_URL (and PG*) set to the restored database, such as your migrations; its exit code decides. It runs the pull request\'s code, so it gets only the restored copy\'s connection and ordinary process variables: no inputs, tokens, keys or passphrases.',
    default: '',
  },
  {
    name: 'retention-days',
    description: 'Delete this database\'s complete backups older than this many days after a successful backup (0 keeps all by age).',
    default: '7',
    aliases: ['retention'],
    env: ['BACKUP_RETENTION_DAYS'],
  },
  {
    name: 'keep-min',
    description: 'Always keep at least this many newest good (verified) backups, whatever their age; unverified and bad ones do not count.',
    default: '1',
  },
  {
    name: 'keep-daily',
    description: 'Also keep the newest backup of each of the last N days.',
    default: '0',
  },
  {
    name: 'keep-weekly',
    description: 'Also keep the newest backup of each of the last N ISO weeks.',
    default: '0',
  },
  {
    name: 'keep-monthly',
    description: 'Also keep the newest backup of each of the last N months.',
    default: '0',
  },
  {
    name: 'keep-yearly',
    description: 'Also keep the newest backup of each of the last N years.',
    default: '0',
  },
  {
    name: 'dry-run',
    description: 'For prune: print what would be deleted without deleting. Set to false to delete.',
    default: 'true',
  },
  {
    name: 'jobs',
    description: 'Parallel jobs for directory-format dumps and for pg_restore. Empty: the number of CPUs.',
    default: '',
  },
  {
    name: 'lock-wait-timeout',
    description: 'How long to wait for a table lock held by another session before failing (PostgreSQL interval, e.g. 60s, 5min).',
    default: '60s',
  },
  {
    name: 'network-timeout',
    description:
      'Seconds a remote call (s3://, sftp://, artifact, cache, the Pushgateway) may go without moving a byte before it is abandoned and that destination fails, instead of hanging until the job\'s time limit. Transfers that keep moving are never cut, however long they take.',
    default: '60',
  },
  {
    name: 'pg-bin-dir',
    description: 'Directory with the pg_dump, pg_restore and psql to use. Empty: the closest version at least the server\'s is searched on PATH and in the usual places (/usr/lib/postgresql/*/bin, Homebrew), then installed on GitHub runners, then run from a pgvector Docker image.',
    default: '',
  },
  {
    name: 'github-token',
    description: 'Token for finding and pruning artifacts of earlier runs (permissions: actions: read, and actions: write to prune). Secret.',
    default: '${{ github.token }}',
    secret: true,
  },
  {
    name: 'encryption-recipients',
    description:
      'age public keys (age1..., separated by commas or newlines) to encrypt every stored archive to (.age suffix). Not secret: keep it in a workflow file or variable. Create a pair with `pgvector-backup keygen` (or age-keygen). Decrypt with decryption-identity, or by hand with `age -d -i key.txt`.',
    default: '',
    env: ['PGVB_ENCRYPTION_RECIPIENTS'],
  },
  {
    name: 'encryption-passphrase',
    description: 'Secret. Encrypt with age using this passphrase instead of recipients (scrypt); also decrypts. Recipients are the better choice: a backup job then holds no key that reads the backups.',
    default: '',
    secret: true,
    env: ['PGVB_ENCRYPTION_PASSPHRASE'],
  },
  {
    name: 'decryption-identity',
    description: 'Secret. age identity (AGE-SECRET-KEY-1..., one per line; comments allowed) that decrypts backups for verify, test-restore and restore; or the path of an identity file (key.txt).',
    default: '',
    secret: true,
    env: ['PGVB_DECRYPTION_IDENTITY'],
  },
  {
    name: 'encryption-gpg-public-key',
    description: 'Armored OpenPGP public key(s) to encrypt to instead of age (.gpg suffix; `gpg --decrypt` reads it). For users of the old kit\'s gpg habit; age is the recommended default.',
    default: '',
  },
  {
    name: 'decryption-gpg-private-key',
    description: 'Secret. Armored OpenPGP private key that decrypts .gpg backups (gpg --armor --export-secret-keys KEYID), or the path of a file holding it.',
    default: '',
    secret: true,
    env: ['PGVB_DECRYPTION_GPG_PRIVATE_KEY'],
  },
  {
    name: 'decryption-gpg-passphrase',
    description: 'Secret. Passphrase of decryption-gpg-private-key, when it has one.',
    default: '',
    secret: true,
    env: ['PGVB_DECRYPTION_GPG_PASSPHRASE'],
  },
  {
    name: 'allow-unencrypted',
    description:
      'Let backups go unencrypted to the artifact and cache destinations, which anyone with read access to the repository (and, for caches, pull requests) can download. Without encryption those destinations are refused.',
    default: 'false',
    boolean: true,
  },
  {
    name: 's3-endpoint',
    description: 'Endpoint of an S3-compatible service (MinIO, Cloudflare R2, Backblaze B2, GCS interoperability). Empty: AWS S3.',
    default: '',
  },
  {
    name: 's3-region',
    description: 'S3 region. Empty: AWS_REGION, else us-east-1.',
    default: '',
  },
  {
    name: 's3-force-path-style',
    description: 'Use path-style S3 URLs (bucket in the path), as MinIO and many S3-compatible services need.',
    default: 'false',
    boolean: true,
  },
  {
    name: 's3-checksums',
    description: 'when-required (works with most S3-compatible services) | when-supported (the AWS SDK default: CRC32 checksums on every request).',
    default: 'when-required',
  },
  {
    name: 's3-part-size',
    description: 'Multipart part size in MiB (at least 5). Empty: 8 MiB, or larger so that the archive fits in 10,000 parts.',
    default: '',
  },
  {
    name: 'ssh-private-key',
    description:
      'For sftp:// destinations: the private key to log in with, the whole key file\'s text (OpenSSH or PEM, from a secret). Empty: the SSH agent (SSH_AUTH_SOCK). Secret.',
    default: '',
    secret: true,
    env: ['PGVB_SSH_PRIVATE_KEY'],
  },
  {
    name: 'ssh-passphrase',
    description: 'Passphrase of ssh-private-key, when the key is encrypted. Secret.',
    default: '',
    secret: true,
    env: ['PGVB_SSH_PASSPHRASE'],
  },
  {
    name: 'known-hosts',
    description:
      'For sftp:// destinations: the server\'s host keys as known_hosts lines, such as the output of ssh-keyscan -p PORT HOST (compare the fingerprints with the server\'s own); hashed names work. A host key that is unknown or does not match is refused. The CLI reads ~/.ssh/known_hosts when this is not given.',
    default: '',
  },
  {
    name: 'metrics-file',
    description:
      'Prometheus textfile written after backup, verify and test-restore (atomically, for node_exporter\'s textfile collector); values of earlier runs are carried over. Empty: no file.',
    default: 'metrics/backup.prom',
    env: ['PGVB_METRICS_FILE'],
  },
  {
    name: 'metrics-prefix',
    description: 'Prefix of the metric names (rag_backup keeps the old kit\'s dashboards working).',
    default: 'pgvector_backup',
  },
  {
    name: 'pushgateway-url',
    description: 'Prometheus Pushgateway to push the metrics to (http(s)://[user:password@]host:9091). Grouped by job and database. Secret. Empty: no push.',
    default: '',
    secret: true,
  },
  {
    name: 'pushgateway-token',
    description: 'Bearer token for a hosted Pushgateway. Secret.',
    default: '',
    secret: true,
  },
  {
    name: 'pushgateway-job',
    description: 'The job label of pushed metrics.',
    default: 'pgvector-backup',
  },
] as const satisfies readonly InputSpec[];

export type InputName = (typeof INPUTS)[number]['name'];

export interface OutputSpec {
  readonly name: string;
  readonly description: string;
}

export const OUTPUTS = [
  { name: 'backup-name', description: 'Name of the backup (also the archive and manifest file stem).' },
  { name: 'backup-path', description: 'Path of the archive file (or directory).' },
  { name: 'manifest-path', description: 'Path of the manifest JSON.' },
  { name: 'size-bytes', description: 'Size of the archive in bytes.' },
  { name: 'sha256', description: 'SHA-256 of the archive as stored.' },
  { name: 'duration-seconds', description: 'Seconds the dump took.' },
  { name: 'tables', description: 'Number of tables in the backup.' },
  { name: 'rows', description: 'Total rows in the backup (exact, from the dump\'s snapshot).' },
  { name: 'vectors', description: 'Total non-null vector values in the backup.' },
  { name: 'server-version', description: 'PostgreSQL server version of the source.' },
  { name: 'pgvector-version', description: 'pgvector extension version in the source (empty when not installed).' },
  { name: 'verified', description: 'true when the requested verification passed, else false (it failed, or could not run: then nothing was recorded about the backup).' },
  { name: 'restore-seconds', description: 'Seconds the test restore took (all phases).' },
  { name: 'index-build-seconds', description: 'Seconds the test restore spent in post-data (index builds, constraints).' },
  { name: 'mismatches', description: 'Number of differences the test restore found against the manifest.' },
  { name: 'restored-database', description: 'For restore: the database that now holds the backup.' },
  { name: 'migrate-seconds', description: 'For test-restore with migrate-command: seconds the command took.' },
] as const satisfies readonly OutputSpec[];

export type OutputName = (typeof OUTPUTS)[number]['name'];

export const MODES = ['backup', 'verify', 'test-restore', 'restore', 'list', 'prune'] as const;
export type Mode = (typeof MODES)[number];
