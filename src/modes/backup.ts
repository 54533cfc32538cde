// mode: backup. One snapshot: a REPEATABLE READ READ ONLY transaction exports its snapshot, pg_dump dumps from
// it while the same transaction records the inventory, so the manifest is exact for what the archive holds.
// The archive is written under a temporary name, checksummed, renamed into place, and the manifest comes last.
import { existsSync, promises as fs, rmSync } from 'node:fs';
import path from 'node:path';
import {
  backupName,
  manifestPathFor,
  MANIFEST_VERSION,
  TOOL_NAME,
  writeManifest,
  type Manifest,
  type Verification,
} from '../archive/manifest.js';
import { dumpFailure, hashDirectory, formatBytes, streamDump, withLargeStdoutBuffer, withProgress, writeError, type DumpResult } from '../archive/pipeline.js';
import { pgDumpArgs, planCompression } from '../archive/plan.js';
import { canDecrypt, describeRecipients, encryptionSuffix, withRunKey, type EncryptionSettings } from '../archive/crypto.js';
import { encryptDirectory, keepPlaintext } from '../archive/encrypted.js';
import { assertDumpComplete } from '../archive/completeness.js';
import { isCancelled, type Context } from '../context.js';
import { BackupError, ConfigurationError, type ErrorCode } from '../errors.js';
import { run } from '../exec.js';
import { connect, describeTarget, libpqEnv, poolerProblem, SAFE_SESSION_OPTIONS } from '../postgres/connection.js';
import { listTables, lockTables, readInventory, readSequences, readServerInfo, totals, type Inventory } from '../postgres/inventory.js';
import { findClientTools, serverMajor, toolCommand } from '../postgres/tools.js';
import { table } from '../report/reporter.js';
import { VERSION } from '../version.js';
import { applyRetention } from './prune.js';
import { verifyOne } from './verify.js';
import { testRestore } from './test-restore.js';
import { deleteLocal, type LocalBackup } from '../storage/local.js';
import { uploadEverywhere } from '../storage/index.js';

export interface BackupResult {
  backup: LocalBackup;
  verified: boolean;
}

