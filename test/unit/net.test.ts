// src/net.ts against real sockets on 127.0.0.1 with a short network-timeout: a call whose peer never answers is
// abandoned (and its connection closed, so nothing is left running), a slow transfer that keeps moving is not,
// local work without a request in flight gets its allowance, and a request the abandoned call starts later is cut
// at once.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BackupError, errorLine } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { bounded, IdleTimer, type Bound } from '../../src/net.js';
import { startSilentServer, type Peer } from '../helpers/stall.js';

const T = 400;
let silent: Peer;
let trickle: http.Server;
let trickleUrl: string;

beforeAll(async () => {
  silent = await startSilentServer();
  // One byte every T/2, ten times: slow, never idle for T.
  trickle = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': '10' });
    let n = 0;
    const t = setInterval(() => {
      res.write('x');
      if (++n === 10) {
        clearInterval(t);
        res.end();
      }
    }, T / 2);
  });
  await new Promise<void>((resolve) => trickle.listen(0, '127.0.0.1', resolve));
  trickleUrl = `http://127.0.0.1:${(trickle.address() as { port: number }).port}/`;
});
afterAll(async () => {
  await silent.stop();
  trickle.closeAllConnections();
  await new Promise((r) => trickle.close(r));
});

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

function bound(lines: string[] = [], extra: Partial<Bound> = {}): Bound {
  const logger: Logger = { info: (m) => lines.push(m), warning: (m) => lines.push(m), error: (m) => lines.push(m), debug: (m) => lines.push(m), group: (_n, fn) => fn() };
  return { timeoutMs: T, destination: 'artifact', what: 'uploading the artifact x', check: 'Check the service', logger, ...extra };
}

describe('bounded', () => {
  test('a peer that never answers: storage-timeout naming the destination; the request is cut and its end logged', async () => {
    const lines: string[] = [];
    let inner: Promise<string> | undefined;
    const start = Date.now();
    const err = await bounded(bound(lines), () => (inner = get(silent.url))).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(Date.now() - start).toBeLessThan(T * 5);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as BackupError).code).toBe('storage-timeout');
    expect(errorLine(err)).toBe(
      'Destination artifact: no byte moved for 0.4 s while uploading the artifact x; the call was abandoned. Check the service; if the service is slow but working, raise network-timeout (now 0.4 s) (see docs/TROUBLESHOOTING.md#storage-timeout)',
    );
    // The library's own promise fails soon (its request was destroyed), and that is logged, not left unseen.
    await expect(inner).rejects.toThrow(/pgvector-backup gave up on this request/);
    await new Promise((r) => setImmediate(r));
    expect(lines[0]).toMatch(/^Abandoned uploading the artifact x \(artifact\) after 0\.\d+ s without progress: its connections were closed$/);
    expect(lines[1]).toMatch(/^The abandoned uploading the artifact x ended .* later: pgvector-backup gave up on this request/);
  });

  test('a transfer that keeps moving is not cut, however long it takes', async () => {
    const start = Date.now();
    expect(await bounded(bound(), () => get(trickleUrl))).toBe('xxxxxxxxxx');
    expect(Date.now() - start).toBeGreaterThan(T * 4);
  });

  test('local work with no request in flight gets network-timeout plus the size at 1 MiB/s', async () => {
    // 1 MiB: one second more than network-timeout before quiet local work counts as stuck.
    const r = await bounded(bound([], { size: 1024 * 1024 }), async () => {
      await new Promise((resolve) => setTimeout(resolve, T * 2));
      return get(trickleUrl);
    });
    expect(r).toBe('xxxxxxxxxx');
    const err = await bounded(bound([], { size: 0 }), () => new Promise((resolve) => setTimeout(resolve, T * 4))).catch((e: unknown) => e);
    expect((err as BackupError).code).toBe('storage-timeout');
  });

  test('a request the abandoned call starts afterwards (a retry) is cut at once', async () => {
    let retry: Promise<string> | undefined;
    let release!: () => void;
    const later = new Promise<void>((r) => (release = r));
    const err = await bounded(bound(), async () => {
      const first = get(silent.url).catch(() => undefined);
      await first;
      await later;
      retry = get(trickleUrl);
      return retry;
    }).catch((e: unknown) => e);
    expect((err as BackupError).code).toBe('storage-timeout');
    release();
    await new Promise((r) => setTimeout(r, 10));
    await expect(retry).rejects.toThrow(/pgvector-backup gave up on this request/);
  });

  test('a call that ends in time is untouched, and its error is its own', async () => {
    expect(await bounded(bound(), async () => 42)).toBe(42);
    await expect(bounded(bound(), async () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
  });
});

describe('IdleTimer', () => {
  test('expires after ms without touch; touching keeps it alive', async () => {
    const timer = new IdleTimer(T, () => new Error('idle'));
    let expired = false;
    timer.expired.catch(() => (expired = true));
    const keep = setInterval(() => timer.touch(), T / 4);
    await new Promise((r) => setTimeout(r, T * 3));
    expect(expired).toBe(false);
    clearInterval(keep);
    await expect(timer.expired).rejects.toThrow('idle');
    timer.stop();
  });

  test('allow(bytes) gives known slow work (a server flushing a file) its time at 1 MiB/s', async () => {
    const timer = new IdleTimer(T, () => new Error('idle'));
    let expired = false;
    timer.expired.catch(() => (expired = true));
    timer.allow(1024 * 1024);
    await new Promise((r) => setTimeout(r, T * 2));
    expect(expired).toBe(false);
    await expect(timer.expired).rejects.toThrow('idle');
    timer.stop();
  });
});
