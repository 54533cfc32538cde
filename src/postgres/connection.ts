// Connection settings resolve like libpq: the URL's values, then the PG* environment, then libpq's defaults.
// The password never goes into argv: children get it through their environment.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import pg from 'pg';
import { BackupError, ConfigurationError, type ErrorCode } from '../errors.js';

export interface ConnInfo {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** Other libpq parameters (sslmode, sslrootcert, connect_timeout, application_name, options ...). */
  params: Record<string, string>;
  /** The input it came from when not database-url (test-restore-url, target-database-url): errors name it. */
  input?: string;
}

/** libpq parameters we pass on, with their environment variable. */
const PARAM_ENV: Record<string, string> = {
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslcrl: 'PGSSLCRL',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  application_name: 'PGAPPNAME',
  options: 'PGOPTIONS',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
  gssencmode: 'PGGSSENCMODE',
  channel_binding: 'PGCHANNELBINDING',
};

const URL_HINT = 'Expected postgresql://user:password@host:5432/dbname (percent-encode special characters in the password)';

/** Parses a postgresql:// URI or a libpq keyword=value string. Never includes the input in an error. */
export function parseConnectionString(s: string, what = 'database-url'): Partial<ConnInfo> & { params: Record<string, string> } {
  const text = s.trim();
  if (/^postgres(ql)?:\/\//i.test(text)) return parseUri(text, what);
  if (/^\s*\w+\s*=/.test(text)) return parseKeywordValue(text, what);
  throw new ConfigurationError(`${what} is not a PostgreSQL connection string. ${URL_HINT}`, { code: 'config-database-url' });
}

/**
 * libpq's URI rules, which WHATWG URL parsing does not follow: an empty authority (postgresql:///db?host=/tmp),
 * a percent-encoded socket directory as the host, '+' kept as '+' in parameters.
 */
function parseUri(text: string, what: string): Partial<ConnInfo> & { params: Record<string, string> } {
  const m = /^postgres(?:ql)?:\/\/([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?(?:#.*)?$/i.exec(text);
  if (!m) throw new ConfigurationError(`${what} is not a valid URL. ${URL_HINT}`, { code: 'config-database-url' });
  const [, authority = '', path = '', query = ''] = m;
  const decode = (v: string, part: string): string => {
    try {
      return decodeURIComponent(v);
    } catch {
      throw new ConfigurationError(`${what} has a badly percent-encoded ${part}. ${URL_HINT}`, { code: 'config-database-url' });
    }
  };
  const out: Partial<ConnInfo> & { params: Record<string, string> } = { params: {} };
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? '' : authority.slice(0, at);
  const hostport = at === -1 ? authority : authority.slice(at + 1);
  if (userinfo) {
    const colon = userinfo.indexOf(':');
    const user = colon === -1 ? userinfo : userinfo.slice(0, colon);
    if (user) out.user = decode(user, 'user name');
    if (colon !== -1) out.password = decode(userinfo.slice(colon + 1), 'password');
  }
  if (hostport) {
    const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(hostport);
    if (!hp || hostport.includes(',') || /\s/.test(hostport)) {
      throw new ConfigurationError(`${what} is not a valid URL (host and port). ${URL_HINT}`, { code: 'config-database-url' });
    }
    const host = hp[1]!.replace(/^\[|\]$/g, '');
    if (host) out.host = decode(host, 'host');
    if (hp[2]) {
      const port = Number(hp[2]);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigurationError(`${what} is not a valid URL: the port must be a number from 1 to 65535`, { code: 'config-database-url' });
      out.port = port;
    }
  }
  if (path) out.database = decode(path, 'database name');
  for (const pair of query.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const key = decode(eq === -1 ? pair : pair.slice(0, eq), 'parameter');
    assignParam(out, key, decode(eq === -1 ? '' : pair.slice(eq + 1), 'parameter'));
  }
  return out;
}

function parseKeywordValue(text: string, what: string): Partial<ConnInfo> & { params: Record<string, string> } {
  const out: Partial<ConnInfo> & { params: Record<string, string> } = { params: {} };
  const re = /\s*(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(text)) !== null) {
    assignParam(out, m[1]!, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!);
    last = re.lastIndex;
  }
  if (text.slice(last).trim() !== '') {
    throw new ConfigurationError(`${what} has a malformed keyword=value pair. Expected host=... port=... dbname=... user=...`, { code: 'config-database-url' });
  }
  return out;
}

function assignParam(out: Partial<ConnInfo> & { params: Record<string, string> }, key: string, value: string): void {
  switch (key) {
    case 'host':
    case 'hostaddr':
      out.host = value;
      break;
    case 'port':
      out.port = Number(value);
      break;
    case 'user':
      out.user = value;
      break;
    case 'password':
      out.password = value;
      break;
    case 'dbname':
      out.database = value;
      break;
    default:
      out.params[key] = value;
  }
}

/** Resolves a complete connection: explicit string, then PG* environment, then libpq defaults. */
export function resolveConnection(
  connectionString: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  what = 'database-url',
): ConnInfo {
  const given = connectionString ? parseConnectionString(connectionString, what) : { params: {} as Record<string, string> };
  const port = given.port ?? (env.PGPORT ? Number(env.PGPORT) : 5432);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigurationError(`${what} has an invalid port; use a number from 1 to 65535`, { code: 'config-database-url' });
  }
  const user = given.user ?? env.PGUSER ?? safeUsername();
  const params: Record<string, string> = {};
  for (const [key, envName] of Object.entries(PARAM_ENV)) {
    const v = given.params[key] ?? env[envName];
    if (v !== undefined && v !== '') params[key] = v;
  }
  for (const [k, v] of Object.entries(given.params)) if (!(k in params)) params[k] = v;
  const info: ConnInfo = {
    host: given.host ?? env.PGHOST ?? defaultHost(port),
    port,
    user,
    database: given.database ?? env.PGDATABASE ?? user,
    params,
  };
  const password = given.password ?? env.PGPASSWORD;
  if (password !== undefined && password !== '') info.password = password;
  if (what !== 'database-url') info.input = what;
  return info;
}

function safeUsername(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'postgres';
  }
}

/** libpq's default is the Unix socket directory when a server listens there, else localhost. */
function defaultHost(port: number): string {
  for (const dir of ['/var/run/postgresql', '/tmp']) {
    if (existsSync(`${dir}/.s.PGSQL.${port}`)) return dir;
  }
  return 'localhost';
}

export function describeTarget(info: ConnInfo): string {
  return `${info.database} on ${info.host}:${info.port} as ${info.user}`;
}

/**
 * Transaction-mode poolers hand each statement to any backend, so an exported snapshot cannot be shared with
 * pg_dump. Returns the fix when the connection looks like one.
 */
export function poolerProblem(info: ConnInfo, purpose: 'backup' | 'restore' = 'backup'): string | undefined {
  const host = info.host.toLowerCase();
  // A restore needs one session for its whole length (CREATE DATABASE, renames, a single transaction, pg_restore's
  // session settings); a transaction-mode pooler hands each transaction to another server session.
  const cannot = purpose === 'backup' ? 'cannot share a snapshot with pg_dump' : 'cannot hold the single session a restore needs';
  const input = info.input ?? 'database-url';
  if (host.endsWith('.pooler.supabase.com') && info.port === 6543) {
    return `${input} is Supabase's transaction-mode pooler (port 6543), which ${cannot}. Use the direct connection (db.<project>.supabase.co:5432) or the session-mode pooler (port 5432)`;
  }
  if (/-pooler[.-]/.test(host) && host.includes('neon')) {
    return `${input} is Neon's pooled endpoint (-pooler in the host name), which ${cannot}. Use the direct endpoint: remove "-pooler" from the host name`;
  }
  if (info.port === 6543) {
    return `${input} uses port 6543, usually a transaction-mode pooler (PgBouncer), which ${cannot}. Connect to the server directly or through a session-mode pooler`;
  }
  return undefined;
}

/** Environment for libpq tools (pg_dump, pg_restore, psql): the password travels here, never in argv. */
export function libpqEnv(info: ConnInfo, base: NodeJS.ProcessEnv = process.env, extraOptions = ''): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    // Inherited PG* settings (PGSERVICE, PGPASSWORD of another server ...) must not leak into this connection.
    if (!k.startsWith('PG')) env[k] = v;
  }
  if (base.PGPASSFILE && info.password === undefined) env.PGPASSFILE = base.PGPASSFILE;
  env.PGHOST = info.host;
  env.PGPORT = String(info.port);
  env.PGUSER = info.user;
  env.PGDATABASE = info.database;
  if (info.password !== undefined) env.PGPASSWORD = info.password;
  for (const [key, envName] of Object.entries(PARAM_ENV)) {
    const v = info.params[key];
    if (v !== undefined) env[envName] = v;
  }
  env.PGAPPNAME ??= 'pgvector-backup';
  const options = [info.params.options, extraOptions].filter(Boolean).join(' ');
  if (options) env.PGOPTIONS = options;
  return env;
}

