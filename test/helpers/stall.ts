// Network peers that stop answering, for the network-timeout tests: a TCP server that accepts connections and
// never sends a byte; an HTTP server that answers the headers and then stalls the body; an HTTP proxy in front of
// a real service that lets chosen requests stall (or rewrites URLs in the service's answers, so that a client is
// sent to a stalling peer); a TCP proxy that stops forwarding half way through a connection. All on 127.0.0.1;
// stop() closes every connection they hold, so nothing they leave keeps a process alive.
import http from 'node:http';
import net from 'node:net';

export interface Peer {
  port: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** Connections accepted so far. */
  connections(): number;
  stop(): Promise<void>;
}

function tracked(server: net.Server): { sockets: Set<net.Socket>; count: () => number } {
  const sockets = new Set<net.Socket>();
  let count = 0;
  server.on('connection', (s: net.Socket) => {
    count++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    // (The client may reset the connection when it gives up: not an error here.)
    s.on('error', () => undefined);
  });
  return { sockets, count: () => count };
}

async function listen(server: net.Server, sockets: Set<net.Socket>, count: () => number): Promise<Peer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: count,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Accepts TCP connections, reads whatever comes (so the client's writes are not what blocks), never answers. */
export async function startSilentServer(): Promise<Peer> {
  const server = net.createServer((s) => s.resume());
  const { sockets, count } = tracked(server);
  return listen(server, sockets, count);
}

/** Answers every request with 200 and the headers of a `size`-byte body, sends `sent` bytes of it, then stalls. */
export async function startStalledBodyServer(size = 10 * 1024 * 1024, sent = 0): Promise<Peer> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    if (sent > 0) res.write(Buffer.alloc(sent, 7));
    else res.flushHeaders();
  });
  const { sockets, count } = tracked(server);
  return listen(server, sockets, count);
}

/** What the proxy does with a request: pass it on, never answer it, or pass it on and stall the answer's body. */
export type Verdict = 'pass' | 'silent' | 'stall-body';

export interface StallProxy extends Peer {
  /** Requests (method and path) that were stalled. */
  stalled: string[];
}

/**
 * An HTTP proxy to `upstream`. `rule` decides per request; `rewrite` may change the upstream's answer body (JSON
 * bodies: signed URLs) or its Location header before it goes back.
 */
export async function startStallProxy(upstream: string, rule: (method: string, url: string) => Verdict, rewrite?: (text: string) => string): Promise<StallProxy> {
  const target = new URL(upstream);
  const stalled: string[] = [];
  const server = http.createServer((req, res) => {
    const verdict = rule(req.method ?? '', req.url ?? '');
    if (verdict === 'silent') {
      stalled.push(`${req.method} ${req.url}`);
      req.resume();
      return;
    }
    const up = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: (target.pathname.replace(/\/$/, '') || '') + req.url, headers: { ...req.headers, host: target.host } },
      (answer) => {
        if (verdict === 'stall-body') {
          stalled.push(`${req.method} ${req.url}`);
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          // The first chunk, then nothing: the connection stays open, the body never completes.
          answer.once('data', (d: Buffer) => {
            res.write(d.subarray(0, Math.min(d.length, 1024)));
            answer.destroy();
          });
          return;
        }
        if (!rewrite) {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        answer.on('data', (d: Buffer) => chunks.push(d));
        answer.on('end', () => {
          const headers = { ...answer.headers };
          if (typeof headers.location === 'string') headers.location = rewrite(headers.location);
          const body = Buffer.from(rewrite(Buffer.concat(chunks).toString('utf8')));
          if (headers['content-length'] !== undefined) headers['content-length'] = String(body.length);
          res.writeHead(answer.statusCode ?? 502, headers);
          res.end(body);
        });
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  const { sockets, count } = tracked(server);
  const peer = await listen(server, sockets, count);
  return { ...peer, stalled };
}

export interface TcpStallProxy extends Peer {
  /** Connections that stopped being forwarded. */
  stalls(): number;
}

/**
 * A TCP proxy to 127.0.0.1:`port` that forwards both ways until a connection has carried `afterBytes` bytes from
 * the client, then forwards nothing more either way and keeps the connection open (a network that went dark).
 */
export async function startTcpStallProxy(port: number, afterBytes: number): Promise<TcpStallProxy> {
  let stalls = 0;
  const all = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect(port, '127.0.0.1');
    all.add(up);
    up.on('error', () => undefined);
    up.on('close', () => all.delete(up));
    let sent = 0;
    let dark = false;
    down.on('data', (d: Buffer) => {
      if (dark) return;
      sent += d.length;
      if (sent > afterBytes) {
        dark = true;
        stalls++;
        return;
      }
      up.write(d);
    });
    up.on('data', (d: Buffer) => {
      if (!dark) down.write(d);
    });
  });
  const { sockets, count } = tracked(server);
  const peer = await listen(server, sockets, count);
  return {
    ...peer,
    stalls: () => stalls,
    stop: async () => {
      for (const s of all) s.destroy();
      await peer.stop();
    },
  };
}
