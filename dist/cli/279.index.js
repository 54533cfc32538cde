import { dirname as __pgvbDirname } from 'node:path';
import { fileURLToPath as __pgvbFileURLToPath } from 'node:url';
var __dirname = __pgvbDirname(__pgvbFileURLToPath(import.meta.url));
export const id = 279;
export const ids = [279];
export const modules = {

/***/ 69279:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   S3Storage: () => (/* binding */ S3Storage),
/* harmony export */   choosePartSize: () => (/* reexport safe */ _s3_location_js__WEBPACK_IMPORTED_MODULE_12__.m),
/* harmony export */   parseS3Destination: () => (/* reexport safe */ _s3_location_js__WEBPACK_IMPORTED_MODULE_12__.u)
/* harmony export */ });
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(73024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(76760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(node_path__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var node_stream__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(57075);
/* harmony import */ var node_stream__WEBPACK_IMPORTED_MODULE_2___default = /*#__PURE__*/__webpack_require__.n(node_stream__WEBPACK_IMPORTED_MODULE_2__);
/* harmony import */ var node_stream_promises__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(46466);
/* harmony import */ var node_stream_promises__WEBPACK_IMPORTED_MODULE_3___default = /*#__PURE__*/__webpack_require__.n(node_stream_promises__WEBPACK_IMPORTED_MODULE_3__);
/* harmony import */ var _aws_sdk_client_s3__WEBPACK_IMPORTED_MODULE_13__ = __webpack_require__(53711);
/* harmony import */ var _aws_sdk_lib_storage__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(22358);
/* harmony import */ var _archive_manifest_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(49365);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(83916);
/* harmony import */ var _net_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(88316);
/* harmony import */ var _archive_pipeline_js__WEBPACK_IMPORTED_MODULE_8__ = __webpack_require__(93146);
/* harmony import */ var _progress_js__WEBPACK_IMPORTED_MODULE_9__ = __webpack_require__(54660);
/* harmony import */ var _local_js__WEBPACK_IMPORTED_MODULE_10__ = __webpack_require__(72922);
/* harmony import */ var _storage_js__WEBPACK_IMPORTED_MODULE_11__ = __webpack_require__(32912);
/* harmony import */ var _s3_location_js__WEBPACK_IMPORTED_MODULE_12__ = __webpack_require__(69251);
// s3://bucket/prefix through the AWS SDK: streaming multipart uploads (lib-storage) with a part size that keeps
// multi-GB archives under 10,000 parts, a HEAD after the upload to check the size, the manifest last as the
// commit marker. Works with S3-compatible services (MinIO, R2, B2, GCS) through s3-endpoint and
// s3-force-path-style; credentials come from the standard AWS environment (including OIDC web identity).
// network-timeout bounds every request through the SDK's own handler: connecting, and then any stretch without a
// byte either way (an endpoint that accepts the connection and never answers, a body that stops mid-download); the
// SDK retries as configured (3 attempts), then the destination fails with storage-timeout.















const MiB = 1024 * 1024;
class S3Storage {
    id;
    opts;
    logger;
    client;
    bucket;
    prefix;
    pageSize;
    progressSeconds;
    timeoutMs;
    constructor(id, opts, logger, env = process.env) {
        this.id = id;
        this.opts = opts;
        this.logger = logger;
        const { bucket, prefix } = (0,_s3_location_js__WEBPACK_IMPORTED_MODULE_12__/* .parseS3Destination */ .u)(id);
        this.bucket = bucket;
        this.prefix = prefix;
        this.pageSize = env.PGVB_S3_LIST_PAGE_SIZE ? Number(env.PGVB_S3_LIST_PAGE_SIZE) : undefined;
        this.progressSeconds = (0,_progress_js__WEBPACK_IMPORTED_MODULE_9__/* .progressSecondsFrom */ .Pg)(env);
        this.timeoutMs = opts.networkTimeoutMs ?? _net_js__WEBPACK_IMPORTED_MODULE_7__/* .DEFAULT_NETWORK_TIMEOUT_MS */ .I3;
        const config = {
            region: opts.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
            forcePathStyle: opts.forcePathStyle,
            requestChecksumCalculation: opts.checksums === 'when-supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
            responseChecksumValidation: opts.checksums === 'when-supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
            // (@smithy/node-http-handler 4.x: socketTimeout is the idle timeout, on the request and on the response body
            // until it ends; requestTimeout would bound a whole request, which a large part may rightly exceed.)
            requestHandler: { connectionTimeout: this.timeoutMs, socketTimeout: this.timeoutMs },
        };
        if (opts.endpoint)
            config.endpoint = opts.endpoint;
        this.client = new _aws_sdk_client_s3__WEBPACK_IMPORTED_MODULE_13__.S3Client(config);
    }
    key(file) {
        return this.prefix ? `${this.prefix}/${file}` : file;
    }
    where(key) {
        return `s3://${this.bucket}/${key}`;
    }
    async put(b) {
        const m = b.manifest;
        const files = m.format === 'directory'
            ? (m.archive.files ?? []).map((f) => ({ local: node_path__WEBPACK_IMPORTED_MODULE_1___default().join(b.archivePath, f.path), key: this.key(`${m.archive.file}/${f.path}`), size: f.size }))
            : [{ local: b.archivePath, key: this.key(m.archive.file), size: m.archive.size }];
        let etag;
        for (const f of files) {
            const upload = new _aws_sdk_lib_storage__WEBPACK_IMPORTED_MODULE_4__/* .Upload */ ._({
                client: this.client,
                params: { Bucket: this.bucket, Key: f.key, Body: (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.createReadStream)(f.local, { highWaterMark: MiB }), ContentLength: f.size },
                partSize: this.opts.partSize ?? (0,_s3_location_js__WEBPACK_IMPORTED_MODULE_12__/* .choosePartSize */ .m)(f.size),
                queueSize: 2,
                leavePartsOnError: false,
            });
            let sent = 0;
            upload.on('httpUploadProgress', (p) => {
                sent = p.loaded ?? sent;
            });
            try {
                const done = await (0,_progress_js__WEBPACK_IMPORTED_MODULE_9__/* .withProgress */ .E0)(this.logger, this.progressSeconds, (0,_progress_js__WEBPACK_IMPORTED_MODULE_9__/* .byteProgress */ .EB)(`upload ${this.where(f.key)}`, () => sent, { total: f.size, verb: 'sent' }), upload.done());
                etag = done.ETag;
            }
            catch (err) {
                throw this.error(err, `uploading ${this.where(f.key)}`);
            }
            const head = await this.client.send(new _aws_sdk_client_s3__WEBPACK_IMPORTED_MODULE_13__.HeadObjectCommand({ Bucket: this.bucket, Key: f.key })).catch((err) => {
                throw this.error(err, `checking ${this.where(f.key)}`);
            });
            if (head.ContentLength !== f.size) {
                throw new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .BackupError */ .hj(`${this.where(f.key)} has ${head.ContentLength} bytes after the upload, expected ${f.size}`, 'The upload was damaged; run the backup again', { code: 'storage-upload-damaged' });
            }
        }
        // The manifest last: its presence is what makes the upload a backup.
        const manifestKey = this.key(`${m.name}.json`);
        await this.client
            .send(new _aws_sdk_client_s3__WEBPACK_IMPORTED_MODULE_13__.PutObjectCommand({ Bucket: this.bucket, Key: manifestKey, Body: JSON.stringify(m, null, 2) + '\n', ContentType: 'application/json' }))
            .catch((err) => {
            throw this.error(err, `uploading ${this.where(manifestKey)}`);
        });
        const result = { location: this.where(this.key(m.archive.file)) };
        if (etag)
            result.digest = etag.replace(/"/g, '');
        return result;
    }
    /** Every key under the prefix (for the database's names), with its modification time; throws if any page fails. */
    async listKeys(database) {
        const keys = new Map();
        let token;
        const base = this.prefix ? `${this.prefix}/` : '';
        do {
            const page = await this.client
                .send(new _aws_sdk_client_s3__WEBPACK_IMPORTED_MODULE_13__.ListObjectsV2Command({
                Bucket: this.bucket,
                Prefix: base + (database ? (0,_archive_manifest_js__WEBPACK_IMPORTED_MODULE_5__/* .namePrefix */ .w8)(database) : ''),
                ContinuationToken: token,
                // (Tests set a tiny page size to exercise paging.)
                ...(this.pageSize ? { MaxKeys: this.pageSize } : {}),
            }))
                .catch((err) => {
                throw this.error(err, `listing s3://${this.bucket}/${base}`);
            });
            for (const o of page.Contents ?? [])
                if (o.Key)
                    keys.set(o.Key, o.LastModified ?? new Date());
            token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        return keys;
    }
    /** Archive objects whose manifest never arrived (an upload that died), with their age. */
    async orphans(database) {
        const keys = await this.listKeys(database);
        const base = this.prefix ? `${this.prefix}/` : '';
        const stems = new Set([...keys.keys()].filter((k) => k.endsWith('.json') && !k.slice(base.length).includes('/')).map((k) => k.slice(base.length, -'.json'.length)));
        const out = [];
        for (const [key, modified] of keys) {
            const rel = key.slice(base.length);
            const m = /^(.+?_\d{8}_\d{6}(?:_\d+)?)\.(dump|sql|dir)/.exec(rel);
            if (!m || stems.has(m[1]))
                continue;
            out.push({
                location: this.where(key),
                modified,
                remove: async () => {
                    await this.client.send(new _aws_sdk_client_s3__WEBPACK_IMPORTED_MODULE_13__.DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch((err) => {
                        throw this.error(err, `deleting ${this.where(key)}`);
                    });
                },
            });
        }
        return out;
    }
    async list(database) {
        const keyMap = await this.listKeys(database);
        const keys = new Set(keyMap.keys());
        const base = this.prefix ? `${this.prefix}/` : '';
        const out = [];
        for (const key of keys) {
            if (!key.endsWith('.json') || key.slice(base.length).includes('/'))
                continue;
            const text = await this.getText(key);
            let manifest;
            try {
                manifest = (0,_archive_manifest_js__WEBPACK_IMPORTED_MODULE_5__/* .parseManifest */ .Ng)(text, key);
            }
            catch (err) {
                this.logger.warning(`${this.where(key)}: ${err.message} (not a usable backup)`);
                continue;
            }
            if (database !== undefined && manifest.database !== database)
                continue;
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
                good: (0,_storage_js__WEBPACK_IMPORTED_MODULE_11__/* .isGoodManifest */ .n$)(manifest),
                ref: { manifestKey: key, archiveKey },
            });
        }
        return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    }
    async getText(key) {
        const r = await this.client.send(new _aws_sdk_client_s3__WEBPACK_IMPORTED_MODULE_13__.GetObjectCommand({ Bucket: this.bucket, Key: key })).catch((err) => {
            throw this.error(err, `reading ${this.where(key)}`);
        });
        try {
            return (await r.Body?.transformToString('utf8')) ?? '';
        }
        catch (err) {
            throw this.error(err, `reading ${this.where(key)}`);
        }
    }
    async download(key, file) {
        const r = await this.client.send(new _aws_sdk_client_s3__WEBPACK_IMPORTED_MODULE_13__.GetObjectCommand({ Bucket: this.bucket, Key: key })).catch((err) => {
            throw this.error(err, `downloading ${this.where(key)}`);
        });
        await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.mkdir(node_path__WEBPACK_IMPORTED_MODULE_1___default().dirname(file), { recursive: true });
        // Under a temporary name until complete: a broken download never sits in backup-dir as a final file.
        const partial = `${file}.partial`;
        try {
            const got = new _archive_pipeline_js__WEBPACK_IMPORTED_MODULE_8__/* .Meter */ .kI(false);
            const total = r.ContentLength;
            await (0,_progress_js__WEBPACK_IMPORTED_MODULE_9__/* .withProgress */ .E0)(this.logger, this.progressSeconds, (0,_progress_js__WEBPACK_IMPORTED_MODULE_9__/* .byteProgress */ .EB)(`download ${this.where(key)}`, () => got.bytes, { verb: 'received', ...(total !== undefined ? { total } : {}) }), (0,node_stream_promises__WEBPACK_IMPORTED_MODULE_3__.pipeline)(r.Body, got, (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.createWriteStream)(partial, { mode: 0o600 })));
        }
        catch (err) {
            await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rm(partial, { force: true });
            throw this.error(err, `downloading ${this.where(key)}`);
        }
        await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rename(partial, file);
    }
    async get(b, dir) {
        const { manifestKey, archiveKey } = b.ref;
        const m = b.manifest;
        const archivePath = node_path__WEBPACK_IMPORTED_MODULE_1___default().join(dir, m.archive.file);
        if (m.format === 'directory') {
            for (const f of m.archive.files ?? [])
                await this.download(`${archiveKey}/${f.path}`, node_path__WEBPACK_IMPORTED_MODULE_1___default().join(archivePath, f.path));
        }
        else {
            await this.download(archiveKey, archivePath);
        }
        const manifestPath = node_path__WEBPACK_IMPORTED_MODULE_1___default().join(dir, `${m.name}.json`);
        await this.download(manifestKey, manifestPath);
        return (0,_local_js__WEBPACK_IMPORTED_MODULE_10__/* .checkDownload */ .z)({ name: m.name, manifestPath, archivePath, manifest: m, createdAt: b.createdAt, good: b.good }, this.where(archiveKey));
    }
    async delete(b) {
        const { manifestKey, archiveKey } = b.ref;
        await this.client.send(new _aws_sdk_client_s3__WEBPACK_IMPORTED_MODULE_13__.DeleteObjectCommand({ Bucket: this.bucket, Key: manifestKey })).catch((err) => {
            throw this.error(err, `deleting ${this.where(manifestKey)}`);
        });
        const keys = b.manifest.format === 'directory' ? (b.manifest.archive.files ?? []).map((f) => `${archiveKey}/${f.path}`) : [archiveKey];
        for (const k of keys) {
            await this.client.send(new _aws_sdk_client_s3__WEBPACK_IMPORTED_MODULE_13__.DeleteObjectCommand({ Bucket: this.bucket, Key: k })).catch((err) => {
                throw this.error(err, `deleting ${this.where(k)}`);
            });
        }
    }
    error(err, what) {
        return s3Error(err, what, this.id, this.timeoutMs);
    }
}
/** The SDK's handler gave up on a request: no connection, or no byte either way, within network-timeout. */
function isTimeout(err) {
    const e = err;
    return e.name === 'TimeoutError' || e.code === 'ETIMEDOUT';
}
function s3Error(err, what, destination, timeoutMs) {
    const e = err;
    if (isTimeout(err)) {
        const connecting = /establish a connection/.test(e.message ?? '');
        const attempts = e.$metadata?.attempts;
        return new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .BackupError */ .hj(`S3 destination ${destination}: ${connecting ? 'no connection' : 'no byte moved'} for ${(0,_net_js__WEBPACK_IMPORTED_MODULE_7__/* .seconds */ .YA)(timeoutMs)} while ${what}${attempts && attempts > 1 ? ` (${attempts} attempts)` : ''}; the request was abandoned`, (0,_net_js__WEBPACK_IMPORTED_MODULE_7__/* .timeoutHint */ .rd)(timeoutMs, `Check that the endpoint (s3-endpoint, else AWS S3 in s3-region) answers and that this machine may reach it`), { code: 'storage-timeout', cause: err });
    }
    const status = e.$metadata?.httpStatusCode;
    const [code, hint] = e.name === 'NoSuchBucket'
        ? ['storage-s3-no-bucket', 'Create the bucket or fix the destination']
        : status === 403 || e.name === 'AccessDenied' || e.name === 'InvalidAccessKeyId' || e.name === 'SignatureDoesNotMatch'
            ? ['storage-s3-access', 'Check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or aws-actions/configure-aws-credentials) and the bucket policy']
            : e.name === 'CredentialsProviderError'
                ? ['storage-s3-credentials', 'No AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use aws-actions/configure-aws-credentials']
                : ['storage-s3', 'Check s3-endpoint, s3-region and the network, then run again'];
    return new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .BackupError */ .hj(`S3 failed ${what}: ${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(err)}`, hint, { code, cause: err });
}


/***/ })

};
