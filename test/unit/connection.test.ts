import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ConfigurationError } from '../../src/errors.js';
import {
  libpqEnv,
  parseConnectionString,
  pgConfig,
  poolerProblem,
  resolveConnection,
  SAFE_SESSION_OPTIONS,
  type ConnInfo,
  toUrl,
} from '../../src/postgres/connection.js';

function info(p: Partial<ConnInfo> = {}): ConnInfo {
  return { host: 'db.example.com', port: 5432, user: 'alice', database: 'vectors', params: {}, ...p };
}

describe('parseConnectionString', () => {
  test.each([
    {
      name: 'URI with a percent-encoded password',
      input: 'postgresql://alice:p%40ss%3A%2Fw%25rd%20%C3%BC@db.example.com:5433/vectors',
      expected: { host: 'db.example.com', port: 5433, user: 'alice', password: 'p@ss:/w%rd ü', database: 'vectors', params: {} },
    },
    {
      name: 'postgres:// scheme, no port, no password',
      input: 'postgres://bob@localhost/app',
      expected: { host: 'localhost', user: 'bob', database: 'app', params: {} },
    },
    {
      name: 'IPv6 host in brackets',
      input: 'postgresql://u:pw@[2001:db8::1]:6000/db',
      expected: { host: '2001:db8::1', port: 6000, user: 'u', password: 'pw', database: 'db', params: {} },
    },
    {
      name: 'IPv6 loopback without port',
      input: 'postgresql://u@[::1]/db',
      expected: { host: '::1', user: 'u', database: 'db', params: {} },
    },
    {
      name: 'query parameters: sslmode and others',
      input: 'postgresql://u:pw@h:5432/db?sslmode=require&connect_timeout=10&application_name=nightly',
      expected: { host: 'h', port: 5432, user: 'u', password: 'pw', database: 'db', params: { sslmode: 'require', connect_timeout: '10', application_name: 'nightly' } },
    },
    {
      name: 'query parameters naming connection fields override the authority',
      input: 'postgresql://u@h/db?host=other&port=7000&user=v&password=q&dbname=d2',
      expected: { host: 'other', port: 7000, user: 'v', password: 'q', database: 'd2', params: {} },
    },
    {
      name: 'percent-encoded user and database names',
      input: 'postgresql://us%40er@h/my%20db%2F1',
      expected: { host: 'h', user: 'us@er', database: 'my db/1', params: {} },
    },
    {
      name: 'scheme is case-insensitive and whitespace is trimmed',
      input: '  POSTGRESQL://u@h/db  ',
      expected: { host: 'h', user: 'u', database: 'db', params: {} },
    },
    {
      name: 'keyword=value form',
      input: 'host=db.internal port=6432 user=alice password=secret dbname=vectors sslmode=verify-full',
      expected: { host: 'db.internal', port: 6432, user: 'alice', password: 'secret', database: 'vectors', params: { sslmode: 'verify-full' } },
    },
    {
      name: 'keyword=value with quoted values, escapes and spaces around =',
      input: "host = h  password='it\\'s a \\\\ secret' dbname='my db' application_name=x",
      expected: { host: 'h', password: "it's a \\ secret", database: 'my db', params: { application_name: 'x' } },
    },
    {
      name: 'hostaddr counts as the host',
      input: 'hostaddr=10.0.0.5 dbname=d',
      expected: { host: '10.0.0.5', database: 'd', params: {} },
    },
    {
      name: 'empty quoted value',
      input: "host=h password=''",
      expected: { host: 'h', password: '', params: {} },
    },
  ])('$name', ({ input, expected }) => {
    expect(parseConnectionString(input)).toEqual(expected);
  });

  const SECRET = 'Sup3rS3cretPw';
  test.each([
    { name: 'plain text', input: `${SECRET}` },
    { name: 'mysql URL', input: `mysql://root:${SECRET}@h/db` },
    { name: 'port out of range', input: `postgresql://u:${SECRET}@h:99999/db` },
    { name: 'space in host', input: `postgresql://u:${SECRET}@bad host/db` },
    { name: 'badly percent-encoded password', input: `postgresql://u:${SECRET}%zz@h/db` },
    { name: 'badly percent-encoded database', input: `postgresql://u:${SECRET}@h/db%E0%A4%A` },
    { name: 'malformed keyword=value', input: `host=h password=${SECRET} dangling` },
    { name: 'keyword=value with an unquoted space in a value', input: `host=h password=${SECRET} x y=1` },
    { name: 'empty', input: '' },
  ])('invalid ($name) throws a ConfigurationError without the password', ({ input }) => {
    let caught: unknown;
    try {
      parseConnectionString(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigurationError);
    const message = (caught as Error).message;
    expect(message).toMatch(/^database-url /);
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain(encodeURIComponent(SECRET));
  });

  // Was a bug (fixed): libpq documents `postgresql:///mydb?host=/tmp` (empty authority, the host given as a parameter). Parsing
  // the URI as http:// makes the WHATWG URL parser skip the empty authority and take "mydb" for the host name,
  // so the database name is lost (and the connection would go to the user's default database).
  test('empty authority with the host as a parameter keeps the database name (libpq syntax)', () => {
    expect(parseConnectionString('postgresql:///mydb?host=/tmp')).toEqual({ host: '/tmp', database: 'mydb', params: {} });
  });

  // Was a bug (fixed): libpq accepts a Unix-socket directory as a percent-encoded host (postgresql://%2Fvar%2Frun%2Fpostgresql/db);
  // the http URL parser rejects "/" in a host, so this documented form fails as "not a valid URL".
  test('percent-encoded Unix socket directory as the host (libpq syntax)', () => {
    expect(parseConnectionString('postgresql://%2Fvar%2Frun%2Fpostgresql/mydb')).toEqual({ host: '/var/run/postgresql', database: 'mydb', params: {} });
  });

  // Was a bug (fixed): URLSearchParams decodes "+" as a space (form encoding); libpq only percent-decodes, so
  // ?application_name=a+b is "a+b" to libpq (and to psql) but "a b" here.
  test('a "+" in a query parameter stays a "+", as in libpq', () => {
    expect(parseConnectionString('postgresql://h/db?application_name=a+b').params).toEqual({ application_name: 'a+b' });
  });
});

describe('resolveConnection', () => {
  const ENV = {
    PGHOST: 'envhost',
    PGPORT: '6000',
    PGUSER: 'envuser',
    PGPASSWORD: 'envpw',
    PGDATABASE: 'envdb',
    PGSSLMODE: 'require',
    PGAPPNAME: 'envapp',
  };

  test('the URL beats the PG* environment', () => {
    expect(resolveConnection('postgresql://urluser:urlpw@urlhost:7000/urldb?sslmode=disable', ENV)).toEqual({
      host: 'urlhost',
      port: 7000,
      user: 'urluser',
      password: 'urlpw',
      database: 'urldb',
      params: { sslmode: 'disable', application_name: 'envapp' },
    });
  });

  test('the environment fills what the URL leaves out', () => {
    expect(resolveConnection('postgresql://urlhost/urldb', ENV)).toEqual({
      host: 'urlhost',
      port: 6000,
      user: 'envuser',
      password: 'envpw',
      database: 'urldb',
      params: { sslmode: 'require', application_name: 'envapp' },
    });
  });

  test('no URL: the environment alone', () => {
    expect(resolveConnection(undefined, ENV)).toEqual({
      host: 'envhost',
      port: 6000,
      user: 'envuser',
      password: 'envpw',
      database: 'envdb',
      params: { sslmode: 'require', application_name: 'envapp' },
    });
  });

  test('defaults: port 5432, the OS user, database = user, no password, no params', () => {
    const r = resolveConnection('host=h', {});
    expect(r).toEqual({ host: 'h', port: 5432, user: os.userInfo().username, database: os.userInfo().username, params: {} });
    expect('password' in r).toBe(false);
  });

  test('database defaults to the resolved user', () => {
    expect(resolveConnection('postgresql://carol@h', {}).database).toBe('carol');
    expect(resolveConnection('host=h', { PGUSER: 'dave' }).database).toBe('dave');
  });

  test('empty PGPASSWORD and empty PG* params are absent', () => {
    const r = resolveConnection('host=h user=u', { PGPASSWORD: '', PGSSLMODE: '' });
    expect('password' in r).toBe(false);
    expect(r.params).toEqual({});
  });

  test('unknown URL parameters pass through', () => {
    expect(resolveConnection('postgresql://u@h/db?keepalives=1&sslmode=require', {}).params).toEqual({ sslmode: 'require', keepalives: '1' });
  });

  test.each([
    { PGPORT: 'abc' },
    { PGPORT: '70000' },
    { PGPORT: '0' },
    { PGPORT: '54.32' },
  ])('invalid PGPORT $PGPORT throws a ConfigurationError', (env) => {
    expect(() => resolveConnection('host=h', env)).toThrow(ConfigurationError);
    expect(() => resolveConnection('host=h', env)).toThrow('database-url has an invalid port; use a number from 1 to 65535');
  });

  test('an invalid keyword port names the input being resolved', () => {
    expect(() => resolveConnection('host=h port=x', {}, 'test-restore-url')).toThrow('test-restore-url has an invalid port');
  });

  test('empty PGPORT means the default', () => {
    expect(resolveConnection('host=h', { PGPORT: '' }).port).toBe(5432);
  });
});

describe('poolerProblem', () => {
  test.each([
    { host: 'aws-0-us-east-1.pooler.supabase.com', port: 6543, refused: /Supabase's transaction-mode pooler/ },
    { host: 'AWS-0-EU-WEST-2.POOLER.SUPABASE.COM', port: 6543, refused: /Supabase's transaction-mode pooler/ },
    { host: 'aws-0-us-east-1.pooler.supabase.com', port: 5432, refused: undefined },
    { host: 'db.abcdefgh.supabase.co', port: 5432, refused: undefined },
    { host: 'ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech', port: 5432, refused: /Neon's pooled endpoint/ },
    { host: 'ep-cool-darkness-123456.us-east-2.aws.neon.tech', port: 5432, refused: undefined },
    { host: 'db.example.com', port: 5432, refused: undefined },
    { host: 'localhost', port: 6543, refused: /port 6543, usually a transaction-mode pooler/ },
  ])('$host:$port', ({ host, port, refused }) => {
    const problem = poolerProblem(info({ host, port }));
    if (refused === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(refused);
  });
});

describe('libpqEnv', () => {
  const BASE = {
    PATH: '/usr/bin',
    HOME: '/home/runner',
    LANG: 'C.UTF-8',
    PGSERVICE: 'prod',
    PGPASSWORD: 'other-server-password',
    PGHOSTADDR: '10.9.9.9',
    PGSSLMODE: 'disable',
    PGPASSFILE: '/home/runner/.pgpass',
    PGOPTIONS: '-c search_path=evil',
  };

  test('the connection goes in PG* variables, inherited PG* settings are dropped, others kept', () => {
    const env = libpqEnv(info({ password: 'p@ss:/w%rd ü', params: { sslmode: 'require' } }), BASE);
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/runner',
      LANG: 'C.UTF-8',
      PGHOST: 'db.example.com',
      PGPORT: '5432',
      PGUSER: 'alice',
      PGDATABASE: 'vectors',
      PGPASSWORD: 'p@ss:/w%rd ü',
      PGSSLMODE: 'require',
      PGAPPNAME: 'pgvector-backup',
    });
  });

  test('without a password the inherited PGPASSFILE is kept, and PGPASSWORD is not set', () => {
    const env = libpqEnv(info(), BASE);
    expect(env.PGPASSFILE).toBe('/home/runner/.pgpass');
    expect(env.PGPASSWORD).toBeUndefined();
    expect(env.PGSERVICE).toBeUndefined();
    expect(env.PGHOSTADDR).toBeUndefined();
    expect(env.PGSSLMODE).toBeUndefined();
    expect(env.PGOPTIONS).toBeUndefined();
  });

  test.each<{ params: Record<string, string>; extra: string; expected: string | undefined }>([
    { params: {}, extra: '', expected: undefined },
    { params: {}, extra: SAFE_SESSION_OPTIONS, expected: SAFE_SESSION_OPTIONS },
    { params: { options: '-c work_mem=64MB' }, extra: '', expected: '-c work_mem=64MB' },
    { params: { options: '-c work_mem=64MB' }, extra: '-c lock_timeout=0', expected: '-c work_mem=64MB -c lock_timeout=0' },
  ])('PGOPTIONS from params $params and extra "$extra"', ({ params, extra, expected }) => {
    expect(libpqEnv(info({ params }), {}, extra).PGOPTIONS).toBe(expected);
  });

  test('parameters map to their libpq variables; application_name overrides the default', () => {
    const env = libpqEnv(
      info({ params: { sslmode: 'verify-full', sslrootcert: '/ca.pem', connect_timeout: '7', application_name: 'mine', target_session_attrs: 'read-write', keepalives: '1' } }),
      {},
    );
    expect(env).toEqual({
      PGHOST: 'db.example.com',
      PGPORT: '5432',
      PGUSER: 'alice',
      PGDATABASE: 'vectors',
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: '/ca.pem',
      PGCONNECT_TIMEOUT: '7',
      PGAPPNAME: 'mine',
      PGTARGETSESSIONATTRS: 'read-write',
    });
  });
});

describe('pgConfig', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-conn-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('sslmode require: TLS without certificate checks; everything else exact', () => {
    expect(pgConfig(info({ password: 'pw', params: { sslmode: 'require' } }))).toEqual({
      host: 'db.example.com',
      port: 5432,
      user: 'alice',
      database: 'vectors',
      password: 'pw',
      ssl: { rejectUnauthorized: false },
      application_name: 'pgvector-backup',
      connectionTimeoutMillis: 15_000,
      options: SAFE_SESSION_OPTIONS,
    });
  });

  test.each([
    { sslmode: undefined, ssl: false },
    { sslmode: 'disable', ssl: false },
    { sslmode: 'prefer', ssl: false },
    { sslmode: 'require', ssl: { rejectUnauthorized: false } },
    { sslmode: 'no-verify', ssl: { rejectUnauthorized: false } },
    { sslmode: 'verify-ca', ssl: { rejectUnauthorized: true } },
    { sslmode: 'verify-full', ssl: { rejectUnauthorized: true } },
  ])('sslmode $sslmode -> ssl $ssl', ({ sslmode, ssl }) => {
    const params: Record<string, string> = sslmode ? { sslmode } : {};
    expect(pgConfig(info({ params })).ssl).toEqual(ssl);
  });

  test('verify-full reads the sslrootcert file as the CA', () => {
    const ca = path.join(dir, 'root.crt');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    expect(pgConfig(info({ params: { sslmode: 'verify-full', sslrootcert: ca } })).ssl).toEqual({
      rejectUnauthorized: true,
      ca: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    });
  });

  test.each([
    { connect_timeout: '5', ms: 5000 },
    { connect_timeout: '0', ms: 15_000 },
    { connect_timeout: 'abc', ms: 15_000 },
  ])('connect_timeout $connect_timeout -> $ms ms', ({ connect_timeout, ms }) => {
    expect(pgConfig(info({ params: { connect_timeout } })).connectionTimeoutMillis).toBe(ms);
  });

  test('options and application_name from params; no password key without a password', () => {
    const c = pgConfig(info({ params: { options: '-c work_mem=1GB', application_name: 'x' } }), '');
    expect(c.options).toBe('-c work_mem=1GB');
    expect(c.application_name).toBe('x');
    expect('password' in c).toBe(false);
    expect(pgConfig(info(), '').options).toBeUndefined();
  });
});

describe('toUrl (DATABASE_URL for migrate-command)', () => {
  test.each([
    [{ host: 'db.example.com', port: 5433, user: 'alice', password: 'p@ss:/w%rd ü', database: 'my db', params: { sslmode: 'require' } }],
    [{ host: '/tmp/pgvb-cluster-x', port: 54321, user: 'postgres', database: 'restore', params: {} }],
    [{ host: '::1', port: 5432, user: 'u', password: 'x', database: 'd', params: {} }],
  ])('round-trips through parseConnectionString: %j', (info) => {
    const parsed = resolveConnection(toUrl(info as ConnInfo), {});
    expect(parsed).toEqual(info);
  });
});