export async function runBackup(ctx: Context): Promise<BackupResult> {
  const { config, logger, reporter } = ctx;
  const src = config.source;
  const pooler = poolerProblem(src);
  if (pooler) throw new ConfigurationError(pooler, { code: 'connect-pooler' });

  ctx.facts.database = src.database;
  const client = await logger.group(`Connect to ${describeTarget(src)}`, async () => {
    const c = await connect(src);
    const info = await readServerInfo(c);
    logger.info(`PostgreSQL ${info.serverVersion}, pgvector ${info.pgvectorVersion ?? 'not installed'}`);
    if (!info.pgvectorVersion) logger.warning(`The vector extension is not installed in database ${info.database}; backing it up anyway`);
    return c;
  });

  let partialPath: string | undefined;
  let finalArchive: string | undefined;
  let name = '';
  let manifestWritten = false;
  // Synchronous, so nothing of this run's can land between the checks and the exit: the partial archive; and an
  // archive already renamed into place whose manifest is not (its .partial removed too). A manifest that made it
  // into place keeps its archive: that backup stays, unverified.
  const unregister = ctx.onCancel(() => {
    if (partialPath) rmSync(partialPath, { recursive: true, force: true });
    if (name && finalArchive && !manifestWritten && !existsSync(manifestPathFor(config.backupDir, name))) {
      rmSync(`${manifestPathFor(config.backupDir, name)}.partial`, { force: true });
      rmSync(finalArchive, { recursive: true, force: true });
    }
  });
  try {
    const server = await readServerInfo(client);
    const major = serverMajor(server.serverVersionNum);
    const tools = await logger.group('Find pg_dump', () =>
      findClientTools(major, { env: config.env, logger, ...(config.pgBinDir ? { pgBinDir: config.pgBinDir } : {}) }),
    );
    const plan = planCompression(config.format, config.compression.method, config.compression.level, tools.major);

    await fs.mkdir(config.backupDir, { recursive: true }).catch((err: unknown) => {
      throw writeError(err, path.join(config.backupDir, 'x'));
    });
    const createdAt = new Date();
    name = await uniqueName(config.backupDir, backupName(server.database, createdAt));
    // Encrypted in the stream (a directory: file by file, after pg_dump); the run can always decrypt what it wrote.
    const crypt = await encryptionForRun(ctx);
    const archiveFile = name + plan.suffix + (crypt && config.format !== 'directory' ? encryptionSuffix(crypt.settings.method) : '');
    finalArchive = path.join(config.backupDir, archiveFile);
    partialPath = `${finalArchive}.partial`;

    const started = Date.now();
    const { dump, inventory } = await logger.group(`Dump ${server.database} (${config.format}, ${plan.method}${plan.level !== null ? ' ' + plan.level : ''})`, async () => {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const snap = await client.query<{ s: string }>('SELECT pg_export_snapshot() AS s');
      const snapshot = snap.rows[0]!.s;
      const rels = await listTables(client);
      await lockTables(client, rels, config.lockWaitTimeout);
      logger.info(`Snapshot ${snapshot}: ${rels.length} tables locked (ACCESS SHARE)`);
      const sequences = await readSequences(client);
      const abort = new AbortController();

      const env = libpqEnv(src, config.env, SAFE_SESSION_OPTIONS);
      env.PGAPPNAME = 'pgvector-backup pg_dump';
      const args = pgDumpArgs({
        format: config.format,
        compression: plan,
        snapshot,
        lockWaitTimeout: config.lockWaitTimeout,
        jobs: config.jobs,
        ...(config.format === 'directory' ? { outputDir: partialPath! } : {}),
      });
      const mounts = tools.kind === 'docker' ? [config.backupDir] : [];
      // A stream (custom, plain) leaves pg_dump through stdio: 1 MiB writes instead of 4 KiB ones (issue 8).
      const command = tools.kind === 'local' && config.format !== 'directory' ? withLargeStdoutBuffer(toolCommand(tools, 'pg_dump', args, env, mounts), config.env) : toolCommand(tools, 'pg_dump', args, env, mounts);

      // A directory archive is checked from its files before they are encrypted, against the snapshot's tables.
      let tablesCounted!: (t: Inventory['tables']) => void;
      let countingFailed!: (err: unknown) => void;
      const tables = new Promise<Inventory['tables']>((resolve, reject) => {
        tablesCounted = resolve;
        countingFailed = reject;
      });
      tables.catch(() => undefined);
      const dumping =
        config.format === 'directory'
          ? dumpDirectory(ctx, command, partialPath!, crypt?.settings, tables)
          : streamDump({
              command,
              outFile: partialPath!,
              ...(plan.applied === 'stream' ? { compression: { method: plan.method, level: plan.level ?? undefined } } : {}),
              logger,
              progressSeconds: config.progressSeconds,
              name: 'pg_dump',
              signal: abort.signal,
              rewritesOutput: config.format === 'custom',
              check: config.format,
              ...(crypt ? { encryption: crypt.settings } : {}),
            });
      // The inventory runs in the snapshot's transaction while pg_dump works; if either fails, stop the other.
      const counting = readInventory(client, {
        tables: rels,
        sequences,
        onProgress: (m) => logger.info(`  inventory: ${m}`),
      });
      // If either side fails, stop the other instead of holding the snapshot open for nothing.
      dumping.catch(() => client.end().catch(() => undefined));
      counting.then(
        (inv) => tablesCounted(inv.tables),
        (err: unknown) => {
          countingFailed(err);
          abort.abort();
        },
      );
      const [d, inv] = await Promise.allSettled([dumping, counting]);
      if (d.status === 'rejected') throw d.reason;
      if (inv.status === 'rejected') throw inv.reason;
      await client.query('COMMIT');
      // Whatever verify says: an empty or cut dump never gets a final name (pg_dump's exit code is not enough).
      if (config.format !== 'directory') {
        const seen = await assertDumpComplete({ format: config.format, dumpBytes: d.value.dumpBytes, tables: inv.value.tables, ...(d.value.shape ? { shape: d.value.shape } : {}), warn: (m) => logger.warning(m) });
        logger.info(`  self-check: ${seen}`);
      }
      return { dump: d.value, inventory: inv.value };
    });
    const durationSeconds = (Date.now() - started) / 1000;
    ctx.facts.dumpBytes = dump.dumpBytes;
    // The snapshot's work is done: the source is not held open during verification and uploads.
    await client.end().catch(() => undefined);

    // Complete: move into place, then write the manifest, last.
    await fs.rename(partialPath, finalArchive);
    partialPath = undefined;
    const t = totals(inventory);
    const manifest: Manifest = {
      manifestVersion: MANIFEST_VERSION,
      tool: { name: TOOL_NAME, version: VERSION },
      name,
      createdAt: createdAt.toISOString(),
      database: server.database,
      server: { version: server.serverVersion, versionNum: server.serverVersionNum, pgvectorVersion: server.pgvectorVersion ?? null },
      pgDump: { version: tools.version, major: tools.major },
      format: config.format,
      compression: { method: plan.method, level: plan.level, applied: plan.applied },
      encryption: crypt
        ? { method: crypt.settings.method, recipients: crypt.recipients, passphrase: crypt.settings.passphrase !== undefined, plaintextSize: dump.plaintext!.size, plaintextSha256: dump.plaintext!.sha256 }
        : null,
      archive: {
        file: archiveFile,
        size: dump.size,
        sha256: dump.sha256,
        dumpBytes: dump.dumpBytes,
        ...(dump.files ? { files: dump.files } : {}),
      },
      durationSeconds: round(durationSeconds),
      totals: t,
      ...inventoryFields(inventory),
      // Unverified until a check passes: a run cancelled or unable to verify leaves a backup that latest, keep-min
      // and "newest good" do not count.
      verifications: [],
      verification: null,
    };
    const manifestPath = await writeManifest(config.backupDir, manifest);
    manifestWritten = true;
    logger.info(
      `Backup ${name}: ${formatBytes(dump.size)}${plan.applied === 'stream' ? ` (${formatBytes(dump.dumpBytes)} dumped)` : ''} in ${durationSeconds.toFixed(1)} s, ` +
        `${t.tables} tables, ${t.rows} rows, ${t.vectors} vectors, sha256 ${dump.sha256}`,
    );

    const backup: LocalBackup = { name, manifestPath, archivePath: finalArchive, manifest, createdAt, good: true };
    setBackupOutputs(ctx, backup);
    await reporter.summary(backupSummary(manifest, backup));

    if (config.verify !== 'none') {
      // Encrypted: one decryption serves the quick verify and the test restore.
      let failure: { text?: string; code?: ErrorCode } | undefined;
      try {
        failure = await keepPlaintext(async () => {
          // Passes are recorded only once the requested level finished: a run whose test restore could not run or was
          // cancelled leaves its backup unverified, not good on the strength of the quick check alone.
          const passed: Verification[] = [];
          const quick = await verifyOne(ctx, backup, config.verify === 'full' ? passed : undefined);
          if (!quick.ok) return { ...(quick.failure ? { text: quick.failure } : {}), ...(quick.code ? { code: quick.code } : {}) };
          if (config.verify !== 'full') return undefined;
          const full = await testRestore(ctx, backup, passed);
          if (full.ok) return undefined;
          const n = full.comparison?.mismatches.length;
          return { text: full.failure ?? `the test restore differs from the manifest in ${n} place${n === 1 ? '' : 's'} (see above)`, code: full.code ?? 'verify-mismatch' };
        });
      } catch (err) {
        reporter.output('verified', false);
        if (isCancelled() || !(err instanceof BackupError || err instanceof ConfigurationError)) throw err;
        // The check could not run: the backup stays unverified (not good, not bad) and stays out of the destinations.
        throw new BackupError(
          `Backup ${name} was written but could not be verified: ${err.message}`,
          `${err instanceof BackupError && err.hint ? `${err.hint}. ` : ''}The backup is kept in ${config.backupDir} as unverified: it is not uploaded and does not count as good until a verify or test-restore passes`,
          { code: err.code ?? 'verify-could-not-check', cause: err },
        );
      }
      if (failure) {
        reporter.output('verified', false);
        throw new BackupError(`Backup ${name} was written but failed verification: ${failure.text ?? 'see above'}`, 'The backup is kept for inspection and recorded as bad: it is not uploaded and never counts as good', { code: failure.code ?? 'verify-failed' });
      }
    }
    reporter.output('verified', config.verify !== 'none');

    // Only a complete, verified backup leaves the machine.
    const locations = await uploadEverywhere(ctx, backup);
    if (locations.length) {
      await reporter.summary(`Stored in: ${locations.map((l) => `\`${l}\``).join(', ')}\n`);
      if (!config.destination.includes('local')) reporter.output('backup-path', locations[0]!);
    }

    const retention = await logger.group('Retention', () => applyRetention(ctx, server.database, { dryRun: false }));
    for (const r of retention) {
      const deleted = r.decisions.filter((d) => !d.keep);
      await reporter.summary(
        `Retention in ${r.destination} (${config.retention.days} days, keep-min ${config.retention.keepMin}): ` +
          (r.failure ? `skipped, the listing failed (${r.failure})` : `${r.decisions.length - deleted.length} kept` + (deleted.length ? `, deleted ${deleted.map((d) => `\`${d.name}\``).join(', ')}` : ', none deleted')) +
          '\n',
      );
    }
    return { backup, verified: config.verify !== 'none' };
  } catch (err) {
    if (partialPath) await fs.rm(partialPath, { recursive: true, force: true }).catch(() => undefined);
    if (name) await fs.rm(`${manifestPathFor(config.backupDir, name)}.partial`, { force: true }).catch(() => undefined);
    // Archive in place but no manifest: not a backup. Remove it so nothing stays under a final name.
    if (finalArchive && !manifestWritten) {
      await deleteLocal({ archivePath: finalArchive, manifestPath: manifestPathFor(config.backupDir, name) }).catch(() => undefined);
    }
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    unregister();
    await client.end().catch(() => undefined);
  }
}

async function uniqueName(dir: string, base: string): Promise<string> {
  for (let i = 0; ; i++) {
    const candidate = i === 0 ? base : `${base}_${i + 1}`;
    const taken = (await fs.readdir(dir)).some((f) => f === `${candidate}.json` || f.startsWith(`${candidate}.`));
    if (!taken) return candidate;
  }
}

/**
 * The encryption of this run's archive, with a key this run can decrypt with for its own verification: the
 * user's decryption key when given (which then proves that key works), otherwise an extra recipient whose
 * private key only this process holds (a backup job then needs no key that reads old backups).
 */
async function encryptionForRun(ctx: Context): Promise<{ settings: EncryptionSettings; recipients: string[] } | undefined> {
  const { config } = ctx;
  const enc = config.encryption;
  if (!enc) return undefined;
  const recipients = await describeRecipients(enc);
  if (config.verify === 'none' || canDecrypt(config.decryption, enc.method)) return { settings: enc, recipients };
  const run = await withRunKey(enc);
  config.decryption = { ...config.decryption, ...(enc.method === 'age' ? { identities: run.decryption.identities } : { gpgPrivateKeys: run.decryption.gpgPrivateKeys }) };
  return { settings: run.settings, recipients };
}

async function dumpDirectory(ctx: Context, command: ReturnType<typeof toolCommand>, dir: string, encryption: EncryptionSettings | undefined, tables: Promise<Inventory['tables']>): Promise<DumpResult & { files: Array<{ path: string; size: number; sha256: string }> }> {
  const { logger, config } = ctx;
  const res = await withProgress(
    logger,
    config.progressSeconds,
    (elapsed) => `  pg_dump (directory, ${config.jobs} jobs): ${elapsed.toFixed(0)} s`,
    run(command),
  );
  // The same advice as for a streamed dump (a full disk under the directory is disk-full).
  if (res.code !== 0 || res.signal) throw dumpFailure('pg_dump', res.code, res.signal, res.stderr, path.join(dir, 'toc.dat'));
  // The self-check reads pg_dump's own files, before they are encrypted.
  const counted = await dirSize(dir);
  const seen = await assertDumpComplete({ format: 'directory', dumpBytes: counted, tables: await tables, dir, warn: (m) => logger.warning(m) });
  logger.info(`  self-check: ${seen}`);
  const plaintext = encryption ? await encryptDirectory(dir, encryption) : undefined;
  const h = await hashDirectory(dir);
  return { dumpBytes: plaintext?.size ?? h.size, size: h.size, sha256: h.sha256, files: h.files, ...(plaintext ? { plaintext } : {}) };
}

export function inventoryFields(inv: Inventory): Pick<Manifest, 'extensions' | 'tables' | 'indexes' | 'sequences' | 'largeObjects' | 'roles' | 'knn'> {
  return {
    extensions: inv.extensions,
    tables: inv.tables,
    indexes: inv.indexes,
    sequences: inv.sequences,
    largeObjects: inv.largeObjects,
    roles: inv.roles,
    knn: inv.knn ?? null,
  };
}

async function dirSize(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) total += (await fs.stat(path.join(e.parentPath, e.name))).size;
  }
  return total;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

export function setBackupOutputs(ctx: Context, b: LocalBackup): void {
  const m = b.manifest;
  const r = ctx.reporter;
  r.output('backup-name', m.name);
  r.output('backup-path', b.archivePath);
  r.output('manifest-path', b.manifestPath);
  r.output('size-bytes', m.archive.size);
  r.output('sha256', m.archive.sha256);
  r.output('duration-seconds', m.durationSeconds);
  r.output('tables', m.totals.tables);
  r.output('rows', m.totals.rows);
  r.output('vectors', m.totals.vectors);
  r.output('server-version', m.server.version);
  r.output('pgvector-version', m.server.pgvectorVersion ?? '');
}

function backupSummary(m: Manifest, b: LocalBackup): string {
  // With pg_dump's own compression the uncompressed size is unknown: no ratio then, and the rate is of the archive.
  const streamed = m.compression.applied === 'stream';
  const sizeText = streamed && m.archive.size > 0 ? `${formatBytes(m.archive.size)} (${formatBytes(m.archive.dumpBytes)} before compression, ratio ${(m.archive.dumpBytes / m.archive.size).toFixed(2)})` : formatBytes(m.archive.size);
  const rate = m.durationSeconds > 0 ? `${formatBytes(m.archive.dumpBytes / m.durationSeconds)}/s${streamed ? ' dumped' : ''}` : '-';
  const lines = [
    `## pgvector-backup: backup ${m.name}`,
    '',
    table(
      ['', ''],
      [
        ['Database', `${m.database} (PostgreSQL ${m.server.version}, pgvector ${m.server.pgvectorVersion ?? 'none'})`],
        ['Archive', `\`${b.archivePath}\``],
        ['Format', `${m.format}, ${m.compression.method}${m.compression.level !== null ? ` ${m.compression.level}` : ''}`],
        ['Size', sizeText],
        ['Duration', `${m.durationSeconds.toFixed(1)} s (${rate})`],
        ['Contents', `${m.totals.tables} tables, ${m.totals.rows} rows, ${m.totals.vectors} vectors, ${m.indexes.length} indexes`],
        ['SHA-256', `\`${m.archive.sha256}\``],
        ['Encryption', m.encryption ? `${m.encryption.method}${m.encryption.passphrase ? ' (passphrase)' : `, to ${m.encryption.recipients.map((r) => `\`${r.length > 24 ? r.slice(0, 12) + '…' + r.slice(-8) : r}\``).join(', ')}`}` : 'none'],
      ],
    ),
    '',
    '### Tables',
    '',
    table(
      ['Table', 'Kind', 'Rows', 'Vector columns'],
      m.tables.map((t) => [
        `${t.schema}.${t.name}`,
        t.kind,
        t.rows,
        t.vectorColumns.map((c) => `${c.name} ${c.type}(${c.dimensions ?? '-'}): ${c.nonNull}`).join(', ') || '-',
      ]),
    ),
    '',
  ];
  return lines.join('\n');
}
