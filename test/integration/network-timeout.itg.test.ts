// network-timeout: every remote call is bounded. Peers on 127.0.0.1 that accept connections and never answer, that
// send headers and then stall the body, or proxies in front of the real services (s3rver, OpenSSH, the GitHub
// stand-in with Azurite) that let chosen requests stall. S3, sftp and the Pushgateway go through the bundled action
// with network-timeout 3; artifact and cache run their storage classes in this process with the real
// @actions/artifact and @actions/cache clients (the action hands them the setting through src/storage/index.ts).
// Durations are printed, not asserted: the tests' own timeouts are the generous ceiling.
import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readManifest } from '../../src/archive/manifest.js';
import { BackupError, errorLine } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import type { LocalBackup } from '../../src/storage/local.js';
import { runAction, type RunResult } from '../helpers/action.js';
import { startGitHubServices, type GitHubServices } from '../helpers/github-services.js';
import { adminUrl, createDatabase, dropDatabase, withClient } from '../helpers/pg.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { startSshd, type SshServer } from '../helpers/sshd.js';
import { startSilentServer, startStalledBodyServer, startStallProxy, startTcpStallProxy, type Peer } from '../helpers/stall.js';

const TIMEOUT = '3';
const CEILING = 90_000;

let db: { name: string; url: string };
let s3: S3Server;
let silent: Peer;
let stalledBody: Peer;
const timings: Array<[string, number]> = [];

beforeAll(async () => {
  [s3, silent, stalledBody] = await Promise.all([startS3(), startSilentServer(), startStalledBodyServer()]);
  // About 3 MB uncompressed: uploads of many chunks.
  db = await createDatabase('nt_db', async (c) => {
    await c.query(`CREATE EXTENSION vector; CREATE TABLE items (id bigserial PRIMARY KEY, e vector(64))`);
    await c.query(`INSERT INTO items (e) SELECT (SELECT array_agg(random()::real) FROM generate_series(1, 64) WHERE g > 0)::vector FROM generate_series(1, 5000) g`);
  });
});
afterAll(async () => {
  console.log(`time to failure with network-timeout ${TIMEOUT} s:\n${timings.map(([what, s]) => `  ${s.toFixed(1)} s  ${what}`).join('\n')}`);
  await Promise.all([s3?.stop(), silent?.stop(), stalledBody?.stop()]);
  if (db) await dropDatabase(db.name);
});

async function timed<T>(label: string, p: Promise<T>): Promise<T> {
  const start = Date.now();
  const r = await p;
  timings.push([label, (Date.now() - start) / 1000]);
  return r;
}

const tmp = (tag: string): string => mkdtempSync(path.join(os.tmpdir(), `pgvb-nt-${tag}-`));

function run(inputs: Record<string, string>, env: Record<string, string> = {}): Promise<RunResult> {
  return runAction({ 'database-url': db.url, 'network-timeout': TIMEOUT, ...inputs }, { env });
}

/** The run failed because a destination timed out, and says which and what to change. */
function expectTimedOut(r: RunResult, destination: string): void {
  expect(r.code, r.stdout + r.stderr).toBe(1);
  expect(r.visible).toContain(destination);
  expect(r.visible).toMatch(/no (byte moved|connection|SSH handshake|reply)|accepted no SSH handshake|stopped answering/);
  expect(r.visible).toContain('raise network-timeout (now 3 s)');
  expect(r.visible).toContain('docs/TROUBLESHOOTING.md#storage-timeout');
}

