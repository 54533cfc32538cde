// Finding PostgreSQL client and server programs. A pg_dump must be at least the server's major version;
// we choose the closest such major, because a newer pg_dump writes archives an older pg_restore cannot read.
import { accessSync, constants, existsSync, readdirSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { BackupError } from '../errors.js';
import { run, type Command } from '../exec.js';
import type { Logger } from '../logger.js';

export type ToolName = 'pg_dump' | 'pg_restore' | 'psql' | 'initdb' | 'pg_ctl' | 'postgres' | 'pg_config';

export interface LocalTools {
  kind: 'local';
  dir: string;
  major: number;
  version: string;
}

export interface DockerTools {
  kind: 'docker';
  image: string;
  major: number;
  version: string;
}

export type PgTools = LocalTools | DockerTools;

export interface Candidate {
  dir: string;
  major: number;
  version: string;
}

/** "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" -> { major: 15, version: "15.18" } */
export function parseToolVersion(text: string): { major: number; version: string } | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(text) ?? /\b(\d+)\.(\d+)\b/.exec(text);
  if (!m) return undefined;
  const major = Number(m[1]);
  return { major, version: m[2] !== undefined ? `${major}.${m[2]}` : `${major}` };
}

/** The server's major version from server_version_num (150004 -> 15; 90624 -> 9, any pg_dump 10+ reads 9.x). */
export function serverMajor(serverVersionNum: number): number {
  return Math.floor(serverVersionNum / 10000);
}

/**
 * Picks the tools to use: the preferred directory when its major is new enough, else the lowest major that
 * is at least the server's (so archives stay readable by the same-major pg_restore). Pure; table-tested.
 */
export function chooseTools(candidates: Candidate[], minMajor: number, preferredDir?: string): Candidate | undefined {
  const fit = candidates.filter((c) => c.major >= minMajor);
  if (preferredDir) {
    const preferred = fit.find((c) => path.resolve(c.dir) === path.resolve(preferredDir));
    if (preferred) return preferred;
  }
  return [...fit].sort((a, b) => a.major - b.major)[0];
}

