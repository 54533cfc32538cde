import { dirname as __pgvbDirname } from 'node:path';
import { fileURLToPath as __pgvbFileURLToPath } from 'node:url';
var __dirname = __pgvbDirname(__pgvbFileURLToPath(import.meta.url));
export const id = 107;
export const ids = [107];
export const modules = {

/***/ 81107:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   ArtifactStorage: () => (/* binding */ ArtifactStorage)
/* harmony export */ });
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(73024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(48161);
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(node_os__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(76760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_2___default = /*#__PURE__*/__webpack_require__.n(node_path__WEBPACK_IMPORTED_MODULE_2__);
/* harmony import */ var _actions_artifact__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(77935);
/* harmony import */ var _actions_github__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(61351);
/* harmony import */ var _archive_manifest_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(49365);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(83916);
/* harmony import */ var _net_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(88316);
/* harmony import */ var _local_js__WEBPACK_IMPORTED_MODULE_8__ = __webpack_require__(72922);
/* harmony import */ var _storage_js__WEBPACK_IMPORTED_MODULE_9__ = __webpack_require__(32912);
// destination: artifact. Two artifacts per backup with the real @actions/artifact client: the archive
// (named after the backup), then a small one holding only the manifest (`<name>.manifest`), uploaded last as the
// commit marker. Listing reads the manifests of this repository's earlier runs through the REST API
// (github-token with actions: read); pruning deletes through it (actions: write).
// Every call runs under net.ts's `bounded`: the clients' own limits are minutes to never (the Twirp client waits
// 3 minutes per attempt, five attempts; the Azure blob upload has none but a 5-minute stall check; Octokit's fetch
// waits 5 minutes for headers), so network-timeout without a byte moving abandons the call and fails the destination.










const MANIFEST_SUFFIX = '.manifest';
class ArtifactStorage {
    opts;
    logger;
    id = 'artifact';
    client = new _actions_artifact__WEBPACK_IMPORTED_MODULE_3__/* .DefaultArtifactClient */ .t9();
    /** (Tests set a tiny page size to exercise paging.) */
    pageSize;
    constructor(opts, logger) {
        this.opts = opts;
        this.logger = logger;
        this.pageSize = Number(opts.env.PGVB_ARTIFACT_PAGE_SIZE) || 100;
    }
    /** One remote call, abandoned when its network goes quiet for network-timeout. */
    bounded(what, size, op) {
        const b = {
            timeoutMs: this.opts.networkTimeoutMs ?? _net_js__WEBPACK_IMPORTED_MODULE_7__/* .DEFAULT_NETWORK_TIMEOUT_MS */ .I3,
            destination: this.id,
            what,
            check: "Check the connection to GitHub's artifact service and its blob storage (https://www.githubstatus.com)",
            logger: this.logger,
        };
        if (size !== undefined)
            b.size = size;
        return (0,_net_js__WEBPACK_IMPORTED_MODULE_7__/* .bounded */ .Mm)(b, op);
    }
    repo() {
        const full = this.opts.env.GITHUB_REPOSITORY ?? '';
        const [owner, repo] = full.split('/');
        if (!owner || !repo)
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .ConfigurationError */ .j1('The artifact destination needs GITHUB_REPOSITORY (it runs inside GitHub Actions)', { code: 'config-outside-actions' });
        return { owner, repo };
    }
    octokit() {
        if (!this.opts.token) {
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .ConfigurationError */ .j1('Listing or deleting artifacts of earlier runs needs github-token (the default ${{ github.token }} with permissions actions: read, and actions: write to prune)', { code: 'config-github-token' });
        }
        const baseUrl = this.opts.env.GITHUB_API_URL;
        return (0,_actions_github__WEBPACK_IMPORTED_MODULE_4__/* .getOctokit */ .Q)(this.opts.token, baseUrl ? { baseUrl } : {});
    }
    async put(b) {
        const m = b.manifest;
        const root = node_path__WEBPACK_IMPORTED_MODULE_2___default().dirname(b.manifestPath);
        const files = m.format === 'directory' ? (m.archive.files ?? []).map((f) => node_path__WEBPACK_IMPORTED_MODULE_2___default().join(b.archivePath, f.path)) : [b.archivePath];
        const options = this.opts.retentionDays ? { retentionDays: this.opts.retentionDays } : {};
        let archive;
        try {
            // (The client reports no byte progress; net.ts watches the sockets, and allows local work, zipping, up to
            // network-timeout plus the archive's size at 1 MiB/s while no request is in flight.)
            archive = await this.bounded(`uploading the artifact ${m.name}`, m.archive.size, () => this.client.uploadArtifact(m.name, files, root, options));
        }
        catch (err) {
            throw artifactError(err, `uploading the artifact ${m.name}`);
        }
        if (!archive.id)
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .BackupError */ .hj(`The artifact ${m.name} was not created`, 'See the log above and run again', { code: 'storage-artifact' });
        // The manifest last, in its own artifact: a listing never sees an archive whose upload died half way.
        const staging = await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.mkdtemp(node_path__WEBPACK_IMPORTED_MODULE_2___default().join(node_os__WEBPACK_IMPORTED_MODULE_1___default().tmpdir(), 'pgvb-artifact-'));
        try {
            const manifestFile = node_path__WEBPACK_IMPORTED_MODULE_2___default().join(staging, `${m.name}.json`);
            await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.writeFile(manifestFile, JSON.stringify({ ...m, artifact: { id: archive.id, digest: archive.digest ?? null } }, null, 2) + '\n');
            await this.bounded(`uploading the artifact ${m.name}${MANIFEST_SUFFIX}`, undefined, () => this.client.uploadArtifact(m.name + MANIFEST_SUFFIX, [manifestFile], staging, options));
        }
        catch (err) {
            throw artifactError(err, `uploading the artifact ${m.name}${MANIFEST_SUFFIX}`);
        }
        finally {
            await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rm(staging, { recursive: true, force: true });
        }
        const result = { location: `artifact ${m.name} (id ${archive.id})` };
        if (archive.digest)
            result.digest = archive.digest;
        return result;
    }
    /** This repository's artifacts named like backups of `database`, from the REST API, every page. */
    async restList(database) {
        const { owner, repo } = this.repo();
        const octokit = this.octokit();
        const out = [];
        const prefix = database ? (0,_archive_manifest_js__WEBPACK_IMPORTED_MODULE_5__/* .namePrefix */ .w8)(database) : '';
        for (let page = 1;; page++) {
            let r;
            try {
                r = await this.bounded(`listing the artifacts of ${owner}/${repo} (page ${page})`, undefined, (signal) => octokit.rest.actions.listArtifactsForRepo({ owner, repo, per_page: this.pageSize, page, request: { signal } }));
            }
            catch (err) {
                throw artifactError(err, `listing the artifacts of ${owner}/${repo} (page ${page})`);
            }
            for (const a of r.data.artifacts) {
                if (!a.name.startsWith(prefix))
                    continue;
                out.push({ id: a.id, name: a.name, runId: a.workflow_run?.id ?? 0, expired: a.expired, createdAt: new Date(a.created_at ?? 0) });
            }
            if (r.data.artifacts.length < this.pageSize)
                break;
        }
        return out;
    }
    findBy(runId) {
        const { owner, repo } = this.repo();
        return { token: this.opts.token, workflowRunId: runId, repositoryOwner: owner, repositoryName: repo };
    }
    async list(database) {
        const all = (await this.restList(database)).filter((a) => !a.expired);
        const archives = new Map(all.filter((a) => !a.name.endsWith(MANIFEST_SUFFIX)).map((a) => [a.name, a]));
        const out = [];
        for (const man of all.filter((a) => a.name.endsWith(MANIFEST_SUFFIX))) {
            const name = man.name.slice(0, -MANIFEST_SUFFIX.length);
            const archive = archives.get(name);
            if (!archive) {
                this.logger.warning(`artifact ${man.name}: its archive artifact ${name} is missing (not a usable backup)`);
                continue;
            }
            const dir = await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.mkdtemp(node_path__WEBPACK_IMPORTED_MODULE_2___default().join(node_os__WEBPACK_IMPORTED_MODULE_1___default().tmpdir(), 'pgvb-manifest-'));
            try {
                await this.bounded(`downloading the artifact ${man.name}`, undefined, () => this.client.downloadArtifact(man.id, { path: dir, findBy: this.findBy(man.runId) }));
                const text = await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.readFile(node_path__WEBPACK_IMPORTED_MODULE_2___default().join(dir, `${name}.json`), 'utf8');
                const manifest = (0,_archive_manifest_js__WEBPACK_IMPORTED_MODULE_5__/* .parseManifest */ .Ng)(text, `${man.name}/${name}.json`);
                if (database !== undefined && manifest.database !== database)
                    continue;
                out.push({
                    name,
                    createdAt: new Date(manifest.createdAt),
                    manifest,
                    location: `artifact ${name} (id ${archive.id}, run ${archive.runId})`,
                    destination: this.id,
                    good: (0,_storage_js__WEBPACK_IMPORTED_MODULE_9__/* .isGoodManifest */ .n$)(manifest),
                    ref: { archiveId: archive.id, manifestId: man.id, runId: archive.runId },
                });
            }
            catch (err) {
                if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .BackupError */ .hj && err.code !== 'storage-timeout' && /Manifest/.test(err.message)) {
                    this.logger.warning(`${err.message} (not a usable backup)`);
                    continue;
                }
                throw artifactError(err, `reading the artifact ${man.name}`);
            }
            finally {
                await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.rm(dir, { recursive: true, force: true });
            }
        }
        return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    }
    async get(b, dir) {
        const ref = b.ref;
        try {
            await this.bounded(`downloading the artifact ${b.name}`, b.manifest.archive.size, () => this.client.downloadArtifact(ref.archiveId, { path: dir, findBy: this.findBy(ref.runId) }));
        }
        catch (err) {
            throw artifactError(err, `downloading the artifact ${b.name}`);
        }
        const m = b.manifest;
        const manifestPath = node_path__WEBPACK_IMPORTED_MODULE_2___default().join(dir, `${m.name}.json`);
        await node_fs__WEBPACK_IMPORTED_MODULE_0__.promises.writeFile(manifestPath, JSON.stringify(m, null, 2) + '\n');
        return (0,_local_js__WEBPACK_IMPORTED_MODULE_8__/* .checkDownload */ .z)({ name: m.name, manifestPath, archivePath: node_path__WEBPACK_IMPORTED_MODULE_2___default().join(dir, m.archive.file), manifest: m, createdAt: b.createdAt, good: b.good }, b.location);
    }
    async delete(b) {
        const ref = b.ref;
        for (const id of [ref.manifestId, ref.archiveId])
            await this.deleteId(id, b.name);
    }
    async deleteId(id, what) {
        const { owner, repo } = this.repo();
        try {
            const octokit = this.octokit();
            await this.bounded(`deleting the artifact ${id} of ${what}`, undefined, (signal) => octokit.rest.actions.deleteArtifact({ owner, repo, artifact_id: id, request: { signal } }));
        }
        catch (err) {
            throw artifactError(err, `deleting the artifact ${id} of ${what}`);
        }
    }
    /** Archive artifacts whose manifest artifact never arrived (the run died between the two uploads). */
    async orphans(database) {
        const all = (await this.restList(database)).filter((a) => !a.expired);
        const manifests = new Set(all.filter((a) => a.name.endsWith(MANIFEST_SUFFIX)).map((a) => a.name.slice(0, -MANIFEST_SUFFIX.length)));
        return all
            .filter((a) => !a.name.endsWith(MANIFEST_SUFFIX) && /_\d{8}_\d{6}(_\d+)?$/.test(a.name) && !manifests.has(a.name))
            .map((a) => ({ location: `artifact ${a.name} (id ${a.id})`, modified: a.createdAt, remove: () => this.deleteId(a.id, a.name) }));
    }
}
function artifactError(err, what) {
    if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .BackupError */ .hj || err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .ConfigurationError */ .j1)
        return err;
    const e = err;
    const [code, hint] = e.status === 403 || e.status === 401
        ? ['storage-artifact-permission', 'Give the workflow token the permission it needs (permissions: actions: read to list, actions: write to prune) or set github-token']
        : e.name === 'GHESNotSupportedError'
            ? ['storage-artifact-ghes', 'The artifact destination needs GitHub.com (artifacts v4 are not available on GitHub Enterprise Server); use s3:// instead']
            : ['storage-artifact', 'See the error; run again'];
    return new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .BackupError */ .hj(`Artifact storage failed ${what}: ${e.message ?? String(err)}`, hint, { code, cause: err });
}


/***/ })

};
