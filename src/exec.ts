// Every child process goes through here: no shell, the environment given explicitly, stderr kept (the tail)
// for error messages, and the exit code and signal always checked by the caller.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { BackupError } from './errors.js';

export interface Command {
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const KEEP = 64 * 1024;

/** Keeps the last `KEEP` characters of a stream: enough for an error message, bounded in memory. */
export class Tail {
  private text = '';
  push(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > KEEP * 2) this.text = this.text.slice(-KEEP);
  }
  toString(): string {
    return this.text.slice(-KEEP);
  }
}

const running = new Set<ChildProcess>();

export function spawnCommand(cmd: Command, stdio: SpawnOptions['stdio']): ChildProcess {
  // Its own process group, so that a cancellation stops what it started too (a wrapper script's children,
  // pg_restore's workers), not only the process itself.
  const options: SpawnOptions = { env: cmd.env ?? process.env, stdio, shell: false, detached: true };
  if (cmd.cwd) options.cwd = cmd.cwd;
  if (cmd.uid !== undefined) options.uid = cmd.uid;
  if (cmd.gid !== undefined) options.gid = cmd.gid;
  const child = spawn(cmd.file, cmd.args, options);
  running.add(child);
  child.once('close', () => running.delete(child));
  child.once('error', () => running.delete(child));
  return child;
}

/** Stops every child still running (on cancellation), so none outlives the run. */
export function terminateChildren(): void {
  for (const c of running) {
    try {
      if (c.pid) process.kill(-c.pid, 'SIGTERM');
    } catch {
      c.kill('SIGTERM');
    }
  }
}

/** Waits for a child's exit; resolves with code and signal, rejects only when it could not start. */
export function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'EACCES') {
        reject(new BackupError(`Cannot run ${child.spawnfile}: ${err.code === 'ENOENT' ? 'not found' : 'permission denied'}`, 'Install it or set pg-bin-dir to the directory that holds the PostgreSQL programs', { code: 'tool-not-found', cause: err }));
      } else reject(err);
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

/** Runs a command to completion and returns its output (keeps all stdout: only for small outputs). */
export async function run(cmd: Command, input?: string): Promise<Result> {
  const child = spawnCommand(cmd, [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']);
  let stdout = '';
  const stderr = new Tail();
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => stderr.push(d));
  if (input !== undefined) {
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  }
  const { code, signal } = await waitForExit(child);
  return { code, signal, stdout, stderr: stderr.toString() };
}

export function describeExit(name: string, code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `${name} was killed by ${signal}` : `${name} exited with code ${code}`;
}

/** The last meaningful lines of a tool's stderr, for one-line error messages. */
export function lastLines(stderr: string, n = 3): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(' | ');
}
