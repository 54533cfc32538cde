// Bounds on remote calls whose client library has no usable timeout of its own (@actions/artifact, @actions/cache
// and the Azure and Octokit clients under them): a run must fail with a message, never wait for GitHub's 6-hour
// limit. S3 and sftp use their clients' own timeouts (s3.ts, sftp.ts) and only share the setting and the message.
//
// `bounded` runs one operation in an async-context scope and watches the network through Node's diagnostics
// channels: every HTTP request the operation starts and every socket it opens, whichever library does it. No byte
// moved for network-timeout while a request is in flight, and the operation is abandoned: its requests and sockets
// are destroyed (so the library's promise fails soon rather than running on unseen), any request it starts later
// is destroyed at once, and the caller gets a BackupError naming the destination. Work without a request in flight
// (tar and zstd before a cache upload, unpacking after a download) is not network idleness: it may take up to
// network-timeout plus the data's size at 1 MiB/s before it counts as stuck.
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { BackupError } from './errors.js';
import type { Logger } from './logger.js';

/** network-timeout's default, for storages built without the setting. */
export const DEFAULT_NETWORK_TIMEOUT_MS = 60_000;

/** The slowest local work (compressing, unpacking) assumed per second, when no request is in flight. */
const LOCAL_BYTES_PER_SECOND = 1024 * 1024;

/** "3 s", "1.5 s": the setting as the user wrote it (seconds). */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** The sentence every timeout message ends its hint with. */
export function timeoutHint(ms: number, check: string): string {
  return `${check}; if the service is slow but working, raise network-timeout (now ${seconds(ms)})`;
}

/**
 * Calls progress() on every sign of life; `expired` rejects once none came for `ms`. stop() ends it (and must be
 * called: the timer keeps the process alive while it runs).
 */
