// mode: restore. Safe by default: `confirm` must name the target database and pull-request events are refused
// before anything is touched. strategy swap restores into a new database, compares it with the manifest and
// only then renames (the old database is kept); strategy in-place restores in one transaction. A failure at
// any step leaves the target as it was.
import { keepPlaintext } from '../archive/encrypted.js';
import type pg from 'pg';
import { describeMismatch } from '../archive/compare.js';
import { isCancelled, type Context } from '../context.js';
import { BackupError, ConfigurationError, describeError, isDamage } from '../errors.js';
import { connect, poolerProblem, withDatabase, type ConnInfo } from '../postgres/connection.js';
import { compareRestored, createMissingRoles, restoreArchive } from '../postgres/restore.js';
import { checkExtensions } from '../postgres/targets.js';
import { findClientTools, serverMajor } from '../postgres/tools.js';
import { table } from '../report/reporter.js';
import { resolveBackup } from '../storage/index.js';
import type { LocalBackup } from '../storage/local.js';
import { setBackupOutputs } from './backup.js';
import { recordVerification, verifyOne } from './verify.js';
import type { Verification } from '../archive/manifest.js';

/** Events whose code may come from someone else: a restore never runs there. */
export function refusedEvent(env: NodeJS.ProcessEnv): string | undefined {
  const e = env.GITHUB_EVENT_NAME;
  return e === 'pull_request' || e === 'pull_request_target' ? e : undefined;
}

/** `<db>__<what>_<stamp>`, shortened to PostgreSQL's 63-byte identifier limit. */
export function sideName(database: string, what: string, stamp: string): string {
  const suffix = `__${what}_${stamp}`;
  let base = database;
  while (Buffer.byteLength(base + suffix) > 63) base = base.slice(0, -1);
  return base + suffix;
}

function stampNow(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
}

async function adminConnect(target: ConnInfo): Promise<pg.Client> {
  for (const db of ['postgres', 'template1']) {
    try {
      return await connect(withDatabase(target, db));
    } catch (err) {
      if (db === 'template1') throw err;
    }
  }
  throw new Error('unreachable');
}

export async function runRestore(ctx: Context): Promise<void> {
  // An encrypted backup is decrypted once, for the quick verify, and restored from that plaintext.
  return keepPlaintext(() => restoreKept(ctx));
}