/** Session settings that keep hostile role defaults from killing a long backup. */
export const SAFE_SESSION_OPTIONS = '-c statement_timeout=0 -c idle_in_transaction_session_timeout=0 -c lock_timeout=0';

export function withDatabase(info: ConnInfo, database: string): ConnInfo {
  return { ...info, database, params: { ...info.params } };
}

/** node-postgres settings for the same connection. */
export function pgConfig(info: ConnInfo, extraOptions = SAFE_SESSION_OPTIONS): pg.ClientConfig {
  const sslmode = info.params.sslmode;
  let ssl: pg.ClientConfig['ssl'] = false;
  if (sslmode === 'require' || sslmode === 'no-verify') ssl = { rejectUnauthorized: false };
  else if (sslmode === 'verify-ca' || sslmode === 'verify-full') {
    ssl = { rejectUnauthorized: true };
    if (info.params.sslrootcert) ssl.ca = readFileQuiet(info.params.sslrootcert);
  }
  const timeout = Number(info.params.connect_timeout ?? '15');
  const config: pg.ClientConfig = {
    host: info.host,
    port: info.port,
    user: info.user,
    database: info.database,
    ssl,
    application_name: info.params.application_name ?? 'pgvector-backup',
    connectionTimeoutMillis: (Number.isFinite(timeout) && timeout > 0 ? timeout : 15) * 1000,
    options: [info.params.options, extraOptions].filter(Boolean).join(' ') || undefined,
  };
  if (info.password !== undefined) config.password = info.password;
  return config;
}

