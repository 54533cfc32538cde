// s3://bucket/prefix through the AWS SDK: streaming multipart uploads (lib-storage) with a part size that keeps
// multi-GB archives under 10,000 parts, a HEAD after the upload to check the size, the manifest last as the
// commit marker. Works with S3-compatible services (MinIO, R2, B2, GCS) through s3-endpoint and
// s3-force-path-style; credentials come from the standard AWS environment (including OIDC web identity).
// network-timeout bounds every request through the SDK's own handler: connecting, and then any stretch without a
// byte either way (an endpoint that accepts the connection and never answers, a body that stops mid-download); the
// SDK retries as configured (3 attempts), then the destination fails with storage-timeout.
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { namePrefix, parseManifest } from '../archive/manifest.js';
import { BackupError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { DEFAULT_NETWORK_TIMEOUT_MS, seconds, timeoutHint } from '../net.js';
import { Meter } from '../archive/pipeline.js';
import { byteProgress, progressSecondsFrom, withProgress } from '../progress.js';
import { checkDownload, type LocalBackup } from './local.js';
import { isGoodManifest, type Orphan, type PutResult, type Storage, type StoredBackup } from './storage.js';

export { choosePartSize, parseS3Destination, type S3Options } from './s3-location.js';
import { choosePartSize, parseS3Destination, type S3Options } from './s3-location.js';

const MiB = 1024 * 1024;

export class S3Storage implements Storage {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly pageSize: number | undefined;
  private readonly progressSeconds: number;
  private readonly timeoutMs: number;

  constructor(
    readonly id: string,
    private readonly opts: S3Options,
    private readonly logger: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    const { bucket, prefix } = parseS3Destination(id);
    this.bucket = bucket;
    this.prefix = prefix;
    this.pageSize = env.PGVB_S3_LIST_PAGE_SIZE ? Number(env.PGVB_S3_LIST_PAGE_SIZE) : undefined;
    this.progressSeconds = progressSecondsFrom(env);
    this.timeoutMs = opts.networkTimeoutMs ?? DEFAULT_NETWORK_TIMEOUT_MS;
    const config: S3ClientConfig = {
      region: opts.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: opts.forcePathStyle,
      requestChecksumCalculation: opts.checksums === 'when-supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
      responseChecksumValidation: opts.checksums === 'when-supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
      // (@smithy/node-http-handler 4.x: socketTimeout is the idle timeout, on the request and on the response body
      // until it ends; requestTimeout would bound a whole request, which a large part may rightly exceed.)
      requestHandler: { connectionTimeout: this.timeoutMs, socketTimeout: this.timeoutMs },
    };
    if (opts.endpoint) config.endpoint = opts.endpoint;
    this.client = new S3Client(config);
  }

  private key(file: string): string {
    return this.prefix ? `${this.prefix}/${file}` : file;
  }

  private where(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  async put(b: LocalBackup): Promise<PutResult> {
    const m = b.manifest;
    const files =
      m.format === 'directory'
        ? (m.archive.files ?? []).map((f) => ({ local: path.join(b.archivePath, f.path), key: this.key(`${m.archive.file}/${f.path}`), size: f.size }))
        : [{ local: b.archivePath, key: this.key(m.archive.file), size: m.archive.size }];
    let etag: string | undefined;
    for (const f of files) {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: f.key, Body: createReadStream(f.local, { highWaterMark: MiB }), ContentLength: f.size },
        partSize: this.opts.partSize ?? choosePartSize(f.size),
        queueSize: 2,
        leavePartsOnError: false,
      });
      let sent = 0;
      upload.on('httpUploadProgress', (p) => {
        sent = p.loaded ?? sent;
      });
      try {
        const done = await withProgress(this.logger, this.progressSeconds, byteProgress(`upload ${this.where(f.key)}`, () => sent, { total: f.size, verb: 'sent' }), upload.done());
        etag = done.ETag;
      } catch (err) {
        throw this.error(err, `uploading ${this.where(f.key)}`);
      }
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: f.key })).catch((err: unknown) => {
        throw this.error(err, `checking ${this.where(f.key)}`);
      });
      if (head.ContentLength !== f.size) {
        throw new BackupError(`${this.where(f.key)} has ${head.ContentLength} bytes after the upload, expected ${f.size}`, 'The upload was damaged; run the backup again', { code: 'storage-upload-damaged' });
      }
    }
    // The manifest last: its presence is what makes the upload a backup.
    const manifestKey = this.key(`${m.name}.json`);
    await this.client
      .send(new PutObjectCommand({ Bucket: this.bucket, Key: manifestKey, Body: JSON.stringify(m, null, 2) + '\n', ContentType: 'application/json' }))
      .catch((err: unknown) => {
        throw this.error(err, `uploading ${this.where(manifestKey)}`);
      });
    const result: PutResult = { location: this.where(this.key(m.archive.file)) };
    if (etag) result.digest = etag.replace(/"/g, '');
    return result;
  }

  /** Every key under the prefix (for the database's names), with its modification time; throws if any page fails. */
  private async listKeys(database?: string): Promise<Map<string, Date>> {
    const keys = new Map<string, Date>();
    let token: string | undefined;
    const base = this.prefix ? `${this.prefix}/` : '';
    do {
      const page = await this.client
        .send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: base + (database ? namePrefix(database) : ''),
            ContinuationToken: token,
            // (Tests set a tiny page size to exercise paging.)
            ...(this.pageSize ? { MaxKeys: this.pageSize } : {}),
          }),
        )
        .catch((err: unknown) => {
          throw this.error(err, `listing s3://${this.bucket}/${base}`);
        });
      for (const o of page.Contents ?? []) if (o.Key) keys.set(o.Key, o.LastModified ?? new Date());
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  /** Archive objects whose manifest never arrived (an upload that died), with their age. */
  async orphans(database?: string): Promise<Orphan[]> {
    const keys = await this.listKeys(database);
    const base = this.prefix ? `${this.prefix}/` : '';
    const stems = new Set([...keys.keys()].filter((k) => k.endsWith('.json') && !k.slice(base.length).includes('/')).map((k) => k.slice(base.length, -'.json'.length)));
    const out: Orphan[] = [];
    for (const [key, modified] of keys) {
      const rel = key.slice(base.length);
      const m = /^(.+?_\d{8}_\d{6}(?:_\d+)?)\.(dump|sql|dir)/.exec(rel);
      if (!m || stems.has(m[1]!)) continue;
      out.push({
        location: this.where(key),
        modified,
        remove: async () => {
          await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch((err: unknown) => {
            throw this.error(err, `deleting ${this.where(key)}`);
          });
        },
      });
    }
    return out;
  }

  async list(database?: string): Promise<StoredBackup[]> {
    const keyMap = await this.listKeys(database);
    const keys = new Set(keyMap.keys());
    const base = this.prefix ? `${this.prefix}/` : '';
    const out: StoredBackup[] = [];
    for (const key of keys) {
      if (!key.endsWith('.json') || key.slice(base.length).includes('/')) continue;
      const text = await this.getText(key);
      let manifest;
      try {
        manifest = parseManifest(text, key);
      } catch (err) {
        this.logger.warning(`${this.where(key)}: ${(err as Error).message} (not a usable backup)`);
        continue;
      }
      if (database !== undefined && manifest.database !== database) continue;
      const archiveKey = base + manifest.archive.file;
      const present = manifest.format === 'directory' ? [...keys].some((k) => k.startsWith(archiveKey + '/')) : keys.has(archiveKey);
      if (!present) {
        this.logger.warning(`${this.where(key)}: archive ${manifest.archive.file} is missing (not a usable backup)`);
        continue;
      }
      out.push({
        name: manifest.name,
        createdAt: new Date(manifest.createdAt),
        manifest,
        location: this.where(archiveKey),
        destination: this.id,
        good: isGoodManifest(manifest),
        ref: { manifestKey: key, archiveKey },
      });
    }
    return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  }

  private async getText(key: string): Promise<string> {
    const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })).catch((err: unknown) => {
      throw this.error(err, `reading ${this.where(key)}`);
    });
    try {
      return (await r.Body?.transformToString('utf8')) ?? '';
    } catch (err) {
      throw this.error(err, `reading ${this.where(key)}`);
    }
  }

  private async download(key: string, file: string): Promise<void> {
    const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })).catch((err: unknown) => {
      throw this.error(err, `downloading ${this.where(key)}`);
    });
    await fs.mkdir(path.dirname(file), { recursive: true });
    // Under a temporary name until complete: a broken download never sits in backup-dir as a final file.
    const partial = `${file}.partial`;
    try {
      const got = new Meter(false);
      const total = r.ContentLength;
      await withProgress(
        this.logger,
        this.progressSeconds,
        byteProgress(`download ${this.where(key)}`, () => got.bytes, { verb: 'received', ...(total !== undefined ? { total } : {}) }),
        pipeline(r.Body as Readable, got, createWriteStream(partial, { mode: 0o600 })),
      );
    } catch (err) {
      await fs.rm(partial, { force: true });
      throw this.error(err, `downloading ${this.where(key)}`);
    }
    await fs.rename(partial, file);
  }

  async get(b: StoredBackup, dir: string): Promise<LocalBackup> {
    const { manifestKey, archiveKey } = b.ref as { manifestKey: string; archiveKey: string };
    const m = b.manifest;
    const archivePath = path.join(dir, m.archive.file);
    if (m.format === 'directory') {
      for (const f of m.archive.files ?? []) await this.download(`${archiveKey}/${f.path}`, path.join(archivePath, f.path));
    } else {
      await this.download(archiveKey, archivePath);
    }
    const manifestPath = path.join(dir, `${m.name}.json`);
    await this.download(manifestKey, manifestPath);
    return checkDownload({ name: m.name, manifestPath, archivePath, manifest: m, createdAt: b.createdAt, good: b.good }, this.where(archiveKey));
  }

  async delete(b: StoredBackup): Promise<void> {
    const { manifestKey, archiveKey } = b.ref as { manifestKey: string; archiveKey: string };
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: manifestKey })).catch((err: unknown) => {
      throw this.error(err, `deleting ${this.where(manifestKey)}`);
    });
    const keys = b.manifest.format === 'directory' ? (b.manifest.archive.files ?? []).map((f) => `${archiveKey}/${f.path}`) : [archiveKey];
    for (const k of keys) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: k })).catch((err: unknown) => {
        throw this.error(err, `deleting ${this.where(k)}`);
      });
    }
  }

  private error(err: unknown, what: string): BackupError {
    return s3Error(err, what, this.id, this.timeoutMs);
  }
}

