import { dirname as __pgvbDirname } from 'node:path';
import { fileURLToPath as __pgvbFileURLToPath } from 'node:url';
var __dirname = __pgvbDirname(__pgvbFileURLToPath(import.meta.url));
export const id = 35;
export const ids = [35];
export const modules = {

/***/ 75035:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   CACHE_KEY_PREFIX: () => (/* binding */ CACHE_KEY_PREFIX),
/* harmony export */   CacheStorage: () => (/* binding */ CacheStorage),
/* harmony export */   cacheKey: () => (/* binding */ cacheKey),
/* harmony export */   cachePrefix: () => (/* binding */ cachePrefix)
/* harmony export */ });
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(73024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(76760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(node_path__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var _actions_cache__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(18091);
/* harmony import */ var _archive_manifest_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(49365);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(83916);
/* harmony import */ var _net_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(88316);
/* harmony import */ var _local_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(72922);
/* harmony import */ var _storage_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(32912);
// destination: cache. The real @actions/cache client saves each backup under the key
// pgvector-backup-<db>-<YYYYMMDD_HHMMSS>; latest is restored by that prefix, so pull-request workflows (which
// may read the default branch's caches) can test-restore without any secret. The cache service keeps only what
// it keeps (entries unused for 7 days are evicted): list shows the newest entry, and prune deletes nothing here.
// Every call runs under net.ts's `bounded`: the client's upload to blob storage has no timeout at all, its Twirp
// calls wait 3 minutes per attempt, so network-timeout without a byte moving abandons the call and fails the
// destination.








const CACHE_KEY_PREFIX = 'pgvector-backup-';
/**
 * The database part of a key has no '-' (it becomes '_'), so the prefix pgvector-backup-app- can never match the
 * keys of a database app-test.
 */
function keyPart(database) {
    return (0,_archive_manifest_js__WEBPACK_IMPORTED_MODULE_3__/* .safeName */ .jC)(database).replace(/-/g, '_');
}
/** pgvector-backup-<db>-<stamp>. */
function cacheKey(name, database) {
    const stamp = /_(\d{8}_\d{6}(?:_\d+)?)$/.exec(name)?.[1] ?? name;
    return `${CACHE_KEY_PREFIX}${keyPart(database)}-${stamp}`;
}
function cachePrefix(database) {
    return database ? `${CACHE_KEY_PREFIX}${keyPart(database)}-` : CACHE_KEY_PREFIX;
}
/**
 * Backups pass through this directory, given to the cache client as a relative path (the client resolves it
 * against GITHUB_WORKSPACE): the cache version is a hash of the path strings, so it must be the same in every run,
 * whatever the workspace or backup-dir.
 */
const STAGING = '.pgvector-backup-cache';
class CacheStorage {
    logger;
    networkTimeoutMs;
    id = 'cache';
    staging;
    constructor(env, logger, 
    /** network-timeout (ms). */
    networkTimeoutMs = _net_js__WEBPACK_IMPORTED_MODULE_5__/* .DEFAULT_NETWORK_TIMEOUT_MS */ .I3) {
        this.logger = logger;
        this.networkTimeoutMs = networkTimeoutMs;
        this.staging = node_path__WEBPACK_IMPORTED_MODULE_1___default().join(env.GITHUB_WORKSPACE ?? process.cwd(), STAGING);
    }
    /** One client call, abandoned when its network goes quiet for network-timeout. */
    bounded(what, size, op) {
        const b = {
            timeoutMs: this.networkTimeoutMs,
            destination: this.id,
            what,
            check: "Check the connection to GitHub's cache service and its blob storage (https://www.githubstatus.com)",
            logger: this.logger,
        };
        if (size !== undefined)
            b.size = size;
        return (0,_net_js__WEBPACK_IMPORTED_MODULE_5__/* .bounded */ .Mm)(b, op);
    }
    async clearStaging() {
        await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rm(this.staging, { recursive: true, force: true });
        await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.mkdir(this.staging, { recursive: true });
    }
    async put(b) {
        if (!_actions_cache__WEBPACK_IMPORTED_MODULE_2__/* .isFeatureAvailable */ .w3())
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_4__/* .ConfigurationError */ .j1('The cache destination only works inside GitHub Actions (the cache service is not available here)', { code: 'config-outside-actions' });
        await this.clearStaging();
        try {
            const target = node_path__WEBPACK_IMPORTED_MODULE_1___default().join(this.staging, node_path__WEBPACK_IMPORTED_MODULE_1___default().basename(b.archivePath));
            await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.cp(b.archivePath, target, { recursive: true });
            await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.copyFile(b.manifestPath, node_path__WEBPACK_IMPORTED_MODULE_1___default().join(this.staging, node_path__WEBPACK_IMPORTED_MODULE_1___default().basename(b.manifestPath)));
            const key = cacheKey(b.name, b.manifest.database);
            let id;
            try {
                // (The client reports no byte progress and first runs tar and zstd over the archive: net.ts watches the
                // sockets, and allows that local work up to network-timeout plus the archive's size at 1 MiB/s.)
                id = await this.bounded(`saving the cache ${key}`, b.manifest.archive.size, () => _actions_cache__WEBPACK_IMPORTED_MODULE_2__/* .saveCache */ .Io([STAGING], key));
            }
            catch (err) {
                if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_4__/* .BackupError */ .hj)
                    throw err;
                throw new _errors_js__WEBPACK_IMPORTED_MODULE_4__/* .BackupError */ .hj(`Saving the cache ${key} failed: ${err.message}`, 'See the error; run again', { code: 'storage-cache', cause: err });
            }
            // saveCache reports most failures by returning -1 and logging a warning: that is a failed destination.
            if (id === -1)
                throw new _errors_js__WEBPACK_IMPORTED_MODULE_4__/* .BackupError */ .hj(`The cache ${key} was not saved (the cache service refused or failed; see the warning above)`, 'Check the cache service and the repository\'s cache quota, then run again', { code: 'storage-cache' });
            return { location: `cache ${key}` };
        }
        finally {
            await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rm(this.staging, { recursive: true, force: true });
        }
    }
    /** The newest cache entry of the database (restored into the staging path to read its manifest). */
    async list(database) {
        if (!_actions_cache__WEBPACK_IMPORTED_MODULE_2__/* .isFeatureAvailable */ .w3())
            return [];
        await this.clearStaging();
        const prefix = cachePrefix(database);
        let key;
        try {
            // (Size unknown until found: the allowance for unpacking grows with the bytes downloaded.)
            key = await this.bounded(`looking up the cache ${prefix}*`, undefined, () => _actions_cache__WEBPACK_IMPORTED_MODULE_2__/* .restoreCache */ .P3([STAGING], prefix, [prefix]));
        }
        catch (err) {
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_4__/* .BackupError */ .hj)
                throw err;
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_4__/* .BackupError */ .hj(`Looking up the cache ${prefix}* failed: ${err.message}`, 'See the error; run again', { code: 'storage-cache', cause: err });
        }
        if (!key) {
            await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rm(this.staging, { recursive: true, force: true });
            return [];
        }
        const manifests = (await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.readdir(this.staging)).filter((f) => f.endsWith('.json'));
        if (manifests.length !== 1) {
            this.logger.warning(`cache ${key}: holds no single manifest (not a usable backup)`);
            return [];
        }
        const manifest = await (0,_archive_manifest_js__WEBPACK_IMPORTED_MODULE_3__/* .readManifest */ .WI)(node_path__WEBPACK_IMPORTED_MODULE_1___default().join(this.staging, manifests[0]));
        // No copy of the data stays in the workspace after a listing; get() restores again.
        await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rm(this.staging, { recursive: true, force: true });
        if (database !== undefined && manifest.database !== database)
            return [];
        return [
            {
                name: manifest.name,
                createdAt: new Date(manifest.createdAt),
                manifest,
                location: `cache ${key}`,
                destination: this.id,
                good: (0,_storage_js__WEBPACK_IMPORTED_MODULE_7__/* .isGoodManifest */ .n$)(manifest),
                ref: { key },
            },
        ];
    }
    async get(b, dir) {
        const m = b.manifest;
        // list() restored it into the staging path; restore again if that is gone.
        if (!(await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.stat(node_path__WEBPACK_IMPORTED_MODULE_1___default().join(this.staging, m.archive.file)).catch(() => undefined))) {
            await this.clearStaging();
            const { key } = b.ref;
            const got = await this.bounded(`restoring the cache ${key}`, m.archive.size, () => _actions_cache__WEBPACK_IMPORTED_MODULE_2__/* .restoreCache */ .P3([STAGING], key));
            if (got !== key)
                throw new _errors_js__WEBPACK_IMPORTED_MODULE_4__/* .BackupError */ .hj(`The cache ${key} could not be restored`, 'It may have been evicted; use another destination', { code: 'storage-cache-evicted' });
        }
        const archivePath = node_path__WEBPACK_IMPORTED_MODULE_1___default().join(dir, m.archive.file);
        const manifestPath = node_path__WEBPACK_IMPORTED_MODULE_1___default().join(dir, `${m.name}.json`);
        await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rm(archivePath, { recursive: true, force: true });
        await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rename(node_path__WEBPACK_IMPORTED_MODULE_1___default().join(this.staging, m.archive.file), archivePath);
        await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rename(node_path__WEBPACK_IMPORTED_MODULE_1___default().join(this.staging, `${m.name}.json`), manifestPath);
        await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rm(this.staging, { recursive: true, force: true });
        return (0,_local_js__WEBPACK_IMPORTED_MODULE_6__/* .checkDownload */ .z)({ name: m.name, manifestPath, archivePath, manifest: m, createdAt: b.createdAt, good: b.good }, b.location);
    }
    /** A cache entry is saved whole or not at all: no leftovers. */
    async orphans() {
        return [];
    }
    async delete(b) {
        this.logger.info(`  ${b.location} is left to the cache service's eviction`);
    }
}


/***/ })

};
