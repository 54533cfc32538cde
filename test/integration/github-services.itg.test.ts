// The local GitHub services stand-in (test/helpers/github-services.ts) against the real, unmodified clients:
// @actions/artifact (upload, list, get, download, delete; in-run through Twirp, cross-run with findBy through REST)
// and @actions/cache (save, restore with restore keys, miss), in a child process as an action runs them,
// with Azurite as the blob store. Failures are injected with 4xx so the clients' 5xx retry waits stay out.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OWNER, REPO, startGitHubServices, type GitHubServices } from '../helpers/github-services.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

let gh: GitHubServices;
let work: string;

beforeAll(async () => {
  gh = await startGitHubServices();
  work = mkdtempSync(path.join(os.tmpdir(), 'gh-services-test-'));
  await startWorker(gh.env);
});
afterAll(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.kill('SIGTERM');
    await exited;
  }
  await gh?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface ClientResult<T> {
  ok: boolean;
  result: T;
  error: string;
  /** What the client printed (::warning:: lines and such) while this call ran. */
  stdout: string;
}

// The real clients run in one child process (spawned with the services' env, so @actions/github's module-level
// GITHUB_API_URL is ours), which swaps process.env for each call, as the clients read it at call time. One process
// for the file instead of one per call: loading the two clients costs about a second.
const WORKER = `
import { DefaultArtifactClient } from '@actions/artifact';
import * as cache from '@actions/cache';
const AsyncFunction = (async () => {}).constructor;
const base = { ...process.env };
let queue = Promise.resolve();
process.on('message', (msg) => {
  queue = queue.then(async () => {
    for (const k of Object.keys(process.env)) delete process.env[k];
    Object.assign(process.env, base, msg.env);
    let reply;
    try {
      const result = await new AsyncFunction('artifact', 'cache', 'input', msg.body)(new DefaultArtifactClient(), cache, msg.input);
      reply = { id: msg.id, ok: true, result: result ?? null };
    } catch (e) {
      reply = { id: msg.id, ok: false, error: String(e && e.message ? e.message : e) };
    }
    process.stdout.write('', () => process.send(reply));
  });
});
process.send({ ready: true });
`;

let worker: ChildProcess;
let workerOut = '';
const pending = new Map<number, (r: Omit<ClientResult<unknown>, 'stdout'>) => void>();
let nextId = 1;

async function startWorker(env: Record<string, string>): Promise<void> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(GITHUB_|ACTIONS_|RUNNER_|INPUT_)/.test(k)));
  worker = spawn(process.execPath, ['--input-type=module', '-e', WORKER], { cwd: ROOT, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  worker.stdout!.on('data', (d: Buffer) => (workerOut += d.toString()));
  worker.stderr!.on('data', (d: Buffer) => (workerOut += d.toString()));
  await new Promise<void>((resolve, reject) => {
    worker.once('exit', (code) => {
      const error = `the client worker exited (${code}):\n${workerOut}`;
      for (const settle of pending.values()) settle({ ok: false, result: null, error });
      pending.clear();
      reject(new Error(error));
    });
    worker.on('message', (m: { ready?: boolean; id?: number }) => {
      if (m.ready) return resolve();
      pending.get(m.id!)?.(m as Omit<ClientResult<unknown>, 'stdout'>);
      pending.delete(m.id!);
    });
  });
}

/**
 * Runs `body` (the inside of an async function with `artifact` (a DefaultArtifactClient), `cache` (@actions/cache)
 * and `input` in scope) in the client process with `env` (a run's env) as its whole GitHub environment.
 */
function client<T = unknown>(env: Record<string, string>, body: string, input: unknown = null): Promise<ClientResult<T>> {
  const id = nextId++;
  return new Promise((resolve) => {
    const mark = workerOut.length;
    pending.set(id, (r) => resolve({ ...(r as Omit<ClientResult<T>, 'stdout'>), stdout: workerOut.slice(mark) }));
    worker.send({ id, env, body, input });
  });
}

function ok<T>(r: ClientResult<T>): T {
  if (!r.ok) throw new Error(`client failed: ${r.error}\n${r.stdout}`);
  return r.result;
}

/** Relative path -> contents of every file under dir. */
function tree(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = readFileSync(p);
    }
  };
  walk(dir);
  return out;
}