describe('s3://', () => {
  const s3Inputs = (endpoint: string): Record<string, string> => ({ 's3-endpoint': endpoint, 's3-force-path-style': 'true' });

  async function keys(prefix: string): Promise<string[]> {
    const client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    const r = await client.send(new ListObjectsV2Command({ Bucket: 'backups', Prefix: prefix }));
    client.destroy();
    return (r.Contents ?? []).map((o) => o.Key!).sort();
  }

  test(
    'an endpoint that accepts the connection and never answers: the backup fails naming the destination, the local copy is kept',
    async () => {
      const dir = tmp('s3a');
      // The source database is not held while the upload hangs: sample its sessions during the run.
      const samples: Array<{ at: number; sessions: number }> = [];
      let running = true;
      const started = Date.now();
      const sampling = withClient(adminUrl(), async (c) => {
        while (running) {
          const q = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [db.name]);
          samples.push({ at: Date.now() - started, sessions: Number(q.rows[0]!.n) });
          await new Promise((res) => setTimeout(res, 100));
        }
      });
      const r = await timed('s3 backup, endpoint never answers (3 SDK attempts for the upload)', run({ destination: 's3://backups/silent', 'backup-dir': dir, verify: 'none', ...s3Inputs(silent.url) }, s3.env));
      running = false;
      await sampling;
      expectTimedOut(r, 's3://backups/silent');
      // The upload's stall takes at least three attempts of 3 s; the dump is done within the first seconds. In the
      // stall's second half no session of the source database may be open.
      const total = Date.now() - started;
      const late = samples.filter((x) => x.at > total / 2);
      expect(late.length).toBeGreaterThan(3);
      expect(late.filter((x) => x.sessions > 0), JSON.stringify(samples)).toEqual([]);
      expect(r.visible).toMatch(/S3 destination s3:\/\/backups\/silent: no byte moved for 3 s while uploading s3:\/\/backups\/silent\/nt_db_\w+\.dump\.zst/);
      expect(silent.connections()).toBeGreaterThan(0);
      // As for any failed upload: the verified local copy stays in backup-dir.
      const files = readdirSync(dir);
      expect(files.filter((f) => f.endsWith('.json'))).toHaveLength(1);
      expect(r.visible).toMatch(/the local copy in .* is kept/);
    },
    CEILING,
  );

  test(
    'the archive upload stalls behind a working S3: no manifest is stored',
    async () => {
      const proxy = await startStallProxy(s3.endpoint, (method, url) => (method === 'PUT' && url.startsWith('/backups/stalled/') && !url.includes('.json') ? 'silent' : 'pass'));
      try {
        const r = await timed('s3 backup, archive PUT never answered (3 SDK attempts)', run({ destination: 's3://backups/stalled', 'backup-dir': tmp('s3b'), verify: 'none', compression: 'none', ...s3Inputs(proxy.url) }, s3.env));
        expectTimedOut(r, 's3://backups/stalled');
        expect(proxy.stalled.length).toBeGreaterThan(0);
        expect((await keys('stalled/')).filter((k) => k.endsWith('.json'))).toEqual([]);
      } finally {
        await proxy.stop();
      }
    },
    CEILING,
  );

  describe('a download whose body stalls after the headers', () => {
    let proxy: Awaited<ReturnType<typeof startStallProxy>>;
    beforeAll(async () => {
      const seeded = await run({ destination: 's3://backups/dl', 'backup-dir': tmp('s3seed'), verify: 'quick', ...s3Inputs(s3.endpoint) }, s3.env);
      expect(seeded.code, seeded.stdout).toBe(0);
      // Listing and the manifest pass; the archive's GET sends headers and 1 KiB, then nothing.
      proxy = await startStallProxy(s3.endpoint, (method, url) => (method === 'GET' && url.startsWith('/backups/dl/') && !url.includes('.json') ? 'stall-body' : 'pass'));
    }, CEILING);
    afterAll(async () => {
      await proxy?.stop();
    });

    test.each(['verify', 'test-restore'])(
      'mode %s fails naming the destination; no partial download is left',
      async (mode) => {
        const dir = tmp('s3dl');
        const r = await timed(`s3 ${mode}, archive download stalls after headers`, run({ mode, destination: 's3://backups/dl', 'backup-dir': dir, ...s3Inputs(proxy.url) }, s3.env));
        expect(r.code, r.stdout + r.stderr).not.toBe(0);
        expect(r.visible).toContain('s3://backups/dl');
        expect(r.visible).toMatch(/no byte moved for 3 s while downloading s3:\/\/backups\/dl\//);
        expect(r.visible).toContain('network-timeout');
        expect(proxy.stalled.some((s) => s.startsWith('GET /backups/dl/'))).toBe(true);
        expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
      },
      CEILING,
    );
  });
});