export class IdleTimer {
  readonly expired: Promise<never>;
  private last = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly ms: number,
    fail: () => Error,
  ) {
    let reject!: (err: Error) => void;
    this.expired = new Promise<never>((_, r) => (reject = r));
    this.expired.catch(() => undefined);
    this.timer = setInterval(() => {
      if (Date.now() - this.last >= ms) {
        this.stop();
        reject(fail());
      }
    }, tickMs(ms));
  }

  touch(): void {
    this.last = Math.max(this.last, Date.now());
  }

  /** Known slow work ahead without answers (a server flushing `bytes` to disk): that much longer before expiring. */
  allow(bytes: number): void {
    this.last = Math.max(this.last, Date.now() + localWorkMs(bytes));
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** How long local work on `bytes` may take without counting as stuck. */
function localWorkMs(bytes: number): number {
  return (bytes / LOCAL_BYTES_PER_SECOND) * 1000;
}

function tickMs(timeoutMs: number): number {
  return Math.max(50, Math.min(1000, Math.floor(timeoutMs / 4)));
}

/** One bounded operation: the requests and sockets it made, and whether it was given up. */
class Scope {
  readonly controller = new AbortController();
  abandoned: Error | undefined;
  lastProgress = Date.now();
  private readonly requests = new Set<ClientRequest>();
  private readonly sockets = new Set<Socket>();

  addRequest(req: ClientRequest): void {
    if (this.abandoned) {
      req.destroy(this.abandoned);
      return;
    }
    // A request starting is progress: the operation moved on to its next step.
    this.lastProgress = Date.now();
    this.requests.add(req);
    req.once('close', () => this.requests.delete(req));
    // (Pooled keep-alive sockets are not created here; their bytes count from this request on.)
    if (req.socket) this.sockets.add(req.socket);
    else req.once('socket', (s: Socket) => this.sockets.add(s));
  }

  addSocket(socket: Socket): void {
    if (this.abandoned) socket.destroy(this.abandoned);
    else this.sockets.add(socket);
  }

  /** Bytes moved so far on the operation's sockets, both ways. */
  bytes(): number {
    let n = 0;
    for (const s of this.sockets) n += (s.bytesRead ?? 0) + (s.bytesWritten ?? 0);
    return n;
  }

  inFlight(): boolean {
    return this.requests.size > 0;
  }

  abandon(err: Error): void {
    this.abandoned = err;
    this.controller.abort(err);
    for (const r of this.requests) r.destroy(err);
    for (const s of this.sockets) s.destroy(err);
  }
}

const scopes = new AsyncLocalStorage<Scope>();
let watching = false;

function watchNetwork(): void {
  if (watching) return;
  watching = true;
  diagnostics.subscribe('http.client.request.start', (message) => scopes.getStore()?.addRequest((message as { request: ClientRequest }).request));
  diagnostics.subscribe('net.client.socket', (message) => scopes.getStore()?.addSocket((message as { socket: Socket }).socket));
}

export interface Bound {
  /** network-timeout, in ms. */
  timeoutMs: number;
  /** The destination as the user wrote it (artifact, cache, ...). */
  destination: string;
  /** What was being done: "uploading the artifact x". */
  what: string;
  /** Bytes the operation handles (the archive's size), when known: the allowance for local work scales with it. */
  size?: number;
  /** What to check besides network-timeout: "check the connection to GitHub's artifact service". */
  check: string;
  logger?: Logger;
}

/**
 * Runs op, failing with a storage-timeout BackupError when its network goes quiet for timeoutMs (see the top of
 * the file). op gets a signal that aborts then, for clients that take one (Octokit's fetch).
 */
export async function bounded<T>(b: Bound, op: (signal: AbortSignal) => Promise<T>): Promise<T> {
  watchNetwork();
  const scope = new Scope();
  const start = Date.now();
  let lastBytes = 0;
  let moved = 0;
  const work = scopes.run(scope, () => op(scope.controller.signal));
  let timer: NodeJS.Timeout | undefined;
  let gaveUp = false;
  const stalled = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const now = Date.now();
      const bytes = scope.bytes();
      if (bytes !== lastBytes) {
        moved += Math.max(0, bytes - lastBytes);
        lastBytes = bytes;
        scope.lastProgress = now;
      }
      const idle = now - scope.lastProgress;
      if (idle < b.timeoutMs) return;
      const allowance = b.timeoutMs + localWorkMs(Math.max(b.size ?? 0, moved));
      if (!scope.inFlight() && now - start < allowance) return;
      gaveUp = true;
      reject(
        new BackupError(
          `Destination ${b.destination}: no byte moved for ${seconds(b.timeoutMs)} while ${b.what}; the call was abandoned`,
          timeoutHint(b.timeoutMs, b.check),
          { code: 'storage-timeout' },
        ),
      );
    }, tickMs(b.timeoutMs));
  });
  try {
    return await Promise.race([work, stalled]);
  } catch (err) {
    if (gaveUp) {
      // Worded and coded so the clients give up at once instead of retrying into the cut: EHOSTUNREACH is a network
      // error the Twirp clients rethrow without retrying, and neither it nor the message is one the Azure blob
      // client's retry policy looks for (it matches ECONNRESET, "TIMEOUT" ... in the code or the message).
      const cut = new Error(`pgvector-backup gave up on this request: nothing moved for ${seconds(b.timeoutMs)}`);
      scope.abandon(Object.assign(cut, { code: 'EHOSTUNREACH' }));
      b.logger?.info(`Abandoned ${b.what} (${b.destination}) after ${seconds(Date.now() - scope.lastProgress)} without progress: its connections were closed`);
      // Not left running silently: the library's own end (its retries fail at once now) is logged too.
      const started = Date.now();
      work.then(
        () => b.logger?.debug(`The abandoned ${b.what} ended after all, ${seconds(Date.now() - started)} later`),
        (e: unknown) => b.logger?.debug(`The abandoned ${b.what} ended ${seconds(Date.now() - started)} later: ${(e as Error)?.message ?? String(e)}`),
      );
    }
    throw err;
  } finally {
    clearInterval(timer);
  }
}
