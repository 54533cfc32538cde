// Error codes: how an error is printed with its pointer into docs/TROUBLESHOOTING.md, and which code each kind of
// failure gets (by SQLSTATE, socket error, and the error output of pg_dump, pg_restore and psql).
import { describe, expect, test } from 'vitest';
import { dumpAdvice } from '../../src/archive/pipeline.js';
import { BackupError, ConfigurationError, errorCode, errorLine, exitCodeFor } from '../../src/errors.js';
import { connectionError, databaseError, sqlstateAdvice, type ConnInfo } from '../../src/postgres/connection.js';
import { restoreAdvice } from '../../src/postgres/restore.js';

describe('errorLine: the line the action and the CLI print', () => {
  test.each([
    ['a run failure with a hint and a code', new BackupError('Cannot connect', 'Check the host', { code: 'connect-refused' }), 'Cannot connect. Check the host (see docs/TROUBLESHOOTING.md#connect-refused)', 1],
    ['a run failure without a hint', new BackupError('3 of 4 backups failed verification', undefined, { code: 'verify-failed' }), '3 of 4 backups failed verification (see docs/TROUBLESHOOTING.md#verify-failed)', 1],
    ['a configuration error', new ConfigurationError('Input format must be one of custom, plain, directory; got "tar"', { code: 'config-invalid-input' }), 'Input format must be one of custom, plain, directory; got "tar" (see docs/TROUBLESHOOTING.md#config-invalid-input)', 2],
    ['an error of ours without a code', new BackupError('m', 'h'), 'm. h', 1],
    ['a bug', new TypeError('x is undefined'), 'x is undefined', 1],
    ['something thrown that is no error', 'boom', 'boom', 1],
  ])('%s', (_what, err, line, exit) => {
    expect(errorLine(err)).toBe(line);
    expect(exitCodeFor(err)).toBe(exit);
  });

  test('the code and the cause are kept on the error', () => {
    const cause = new Error('ECONNRESET');
    const e = new BackupError('m', 'h', { code: 'storage-s3', cause });
    expect([e.code, e.cause, errorCode(e), errorCode(cause)]).toEqual(['storage-s3', cause, 'storage-s3', undefined]);
    expect(new ConfigurationError('m', { code: 'config-destination', cause }).cause).toBe(cause);
    expect('cause' in new BackupError('m')).toBe(false);
  });
});

describe('PostgreSQL errors get their code by SQLSTATE class', () => {
  test.each([
    ['42501', 'pg-permission-denied'],
    ['57P01', 'pg-connection-lost'],
    ['57P02', 'pg-connection-lost'],
    ['57014', 'pg-cancelled'],
    ['55P03', 'pg-lock-timeout'],
    ['53100', 'pg-out-of-resources'],
    ['53200', 'pg-out-of-resources'],
    ['08006', 'pg-connection-failure'],
    ['40001', 'pg-transaction-rollback'],
    ['40P01', 'pg-transaction-rollback'],
    ['22P02', 'pg-error'],
    ['42P01', 'pg-error'],
  ])('SQLSTATE %s: %s', (sqlstate, code) => {
    expect(sqlstateAdvice(sqlstate).code).toBe(code);
  });

  test('databaseError wraps a server error with its code, hint and SQLSTATE', () => {
    const pgError = Object.assign(new Error('permission denied for table secrets'), { code: '42501', severity: 'ERROR' });
    const e = databaseError(pgError, 'backup') as BackupError;
    expect(e).toBeInstanceOf(BackupError);
    expect(errorLine(e)).toBe(
      'PostgreSQL error during backup: permission denied for table secrets (SQLSTATE 42501). The role lacks a privilege: grant it SELECT on the objects (or pg_read_all_data) and USAGE on their schemas (see docs/TROUBLESHOOTING.md#pg-permission-denied)',
    );
    expect(e.cause).toBe(pgError);
  });

  test('a lost connection is pg-connection-lost; our own errors and bugs pass unchanged', () => {
    expect(errorCode(databaseError(new Error('Connection terminated unexpectedly'), 'verify'))).toBe('pg-connection-lost');
    // A message of ours that mentions a lost connection keeps its own code.
    const ours = new BackupError('Cannot connect to x: Connection terminated unexpectedly', 'Check database-url', { code: 'connect-failed' });
    expect(databaseError(ours, 'backup')).toBe(ours);
    const bug = new TypeError('x');
    expect(databaseError(bug, 'backup')).toBe(bug);
  });
});

