// A real S3 API (s3rver) behind a loopback proxy that can inject faults into chosen requests.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Fault {
  /** Which requests: method and URL (path + query) of the request as the SDK sends it. */
  match: (method: string, url: string) => boolean;
  status: number;
  times: number;
}

export interface S3Server {
  endpoint: string;
  /** Environment for the action: credentials s3rver accepts. */
  env: Record<string, string>;
  /** Inputs that point the action at this server. */
  inputs: Record<string, string>;
  fail(f: Fault): void;
  /** Requests seen (method and URL), for assertions. */
  seen: Array<{ method: string; url: string; status: number }>;
  stop(): Promise<void>;
}

export async function startS3(): Promise<S3Server> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-s3rver-'));
  const child: ChildProcess = spawn(process.execPath, ['--openssl-legacy-provider', path.join(import.meta.dirname, 's3rver-main.mjs'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
  });
  const faults: Fault[] = [];
  const seen: S3Server['seen'] = [];
  const proxy = http.createServer((req, res) => {
    const fault = faults.find((f) => f.times > 0 && f.match(req.method ?? '', req.url ?? ''));
    if (fault) {
      fault.times--;
      seen.push({ method: req.method ?? '', url: req.url ?? '', status: fault.status });
      req.resume();
      req.on('end', () => {
        res.writeHead(fault.status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.status >= 500 ? 'InternalError' : 'AccessDenied'}</Code><Message>injected fault</Message></Error>`);
      });
      return;
    }
    const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', status: up.statusCode ?? 0 });
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxyPort = (proxy.address() as { port: number }).port;
  const endpoint = `http://127.0.0.1:${proxyPort}`;
  return {
    endpoint,
    env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' },
    inputs: { 's3-endpoint': endpoint, 's3-force-path-style': 'true' },
    fail: (f) => faults.push(f),
    seen,
    stop: async () => {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