describe('Pushgateway', () => {
  test.each([
    ['never answers', () => silent.url],
    ['answers the headers, then stalls', () => stalledBody.url],
  ])(
    'a Pushgateway that %s: the backup succeeds with a warning',
    async (_what, url) => {
      const r = await timed(`pushgateway ${_what} (backup succeeds)`, run({ destination: 'local', 'backup-dir': tmp('pg'), verify: 'none', 'pushgateway-url': url() }));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.visible).toMatch(/::warning::Pushing metrics to the Pushgateway failed \(the backup's result is unchanged\): .*timed out/);
    },
    CEILING,
  );
});

describe('sftp://', () => {
  let sshd: SshServer;
  let root: string;
  beforeAll(async () => {
    sshd = await startSshd();
    root = tmp('sftp-remote');
  }, CEILING);
  afterAll(async () => {
    await sshd?.stop();
  });

  const sftpRun = (destination: string, port: number, inputs: Record<string, string> = {}) =>
    run({ destination, 'backup-dir': tmp('sftp'), verify: 'none', 'ssh-private-key': sshd.client.private, 'known-hosts': sshd.knownHosts(port), ...inputs });

  test(
    'a server that accepts the connection and never answers: the backup fails naming the destination',
    async () => {
      const destination = `sftp://root@127.0.0.1:${silent.port}/backups`;
      const r = await timed('sftp backup, server never answers (handshake; the upload, then the metrics count listing)', sftpRun(destination, silent.port));
      expectTimedOut(r, destination);
      expect(r.visible).toMatch(/accepted no SSH handshake within 3 s/);
    },
    CEILING,
  );

  test(
    'the connection goes dark half way through the upload: the backup fails naming the destination, no manifest there',
    async () => {
      const proxy = await startTcpStallProxy(sshd.port, 400_000);
      const dir = path.join(root, 'dark');
      mkdirSync(dir, { recursive: true });
      try {
        const destination = sshd.url(dir, proxy.port);
        const r = await timed('sftp backup, connection goes dark mid-upload', sftpRun(destination, proxy.port, { compression: 'none' }));
        expectTimedOut(r, destination);
        expect(proxy.stalls()).toBeGreaterThan(0);
        // What arrived stays under .partial (retention removes it later); no manifest, so no backup is listed.
        expect(readdirSync(dir).filter((f) => f.endsWith('.json'))).toEqual([]);
      } finally {
        await proxy.stop();
      }
    },
    CEILING,
  );

  test(
    'a server that logs in and answers keepalives but never answers a file request: the backup fails naming the destination',
    async () => {
      // ssh2's own server: any key logs in, the sftp subsystem opens, and then no request gets an answer.
      const hostKey = ssh2.utils.generateKeyPairSync('ed25519');
      const requests: string[] = [];
      const server = new ssh2.Server({ hostKeys: [hostKey.private] }, (client) => {
        client.on('error', () => undefined);
        client.on('authentication', (ctx) => ctx.accept());
        client.on('session', (accept) => {
          accept().on('sftp', (acceptSftp) => {
            const sftp = acceptSftp();
            for (const op of ['OPEN', 'STAT', 'LSTAT', 'MKDIR', 'OPENDIR', 'REALPATH']) sftp.on(op, () => requests.push(op));
          });
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      try {
        const destination = `sftp://root@127.0.0.1:${port}/backups`;
        const r = await timed('sftp backup, server alive but file requests unanswered (the upload, then the metrics count listing)', run({ destination, 'backup-dir': tmp('sftp'), verify: 'none', 'ssh-private-key': sshd.client.private, 'known-hosts': `[127.0.0.1]:${port} ${hostKey.public}` }));
        expectTimedOut(r, destination);
        expect(r.visible).toMatch(/no byte moved for 3 s while uploading nt_db_\w+: no SFTP answer and no transfer progress/);
        expect(requests.length).toBeGreaterThan(0);
      } finally {
        server.close();
      }
    },
    CEILING,
  );
});

describe('artifact and cache (the real clients in this process, network-timeout 3 s)', () => {
  let gh: GitHubServices;
  let backup: LocalBackup;
  /** In front of the stand-in: when `blobs` is set, its answers send the clients' blob traffic there, not to Azurite. */
  let front: Awaited<ReturnType<typeof startStallProxy>>;
  let blobs: Peer | undefined;
  const savedEnv = { ...process.env };
  const savedCwd = process.cwd();
  const lines: string[] = [];
  const logger: Logger = {
    info: (m) => lines.push(`info ${m}`),
    warning: (m) => lines.push(`warning ${m}`),
    error: (m) => lines.push(`error ${m}`),
    debug: (m) => lines.push(`debug ${m}`),
    group: (_n, fn) => fn(),
  };

  beforeAll(async () => {
    gh = await startGitHubServices();
    const azurite = new URL(gh.blobUrl).origin;
    front = await startStallProxy(gh.url, () => 'pass', (text) => (blobs ? text.split(azurite).join(blobs.url) : text));
    const dir = tmp('gh');
    const r = await run({ destination: 'local', 'backup-dir': dir, verify: 'none' });
    expect(r.code, r.stdout).toBe(0);
    const manifestPath = path.join(dir, readdirSync(dir).find((f) => f.endsWith('.json'))!);
    const manifest = await readManifest(manifestPath);
    backup = { name: manifest.name, manifestPath, archivePath: path.join(dir, manifest.archive.file), manifest, createdAt: new Date(manifest.createdAt), good: true };
  }, CEILING);
  afterAll(async () => {
    process.env = savedEnv;
    process.chdir(savedCwd);
    await front?.stop();
    await gh?.stop();
  });

  /**
   * The clients read the runner's environment from process.env (@actions/github its API URL once, when first
   * loaded): a new run of the stand-in, reached through `front`, in its workspace, as the runner starts a step.
   */
  function useRun(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: Record<string, string> = { ...gh.newRun(), ACTIONS_RESULTS_URL: `${front.url}/`, GITHUB_API_URL: `${front.url}/api`, ...extra };
    process.env = { ...savedEnv, ...env };
    process.chdir(env.GITHUB_WORKSPACE!);
    return process.env;
  }

  async function artifactStorage(env: NodeJS.ProcessEnv) {
    const { ArtifactStorage } = await import('../../src/storage/artifact.js');
    return new ArtifactStorage({ env, token: env.GITHUB_TOKEN!, networkTimeoutMs: Number(TIMEOUT) * 1000 }, logger);
  }
  async function cacheStorage(env: NodeJS.ProcessEnv) {
    const { CacheStorage } = await import('../../src/storage/cache.js');
    return new CacheStorage(env, logger, Number(TIMEOUT) * 1000);
  }

  /** Runs a storage call that must time out, with blob traffic sent to `peer`; returns the error. */
  async function timesOut(label: string, peer: Peer | undefined, call: () => Promise<unknown>): Promise<BackupError> {
    blobs = peer;
    try {
      const err = await timed(label, call().then(() => undefined, (e: unknown) => e));
      expect(err).toBeInstanceOf(BackupError);
      expect((err as BackupError).code, errorLine(err)).toBe('storage-timeout');
      expect(errorLine(err)).toContain('raise network-timeout (now 3 s)');
      return err as BackupError;
    } finally {
      blobs = undefined;
    }
  }

  test(
    'artifact: the results service never answers: the upload fails naming the destination',
    async () => {
      const env = useRun({ ACTIONS_RESULTS_URL: `${silent.url}/` });
      const storage = await artifactStorage(env);
      const err = await timesOut('artifact put, results service never answers', undefined, () => storage.put(backup));
      expect(err.message).toMatch(/^Destination artifact: no byte moved for 3 s while uploading the artifact nt_db_\w+; the call was abandoned$/);
      expect(lines.some((l) => /^info Abandoned uploading the artifact .* its connections were closed/.test(l))).toBe(true);
    },
    CEILING,
  );

  test(
    'artifact: the blob upload stalls: no manifest artifact is created',
    async () => {
      const finalized = gh.calls('FinalizeArtifact');
      const storage = await artifactStorage(useRun());
      await timesOut('artifact put, blob upload never answered', silent, () => storage.put(backup));
      expect(gh.calls('FinalizeArtifact')).toBe(finalized);
      expect(gh.artifacts().filter((a) => a.name.startsWith(backup.name))).toEqual([]);
    },
    CEILING,
  );

  test(
    'artifact: the download of a stored backup stalls after its headers',
    async () => {
      // Stored and listed for real, then fetched through a redirect that leads to a stalling blob.
      const storage = await artifactStorage(useRun());
      await storage.put(backup);
      const stored = (await storage.list(backup.manifest.database)).find((b) => b.name === backup.name);
      expect(stored).toBeDefined();
      const err = await timesOut('artifact get, blob download stalls after headers', stalledBody, () => storage.get(stored!, tmp('ghget')));
      expect(err.message).toMatch(/while downloading the artifact nt_db_/);
    },
    CEILING,
  );

  test(
    'cache: the blob upload stalls: the save fails naming the destination, no entry is created',
    async () => {
      const before = gh.caches().length;
      const storage = await cacheStorage(useRun());
      const err = await timesOut('cache put, blob upload never answered', silent, () => storage.put(backup));
      expect(err.message).toMatch(/^Destination cache: no byte moved for 3 s while saving the cache pgvector-backup-nt_db_/);
      expect(gh.caches().length).toBe(before);
    },
    CEILING,
  );

  test(
    'cache: the lookup download stalls after its headers',
    async () => {
      const storage = await cacheStorage(useRun());
      await storage.put(backup);
      expect(gh.caches().length).toBeGreaterThan(0);
      const err = await timesOut('cache list, download stalls after headers', stalledBody, () => storage.list(backup.manifest.database));
      expect(err.message).toMatch(/while looking up the cache pgvector-backup-nt_db_/);
    },
    CEILING,
  );

  test(
    'every abandoned call ends within a minute, and says so (nothing runs on unseen)',
    async () => {
      const abandoned = () => lines.filter((l) => l.startsWith('info Abandoned ')).length;
      const ended = () => lines.filter((l) => l.startsWith('debug The abandoned ')).length;
      expect(abandoned()).toBe(5);
      const start = Date.now();
      while (ended() < abandoned() && Date.now() - start < 60_000) await new Promise((r) => setTimeout(r, 200));
      timings.push(['artifact/cache: last abandoned client call ended, after the last failure', (Date.now() - start) / 1000]);
      console.log(lines.filter((l) => l.startsWith('debug The abandoned ')).join('\n'));
      expect(ended()).toBe(abandoned());
    },
    CEILING,
  );
});