/** Directories where PostgreSQL programs usually live, in order of preference. */
export function candidateDirs(env: NodeJS.ProcessEnv, pgBinDir?: string): string[] {
  const dirs: string[] = [];
  if (pgBinDir) dirs.push(pgBinDir);
  for (const d of (env.PATH ?? '').split(path.delimiter)) if (d) dirs.push(d);
  const globs: Array<[string, RegExp, string]> = [
    ['/usr/lib/postgresql', /^\d+$/, 'bin'],
    ['/usr', /^pgsql-\d+$/, 'bin'],
    ['/opt/homebrew/opt', /^postgresql@\d+$/, 'bin'],
    ['/usr/local/opt', /^postgresql@\d+$/, 'bin'],
    ['/Applications/Postgres.app/Contents/Versions', /^\d+$/, 'bin'],
  ];
  for (const [base, re, sub] of globs) {
    let names: string[] = [];
    try {
      names = readdirSync(base).filter((n) => re.test(n));
    } catch {
      continue;
    }
    names.sort((a, b) => Number(b.replace(/\D/g, '')) - Number(a.replace(/\D/g, '')));
    for (const n of names) dirs.push(path.join(base, n, sub));
  }
  dirs.push('/opt/homebrew/bin', '/usr/local/bin');
  return dirs;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Every distinct directory that holds `tool`, with the tool's version (only `pgBinDir` when `only`). */
export async function discover(tool: ToolName, env: NodeJS.ProcessEnv, pgBinDir?: string, only = false): Promise<Candidate[]> {
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const dir of only && pgBinDir ? [pgBinDir] : candidateDirs(env, pgBinDir)) {
    const file = path.join(dir, tool);
    if (!existsSync(file) || !isExecutable(file)) continue;
    let real: string;
    try {
      real = realpathSync(file);
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    const res = await run({ file, args: ['--version'], env }).catch(() => undefined);
    const v = res && res.code === 0 ? parseToolVersion(res.stdout) : undefined;
    // A symlink to the real installation (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb) stands
    // for that directory, where the sibling programs are; a wrapper script (Debian's pg_wrapper) stays as found.
    const home = path.basename(real) === tool ? path.dirname(real) : dir;
    if (v) out.push({ dir: home, ...v });
  }
  return out;
}

/** Docker argv that runs a PostgreSQL client program from the pgvector image. Pure; table-tested. */
export function dockerCommand(
  image: string,
  tool: ToolName,
  args: string[],
  env: NodeJS.ProcessEnv,
  mounts: string[] = [],
): Command {
  const argv = ['run', '--rm', '-i', '--network', 'host'];
  // As this user, so that files written to mounted directories are ours to hash, rename and remove.
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  if (uid !== undefined && gid !== undefined) argv.push('--user', `${uid}:${gid}`);
  // `-e NAME` without a value copies it from docker's own environment, so secrets stay out of argv.
  for (const name of Object.keys(env).filter((k) => k.startsWith('PG')).sort()) argv.push('-e', name);
  for (const m of mounts) argv.push('-v', `${m}:${m}`);
  argv.push('--entrypoint', tool, image, ...args);
  return { file: 'docker', args: argv, env };
}

export function toolCommand(tools: PgTools, tool: ToolName, args: string[], env: NodeJS.ProcessEnv, mounts: string[] = []): Command {
  if (tools.kind === 'docker') return dockerCommand(tools.image, tool, args, env, mounts);
  return { file: path.join(tools.dir, tool), args, env };
}

export function pgvectorImage(major: number): string {
  return `pgvector/pgvector:pg${major}`;
}

export async function dockerAvailable(env: NodeJS.ProcessEnv): Promise<boolean> {
  const res = await run({ file: 'docker', args: ['info', '--format', '{{.ServerVersion}}'], env }).catch(() => undefined);
  return !!res && res.code === 0 && res.stdout.trim() !== '';
}

/**
 * Finds client tools for a server of `minMajor`: local programs first, then (on a GitHub Linux runner) the
 * PGDG package for that major, then a pgvector Docker image. Fails before any dump, naming both versions.
 */
export async function findClientTools(
  minMajor: number,
  opts: { env: NodeJS.ProcessEnv; pgBinDir?: string; logger: Logger; allowInstall?: boolean },
): Promise<PgTools> {
  const { env, logger } = opts;
  if (opts.pgBinDir) {
    // An explicit pg-bin-dir is what the user wants used: no silent fallback to another installation.
    const found = await discover('pg_dump', env, opts.pgBinDir, true);
    const fit = chooseTools(found, minMajor, opts.pgBinDir);
    if (fit) {
      logger.info(`Using pg_dump ${fit.version} from ${fit.dir}`);
      return { kind: 'local', ...fit };
    }
    throw new BackupError(
      found.length
        ? `pg_dump ${found[0]!.version} in pg-bin-dir ${opts.pgBinDir} is older than the PostgreSQL ${minMajor} server`
        : `pg-bin-dir ${opts.pgBinDir} has no working pg_dump (needed: version ${minMajor} or newer)`,
      `Point pg-bin-dir at the bin directory of PostgreSQL ${minMajor} or newer client programs, or leave it empty to search PATH and the usual places`,
      { code: 'tool-pg-bin-dir' },
    );
  }
  let candidates = await discover('pg_dump', env);
  let chosen = chooseTools(candidates, minMajor);
  if (!chosen && (opts.allowInstall ?? env.GITHUB_ACTIONS === 'true') && process.platform === 'linux') {
    if (await installClient(minMajor, env, logger)) {
      candidates = await discover('pg_dump', env);
      chosen = chooseTools(candidates, minMajor);
    }
  }
  if (chosen) {
    logger.info(`Using pg_dump ${chosen.version} from ${chosen.dir}`);
    return { kind: 'local', ...chosen };
  }
  if (await dockerAvailable(env)) {
    const image = pgvectorImage(minMajor);
    logger.info(`No local pg_dump ${minMajor}+; running the client tools from ${image}`);
    return { kind: 'docker', image, major: minMajor, version: String(minMajor) };
  }
  const found = candidates.length ? candidates.map((c) => `${c.version} (${c.dir})`).join(', ') : 'none';
  throw new BackupError(
    `No pg_dump of version ${minMajor} or newer was found for this PostgreSQL ${minMajor} server (found: ${found})`,
    `Install the client for that version (apt-get install postgresql-client-${minMajor} from the PGDG repository, or brew install postgresql@${minMajor}) or point pg-bin-dir at its bin directory`,
    { code: 'tool-no-pg-dump' },
  );
}

async function installClient(major: number, env: NodeJS.ProcessEnv, logger: Logger): Promise<boolean> {
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const runAs = (args: string[]): Command => (sudo.length ? { file: sudo[0]!, args: [...sudo.slice(1), ...args], env } : { file: args[0]!, args: args.slice(1), env });
  logger.info(`Installing postgresql-client-${major} from the PGDG apt repository`);
  const script = '/usr/share/postgresql-common/pgdg/apt.postgresql.org.sh';
  if (existsSync(script)) {
    const r = await run(runAs([script, '-y']));
    if (r.code !== 0) logger.warning(`Adding the PGDG repository failed: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  }
  const inst = await run(runAs(['apt-get', 'install', '-y', '-q', `postgresql-client-${major}`]));
  if (inst.code !== 0) {
    logger.warning(`apt-get install postgresql-client-${major} failed: ${inst.stderr.trim().split('\n').pop() ?? ''}`);
    return false;
  }
  return true;
}

/** The directory that holds extension control files for a server installation. */
export async function extensionDir(binDir: string, major: number): Promise<string | undefined> {
  const pgConfig = path.join(binDir, 'pg_config');
  if (existsSync(pgConfig)) {
    const r = await run({ file: pgConfig, args: ['--sharedir'] }).catch(() => undefined);
    if (r && r.code === 0 && r.stdout.trim()) return path.join(r.stdout.trim(), 'extension');
  }
  for (const d of [
    path.join(binDir, '..', 'share', 'postgresql', 'extension'),
    path.join(binDir, '..', 'share', 'extension'),
    `/usr/share/postgresql/${major}/extension`,
  ]) {
    if (existsSync(d)) return d;
  }
  return undefined;
}
