// destination: artifact. Two artifacts per backup with the real @actions/artifact client: the archive
// (named after the backup), then a small one holding only the manifest (`<name>.manifest`), uploaded last as the
// commit marker. Listing reads the manifests of this repository's earlier runs through the REST API
// (github-token with actions: read); pruning deletes through it (actions: write).
// Every call runs under net.ts's `bounded`: the clients' own limits are minutes to never (the Twirp client waits
// 3 minutes per attempt, five attempts; the Azure blob upload has none but a 5-minute stall check; Octokit's fetch
// waits 5 minutes for headers), so network-timeout without a byte moving abandons the call and fails the destination.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DefaultArtifactClient } from '@actions/artifact';
import { getOctokit } from '@actions/github';
import { namePrefix, parseManifest } from '../archive/manifest.js';
import { BackupError, ConfigurationError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { bounded, DEFAULT_NETWORK_TIMEOUT_MS, type Bound } from '../net.js';
import { checkDownload, type LocalBackup } from './local.js';
import { isGoodManifest, type Orphan, type PutResult, type Storage, type StoredBackup } from './storage.js';

const MANIFEST_SUFFIX = '.manifest';

export interface ArtifactOptions {
  /** Days GitHub keeps the artifacts (1-90); undefined: the repository's setting. */
  retentionDays?: number;
  token?: string;
  env: NodeJS.ProcessEnv;
  /** network-timeout (ms); default 60 s. */
  networkTimeoutMs?: number;
}

interface Ref {
  archiveId: number;
  manifestId: number;
  runId: number;
}

export class ArtifactStorage implements Storage {
  readonly id = 'artifact';
  private readonly client = new DefaultArtifactClient();
  /** (Tests set a tiny page size to exercise paging.) */
  private readonly pageSize: number;

  constructor(
    private readonly opts: ArtifactOptions,
    private readonly logger: Logger,
  ) {
    this.pageSize = Number(opts.env.PGVB_ARTIFACT_PAGE_SIZE) || 100;
  }

  /** One remote call, abandoned when its network goes quiet for network-timeout. */
  private bounded<T>(what: string, size: number | undefined, op: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const b: Bound = {
      timeoutMs: this.opts.networkTimeoutMs ?? DEFAULT_NETWORK_TIMEOUT_MS,
      destination: this.id,
      what,
      check: "Check the connection to GitHub's artifact service and its blob storage (https://www.githubstatus.com)",
      logger: this.logger,
    };
    if (size !== undefined) b.size = size;
    return bounded(b, op);
  }

  private repo(): { owner: string; repo: string } {
    const full = this.opts.env.GITHUB_REPOSITORY ?? '';
    const [owner, repo] = full.split('/');
    if (!owner || !repo) throw new ConfigurationError('The artifact destination needs GITHUB_REPOSITORY (it runs inside GitHub Actions)', { code: 'config-outside-actions' });
    return { owner, repo };
  }

  private octokit(): ReturnType<typeof getOctokit> {
    if (!this.opts.token) {
      throw new ConfigurationError('Listing or deleting artifacts of earlier runs needs github-token (the default ${{ github.token }} with permissions actions: read, and actions: write to prune)', { code: 'config-github-token' });
    }
    const baseUrl = this.opts.env.GITHUB_API_URL;
    return getOctokit(this.opts.token, baseUrl ? { baseUrl } : {});
  }

  async put(b: LocalBackup): Promise<PutResult> {
    const m = b.manifest;
    const root = path.dirname(b.manifestPath);
    const files = m.format === 'directory' ? (m.archive.files ?? []).map((f) => path.join(b.archivePath, f.path)) : [b.archivePath];
    const options = this.opts.retentionDays ? { retentionDays: this.opts.retentionDays } : {};
    let archive;
    try {
      // (The client reports no byte progress; net.ts watches the sockets, and allows local work, zipping, up to
      // network-timeout plus the archive's size at 1 MiB/s while no request is in flight.)
      archive = await this.bounded(`uploading the artifact ${m.name}`, m.archive.size, () => this.client.uploadArtifact(m.name, files, root, options));
    } catch (err) {
      throw artifactError(err, `uploading the artifact ${m.name}`);
    }
    if (!archive.id) throw new BackupError(`The artifact ${m.name} was not created`, 'See the log above and run again', { code: 'storage-artifact' });
    // The manifest last, in its own artifact: a listing never sees an archive whose upload died half way.
    const staging = await fs.mkdtemp(path.join(os.tmpdir(), 'pgvb-artifact-'));
    try {
      const manifestFile = path.join(staging, `${m.name}.json`);
      await fs.writeFile(manifestFile, JSON.stringify({ ...m, artifact: { id: archive.id, digest: archive.digest ?? null } }, null, 2) + '\n');
      await this.bounded(`uploading the artifact ${m.name}${MANIFEST_SUFFIX}`, undefined, () => this.client.uploadArtifact(m.name + MANIFEST_SUFFIX, [manifestFile], staging, options));
    } catch (err) {
      throw artifactError(err, `uploading the artifact ${m.name}${MANIFEST_SUFFIX}`);
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
    const result: PutResult = { location: `artifact ${m.name} (id ${archive.id})` };
    if (archive.digest) result.digest = archive.digest;
    return result;
  }

  /** This repository's artifacts named like backups of `database`, from the REST API, every page. */
  private async restList(database?: string): Promise<Array<{ id: number; name: string; runId: number; expired: boolean; createdAt: Date }>> {
    const { owner, repo } = this.repo();
    const octokit = this.octokit();
    const out: Array<{ id: number; name: string; runId: number; expired: boolean; createdAt: Date }> = [];
    const prefix = database ? namePrefix(database) : '';
    for (let page = 1; ; page++) {
      let r;
      try {
        r = await this.bounded(`listing the artifacts of ${owner}/${repo} (page ${page})`, undefined, (signal) =>
          octokit.rest.actions.listArtifactsForRepo({ owner, repo, per_page: this.pageSize, page, request: { signal } }),
        );
      } catch (err) {
        throw artifactError(err, `listing the artifacts of ${owner}/${repo} (page ${page})`);
      }
      for (const a of r.data.artifacts) {
        if (!a.name.startsWith(prefix)) continue;
        out.push({ id: a.id, name: a.name, runId: a.workflow_run?.id ?? 0, expired: a.expired, createdAt: new Date(a.created_at ?? 0) });
      }
      if (r.data.artifacts.length < this.pageSize) break;
    }
    return out;
  }

  private findBy(runId: number): { token: string; workflowRunId: number; repositoryOwner: string; repositoryName: string } {
    const { owner, repo } = this.repo();
    return { token: this.opts.token!, workflowRunId: runId, repositoryOwner: owner, repositoryName: repo };
  }

  async list(database?: string): Promise<StoredBackup[]> {
    const all = (await this.restList(database)).filter((a) => !a.expired);
    const archives = new Map(all.filter((a) => !a.name.endsWith(MANIFEST_SUFFIX)).map((a) => [a.name, a]));
    const out: StoredBackup[] = [];
    for (const man of all.filter((a) => a.name.endsWith(MANIFEST_SUFFIX))) {
      const name = man.name.slice(0, -MANIFEST_SUFFIX.length);
      const archive = archives.get(name);
      if (!archive) {
        this.logger.warning(`artifact ${man.name}: its archive artifact ${name} is missing (not a usable backup)`);
        continue;
      }
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgvb-manifest-'));
      try {
        await this.bounded(`downloading the artifact ${man.name}`, undefined, () => this.client.downloadArtifact(man.id, { path: dir, findBy: this.findBy(man.runId) }));
        const text = await fs.readFile(path.join(dir, `${name}.json`), 'utf8');
        const manifest = parseManifest(text, `${man.name}/${name}.json`);
        if (database !== undefined && manifest.database !== database) continue;
        out.push({
          name,
          createdAt: new Date(manifest.createdAt),
          manifest,
          location: `artifact ${name} (id ${archive.id}, run ${archive.runId})`,
          destination: this.id,
          good: isGoodManifest(manifest),
          ref: { archiveId: archive.id, manifestId: man.id, runId: archive.runId } satisfies Ref,
        });
      } catch (err) {
        if (err instanceof BackupError && err.code !== 'storage-timeout' && /Manifest/.test(err.message)) {
          this.logger.warning(`${err.message} (not a usable backup)`);
          continue;
        }
        throw artifactError(err, `reading the artifact ${man.name}`);
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    }
    return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  }

  async get(b: StoredBackup, dir: string): Promise<LocalBackup> {
    const ref = b.ref as Ref;
    try {
      await this.bounded(`downloading the artifact ${b.name}`, b.manifest.archive.size, () => this.client.downloadArtifact(ref.archiveId, { path: dir, findBy: this.findBy(ref.runId) }));
    } catch (err) {
      throw artifactError(err, `downloading the artifact ${b.name}`);
    }
    const m = b.manifest;
    const manifestPath = path.join(dir, `${m.name}.json`);
    await fs.writeFile(manifestPath, JSON.stringify(m, null, 2) + '\n');
    return checkDownload({ name: m.name, manifestPath, archivePath: path.join(dir, m.archive.file), manifest: m, createdAt: b.createdAt, good: b.good }, b.location);
  }

  async delete(b: StoredBackup): Promise<void> {
    const ref = b.ref as Ref;
    for (const id of [ref.manifestId, ref.archiveId]) await this.deleteId(id, b.name);
  }

  private async deleteId(id: number, what: string): Promise<void> {
    const { owner, repo } = this.repo();
    try {
      const octokit = this.octokit();
      await this.bounded(`deleting the artifact ${id} of ${what}`, undefined, (signal) => octokit.rest.actions.deleteArtifact({ owner, repo, artifact_id: id, request: { signal } }));
    } catch (err) {
      throw artifactError(err, `deleting the artifact ${id} of ${what}`);
    }
  }

  /** Archive artifacts whose manifest artifact never arrived (the run died between the two uploads). */
  async orphans(database?: string): Promise<Orphan[]> {
    const all = (await this.restList(database)).filter((a) => !a.expired);
    const manifests = new Set(all.filter((a) => a.name.endsWith(MANIFEST_SUFFIX)).map((a) => a.name.slice(0, -MANIFEST_SUFFIX.length)));
    return all
      .filter((a) => !a.name.endsWith(MANIFEST_SUFFIX) && /_\d{8}_\d{6}(_\d+)?$/.test(a.name) && !manifests.has(a.name))
      .map((a) => ({ location: `artifact ${a.name} (id ${a.id})`, modified: a.createdAt, remove: () => this.deleteId(a.id, a.name) }));
  }
}

function artifactError(err: unknown, what: string): BackupError {
  if (err instanceof BackupError || err instanceof ConfigurationError) return err as BackupError;
  const e = err as { message?: string; status?: number; name?: string };
  const [code, hint]: [ErrorCode, string] =
    e.status === 403 || e.status === 401
      ? ['storage-artifact-permission', 'Give the workflow token the permission it needs (permissions: actions: read to list, actions: write to prune) or set github-token']
      : e.name === 'GHESNotSupportedError'
        ? ['storage-artifact-ghes', 'The artifact destination needs GitHub.com (artifacts v4 are not available on GitHub Enterprise Server); use s3:// instead']
        : ['storage-artifact', 'See the error; run again'];
  return new BackupError(`Artifact storage failed ${what}: ${e.message ?? String(err)}`, hint, { code, cause: err });
}
