// Runs one command and measures it: wall time, user+sys CPU of its whole process tree (GNU time), the peak RSS
// of the process itself (VmHWM, polled), and the CPU the PostgreSQL server spent meanwhile (the postmaster's
// and its children's times from /proc). No shell here; the old kit's pipelines pass bash explicitly.
import { spawn } from 'node:child_process';
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Run {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Keep stdout (small outputs only, such as the CLI's --json); otherwise it goes to /dev/null. */
  captureStdout?: boolean;
}

export interface Measured {
  code: number | null;
  signal: NodeJS.Signals | null;
  wall: number;
  cpu: number;
  serverCpu: number;
  /** Peak RSS of the command's own process (bytes), when asked for. */
  rss: number | null;
  stdout: string;
  stderr: string;
}

const TICKS = 100; // USER_HZ: /proc reports times in clock ticks of 1/100 s on Linux.

function statTimes(pid: number): { ppid: number; own: number; children: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

function pids(): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map(Number);
}

/**
 * CPU seconds the server has used so far: the postmaster's own and reaped children's times, plus the times of
 * its live children (backends, parallel workers, background processes). A backend that exits moves from the
 * second sum into the first, so differences between two readings are exact to a tick.
 */
export function serverCpuSeconds(postmasterPid: number): number {
  const pm = statTimes(postmasterPid);
  if (!pm) return 0;
  let ticks = pm.own + pm.children;
  for (const pid of pids()) {
    const t = statTimes(pid);
    if (t && t.ppid === postmasterPid) ticks += t.own + t.children;
  }
  return ticks / TICKS;
}

function childOf(parent: number): number | undefined {
  for (const pid of pids()) if (statTimes(pid)?.ppid === parent) return pid;
  return undefined;
}

function vmHwm(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export async function measure(run: Run, opts: { postmasterPid: number; trackRss: boolean }): Promise<Measured> {
  const timeFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'pgvb-bench-time-')), 'time');
  const server0 = serverCpuSeconds(opts.postmasterPid);
  const t0 = process.hrtime.bigint();
  const child = spawn('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, run.file, ...run.args], {
    env: run.env,
    cwd: run.cwd,
    stdio: ['ignore', run.captureStdout ? 'pipe' : 'ignore', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19));
  });
  let target: number | undefined;
  let rss: number | null = null;
  const poll = (): void => {
    if (!opts.trackRss || !child.pid) return;
    target ??= childOf(child.pid);
    const hwm = target ? vmHwm(target) : undefined;
    if (hwm !== undefined) rss = Math.max(rss ?? 0, hwm);
  };
  const timer = setInterval(poll, 100);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve({ code: c, signal: s }));
  }).finally(() => clearInterval(timer));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const serverCpu = serverCpuSeconds(opts.postmasterPid) - server0;
  let cpu = NaN;
  try {
    const text = await fs.readFile(timeFile, 'utf8');
    // GNU time prefixes "Command exited with non-zero status N" when the command failed.
    const last = text.trim().split('\n').pop() ?? '';
    const [u, s] = last.split(' ').map(Number);
    cpu = (u ?? NaN) + (s ?? NaN);
  } finally {
    await fs.rm(path.dirname(timeFile), { recursive: true, force: true });
  }
  return { code, signal, wall, cpu, serverCpu, rss, stdout, stderr };
}
