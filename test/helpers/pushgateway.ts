// A real Prometheus Pushgateway (Debian's prometheus-pushgateway) on a free loopback port.
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../../src/postgres/cluster.js';
import { parseTextfile, type Sample } from '../../src/metrics/metrics.js';

export interface Gateway {
  url: string;
  samples(): Promise<Sample[]>;
  stop(): Promise<void>;
}

export async function startPushgateway(): Promise<Gateway> {
  const port = await freePort();
  const child: ChildProcess = spawn('prometheus-pushgateway', [`--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('the Pushgateway did not start (is prometheus-pushgateway installed? npm test installs it)');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    samples: async () => parseTextfile(await (await fetch(`${url}/metrics`)).text()),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}