async function restoreKept(ctx: Context): Promise<void> {
  const { config, logger, reporter } = ctx;
  const event = refusedEvent(config.env);
  if (event) throw new ConfigurationError(`restore is refused on ${event} events: a pull request must not change a database. Run it from workflow_dispatch (behind a protected environment)`, { code: 'config-refused-event' });
  const target = config.target;
  const pooler = poolerProblem(target, 'restore');
  if (pooler) throw new ConfigurationError(`${pooler}. Nothing was changed`, { code: 'connect-pooler' });
  const dbName = target.database;
  if (config.confirm !== dbName) {
    throw new ConfigurationError(
      config.confirm === undefined || config.confirm === ''
        ? `restore replaces database "${dbName}": set confirm to its name (confirm: ${dbName}) to go ahead. Nothing was changed`
        : `confirm ("${config.confirm}") is not the target database's name ("${dbName}"). Nothing was changed`,
      { code: 'restore-confirm' },
    );
  }
  // latest of the named source database, else of the target's own name: never another database's backup.
  const b = await resolveBackup(ctx, config.backup, config.databaseNamed ? config.source.database : dbName, 'restore');
  ctx.facts.database = b.manifest.database;
  setBackupOutputs(ctx, b);
  // The quick pass is recorded with the restore's own comparison (a full check): nothing when the restore could not run.
  const passed: Verification[] = [];
  const quick = await verifyOne(ctx, b, passed);
  if (!quick.ok) throw new BackupError(quick.failure ?? `Backup ${b.name} failed verification`, 'Nothing was changed', { code: quick.code ?? 'verify-failed' });

  const admin = await adminConnect(target);
  let exists: boolean;
  let serverMajorNum: number;
  try {
    exists = (await admin.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [dbName])).rowCount === 1;
    serverMajorNum = serverMajor(Number((await admin.query<{ n: string }>(`SELECT current_setting('server_version_num') AS n`)).rows[0]!.n));
  } finally {
    await admin.end().catch(() => undefined);
  }
  if (serverMajorNum < serverMajor(b.manifest.server.versionNum)) {
    throw new BackupError(`The target runs PostgreSQL ${serverMajorNum}, older than the backup's source (${b.manifest.server.version})`, 'Restore into a server of the same or a newer major version. Nothing was changed', { code: 'target-old-server' });
  }
  await checkExtensions(withDatabase(target, exists ? dbName : 'postgres'), b.manifest, `${target.host}:${target.port}`);
  const tools = await findClientTools(Math.max(serverMajorNum, b.manifest.pgDump.major), { env: config.env, logger, ...(config.pgBinDir ? { pgBinDir: config.pgBinDir } : {}) });
  await ensureRoles(ctx, target, b);

  if (config.strategy === 'in-place' && !exists) throw new BackupError(`Database "${dbName}" does not exist`, 'in-place restores into an existing database; use strategy: swap to create it. Nothing was changed', { code: 'restore-no-database' });
  const where = `${dbName} on ${target.host}:${target.port} (restore, ${config.strategy})`;
  try {
    if (config.strategy === 'in-place') await inPlace(ctx, b, target, tools);
    else await swap(ctx, b, target, tools, exists);
  } catch (err) {
    // The archive did not restore, or restored to something other than its manifest: evidence, recorded.
    if (isDamage(err) && !isCancelled()) {
      await recordVerification(ctx, b, [...passed, { level: 'full', ok: false, at: new Date().toISOString(), checks: [], failure: describeError(err), ...(err.code ? { code: err.code } : {}), target: where }]);
    }
    throw err;
  }
  await recordVerification(ctx, b, [...passed, { level: 'full', ok: true, at: new Date().toISOString(), checks: ['restored and matches the manifest'], target: where }]);
  reporter.output('restored-database', dbName);
}