function fileSet(dir: string): string[] {
  mkdirSync(path.join(dir, 'sub'), { recursive: true });
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ database: 'app', created: '2026-01-01T00:00:00Z' }));
  writeFileSync(path.join(dir, 'sub', 'db.dump'), randomBytes(300_000));
  writeFileSync(path.join(dir, 'empty.txt'), '');
  return ['manifest.json', path.join('sub', 'db.dump'), 'empty.txt'].map((f) => path.join(dir, f));
}

const runIdOf = (env: Record<string, string>): number => Number(env.GITHUB_RUN_ID);
const findBy = (runEnv: Record<string, string>, token = gh.env.GITHUB_TOKEN!) => ({
  token,
  repositoryOwner: OWNER,
  repositoryName: REPO,
  workflowRunId: runIdOf(runEnv),
});

describe('artifacts', () => {
  const name = 'pgvector-backup-db-20260101_000000';
  let src: string;
  let uploaded: { id: number; size: number; digest: string };

  test('upload with retentionDays, list (latest) and download in the same run: byte-identical', async () => {
    src = path.join(work, 'upload');
    const files = fileSet(src);
    const dest = path.join(work, 'download-same-run');
    const r = ok(
      await client<{ up: typeof uploaded; list: { artifacts: Array<{ id: number; name: string; size: number; createdAt: string; digest: string }> }; get: { artifact: { id: number } }; dl: { downloadPath: string; digestMismatch: boolean } }>(
        gh.env,
        `const up = await artifact.uploadArtifact(input.name, input.files, input.root, { retentionDays: 3 });
         const list = await artifact.listArtifacts({ latest: true });
         const get = await artifact.getArtifact(input.name);
         const dl = await artifact.downloadArtifact(up.id, { path: input.dest, expectedHash: 'sha256:' + up.digest });
         return { up, list, get, dl };`,
        { name, files, root: src, dest },
      ),
    );
    uploaded = r.up;
    expect(uploaded.id).toBeGreaterThan(0);
    expect(uploaded.size).toBeGreaterThan(300_000); // zip of incompressible bytes
    expect(uploaded.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(r.list.artifacts).toEqual([expect.objectContaining({ id: uploaded.id, name, size: uploaded.size, digest: `sha256:${uploaded.digest}` })]);
    expect(r.get.artifact.id).toBe(uploaded.id);
    expect(r.dl.digestMismatch).toBe(false);
    expect(tree(dest)).toEqual(tree(src));

    const stored = gh.artifacts();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: uploaded.id, name, runId: runIdOf(gh.env), size: uploaded.size, deleted: false });
    const days = (stored[0]!.expiresAt!.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(2.9);
    expect(days).toBeLessThan(3.1);
    expect(gh.calls('CreateArtifact')).toBe(1);
    expect(gh.calls('FinalizeArtifact')).toBe(1);
    expect(gh.calls('GetSignedArtifactURL')).toBe(1);
  });

  test('the same name again in the same run is refused (409, as on GitHub); another run does not see it without findBy', async () => {
    const again = await client(gh.env, `return artifact.uploadArtifact(input.name, input.files, input.root);`, {
      name,
      files: [path.join(src, 'manifest.json')],
      root: src,
    });
    expect(again.ok).toBe(false);
    expect(again.error).toMatch(/409.*already exists/);
    const other = ok(await client<{ artifacts: unknown[] }>(gh.newRun(), `return artifact.listArtifacts();`));
    expect(other.artifacts).toEqual([]);
    expect(gh.artifacts()).toHaveLength(1);
  });

  test('from a second run with findBy: list, get, download (302 to a signed blob URL), delete', async () => {
    const runB = gh.newRun();
    const dest = path.join(work, 'download-run-b');
    const before = gh.calls('ListArtifactsREST');
    const r = ok(
      await client<{ list: { artifacts: Array<{ id: number; name: string; size: number; createdAt: string }> }; get: { artifact: { id: number; name: string } }; dl: { digestMismatch: boolean }; del: { id: number }; after: { artifacts: unknown[] } }>(
        runB,
        `const list = await artifact.listArtifacts({ latest: true, findBy: input.findBy });
         const get = await artifact.getArtifact(input.name, { findBy: input.findBy });
         const dl = await artifact.downloadArtifact(get.artifact.id, { path: input.dest, findBy: input.findBy, expectedHash: input.hash });
         const del = await artifact.deleteArtifact(input.name, { findBy: input.findBy });
         const after = await artifact.listArtifacts({ findBy: input.findBy });
         return { list, get, dl, del, after };`,
        { name, dest, findBy: findBy(gh.env), hash: `sha256:${uploaded.digest}` },
      ),
    );
    expect(r.list.artifacts).toEqual([expect.objectContaining({ id: uploaded.id, name, size: uploaded.size })]);
    expect(Math.abs(new Date(r.list.artifacts[0]!.createdAt).getTime() - Date.now())).toBeLessThan(60_000);
    expect(r.get.artifact).toMatchObject({ id: uploaded.id, name });
    expect(r.dl.digestMismatch).toBe(false);
    expect(tree(dest)).toEqual(tree(src));
    expect(r.del.id).toBe(uploaded.id);
    expect(r.after.artifacts).toEqual([]);
    expect(gh.artifacts()[0]).toMatchObject({ id: uploaded.id, deleted: true });
    // list, get, delete's own lookup, list again
    expect(gh.calls('ListArtifactsREST') - before).toBe(4);
    expect(gh.calls('DownloadArtifactREST')).toBe(1);
    expect(gh.calls('DeleteArtifactREST')).toBe(1);
    // Gone for REST too.
    const res = await fetch(`${gh.env.GITHUB_API_URL}/repos/${OWNER}/${REPO}/actions/artifacts/${uploaded.id}`, { headers: { authorization: `token ${gh.env.GITHUB_TOKEN}` } });
    expect(res.status).toBe(404);
  });

  test('findBy with a wrong token is refused (401), after 5 immediate retries (a quirk of the client)', async () => {
    const before = gh.calls('ListArtifactsREST');
    const r = await client(gh.newRun(), `return artifact.listArtifacts({ findBy: input.findBy });`, { findBy: findBy(gh.env, 'ghp_wrong') });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/Bad credentials/);
    // request.retries = 5 makes Bottleneck retry every failure, doNotRetry statuses included, with no delay.
    expect(gh.calls('ListArtifactsREST') - before).toBe(6);
  });

  test('REST lists page with per_page/page; the client walks every page, retries a 5xx page and fails on a 4xx page', async () => {
    const runC = gh.newRun();
    const seeded = await Promise.all(Array.from({ length: 101 }, (_, i) => gh.addArtifact({ runId: runIdOf(runC), name: `backup-${String(i).padStart(3, '0')}`, content: `#${i}` })));
    expect(seeded).toHaveLength(101);

    const auth = { authorization: `token ${gh.env.GITHUB_TOKEN}` };
    const pageUrl = `${gh.env.GITHUB_API_URL}/repos/${OWNER}/${REPO}/actions/runs/${runIdOf(runC)}/artifacts`;
    const p4 = (await (await fetch(`${pageUrl}?per_page=30&page=4`, { headers: auth })).json()) as { total_count: number; artifacts: Array<{ id: number; name: string }> };
    expect(p4.total_count).toBe(101);
    expect(p4.artifacts).toHaveLength(11);
    const one = (await (await fetch(`${pageUrl}?name=backup-007`, { headers: auth })).json()) as { total_count: number; artifacts: Array<{ name: string }> };
    expect(one).toMatchObject({ total_count: 1, artifacts: [{ name: 'backup-007' }] });

    const runD = gh.newRun();
    const list = `const r = await artifact.listArtifacts({ findBy: input.findBy }); return r.artifacts.map((a) => a.name).sort();`;
    const input = { findBy: findBy(runC) };

    let before = gh.calls('ListArtifactsREST');
    const all = ok(await client<string[]>(runD, list, input));
    expect(all).toEqual(seeded.map((a) => a.name).sort());
    expect(gh.calls('ListArtifactsREST') - before).toBe(2);

    // A 500 on page 2: Octokit's retry plugin retries it (after ~1 s) and the list is complete.
    gh.failNext('ListArtifactsREST', 500, 1, 1);
    before = gh.calls('ListArtifactsREST');
    expect(ok(await client<string[]>(runD, list, input))).toHaveLength(101);
    expect(gh.calls('ListArtifactsREST') - before).toBe(3);

    // A 4xx on page 2 is retried 5 times at once (see the 401 test); 6 of them fail the list.
    gh.failNext('ListArtifactsREST', 403, 6, 1);
    before = gh.calls('ListArtifactsREST');
    const failed = await client(runD, list, input);
    expect(failed.ok).toBe(false);
    expect(failed.error).toMatch(/injected failure of ListArtifactsREST/);
    expect(gh.calls('ListArtifactsREST') - before).toBe(7);
  });

  test('failNext: CreateArtifact 400 makes uploadArtifact reject without retries; the next upload works', async () => {
    const runE = gh.newRun();
    const input = { name: 'faulty', files: [path.join(src, 'manifest.json')], root: src };
    const upload = `return artifact.uploadArtifact(input.name, input.files, input.root);`;
    const count = gh.artifacts().length;
    gh.failNext('CreateArtifact', 400);
    const before = gh.calls('CreateArtifact');
    const failed = await client(runE, upload, input);
    expect(failed.ok).toBe(false);
    expect(failed.error).toMatch(/CreateArtifact.*400/);
    expect(gh.calls('CreateArtifact') - before).toBe(1);
    expect(gh.artifacts()).toHaveLength(count);

    const second = ok(await client<{ id: number }>(runE, upload, input));
    expect(gh.artifacts().at(-1)).toMatchObject({ id: second.id, name: 'faulty', runId: runIdOf(runE) });
  });
});

