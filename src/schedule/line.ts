// The crontab entry: `<time> cd <dir> && mkdir -p <logs> && <node> <cli> backup <options> >> <logs>/backup_$(date +\%Y\%m\%d).log 2>&1`.
// Absolute paths (cron's PATH is /usr/bin:/bin and knows no nvm), the working directory so that its .env is read
// (secrets stay there, never in the crontab), the old kit's log layout. cron hands the line to /bin/sh after
// turning every unescaped % into a newline, so each % is written as \%. Pure; table-tested.
import { ConfigurationError } from '../errors.js';
import { INPUTS, type InputName } from '../inputs.js';
import { parseConnectionString } from '../postgres/connection.js';

export interface CronEntry {
  /** Five cron fields. */
  time: string;
  /** Absolute working directory (where .env is read and relative paths start). */
  cwd: string;
  /** Absolute path of the node executable. */
  node: string;
  /** Absolute path of dist/cli/index.js. */
  script: string;
  /** Options after `backup` (flags and values, in order). */
  args: string[];
  /** Log directory, relative to cwd or absolute. */
  logDir: string;
}

/** Quotes one word for /bin/sh: bare when only safe characters, else in single quotes. */
export function shellQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_./:=@+,-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Words that cannot go into a crontab line safely: newlines end the entry, and backslashes change how cron reads %. */
function checkWord(word: string, what: string): void {
  if (/[\r\n\0]/.test(word)) throw new ConfigurationError(`${what} contains a line break, which a crontab entry cannot hold`, { code: 'config-cli-usage' });
  if (word.includes('\\')) throw new ConfigurationError(`${what} contains a backslash, which cron would misread; use a path or value without it`, { code: 'config-cli-usage' });
}

/** The crontab line (without newline). */
export function buildCronLine(e: CronEntry): string {
  for (const [w, what] of [
    [e.cwd, 'The working directory'],
    [e.node, 'The node path'],
    [e.script, 'The CLI path'],
    [e.logDir, '--log-dir'],
    ...e.args.map((a) => [a, `The option ${a}`] as [string, string]),
  ] as Array<[string, string]>) {
    checkWord(w, what);
  }
  const logs = shellQuote(e.logDir);
  const command = [
    `cd ${shellQuote(e.cwd)}`,
    `mkdir -p ${logs}`,
    `${[e.node, e.script, 'backup', ...e.args].map(shellQuote).join(' ')} >> ${logs}/backup_$(date +%Y%m%d).log 2>&1`,
  ].join(' && ');
  return `${e.time} ${command.replace(/%/g, '\\%')}`;
}

/** Splits a /bin/sh command line into words (single and double quotes, backslash escapes); stops at `>>`. */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  let cur: string | undefined;
  let i = 0;
  const push = (): void => {
    if (cur !== undefined) words.push(cur);
    cur = undefined;
  };
  while (i < command.length) {
    const c = command[i]!;
    if (c === ' ' || c === '\t') {
      push();
      i++;
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end === -1) throw new Error('unterminated quote');
      cur = (cur ?? '') + command.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < command.length && command[j] !== '"') {
        if (command[j] === '\\' && j + 1 < command.length && '"\\$`'.includes(command[j + 1]!)) j++;
        s += command[j];
        j++;
      }
      if (j >= command.length) throw new Error('unterminated quote');
      cur = (cur ?? '') + s;
      i = j + 1;
    } else if (c === '\\' && i + 1 < command.length) {
      cur = (cur ?? '') + command[i + 1];
      i += 2;
    } else {
      cur = (cur ?? '') + c;
      i++;
    }
  }
  push();
  return words;
}

/** Reads back a line that buildCronLine wrote; undefined when it is not in that form (edited by hand). */
export function parseCronLine(line: string): CronEntry | undefined {
  const m = /^\s*(\S+\s+\S+\s+\S+\s+\S+\s+\S+)\s+(.*)$/.exec(line);
  if (!m) return undefined;
  // cron's own unescaping first: \% is %.
  const command = m[2]!.replace(/\\%/g, '%');
  const redirect = command.lastIndexOf(' >> ');
  if (redirect === -1) return undefined;
  let words: string[];
  try {
    words = shellWords(command.slice(0, redirect));
  } catch {
    return undefined;
  }
  const [cd, cwd, and1, mkdir, p, logDir, and2, node, script, backup, ...args] = words;
  if (cd !== 'cd' || and1 !== '&&' || mkdir !== 'mkdir' || p !== '-p' || and2 !== '&&' || backup !== 'backup') return undefined;
  if (!cwd || !logDir || !node || !script) return undefined;
  return { time: m[1]!.replace(/\s+/g, ' '), cwd, node, script, args, logDir };
}

/**
 * Refuses options whose values are secrets: a crontab is readable by whoever can read the user's crontab and by
 * backup tools, and argv is visible to every local user (ps). Connection URLs without a password are fine.
 */
export function refuseSecrets(inputs: Partial<Record<InputName, string>>, cwd: string, command: string): void {
  for (const spec of INPUTS) {
    const value = inputs[spec.name as InputName];
    if (!('secret' in spec && spec.secret) || value === undefined || value.trim() === '') continue;
    const flag = `--${spec.name}`;
    let password: string | undefined;
    let kind: 'postgres' | 'http' | 'other' = 'other';
    if (/^postgres(ql)?:\/\/|^\s*\w+\s*=/i.test(value)) {
      kind = 'postgres';
      password = parseConnectionString(value, spec.name).password;
    } else if (/^https?:\/\//i.test(value)) {
      kind = 'http';
      try {
        password = decodeURIComponent(new URL(value).password) || undefined;
      } catch {
        password = undefined;
      }
    }
    if (kind !== 'other' && password === undefined) continue;
    const viaEnv = 'env' in spec ? `set ${spec.env.join(' or ')} in ${cwd}/.env` : undefined;
    const where =
      spec.name === 'database-url'
        ? `Put the password in ${cwd}/.env (PGPASSWORD=..., or DATABASE_URL=postgresql://...) or in ~/.pgpass, and pass ${flag} without it (or not at all)`
        : kind === 'postgres'
          ? `Put the password in ~/.pgpass (host:port:database:user:password)${viaEnv ? ` or ${viaEnv}` : ''}, and pass ${flag} without it`
          : viaEnv
            ? `Instead, ${viaEnv}`
            : 'It cannot be given to a scheduled run; leave it out';
    throw new ConfigurationError(`${flag} contains a ${kind === 'other' ? 'secret' : 'password'}, and ${command} never writes secrets into the crontab or a command line. ${where}`, {
      code: 'config-schedule-secret',
    });
  }
}
