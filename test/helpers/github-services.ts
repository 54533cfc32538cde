// A local stand-in of GitHub's Actions services, so the real, unmodified @actions/artifact and @actions/cache
// clients run against loopback only:
//   - the results service (Twirp JSON: ArtifactService and CacheService, as the v6 clients call them),
//   - the REST artifact endpoints that `findBy` (cross-run lookup) uses through @actions/github's Octokit,
//   - Azurite (a real Azure Blob Storage emulator, child process) as the blob store, with SAS-signed URLs.
// State lives in memory; one instance per test file. Fault injection and call counters per method.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  BlobSASPermissions,
  BlobServiceClient,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
  type ContainerClient,
} from '@azure/storage-blob';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const AZURITE_BLOB = path.join(ROOT, 'node_modules', '.bin', 'azurite-blob');

// Azurite's well-known development account (public, documented by Microsoft).
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const ARTIFACT_CONTAINER = 'actions-results';
const CACHE_CONTAINER = 'actions-cache';

export const OWNER = 'acme';
export const REPO = 'app';
const REPOSITORY_ID = 424242;
const HEAD_SHA = 'ffac537e6cbbf934b08745a378932722df287a53';

/** Twirp methods (service/method as the clients call them) and REST operations that failNext/calls accept. */
export const TWIRP_METHODS = [
  'CreateArtifact',
  'FinalizeArtifact',
  'ListArtifacts',
  'GetSignedArtifactURL',
  'DeleteArtifact',
  'CreateCacheEntry',
  'FinalizeCacheEntryUpload',
  'GetCacheEntryDownloadURL',
] as const;
export const REST_METHODS = [
  /** GET /repos/{o}/{r}/actions/runs/{run_id}/artifacts (listArtifacts and getArtifact with findBy; also deleteArtifact's lookup). */
  'ListArtifactsREST',
  /** GET /repos/{o}/{r}/actions/artifacts */
  'ListRepoArtifactsREST',
  /** GET /repos/{o}/{r}/actions/artifacts/{id} */
  'GetArtifactREST',
  /** GET /repos/{o}/{r}/actions/artifacts/{id}/zip (302 to a signed blob URL; downloadArtifact with findBy) */
  'DownloadArtifactREST',
  /** DELETE /repos/{o}/{r}/actions/artifacts/{id} */
  'DeleteArtifactREST',
] as const;
export type ServiceMethod = (typeof TWIRP_METHODS)[number] | (typeof REST_METHODS)[number];

export interface StoredArtifact {
  id: number;
  name: string;
  runId: number;
  size: number;
  createdAt: Date;
  expiresAt: Date | null;
  digest: string | null;
  deleted: boolean;
}

export interface StoredCache {
  id: number;
  key: string;
  version: string;
  size: number;
  createdAt: Date;
}

export interface GitHubServices {
  /** Everything a process needs for the first run (merge over a clean process env). */
  env: Record<string, string>;
  /** Start a new run (new GITHUB_RUN_ID, backend ids, runtime token, workspace and RUNNER_TEMP); returns its env. */
  newRun(): Record<string, string>;
  /** Finalized artifacts, deleted ones included (deleted: true). */
  artifacts(): StoredArtifact[];
  /** Finalized cache entries. */
  caches(): StoredCache[];
  /**
   * The next `times` (default 1) calls of `method` answer `status` (Twirp: {code,msg}; REST: {message}), after
   * letting `skip` (default 0) calls through, e.g. failNext('ListArtifactsREST', 403, 1, 1) fails the 2nd page.
   */
  failNext(method: ServiceMethod, status: number, times?: number, skip?: number): void;
  /** How many times `method` was called (failed and injected-fault calls included). */
  calls(method: ServiceMethod): number;
  /** Store a finalized artifact directly (no client), e.g. to fill a run with more than one page of artifacts. */
  addArtifact(opts: { runId?: number; name: string; content?: Buffer | string; mimeType?: string; createdAt?: Date }): Promise<StoredArtifact>;
  /** Origin of the stand-in (Twirp under /twirp, REST under /api). */
  url: string;
  /** Azurite's path-style account URL, http://127.0.0.1:PORT/devstoreaccount1 */
  blobUrl: string;
  /** Every stored blob (artifact zips, cache tarballs) with its bytes, as uploaded. */
  blobs(): Promise<Array<{ container: string; name: string; content: Buffer }>>;
  stop(): Promise<void>;
}

