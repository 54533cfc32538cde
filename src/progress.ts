// Progress of long work (dumps, uploads, downloads, restores), rendered in one place: bytes done, total and %
// when known, rate, elapsed. On a terminal the CLI rewrites one line in place (the logger's `live` line);
// everywhere else (the action, pipes, CI) a plain line is logged every progressSeconds.
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import type { Logger } from './logger.js';

/** How often a terminal's progress line is redrawn (at most; a shorter progressSeconds wins). */
export const LIVE_SECONDS = 0.5;

/** Seconds between plain progress lines: PGVB_PROGRESS_SECONDS, else 10. */
export function progressSecondsFrom(env: NodeJS.ProcessEnv): number {
  const v = Number(env.PGVB_PROGRESS_SECONDS);
  return env.PGVB_PROGRESS_SECONDS && Number.isFinite(v) && v > 0 ? v : 10;
}

/**
 * 'live' (rewrite one line with \r) when stderr is a terminal outside CI; 'plain' (periodic lines) otherwise:
 * CI logs, pipes, files and dumb terminals do not understand a rewritten line. Pure; table-tested.
 */
export function progressStyle(stderrIsTTY: boolean | undefined, env: NodeJS.ProcessEnv): 'live' | 'plain' {
  if (!stderrIsTTY) return 'plain';
  if (env.TERM === 'dumb') return 'plain';
  const ci = env.CI;
  if ((ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false') || env.GITHUB_ACTIONS === 'true') return 'plain';
  return 'live';
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** 7 s, 2 min 05 s, 1 h 02 min. */
export function formatElapsed(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Bytes per second over `seconds`; "-" before any time has passed. */
export function formatRate(bytes: number, seconds: number): string {
  return seconds > 0 ? `${formatBytes(bytes / seconds)}/s` : '- B/s';
}

export interface ProgressState {
  /** What is running: pg_dump, upload s3://..., pg_restore data. */
  label: string;
  elapsed: number;
  /** Bytes done so far; undefined when unknown (then only the elapsed time is shown). */
  bytes?: number;
  /** Bytes in all, when known: adds "of <total> (<n>%)" and the time left. */
  total?: number;
  /** dumped, written, read, sent ... */
  verb?: string;
  /** More detail after the bytes ("12.0 MiB written"). */
  extra?: string;
}

/**
 * One progress line: "  pg_dump: 120.0 MiB dumped, 31.2 MiB written, 12.0 MiB/s, 10 s", or with a total
 * "  pg_restore data: 50.0 MiB of 200.0 MiB read (25%), 5.0 MiB/s, 10 s, about 30 s left". Pure; table-tested.
 */
export function renderProgress(p: ProgressState): string {
  const parts: string[] = [];
  if (p.bytes !== undefined) {
    const known = p.total !== undefined && p.total > 0;
    let done = formatBytes(p.bytes);
    if (known) done += ` of ${formatBytes(p.total!)}`;
    if (p.verb) done += ` ${p.verb}`;
    if (known) done += ` (${Math.min(100, Math.floor((p.bytes / p.total!) * 100))}%)`;
    parts.push(done);
    if (p.extra) parts.push(p.extra);
    parts.push(formatRate(p.bytes, p.elapsed));
    parts.push(formatElapsed(p.elapsed));
    if (known && p.elapsed > 0 && p.bytes > 0 && p.bytes < p.total!) {
      parts.push(`about ${formatElapsed((p.total! - p.bytes) / (p.bytes / p.elapsed))} left`);
    }
  } else {
    if (p.extra) parts.push(p.extra);
    parts.push(formatElapsed(p.elapsed));
  }
  return `  ${p.label}: ${parts.join(', ')}`;
}

/** A render function for `withProgress` over a byte counter (undefined: not known right now). */
export function byteProgress(
  label: string,
  bytes: () => number | undefined,
  opts: { total?: number; verb?: string; extra?: () => string } = {},
): (elapsed: number) => string {
  return (elapsed) => {
    const state: ProgressState = { label, elapsed };
    const b = bytes();
    if (b !== undefined) state.bytes = b;
    if (opts.total !== undefined) state.total = opts.total;
    if (opts.verb) state.verb = opts.verb;
    if (opts.extra) state.extra = opts.extra();
    return renderProgress(state);
  };
}

/**
 * Shows progress while `work` runs: the logger's live line (a terminal) every LIVE_SECONDS, else a plain log
 * line every `seconds`. The live line is cleared when the work ends.
 */
export async function withProgress<T>(logger: Logger, seconds: number, line: (elapsed: number) => string, work: Promise<T>): Promise<T> {
  const start = Date.now();
  const live = logger.live;
  const interval = live ? Math.min(LIVE_SECONDS, Math.max(0.1, seconds)) : Math.max(0.2, seconds);
  const timer = setInterval(() => {
    const text = line((Date.now() - start) / 1000);
    if (live) live.update(text);
    else logger.info(text);
  }, interval * 1000);
  timer.unref();
  try {
    return await work;
  } finally {
    clearInterval(timer);
    live?.clear();
  }
}

/**
 * How far this process's descendants have read `file`: the largest read position (/proc/<pid>/fdinfo) of any
 * descendant that has it open. pg_restore reads its archive itself, so this is the only byte count there is.
 * Linux only; undefined elsewhere, or when no descendant has the file open (a Docker container's processes are
 * not our descendants).
 */
export function fileReadPosition(file: string, rootPid = process.pid): number | undefined {
  let target: string;
  let pids: string[];
  try {
    target = realpathSync(file);
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  const children = new Map<number, number[]>();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(pid));
      children.set(ppid, list);
    } catch {
      /* gone */
    }
  }
  let best: number | undefined;
  const queue = [...(children.get(rootPid) ?? [])];
  while (queue.length) {
    const pid = queue.shift()!;
    queue.push(...(children.get(pid) ?? []));
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== target) continue;
        const m = /^pos:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (m) best = Math.max(best ?? 0, Number(m[1]));
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return best;
}
