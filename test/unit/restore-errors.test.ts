// What pg_restore and psql say, sorted: evidence about the archive (a backup is bad) against trouble where it is
// restored (the check could not run); and their error lines without the data they quote.
import { describe, expect, test } from 'vitest';
import { restoreAdvice, withoutData } from '../../src/postgres/restore.js';

describe('restoreAdvice: damage only on the archive\'s own evidence', () => {
  test.each([
    ['pg_restore: error: could not uncompress data: invalid stored block lengths', true],
    ['pg_restore: error: could not read from input file: end of file', true],
    ['pg_restore: error: COPY failed for table "docs": ERROR:  invalid input syntax for type vector: "[1,x]"', true],
    ['pg_restore: error: did not find magic string in file header', true],
    ['pg_restore: error: could not close data file "/tmp/x/3588.dat": ...', true],
    ['pg_restore: error: could not execute query: ERROR:  could not extend file "base/16384/16385": No space left on device', false],
    ['pg_restore: error: could not execute query: ERROR:  role "app" does not exist', false],
    ['pg_restore: error: could not execute query: ERROR:  extension "vector" is not available', false],
    ['pg_restore: error: out of memory', false],
    ['pg_restore: error: could not execute query: ERROR:  permission denied for schema public', false],
    ['pg_restore: error: something nobody expected', false],
    // Words of both kinds: the restoring side's trouble wins (it may have caused the other).
    ['pg_restore: error: could not read from input file: end of file | No space left on device', false],
  ])('%s -> damage %s', (stderr, damage) => {
    expect(restoreAdvice(stderr).damage === true).toBe(damage);
  });
});

describe('withoutData', () => {
  test.each([
    [
      'ERROR:  insert or update on table "chunks" violates foreign key constraint "chunks_document_id_fkey" | DETAIL:  Key (document_id)=(4711) is not present in table "documents".',
      'ERROR:  insert or update on table "chunks" violates foreign key constraint "chunks_document_id_fkey" | DETAIL:  Key (document_id)=(value not shown) is not present in table "documents".',
    ],
    [
      'pg_restore: error: COPY failed for table "docs": ERROR:  invalid input syntax for type vector: "[0.25,x,secret@example.com]" | CONTEXT:  COPY docs, line 7, column emb: "[0.25,x,secret@example.com]"',
      'pg_restore: error: COPY failed for table "docs": ERROR:  invalid input syntax for type vector: (value not shown) | CONTEXT:  COPY docs, line 7, column emb: (row not shown)',
    ],
    ['CONTEXT:  COPY docs, line 3: "17\tsecret text\t[1,2]"', 'CONTEXT:  COPY docs, line 3: (row not shown)'],
    ['pg_restore: error: could not read from input file: end of file', 'pg_restore: error: could not read from input file: end of file'],
  ])('%s', (input, expected) => {
    expect(withoutData(input)).toBe(expected);
  });
});