interface Run {
  runId: number;
  runBackendId: string;
  jobBackendId: string;
  token: string;
  env: Record<string, string>;
}

interface ArtifactRecord {
  id: number;
  name: string;
  run: Run;
  jobBackendId: string;
  blobName: string;
  fileName: string;
  size: number;
  digest: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  finalized: boolean;
  deleted: boolean;
}

interface CacheRecord {
  id: number;
  key: string;
  version: string;
  blobName: string;
  size: number;
  createdAt: Date;
  finalized: boolean;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const TWIRP_CODES: Record<number, string> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  408: 'deadline_exceeded',
  409: 'already_exists',
  412: 'failed_precondition',
  429: 'resource_exhausted',
  500: 'internal',
  501: 'unimplemented',
  503: 'unavailable',
  504: 'deadline_exceeded',
};

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** An unsigned (alg none) runtime token shaped like the runner's: scp carries Actions.Results:<run>:<job>. */
function runtimeToken(runBackendId: string, jobBackendId: string): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    nameid: 'dddddddd-dddd-dddd-dddd-dddddddddddd',
    scp: `Actions.ExampleScope Actions.Results:${runBackendId}:${jobBackendId}`,
    ac: JSON.stringify([{ Scope: 'refs/heads/main', Permission: 3 }]),
    iss: 'vstoken.actions.githubusercontent.com',
    aud: 'vso:00000000-0000-0000-0000-000000000000',
    nbf: now - 60,
    iat: now - 60,
    exp: now + 6 * 3600,
  };
  return `${b64url({ typ: 'JWT', alg: 'none' })}.${b64url(payload)}.`;
}