describe('cache', () => {
  const key = 'pgvector-backup-db-20260101_000000';

  test('saveCache, then restoreCache from another run by restore-key prefix; a miss is undefined', async () => {
    const dir = path.join(work, 'cache-dir');
    fileSet(dir);
    const original = tree(dir);

    const id = ok(await client<number>(gh.env, `return cache.saveCache([input.dir], input.key);`, { dir, key }));
    expect(id).toBeGreaterThan(0);
    expect(gh.caches()).toEqual([expect.objectContaining({ id, key, size: expect.any(Number) })]);
    expect(gh.caches()[0]!.size).toBeGreaterThan(300_000);

    rmSync(dir, { recursive: true });
    const runB = gh.newRun();
    const restored = ok(
      await client<string | null>(runB, `return cache.restoreCache([input.dir], 'pgvector-backup-db-20990101_000000', ['pgvector-backup-db-']);`, { dir }),
    );
    expect(restored).toBe(key);
    expect(tree(dir)).toEqual(original);
    expect(statSync(path.join(dir, 'sub', 'db.dump')).size).toBe(300_000);

    const misses = ok(
      await client<{ miss: string | null; otherVersion: string | null }>(
        runB,
        `return {
           miss: await cache.restoreCache([input.dir], 'other-key', ['other-']) ?? null,
           // Same key, another path list: another version, so no hit either.
           otherVersion: await cache.restoreCache([input.dir + '/sub'], input.key) ?? null,
         };`,
        { dir, key },
      ),
    );
    expect(misses).toEqual({ miss: null, otherVersion: null });
  });

  test('saving an existing key returns -1 (409); failNext on the cache methods', async () => {
    const dir = path.join(work, 'cache-dir-2');
    fileSet(dir);
    const again = ok(await client<number>(gh.env, `return cache.saveCache([input.dir], input.key);`, { dir: path.join(work, 'cache-dir'), key }));
    expect(again).toBe(-1);

    gh.failNext('CreateCacheEntry', 400);
    gh.failNext('FinalizeCacheEntryUpload', 404);
    const before = { create: gh.calls('CreateCacheEntry'), finalize: gh.calls('FinalizeCacheEntryUpload') };
    const saves = ok(
      await client<number[]>(gh.env, `return [await cache.saveCache([input.dir], 'k-400'), await cache.saveCache([input.dir], 'k-404')];`, { dir }),
    );
    expect(saves).toEqual([-1, -1]);
    expect(gh.calls('CreateCacheEntry') - before.create).toBe(2);
    expect(gh.calls('FinalizeCacheEntryUpload') - before.finalize).toBe(1);
    expect(gh.caches().map((c) => c.key)).toEqual([key]);

    gh.failNext('GetCacheEntryDownloadURL', 403);
    const restores = ok(
      await client<Array<string | null>>(
        gh.env,
        `return [await cache.restoreCache([input.dir], input.key) ?? null, await cache.restoreCache([input.dir], input.key) ?? null];`,
        { dir: path.join(work, 'cache-dir'), key },
      ),
    );
    expect(restores).toEqual([null, key]);
  });
});
