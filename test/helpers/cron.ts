// What cron does with a crontab entry, for tests that run an installed entry the way cron would; and a stand-in
// for the `crontab` command (CRONTAB=<script>) over a temporary file.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The command cron hands to /bin/sh for an entry (Vixie cron, Debian's `cron`): the five time fields are dropped,
 * `\%` becomes `%`, and an unescaped `%` ends the command (what follows is the job's stdin). Returns the command
 * and that stdin, so a test can assert there is none.
 */
export function cronCommand(line: string): { time: string; command: string; stdin: string | undefined } {
  const m = /^\s*(\S+\s+\S+\s+\S+\s+\S+\s+\S+)\s+(.*)$/.exec(line);
  if (!m) throw new Error(`not a crontab entry: ${line}`);
  let out = '';
  const rest = m[2]!;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i]!;
    if (c === '\\' && rest[i + 1] === '%') {
      out += '%';
      i++;
    } else if (c === '%') return { time: m[1]!, command: out, stdin: rest.slice(i + 1) };
    else out += c;
  }
  return { time: m[1]!, command: out, stdin: undefined };
}

/** The environment cron gives a job (no shell profile). */
export function cronJobEnv(): NodeJS.ProcessEnv {
  return { HOME: process.env.HOME ?? '/root', LOGNAME: 'root', PATH: '/usr/bin:/bin', SHELL: '/bin/sh' };
}

export interface FakeCrontab {
  /** The executable to put in CRONTAB. */
  command: string;
  /** The crontab's content, or undefined when the user has none. */
  read(): string | undefined;
  write(text: string): void;
}

/** A `crontab` stand-in: `-l` prints the file (or "no crontab for <user>", exit 1), `-` replaces it from stdin. */
export function fakeCrontab(dir: string, opts: { failWith?: string } = {}): FakeCrontab {
  const file = path.join(dir, 'crontab.txt');
  const command = path.join(dir, opts.failWith ? 'crontab-broken' : 'crontab');
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const body = opts.failWith
    ? `echo ${q(opts.failWith)} >&2; exit 1`
    : `case "$1" in
  -l) if [ -f ${q(file)} ]; then exec cat ${q(file)}; fi; echo "no crontab for $(id -un)" >&2; exit 1 ;;
  -) exec cat > ${q(file)} ;;
  *) echo "usage: crontab [-l | -]" >&2; exit 1 ;;
esac`;
  writeFileSync(command, `#!/bin/sh\n${body}\n`);
  chmodSync(command, 0o755);
  return {
    command,
    read: () => (existsSync(file) ? readFileSync(file, 'utf8') : undefined),
    write: (text) => writeFileSync(file, text),
  };
}