function scopeOf(authorization: string | undefined): { runBackendId: string; jobBackendId: string } | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  const part = m?.[1]?.split('.')[1];
  if (!part) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { scp?: unknown };
    if (typeof claims.scp !== 'string') return undefined;
    for (const scope of claims.scp.split(' ')) {
      const [kind, run, job] = scope.split(':');
      if (kind === 'Actions.Results' && run && job) return { runBackendId: run, jobBackendId: job };
    }
  } catch {
    return undefined;
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** GitHub's REST timestamps: ISO 8601 without milliseconds. */
function restTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

async function startAzurite(dir: string): Promise<{ child: ChildProcess; port: number }> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    // --location is not combined with --inMemoryPersistence: Azurite 3.35 refuses the pair. cwd is a temp dir.
    const child = spawn(
      process.execPath,
      [AZURITE_BLOB, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--inMemoryPersistence', '--disableTelemetry', '--silent', '--skipApiVersionCheck'],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      // Any HTTP answer (403 without credentials) means it listens.
      const up = await fetch(`http://127.0.0.1:${port}/${ACCOUNT}?comp=list`).then(
        () => true,
        () => false,
      );
      if (up) return { child, port };
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    lastError = stderr.trim() || `exit code ${child.exitCode}`;
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  throw new Error(`Azurite did not start (node_modules/.bin/azurite-blob): ${lastError}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startGitHubServices(): Promise<GitHubServices> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'gh-services-'));
  const azuriteDir = path.join(root, 'azurite');
  mkdirSync(azuriteDir);
  const azurite = await startAzurite(azuriteDir);
  const blobUrl = `http://127.0.0.1:${azurite.port}/${ACCOUNT}`;
  const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);
  const blobService = new BlobServiceClient(blobUrl, credential);
  const containers: Record<string, ContainerClient> = {};
  try {
    for (const name of [ARTIFACT_CONTAINER, CACHE_CONTAINER]) {
      containers[name] = blobService.getContainerClient(name);
      await containers[name].createIfNotExists();
    }
  } catch (e) {
    await stopChild(azurite.child);
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
  const container = (name: string): ContainerClient => containers[name]!;

  const restToken = `ghs_${randomUUID().replace(/-/g, '')}`;
  const runs: Run[] = [];
  const artifacts: ArtifactRecord[] = [];
  const caches: CacheRecord[] = [];
  const callCounts = new Map<string, number>();
  const faults = new Map<string, Array<{ status: number; remaining: number; skip: number }>>();
  let nextRunId = 9_000_000_001;
  let nextArtifactId = 4_100_000_001;
  let nextCacheId = 7_000_001;
  let origin = '';

  function signedUrl(containerName: string, blobName: string, permissions: string, contentDisposition?: string): string {
    const sas = generateBlobSASQueryParameters(
      {
        containerName,
        blobName,
        permissions: BlobSASPermissions.parse(permissions),
        startsOn: new Date(Date.now() - 5 * 60_000),
        expiresOn: new Date(Date.now() + 60 * 60_000),
        ...(contentDisposition ? { contentDisposition } : {}),
      },
      credential,
    ).toString();
    return `${blobUrl}/${containerName}/${blobName.split('/').map(encodeURIComponent).join('/')}?${sas}`;
  }

  function downloadUrl(a: ArtifactRecord): string {
    const disposition = `attachment; filename="${a.fileName.replace(/[^\x20-\x7e]|"/g, '_')}"; filename*=UTF-8''${encodeURIComponent(a.fileName)}`;
    return signedUrl(ARTIFACT_CONTAINER, a.blobName, 'r', disposition);
  }

  async function blobSize(containerName: string, blobName: string): Promise<number | undefined> {
    try {
      return (await container(containerName).getBlobClient(blobName).getProperties()).contentLength ?? 0;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined;
      throw e;
    }
  }

  function newRun(): Record<string, string> {
    const runId = nextRunId++;
    const runBackendId = randomUUID();
    const jobBackendId = randomUUID();
    const token = runtimeToken(runBackendId, jobBackendId);
    const dir = path.join(root, `run-${runId}`);
    const temp = path.join(dir, 'temp');
    const workspace = path.join(dir, 'workspace');
    mkdirSync(temp, { recursive: true });
    mkdirSync(workspace, { recursive: true });
    const env: Record<string, string> = {
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_API_URL: `${origin}/api`,
      GITHUB_GRAPHQL_URL: `${origin}/api/graphql`,
      GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
      GITHUB_REPOSITORY_OWNER: OWNER,
      GITHUB_REPOSITORY_ID: String(REPOSITORY_ID),
      GITHUB_REPOSITORY_OWNER_ID: '1000001',
      GITHUB_RUN_ID: String(runId),
      GITHUB_RUN_NUMBER: String(runId - 9_000_000_000),
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_WORKFLOW: 'backup',
      GITHUB_WORKFLOW_REF: `${OWNER}/${REPO}/.github/workflows/backup.yml@refs/heads/main`,
      GITHUB_JOB: 'backup',
      GITHUB_ACTION: '__run',
      GITHUB_ACTOR: 'octocat',
      GITHUB_EVENT_NAME: 'schedule',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_REF_NAME: 'main',
      GITHUB_REF_TYPE: 'branch',
      GITHUB_SHA: HEAD_SHA,
      GITHUB_RETENTION_DAYS: '90',
      GITHUB_TOKEN: restToken,
      GITHUB_WORKSPACE: workspace,
      RUNNER_TEMP: temp,
      RUNNER_OS: 'Linux',
      RUNNER_ARCH: 'X64',
      RUNNER_NAME: 'GitHub Actions 1',
      RUNNER_ENVIRONMENT: 'github-hosted',
      ACTIONS_RUNTIME_TOKEN: token,
      ACTIONS_RESULTS_URL: `${origin}/`,
      ACTIONS_CACHE_SERVICE_V2: 'true',
    };
    runs.push({ runId, runBackendId, jobBackendId, token, env });
    return { ...env };
  }

  // ---------------------------------------------------------------- Twirp: ArtifactService and CacheService
  type Body = Record<string, unknown>;
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

  function runForBody(scope: { runBackendId: string }, body: Body): Run {
    const runBackendId = str(body.workflow_run_backend_id);
    const jobBackendId = str(body.workflow_job_run_backend_id);
    if (!runBackendId || !jobBackendId) throw new HttpError(400, 'workflow_run_backend_id and workflow_job_run_backend_id are required');
    if (runBackendId !== scope.runBackendId) throw new HttpError(403, 'the runtime token does not grant access to this workflow run');
    const run = runs.find((r) => r.runBackendId === runBackendId);
    if (!run) throw new HttpError(404, 'workflow run not found');
    return run;
  }

  const live = (a: ArtifactRecord): boolean => a.finalized && !a.deleted && !(a.expiresAt && a.expiresAt.getTime() <= Date.now());
  const newest = <T extends { id: number }>(list: T[]): T | undefined => list.sort((x, y) => y.id - x.id)[0];

  function monolith(a: ArtifactRecord): Body {
    return {
      workflow_run_backend_id: a.run.runBackendId,
      workflow_job_run_backend_id: a.jobBackendId,
      database_id: String(a.id),
      name: a.name,
      size: String(a.size),
      created_at: a.createdAt.toISOString(),
      ...(a.digest ? { digest: a.digest } : {}),
    };
  }

  const twirp: Record<string, (scope: { runBackendId: string; jobBackendId: string }, body: Body) => Promise<Body>> = {
    async CreateArtifact(scope, body) {
      const run = runForBody(scope, body);
      const name = str(body.name);
      if (!name) throw new HttpError(400, 'name is required');
      if (artifacts.some((a) => a.run === run && a.name === name && a.finalized && !a.deleted)) {
        throw new HttpError(409, 'an artifact with this name already exists on the workflow run');
      }
      // A retry of an unfinished upload replaces the pending record.
      for (let i = artifacts.length - 1; i >= 0; i--) if (artifacts[i]!.run === run && artifacts[i]!.name === name && !artifacts[i]!.finalized) artifacts.splice(i, 1);
      const mimeType = str(body.mime_type) ?? 'application/zip';
      const zip = mimeType === 'application/zip';
      const expires = str(body.expires_at);
      const id = nextArtifactId++;
      const a: ArtifactRecord = {
        id,
        name,
        run,
        jobBackendId: str(body.workflow_job_run_backend_id)!,
        blobName: `${run.runBackendId}/artifacts/${id}${zip ? '.zip' : ''}`,
        fileName: zip ? `${name}.zip` : name,
        size: 0,
        digest: null,
        createdAt: new Date(),
        expiresAt: expires ? new Date(expires) : null,
        finalized: false,
        deleted: false,
      };
      artifacts.push(a);
      return { ok: true, signed_upload_url: signedUrl(ARTIFACT_CONTAINER, a.blobName, 'cw') };
    },
    async FinalizeArtifact(scope, body) {
      const run = runForBody(scope, body);
      const name = str(body.name);
      const a = newest(artifacts.filter((x) => x.run === run && x.name === name && !x.finalized));
      if (!a) throw new HttpError(404, `artifact ${name} not found: was CreateArtifact called?`);
      if ((await blobSize(ARTIFACT_CONTAINER, a.blobName)) === undefined) throw new HttpError(412, 'no blob was uploaded for this artifact');
      a.size = Number(str(body.size) ?? body.size ?? 0);
      a.digest = str(body.hash) ?? null;
      a.createdAt = new Date();
      a.finalized = true;
      return { ok: true, artifact_id: String(a.id) };
    },
    async ListArtifacts(scope, body) {
      const run = runForBody(scope, body);
      const nameFilter = str(body.name_filter);
      const idFilter = body.id_filter === undefined ? undefined : String(body.id_filter);
      const list = artifacts
        .filter((a) => a.run === run && live(a))
        .filter((a) => nameFilter === undefined || a.name === nameFilter)
        .filter((a) => idFilter === undefined || String(a.id) === idFilter)
        .sort((x, y) => x.id - y.id);
      return { artifacts: list.map(monolith) };
    },
    async GetSignedArtifactURL(scope, body) {
      const run = runForBody(scope, body);
      const a = newest(artifacts.filter((x) => x.run === run && x.name === str(body.name) && live(x)));
      if (!a) throw new HttpError(404, 'artifact not found');
      return { signed_url: downloadUrl(a) };
    },
    async DeleteArtifact(scope, body) {
      const run = runForBody(scope, body);
      const a = newest(artifacts.filter((x) => x.run === run && x.name === str(body.name) && live(x)));
      if (!a) throw new HttpError(404, 'artifact not found');
      await deleteArtifact(a);
      return { ok: true, artifact_id: String(a.id) };
    },
    async CreateCacheEntry(_scope, body) {
      const key = str(body.key);
      const version = str(body.version);
      if (!key || !version) throw new HttpError(400, 'key and version are required');
      if (caches.some((c) => c.key === key && c.version === version && c.finalized)) {
        throw new HttpError(409, 'cache entry with the same key, version, and scope already exists');
      }
      for (let i = caches.length - 1; i >= 0; i--) if (caches[i]!.key === key && caches[i]!.version === version) caches.splice(i, 1);
      const id = nextCacheId++;
      const c: CacheRecord = { id, key, version, blobName: `caches/${id}/${createHash('sha256').update(key).digest('hex')}.tzst`, size: 0, createdAt: new Date(), finalized: false };
      caches.push(c);
      return { ok: true, signed_upload_url: signedUrl(CACHE_CONTAINER, c.blobName, 'cw') };
    },
    async FinalizeCacheEntryUpload(_scope, body) {
      const c = caches.find((x) => x.key === str(body.key) && x.version === str(body.version) && !x.finalized);
      if (!c) throw new HttpError(404, 'cache entry not found: was CreateCacheEntry called?');
      const actual = await blobSize(CACHE_CONTAINER, c.blobName);
      if (actual === undefined) throw new HttpError(412, 'no blob was uploaded for this cache entry');
      c.size = Number(str(body.size_bytes) ?? body.size_bytes ?? actual);
      c.createdAt = new Date();
      c.finalized = true;
      return { ok: true, entry_id: String(c.id) };
    },
    async GetCacheEntryDownloadURL(_scope, body) {
      const key = str(body.key);
      const version = str(body.version);
      if (!key || !version) throw new HttpError(400, 'key and version are required');
      const restoreKeys = Array.isArray(body.restore_keys) ? body.restore_keys.filter((k): k is string => typeof k === 'string') : [];
      const candidates = caches.filter((c) => c.finalized && c.version === version);
      const latest = (list: CacheRecord[]): CacheRecord | undefined => list.sort((x, y) => y.createdAt.getTime() - x.createdAt.getTime() || y.id - x.id)[0];
      // GitHub's order: exact key, then prefix of key, then each restore key (exact, then newest prefix match).
      for (const k of [key, ...restoreKeys]) {
        const hit = candidates.find((c) => c.key === k) ?? latest(candidates.filter((c) => c.key.startsWith(k)));
        if (hit) return { ok: true, signed_download_url: signedUrl(CACHE_CONTAINER, hit.blobName, 'r'), matched_key: hit.key };
      }
      return { ok: false };
    },
  };

  async function deleteArtifact(a: ArtifactRecord): Promise<void> {
    a.deleted = true;
    await container(ARTIFACT_CONTAINER).getBlobClient(a.blobName).deleteIfExists();
  }

  // ---------------------------------------------------------------- REST (api.github.com subset)
  function restArtifact(a: ArtifactRecord): Body {
    const url = `${origin}/api/repos/${OWNER}/${REPO}/actions/artifacts/${a.id}`;
    return {
      id: a.id,
      node_id: Buffer.from(`08:Artifact${a.id}`).toString('base64'),
      name: a.name,
      size_in_bytes: a.size,
      url,
      archive_download_url: `${url}/zip`,
      expired: Boolean(a.expiresAt && a.expiresAt.getTime() <= Date.now()),
      digest: a.digest,
      created_at: restTime(a.createdAt),
      updated_at: restTime(a.createdAt),
      expires_at: a.expiresAt ? restTime(a.expiresAt) : null,
      workflow_run: { id: a.run.runId, repository_id: REPOSITORY_ID, head_repository_id: REPOSITORY_ID, head_branch: 'main', head_sha: HEAD_SHA },
    };
  }

  function page(list: ArtifactRecord[], query: URLSearchParams): Body {
    const name = query.get('name');
    const matching = list.filter((a) => a.finalized && !a.deleted && (name === null || a.name === name)).sort((x, y) => y.id - x.id);
    const perPage = Math.min(100, Math.max(1, Number(query.get('per_page') ?? 30) || 30));
    const pageNo = Math.max(1, Number(query.get('page') ?? 1) || 1);
    return { total_count: matching.length, artifacts: matching.slice((pageNo - 1) * perPage, pageNo * perPage).map(restArtifact) };
  }

  function restArtifactById(id: string): ArtifactRecord {
    const a = artifacts.find((x) => String(x.id) === id && x.finalized && !x.deleted);
    if (!a) throw new HttpError(404, 'Not Found');
    return a;
  }

  type RestResult = { status: number; body?: Body; headers?: Record<string, string> };
  const restRoutes: Array<{ method: string; pattern: RegExp; name: ServiceMethod; run: (m: string[], q: URLSearchParams) => Promise<RestResult> }> = [
    {
      method: 'GET',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/actions\/runs\/(\d+)\/artifacts$/,
      name: 'ListArtifactsREST',
      run: async (m, q) => {
        const run = runs.find((r) => String(r.runId) === m[3]);
        if (!run) throw new HttpError(404, 'Not Found');
        return { status: 200, body: page(artifacts.filter((a) => a.run === run), q) };
      },
    },
    { method: 'GET', pattern: /^\/repos\/([^/]+)\/([^/]+)\/actions\/artifacts$/, name: 'ListRepoArtifactsREST', run: async (_m, q) => ({ status: 200, body: page(artifacts, q) }) },
    { method: 'GET', pattern: /^\/repos\/([^/]+)\/([^/]+)\/actions\/artifacts\/(\d+)$/, name: 'GetArtifactREST', run: async (m) => ({ status: 200, body: restArtifact(restArtifactById(m[3]!)) }) },
    {
      method: 'GET',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/actions\/artifacts\/(\d+)\/([^/]+)$/,
      name: 'DownloadArtifactREST',
      run: async (m) => {
        if (m[4] !== 'zip') throw new HttpError(404, 'Not Found');
        const a = restArtifactById(m[3]!);
        if (a.expiresAt && a.expiresAt.getTime() <= Date.now()) throw new HttpError(410, 'Artifact has expired');
        return { status: 302, headers: { location: downloadUrl(a) } };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/repos\/([^/]+)\/([^/]+)\/actions\/artifacts\/(\d+)$/,
      name: 'DeleteArtifactREST',
      run: async (m) => {
        await deleteArtifact(restArtifactById(m[3]!));
        return { status: 204 };
      },
    },
  ];

  // ---------------------------------------------------------------- HTTP plumbing
  function count(method: string): void {
    callCounts.set(method, (callCounts.get(method) ?? 0) + 1);
  }

  function injectedFault(method: string): number | undefined {
    const queue = faults.get(method);
    const f = queue?.[0];
    if (!queue || !f) return undefined;
    if (f.skip > 0) {
      f.skip--;
      return undefined;
    }
    f.remaining--;
    if (f.remaining <= 0) queue.shift();
    return f.status;
  }

  function send(res: http.ServerResponse, status: number, body?: Body, headers: Record<string, string> = {}): void {
    const payload = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      'content-length': String(Buffer.byteLength(payload)),
      'x-github-request-id': randomUUID().toUpperCase(),
      ...headers,
    });
    res.end(payload);
  }

  const twirpError = (res: http.ServerResponse, status: number, msg: string, code?: string): void =>
    send(res, status, { code: code ?? TWIRP_CODES[status] ?? (status >= 500 ? 'internal' : 'unknown'), msg });
  const restError = (res: http.ServerResponse, status: number, message: string): void =>
    send(res, status, { message, documentation_url: 'https://docs.github.com/rest/actions/artifacts', status: String(status) });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    const raw = await readBody(req);
    const twirpMatch = /^\/twirp\/github\.actions\.results\.api\.v1\.(ArtifactService|CacheService)\/([A-Za-z]+)$/.exec(url.pathname);
    if (twirpMatch) {
      const [, service, method] = twirpMatch as unknown as [string, string, string];
      const known = (service === 'ArtifactService' ? TWIRP_METHODS.slice(0, 5) : TWIRP_METHODS.slice(5)) as readonly string[];
      if (req.method !== 'POST' || !known.includes(method)) return twirpError(res, 404, `no handler for ${req.method} ${url.pathname}`, 'bad_route');
      count(method);
      const fault = injectedFault(method);
      if (fault !== undefined) return twirpError(res, fault, `injected failure of ${method}`);
      const scope = scopeOf(req.headers.authorization);
      if (!scope) return twirpError(res, 401, 'missing or invalid runtime token');
      let body: Body;
      try {
        body = JSON.parse(raw.toString('utf8') || '{}') as Body;
      } catch {
        return twirpError(res, 400, 'the request body is not JSON', 'malformed');
      }
      try {
        return send(res, 200, await twirp[method]!(scope, body));
      } catch (e) {
        if (e instanceof HttpError) return twirpError(res, e.status, e.message);
        return twirpError(res, 500, String((e as Error)?.message ?? e));
      }
    }
    if (url.pathname.startsWith('/api/')) {
      const rest = url.pathname.slice('/api'.length);
      for (const route of restRoutes) {
        const m = route.pattern.exec(rest);
        if (!m || req.method !== route.method) continue;
        count(route.name);
        const fault = injectedFault(route.name);
        if (fault !== undefined) return restError(res, fault, `injected failure of ${route.name}`);
        const auth = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
        if (auth !== restToken) return restError(res, 401, 'Bad credentials');
        if (m[1]?.toLowerCase() !== OWNER || m[2]?.toLowerCase() !== REPO) return restError(res, 404, 'Not Found');
        try {
          const out = await route.run(m as unknown as string[], url.searchParams);
          return send(res, out.status, out.body, out.headers);
        } catch (e) {
          if (e instanceof HttpError) return restError(res, e.status, e.message);
          return restError(res, 500, String((e as Error)?.message ?? e));
        }
      }
      return restError(res, 404, 'Not Found');
    }
    send(res, 404, { message: 'Not Found' });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { message: String(e) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;

  const env = newRun();
  const known = new Set<string>([...TWIRP_METHODS, ...REST_METHODS]);
  const check = (method: string): void => {
    if (!known.has(method)) throw new Error(`unknown method ${method}: one of ${[...known].join(', ')}`);
  };
  const toStored = (a: ArtifactRecord): StoredArtifact => ({
    id: a.id,
    name: a.name,
    runId: a.run.runId,
    size: a.size,
    createdAt: a.createdAt,
    expiresAt: a.expiresAt,
    digest: a.digest,
    deleted: a.deleted,
  });

  let stopped = false;
  return {
    env,
    url: origin,
    blobUrl,
    async blobs() {
      const out: Array<{ container: string; name: string; content: Buffer }> = [];
      for (const name of [ARTIFACT_CONTAINER, CACHE_CONTAINER]) {
        for await (const b of container(name).listBlobsFlat()) {
          out.push({ container: name, name: b.name, content: await container(name).getBlobClient(b.name).downloadToBuffer() });
        }
      }
      return out;
    },
    newRun,
    artifacts: () => artifacts.filter((a) => a.finalized).sort((x, y) => x.id - y.id).map(toStored),
    caches: () => caches.filter((c) => c.finalized).sort((x, y) => x.id - y.id).map((c) => ({ id: c.id, key: c.key, version: c.version, size: c.size, createdAt: c.createdAt })),
    failNext(method, status, times = 1, skip = 0) {
      check(method);
      if (!(status >= 400 && status <= 599)) throw new Error(`failNext: status ${status} is not an error status`);
      const queue = faults.get(method) ?? [];
      queue.push({ status, remaining: times, skip });
      faults.set(method, queue);
    },
    calls(method) {
      check(method);
      return callCounts.get(method) ?? 0;
    },
    async addArtifact({ runId, name, content = '', mimeType = 'application/octet-stream', createdAt }) {
      const run = runId === undefined ? runs[0]! : runs.find((r) => r.runId === runId);
      if (!run) throw new Error(`addArtifact: no run ${runId}`);
      const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
      const id = nextArtifactId++;
      const zip = mimeType === 'application/zip';
      const a: ArtifactRecord = {
        id,
        name,
        run,
        jobBackendId: run.jobBackendId,
        blobName: `${run.runBackendId}/artifacts/${id}${zip ? '.zip' : ''}`,
        fileName: zip ? `${name}.zip` : name,
        size: data.length,
        digest: `sha256:${createHash('sha256').update(data).digest('hex')}`,
        createdAt: createdAt ?? new Date(),
        expiresAt: null,
        finalized: true,
        deleted: false,
      };
      await container(ARTIFACT_CONTAINER).getBlockBlobClient(a.blobName).uploadData(data, { blobHTTPHeaders: { blobContentType: mimeType } });
      artifacts.push(a);
      return toStored(a);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stopChild(azurite.child);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
