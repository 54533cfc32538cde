// Runs the bundled action the way the runner does: `node dist/index.js` with INPUT_* variables (defaults from
// action.yml injected), GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, and no inherited GITHUB_/INPUT_/PG variables.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { actionEnv, parseOutputFile } from '../../src/demo/run.js';
import { INPUTS } from '../../src/inputs.js';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const ACTION = path.join(ROOT, 'dist', 'index.js');
export const CLI = path.join(ROOT, 'dist', 'cli', 'index.js');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  /** stdout without the ::add-mask:: commands (which the runner consumes and never shows). */
  visible: string;
  /** Every child process command line seen while the run went on (for argv leak checks). */
  argvSeen: string[];
  signalled: boolean;
}

export interface SignalWhen {
  /** Send `signal` once stdout matches this. */
  pattern: RegExp;
  signal: NodeJS.Signals;
}

function spawnAndWait(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  watchArgv: boolean,
  signalWhen?: SignalWhen,
): Promise<{ code: number; stdout: string; stderr: string; argvSeen: string[]; signalled: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const argvSeen = new Set<string>();
    let timer: NodeJS.Timeout | undefined;
    if (watchArgv) {
      // Only the action and its descendants: other tests running beside this one may pass URLs in argv.
      timer = setInterval(() => {
        const parent = new Map<number, number>();
        for (const pid of readdirSafe('/proc')) {
          if (!/^\d+$/.test(pid)) continue;
          try {
            const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
            parent.set(Number(pid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
          } catch {
            /* gone */
          }
        }
        for (const pid of parent.keys()) {
          let p: number | undefined = pid;
          for (let depth = 0; p && depth < 20 && p !== child.pid; depth++) p = parent.get(p);
          if (p !== child.pid) continue;
          try {
            argvSeen.add(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
          } catch {
            /* gone */
          }
        }
      }, 25);
    }
    let signalled = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (signalWhen && !signalled && signalWhen.pattern.test(stdout)) {
        signalled = true;
        child.kill(signalWhen.signal);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearInterval(timer);
      resolve({ code: code ?? (signal ? 128 + (signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 9) : -1), stdout, stderr, argvSeen: [...argvSeen], signalled });
    });
  });
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export async function runAction(
  inputs: Record<string, string>,
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; watchArgv?: boolean; signalWhen?: SignalWhen } = {},
): Promise<RunResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-run-'));
  const files = { output: path.join(dir, 'output'), summary: path.join(dir, 'summary.md'), state: path.join(dir, 'state') };
  for (const f of Object.values(files)) writeFileSync(f, '');
  const defaults = Object.fromEntries(INPUTS.map((i) => [i.name, i.default]));
  // Outside GitHub the action's default destination (artifact) has no service: tests choose local unless they say.
  const env = { ...actionEnv({ ...defaults, destination: 'local', ...inputs }, files, process.env), PGVB_PROGRESS_SECONDS: '1', ...(opts.env ?? {}) };
  const r = await spawnAndWait(ACTION, [], env, opts.cwd ?? dir, opts.watchArgv ?? false, opts.signalWhen);
  return {
    ...r,
    outputs: parseOutputFile(readFileSync(files.output, 'utf8')),
    summary: readFileSync(files.summary, 'utf8'),
    visible: r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n'),
  };
}

export async function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(GITHUB_|INPUT_|ACTIONS_|RUNNER_|PG|BACKUP_|DB_NAME)/.test(k)) env[k] = v;
  const cwd = opts.cwd ?? mkdtempSync(path.join(os.tmpdir(), 'pgvb-cli-'));
  const r = await spawnAndWait(CLI, args, { ...env, PGVB_PROGRESS_SECONDS: '1', ...(opts.env ?? {}) }, cwd, false);
  return { ...r, outputs: {}, summary: '', visible: r.stdout };
}