function readFileQuiet(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Connects, turning the usual failures into one line that says what to do. */
export async function connect(info: ConnInfo, extraOptions?: string): Promise<pg.Client> {
  const client = new pg.Client(pgConfig(info, extraOptions));
  // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw connectionError(err, info);
  }
  return client;
}

export function connectionError(err: unknown, info: ConnInfo): BackupError {
  const e = err as { code?: string; message?: string };
  const where = `${info.host}:${info.port}`;
  const msg = e.message ?? String(err);
  const input = info.input ?? 'database-url';
  const inputs = info.input ? info.input : 'database-url or PGPASSWORD (the repository secret)';
  switch (e.code) {
    case 'ECONNREFUSED':
      return new BackupError(`Cannot connect to PostgreSQL at ${where}${info.input ? ` (${info.input})` : ''}: connection refused`, `Check the host and port in ${input} and that the server is running and accepts TCP connections from this machine`, { code: 'connect-refused', cause: err });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new BackupError(`Cannot resolve the database host "${info.host}"`, `Check the host name in ${input}`, { code: 'connect-dns', cause: err });
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new BackupError(`Cannot reach PostgreSQL at ${where}${info.input ? ` (${info.input})` : ''}: ${e.code}`, 'Check the host, the port and that a firewall or IP allow-list lets this runner in', { code: 'connect-unreachable', cause: err });
    case '28P01':
      return new BackupError(`Password authentication failed for user "${info.user}"`, `Check the password in ${inputs}`, { code: 'connect-password', cause: err });
    case '28000':
      return new BackupError(`The server refused user "${info.user}": ${msg}`, 'Check the user name, and the server\'s pg_hba.conf or IP allow-list for this runner; managed services often need sslmode=require', { code: 'connect-rejected', cause: err });
    case '3D000':
      return new BackupError(`Database "${info.database}" does not exist on ${where}`, `Check the database name at the end of ${input}${info.input ? '' : ' (or PGDATABASE)'}`, { code: 'connect-no-database', cause: err });
    case '53300':
      return new BackupError(`The server at ${where} has no free connection slots`, 'Retry later or raise max_connections; a backup needs two connections', { code: 'connect-too-many', cause: err });
    default:
      if (/timeout/i.test(msg)) {
        return new BackupError(`Cannot reach PostgreSQL at ${where}${info.input ? ` (${info.input})` : ''}: connection timed out`, 'Check the host, the port and that a firewall or IP allow-list lets this runner in', { code: 'connect-unreachable', cause: err });
      }
      return new BackupError(`Cannot connect to ${describeTarget(info)}: ${msg}`, `Check ${input}`, { code: 'connect-failed', cause: err });
  }
}