/** Owners and grants are restored: the roles must exist, or be created with create-roles. */
async function ensureRoles(ctx: Context, target: ConnInfo, b: LocalBackup): Promise<void> {
  if (ctx.config.createRoles) {
    const created = await createMissingRoles(withDatabase(target, 'postgres'), b.manifest.roles);
    if (created.length) ctx.logger.info(`Created roles (NOLOGIN): ${created.join(', ')}`);
    return;
  }
  const admin = await adminConnect(target);
  try {
    const r = await admin.query<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE rolname = ANY($1)`, [b.manifest.roles]);
    const have = new Set(r.rows.map((x) => x.rolname));
    const missing = b.manifest.roles.filter((x) => !have.has(x));
    if (missing.length) {
      throw new BackupError(`The target server lacks roles the backup's objects belong to: ${missing.join(', ')}`, 'Create them, or set create-roles: true to create them (NOLOGIN). Nothing was changed', { code: 'restore-missing-roles' });
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/**
 * CREATE EXTENSION vector before any data, in the schema the backup had it in, when that schema already exists
 * (public, usually); otherwise the dump's pre-data creates schema and extension together, still before data.
 */
async function createVectorFirst(conn: ConnInfo, b: LocalBackup): Promise<void> {
  const ext = b.manifest.extensions.find((e) => e.name === 'vector');
  if (!ext) return;
  const c = await connect(conn);
  try {
    const has = await c.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [ext.schema]);
    if (has.rowCount) await c.query(`CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA ${c.escapeIdentifier(ext.schema)}`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function compareWithManifest(ctx: Context, conn: ConnInfo, b: LocalBackup): Promise<number> {
  const c = await compareRestored(conn, b.manifest);
  for (const m of c.mismatches.slice(0, 50)) ctx.logger.error(describeMismatch(m));
  ctx.logger.info(`Compared ${c.tables.length} tables with the manifest: ${c.mismatches.length} mismatches${c.knn ? `; kNN check ${c.knn.ok ? 'identical' : 'DIFFERENT'}` : ''}`);
  return c.mismatches.length;
}

async function swap(ctx: Context, b: LocalBackup, target: ConnInfo, tools: Awaited<ReturnType<typeof findClientTools>>, exists: boolean): Promise<void> {
  const { config, logger, reporter } = ctx;
  const db = target.database;
  const stamp = stampNow();
  const fresh = sideName(db, 'restore', stamp);
  const previous = sideName(db, 'pre_restore', stamp);
  const admin = await adminConnect(target);
  let created = false;
  const dropFresh = async (): Promise<void> => {
    if (!created) return;
    const a = await adminConnect(target).catch(() => undefined);
    if (!a) return;
    await a.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [fresh]).catch(() => undefined);
    await a.query(`DROP DATABASE IF EXISTS ${a.escapeIdentifier(fresh)}`).catch(() => undefined);
    await a.end().catch(() => undefined);
  };
  const unregister = ctx.onCancel(dropFresh);
  let endedSessions = 0;
  try {
    await logger.group(`Restore ${b.name} into a new database ${fresh}`, async () => {
      // Same encoding and locale as the database it replaces.
      const like = exists
        ? (await admin.query<{ enc: string; col: string; ctype: string }>(`SELECT pg_encoding_to_char(encoding) AS enc, datcollate AS col, datctype AS ctype FROM pg_database WHERE datname = $1`, [db])).rows[0]
        : undefined;
      const opts = like ? ` ENCODING ${admin.escapeLiteral(like.enc)} LC_COLLATE ${admin.escapeLiteral(like.col)} LC_CTYPE ${admin.escapeLiteral(like.ctype)}` : '';
      await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(fresh)} TEMPLATE template0${opts}`);
      created = true;
      const conn = withDatabase(target, fresh);
      await createVectorFirst(conn, b);
      const timing = await restoreArchive(b.manifest, b.archivePath, { conn, tools }, {
        jobs: config.jobs,
        noOwner: false,
        logger,
        progressSeconds: config.progressSeconds,
        env: config.env,
        onCancel: ctx.onCancel,
        decryption: config.decryption,
      });
      for (const w of timing.warnings) logger.warning(w);
      reporter.output('restore-seconds', timing.restoreSeconds);
      if (timing.indexBuildSeconds !== null) reporter.output('index-build-seconds', timing.indexBuildSeconds);
      const mismatches = await compareWithManifest(ctx, conn, b);
      reporter.output('mismatches', mismatches);
      reporter.output('verified', mismatches === 0);
      if (mismatches) throw new BackupError(`The restored copy differs from the manifest in ${mismatches} places`, `The database ${db} was not touched; the backup does not hold what was recorded`, { code: 'verify-mismatch', damage: true });
    });
    await logger.group(`Swap ${fresh} in as ${db}`, async () => {
      const q = (n: string): string => admin.escapeIdentifier(n);
      if (exists) {
        // The new database gets the old one's owner (best effort: needs membership in that role or superuser).
        const owner = (await admin.query<{ o: string }>(`SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = $1`, [db])).rows[0]?.o;
        if (owner) await admin.query(`ALTER DATABASE ${q(fresh)} OWNER TO ${q(owner)}`).catch((err: unknown) => logger.warning(`Could not give ${fresh} the owner ${owner}: ${(err as Error).message}`));
        // Keep new sessions out while the old database is renamed away; the ones already there are ended.
        const others = Number((await admin.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [db])).rows[0]?.n ?? 0);
        logger.warning(`Swapping ends every other session connected to ${db} (${others} now); applications reconnect to the restored database`);
        await admin.query(`ALTER DATABASE ${q(db)} WITH ALLOW_CONNECTIONS false`);
        let renamed = false;
        try {
          const ended = await admin.query<{ ok: boolean }>(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [db]);
          const n = ended.rows.filter((r) => r.ok).length;
          logger.info(`Ended ${n} session${n === 1 ? '' : 's'} on ${db}`);
          endedSessions = n;
          await admin.query(`ALTER DATABASE ${q(db)} RENAME TO ${q(previous)}`);
          renamed = true;
        } finally {
          await admin.query(`ALTER DATABASE ${q(renamed ? previous : db)} WITH ALLOW_CONNECTIONS true`).catch(() => undefined);
        }
      }
      try {
        await admin.query(`ALTER DATABASE ${q(fresh)} RENAME TO ${q(db)}`);
      } catch (err) {
        if (exists) await admin.query(`ALTER DATABASE ${q(previous)} RENAME TO ${q(db)}`).catch(() => undefined);
        throw err;
      }
      created = false;
      logger.info(exists ? `${db} now holds ${b.name}; the previous database is kept as ${previous}` : `${db} created from ${b.name}`);
    });
    const rollback = exists
      ? [
          `ALTER DATABASE ${admin.escapeIdentifier(db)} RENAME TO ${admin.escapeIdentifier(sideName(db, 'rolled_back', stamp))};`,
          `ALTER DATABASE ${admin.escapeIdentifier(previous)} RENAME TO ${admin.escapeIdentifier(db)};`,
        ]
      : [];
    await reporter.summary(
      [
        `## pgvector-backup: restored ${b.name} into ${db} (swap)`,
        '',
        table(['', ''], [
          ['Backup', `${b.name} (${b.manifest.createdAt})`],
          ['Target', `${db} on ${target.host}:${target.port}`],
          ['Previous database', exists ? previous : '(none: created)'],
          ['Sessions ended on the previous database', String(endedSessions)],
          ['Verified against the manifest', 'yes'],
        ]),
        '',
        ...(rollback.length ? ['To roll back (terminate the sessions on the new database first):', '', '```sql', ...rollback, '```', ''] : []),
      ].join('\n'),
    );
  } catch (err) {
    await dropFresh();
    throw err;
  } finally {
    unregister();
    await admin.end().catch(() => undefined);
  }
}

async function inPlace(ctx: Context, b: LocalBackup, target: ConnInfo, tools: Awaited<ReturnType<typeof findClientTools>>): Promise<void> {
  const { config, logger, reporter } = ctx;
  await logger.group(`Restore ${b.name} into ${target.database} in one transaction`, async () => {
    await createVectorFirst(target, b);
    const timing = await restoreArchive(b.manifest, b.archivePath, { conn: target, tools }, {
      jobs: 1,
      noOwner: false,
      logger,
      progressSeconds: config.progressSeconds,
      env: config.env,
      singleTransaction: true,
      onCancel: ctx.onCancel,
      decryption: config.decryption,
    });
    reporter.output('restore-seconds', timing.restoreSeconds);
  });
  const mismatches = await compareWithManifest(ctx, target, b).catch((err: unknown) => {
    throw new BackupError(`The restore committed but comparing it with the manifest failed: ${describeError(err)}`, 'Check the database', { code: 'restore-compare-failed', cause: err });
  });
  reporter.output('mismatches', mismatches);
  reporter.output('verified', mismatches === 0);
  await reporter.summary(
    [`## pgvector-backup: restored ${b.name} into ${target.database} (in place, one transaction)`, '', `Compared with the manifest: ${mismatches === 0 ? 'identical' : `**${mismatches} mismatches**`}`, ''].join('\n'),
  );
  if (mismatches) throw new BackupError(`The restored database differs from the manifest in ${mismatches} places`, 'See the mismatches above', { code: 'verify-mismatch', damage: true });
}