/** The SDK's handler gave up on a request: no connection, or no byte either way, within network-timeout. */
function isTimeout(err: unknown): boolean {
  const e = err as { name?: string; code?: string };
  return e.name === 'TimeoutError' || e.code === 'ETIMEDOUT';
}

function s3Error(err: unknown, what: string, destination: string, timeoutMs: number): BackupError {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number; attempts?: number } };
  if (isTimeout(err)) {
    const connecting = /establish a connection/.test(e.message ?? '');
    const attempts = e.$metadata?.attempts;
    return new BackupError(
      `S3 destination ${destination}: ${connecting ? 'no connection' : 'no byte moved'} for ${seconds(timeoutMs)} while ${what}${attempts && attempts > 1 ? ` (${attempts} attempts)` : ''}; the request was abandoned`,
      timeoutHint(timeoutMs, `Check that the endpoint (s3-endpoint, else AWS S3 in s3-region) answers and that this machine may reach it`),
      { code: 'storage-timeout', cause: err },
    );
  }
  const status = e.$metadata?.httpStatusCode;
  const [code, hint]: [ErrorCode, string] =
    e.name === 'NoSuchBucket'
      ? ['storage-s3-no-bucket', 'Create the bucket or fix the destination']
      : status === 403 || e.name === 'AccessDenied' || e.name === 'InvalidAccessKeyId' || e.name === 'SignatureDoesNotMatch'
        ? ['storage-s3-access', 'Check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or aws-actions/configure-aws-credentials) and the bucket policy']
        : e.name === 'CredentialsProviderError'
          ? ['storage-s3-credentials', 'No AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use aws-actions/configure-aws-credentials']
          : ['storage-s3', 'Check s3-endpoint, s3-region and the network, then run again'];
  return new BackupError(`S3 failed ${what}: ${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(err)}`, hint, { code, cause: err });
}
