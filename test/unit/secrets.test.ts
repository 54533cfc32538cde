import { describe, expect, test } from 'vitest';
import { ConsoleLogger, Secrets } from '../../src/logger.js';

describe('Secrets', () => {
  const PW = 'p@ss:/w%rd ü';

  test.each([
    { form: 'raw', text: `password is ${PW}!`, expected: 'password is ***!' },
    { form: 'encodeURIComponent', text: `url part ${encodeURIComponent(PW)} end`, expected: 'url part *** end' },
    { form: 'base64', text: `auth ${Buffer.from(PW).toString('base64')} end`, expected: 'auth *** end' },
    { form: 'every occurrence', text: `${PW} and ${PW}`, expected: '*** and ***' },
  ])('scrubs the $form form of an added secret', ({ text, expected }) => {
    const s = new Secrets();
    s.add(PW);
    expect(s.scrub(text)).toBe(expected);
  });

  test('list holds the raw, URI-encoded and base64 forms', () => {
    const s = new Secrets();
    s.add('a b/c~d');
    expect(s.list().sort()).toEqual(['a b/c~d', 'a%20b%2Fc~d', Buffer.from('a b/c~d').toString('base64')].sort());
  });

  // Was a bug (fixed): the "libpq-style" form is meant to percent-encode everything but unreserved characters, but it encodes
  // each character with encodeURIComponent, which leaves ! ' ( ) * as they are. The strict form of a password
  // such as "it's(x)" is therefore never registered, and "it%27s%28x%29" in a tool's output is not masked.
  test("the strict percent-encoding of ! ' ( ) * is scrubbed", () => {
    const s = new Secrets();
    s.add("it's(x)");
    expect(s.scrub('pw=it%27s%28x%29;')).toBe('pw=***;');
  });

  test.each([
    { text: 'postgresql://bob:hunter2@db:5432/app', expected: 'postgresql://bob:***@db:5432/app' },
    { text: 'postgres://bob:hunter2@db/app', expected: 'postgres://bob:***@db/app' },
    { text: 'POSTGRESQL://bob:hunter2@db/app', expected: 'POSTGRESQL://bob:***@db/app' },
    { text: 'failed: postgresql://:onlypw@db/app (timeout)', expected: 'failed: postgresql://:***@db/app (timeout)' },
    { text: 'a postgresql://u:x@h b postgresql://v:y%40z@h2/d', expected: 'a postgresql://u:***@h b postgresql://v:***@h2/d' },
    { text: 'postgresql://user:password@host:5432/dbname', expected: 'postgresql://user:password@host:5432/dbname' },
    { text: 'postgresql://user@host/db', expected: 'postgresql://user@host/db' },
    { text: 'postgresql://host:5432/db', expected: 'postgresql://host:5432/db' },
  ])('masks any postgres URL password: $text', ({ text, expected }) => {
    expect(new Secrets().scrub(text)).toBe(expected);
  });

  test.each([undefined, '', 'a', 'ab'])('a short value (%s) is not added', (v) => {
    const s = new Secrets();
    s.add(v);
    expect(s.list()).toEqual([]);
    expect(s.scrub('a ab abc')).toBe('a ab abc');
  });

  test('add returns the new forms; a repeat adds nothing', () => {
    const s = new Secrets();
    expect(new Set(s.add('a b/c'))).toEqual(new Set(['a b/c', 'a%20b%2Fc', Buffer.from('a b/c').toString('base64')]));
    expect(s.add('a b/c')).toEqual([]);
    expect(s.add('xy')).toEqual([]);
    expect(new Set(s.add('other/x'))).toEqual(new Set(['other/x', 'other%2Fx', Buffer.from('other/x').toString('base64')]));
  });

  // Was a bug (fixed): add() filters the forms against the set before adding them, not against each other, so when the
  // strict percent-encoding equals encodeURIComponent's (the usual case) that form is returned twice and the
  // action issues the same ::add-mask:: twice.
  test('add returns each new form once', () => {
    const s = new Secrets();
    expect(s.add('a b/c')).toEqual(['a b/c', 'a%20b%2Fc', Buffer.from('a b/c').toString('base64')]);
  });

  test('derived false registers the raw value only', () => {
    const s = new Secrets();
    expect(s.add('a b/c', false)).toEqual(['a b/c']);
    expect(s.scrub('a b/c a%20b%2Fc')).toBe('*** a%20b%2Fc');
  });

  test('a 3-character value is added', () => {
    const s = new Secrets();
    s.add('abc');
    expect(s.scrub('xabcx')).toBe('x***x');
  });

  test('a secret containing another is replaced whole', () => {
    const s = new Secrets();
    s.add('secret');
    s.add('topsecret!');
    expect(s.scrub('topsecret! secret')).toBe('*** ***');
  });

  test('ConsoleLogger scrubs every line it writes', async () => {
    const lines: string[] = [];
    const s = new Secrets();
    s.add('hunter22');
    const log = new ConsoleLogger(s, true, (l) => lines.push(l));
    log.info('pw hunter22');
    log.warning('postgresql://u:zzz@h/d');
    log.error('x hunter22');
    log.debug('d hunter22');
    await log.group('g hunter22', async () => undefined);
    expect(lines).toEqual(['pw ***', 'warning: postgresql://u:***@h/d', 'error: x ***', 'debug: d ***', '== g ***']);
  });

  test('ConsoleLogger drops debug lines unless verbose', () => {
    const lines: string[] = [];
    new ConsoleLogger(new Secrets(), false, (l) => lines.push(l)).debug('hidden');
    expect(lines).toEqual([]);
  });
});