/** pg's DatabaseError (it has a SQLSTATE code and a severity) as a BackupError whose hint says what to do. */
export function databaseError(err: unknown, during: string): unknown {
  // Ours already say what happened and carry their code.
  if (err instanceof BackupError || err instanceof ConfigurationError) return err;
  const e = err as { code?: string; severity?: string; message?: string };
  if (!e || typeof e !== 'object' || typeof e.code !== 'string' || !e.severity) {
    if (e instanceof Error && /Connection terminated|ECONNRESET|EPIPE/.test(e.message)) {
      return new BackupError(`The database connection was lost during ${during}: ${e.message}`, 'The server restarted or the connection was terminated; run again', { code: 'pg-connection-lost', cause: err });
    }
    return err;
  }
  const msg = `PostgreSQL error during ${during}: ${e.message} (SQLSTATE ${e.code})`;
  const { code, hint } = sqlstateAdvice(e.code);
  return new BackupError(msg, hint, { code, cause: err });
}

/** What to do about a SQLSTATE, by its class (the first two characters) where one answer fits the class. */
export function sqlstateAdvice(sqlstate: string): { code: ErrorCode; hint: string } {
  if (sqlstate === '42501') return { code: 'pg-permission-denied', hint: 'The role lacks a privilege: grant it SELECT on the objects (or pg_read_all_data) and USAGE on their schemas' };
  if (sqlstate.startsWith('57P')) return { code: 'pg-connection-lost', hint: 'The server terminated the connection (restart, shutdown or pg_terminate_backend); run again' };
  if (sqlstate === '57014') return { code: 'pg-cancelled', hint: 'A statement was cancelled (statement_timeout or a cancel request); run again' };
  if (sqlstate === '55P03') return { code: 'pg-lock-timeout', hint: 'Another session holds a conflicting lock; retry when it finishes or raise lock-wait-timeout' };
  if (sqlstate.startsWith('53')) return { code: 'pg-out-of-resources', hint: 'The server ran out of a resource (disk, memory or connections); fix that and run again' };
  if (sqlstate.startsWith('08')) return { code: 'pg-connection-failure', hint: 'The connection failed; check the network and the server and run again' };
  if (sqlstate.startsWith('40')) return { code: 'pg-transaction-rollback', hint: 'The server rolled the transaction back (serialization failure or deadlock); run again' };
  return { code: 'pg-error', hint: 'Check the database and run again' };
}

/** A postgresql:// URL for the connection (for DATABASE_URL): parts percent-encoded; a socket directory as ?host=. */
export function toUrl(info: ConnInfo): string {
  const auth = encodeURIComponent(info.user) + (info.password !== undefined ? `:${encodeURIComponent(info.password)}` : '');
  const query: Array<[string, string]> = [];
  let authority: string;
  if (info.host.startsWith('/')) {
    query.push(['host', info.host], ['port', String(info.port)]);
    authority = `${auth}@`;
  } else {
    authority = `${auth}@${info.host.includes(':') ? `[${info.host}]` : info.host}:${info.port}`;
  }
  for (const [k, v] of Object.entries(info.params)) if (k !== 'options') query.push([k, v]);
  const q = query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `postgresql://${authority}/${encodeURIComponent(info.database)}${q ? `?${q}` : ''}`;
}