describe('connection failures', () => {
  const info: ConnInfo = { host: 'db.internal', port: 5432, user: 'backup', database: 'vector_db', params: {} };
  test.each([
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, 'connect-refused'],
    [{ code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND' }, 'connect-dns'],
    [{ code: 'EAI_AGAIN', message: 'getaddrinfo EAI_AGAIN' }, 'connect-dns'],
    [{ code: 'ETIMEDOUT', message: 'connect ETIMEDOUT' }, 'connect-unreachable'],
    [{ code: 'EHOSTUNREACH', message: 'connect EHOSTUNREACH' }, 'connect-unreachable'],
    [{ message: 'Connection terminated due to connection timeout' }, 'connect-unreachable'],
    [{ code: '28P01', message: 'password authentication failed' }, 'connect-password'],
    [{ code: '28000', message: 'no pg_hba.conf entry' }, 'connect-rejected'],
    [{ code: '3D000', message: 'database does not exist' }, 'connect-no-database'],
    [{ code: '53300', message: 'too many connections' }, 'connect-too-many'],
    [{ message: 'self-signed certificate in certificate chain' }, 'connect-failed'],
  ])('%o: %s', (err, code) => {
    expect(connectionError(Object.assign(new Error(err.message), err), info).code).toBe(code);
  });
});

describe('pg_dump failures, from its error output', () => {
  test.each([
    ['pg_dump: error: could not obtain lock on relation "public.documents"', 'dump-lock-timeout'],
    ['pg_dump: error: query failed: ERROR:  canceling statement due to lock timeout', 'dump-lock-timeout'],
    ['pg_dump: error: Dumping the contents of table "chunks" failed: PQgetResult() failed.\npg_dump: detail: Error message from server: FATAL:  terminating connection due to administrator command', 'dump-connection-lost'],
    ['pg_dump: error: query failed: server closed the connection unexpectedly', 'dump-connection-lost'],
    ['pg_dump: error: query failed: ERROR:  permission denied for table secrets', 'dump-permission-denied'],
    ['pg_dump: error: aborting because of server version mismatch', 'dump-version-mismatch'],
    ['pg_dump: error: query failed: ERROR:  invalid snapshot identifier: "00000003-0000001B-1"', 'dump-snapshot'],
    ['pg_dump: error: could not write to output file: Broken pipe', 'dump-failed'],
    ['', 'dump-failed'],
  ])('%s: %s', (stderr, code) => {
    expect(dumpAdvice(stderr).code).toBe(code);
  });
});

describe('pg_restore and psql failures, from their error output', () => {
  test.each([
    ['pg_restore: error: could not execute query: ERROR:  extension "vector" is not available', 'restore-missing-extension'],
    ['ERROR:  could not open extension control file "/usr/share/postgresql/15/extension/vector.control": No such file or directory', 'restore-missing-extension'],
    ['pg_restore: error: could not execute query: ERROR:  role "app_owner" does not exist', 'restore-missing-roles'],
    ['ERROR:  out of memory\nDETAIL:  Failed on request of size 1073741824.', 'restore-out-of-memory'],
    ['ERROR:  could not extend file "base/16384/16385": No space left on device', 'restore-disk-full'],
    ['pg_restore: error: could not execute query: ERROR:  must be owner of table documents', 'restore-permission-denied'],
    ['psql:<stdin>:42: ERROR:  permission denied for schema public', 'restore-permission-denied'],
    ['pg_restore: error: could not execute query: ERROR:  relation "documents" already exists', 'restore-failed'],
  ])('%s: %s', (stderr, code) => {
    expect(restoreAdvice(stderr).code).toBe(code);
  });
});
