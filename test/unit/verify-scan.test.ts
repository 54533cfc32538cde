import { once } from 'node:events';
import { describe, expect, test } from 'vitest';
import { normalizeQualified, PlainScanner } from '../../src/archive/verify.js';

describe('normalizeQualified', () => {
  test.each([
    ['public.items', 'public.items'],
    ['public."My Table"', 'public.My Table'],
    ['"a""b".c', 'a"b.c'],
    ['"My Schema"."My Table"', 'My Schema.My Table'],
    ['"x.y".z', 'x.y.z'],
    ['"Ünïcode"."表"', 'Ünïcode.表'],
    ['items', 'items'],
    ['"only quoted"', 'only quoted'],
    ['public.""""', 'public."'],
  ])('%s -> %s', (input, expected) => {
    expect(normalizeQualified(input)).toBe(expected);
  });
});

const HEADER = '--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 16.4\n-- Dumped by pg_dump version 16.4\n\nSET statement_timeout = 0;\n';
const FOOTER = '\n--\n-- PostgreSQL database dump complete\n--\n\n';

function plainDump(longLine: string): string {
  return [
    HEADER,
    'CREATE TABLE public.items (id bigint, embedding public.vector(3));\n',
    'COPY public.items (id, embedding) FROM stdin;\n',
    `1\t[1,2,3]\n2\t${longLine}\n`,
    '\\.\n\n',
    'COPY public."My Table" (id) FROM stdin;\n1\n\\.\n\n',
    'COPY "Sch ema"."we""ird" (id) FROM stdin;\n\\.\n\n',
    'COPY public.no_columns FROM stdin;\n\\.\n\n',
    // A data line that merely contains COPY does not count: only lines that start with it.
    'INSERT INTO public.log VALUES (\'see COPY public.fake (x) FROM stdin;\');\n',
    'REFRESH MATERIALIZED VIEW public.mv;\n',
    'REFRESH MATERIALIZED VIEW "Sch ema"."Mat View";\n',
    FOOTER,
  ].join('');
}

/** Writes buf to a fresh scanner in chunks ending at the given offsets, then ends it. */
async function scan(buf: Buffer, cuts: number[]): Promise<PlainScanner> {
  const s = new PlainScanner();
  let prev = 0;
  for (const c of [...cuts, buf.length]) {
    if (c > prev) s.write(buf.subarray(prev, c));
    prev = Math.max(prev, c);
  }
  s.end();
  await once(s, 'finish');
  return s;
}

describe('PlainScanner', () => {
  const longLine = '[' + Array.from({ length: 30_000 }, (_, i) => (i % 10) / 10).join(',') + ']'; // > 100 KB
  const text = plainDump(longLine);
  const buf = Buffer.from(text, 'utf8');
  const at = (needle: string, plus = 0): number => buf.indexOf(needle) + plus;

  test('the fixture has a data line over 100 KB', () => {
    expect(Buffer.byteLength(longLine)).toBeGreaterThan(100_000);
  });

  const expectedCopies = ['public.items', 'public.My Table', 'Sch ema.we"ird', 'public.no_columns'];
  const expectedRefreshes = ['public.mv', 'Sch ema.Mat View'];

  test.each([
    { name: 'one chunk', cuts: () => [] },
    { name: 'every 7 bytes', cuts: () => Array.from({ length: Math.ceil(buf.length / 7) }, (_, i) => i * 7) },
    { name: 'every 4093 bytes', cuts: () => Array.from({ length: Math.ceil(buf.length / 4093) }, (_, i) => i * 4093) },
    {
      name: 'inside "COPY", before a newline, inside the long line and inside the footer',
      cuts: () => [at('COPY public.items', 2), at(' FROM stdin;\n1\t', 11), at('2\t[', 50), at('2\t[', 70_000), at('2\t[', 100_001), at('COPY public."My', 5), at('REFRESH', 9), at('dump complete', 4)],
    },
    { name: 'in the header, one byte at a time for the first 300 bytes', cuts: () => Array.from({ length: 300 }, (_, i) => i) },
  ])('split $name: head, tail, COPY targets and refreshes', async ({ cuts }) => {
    const s = await scan(buf, cuts());
    expect(s.head.startsWith('--\n-- PostgreSQL database dump\n')).toBe(true);
    expect(s.head.length).toBeGreaterThanOrEqual(256);
    expect(text.startsWith(s.head)).toBe(true);
    expect(s.tail).toBe(text.slice(-512));
    expect(s.tail.endsWith('-- PostgreSQL database dump complete\n--\n\n')).toBe(true);
    expect([...s.copies].sort()).toEqual([...expectedCopies].sort());
    expect([...s.refreshes].sort()).toEqual([...expectedRefreshes].sort());
  });

  test('a truncated dump has no footer in its tail', async () => {
    const truncated = Buffer.from(text.slice(0, text.indexOf('REFRESH')), 'utf8');
    const s = await scan(truncated, [1000]);
    expect(s.tail.includes('-- PostgreSQL database dump complete')).toBe(false);
    expect(s.refreshes.size).toBe(0);
    expect(s.copies.has('public.items')).toBe(true);
  });

  test('a last line without a newline is still scanned', async () => {
    const s = await scan(Buffer.from('COPY public.t (a) FROM stdin;\n\\.\nREFRESH MATERIALIZED VIEW public.last;'), [5]);
    expect([...s.copies]).toEqual(['public.t']);
    expect([...s.refreshes]).toEqual(['public.last']);
  });

  test('a COPY line longer than the scan limit still yields its table', async () => {
    const cols = Array.from({ length: 800 }, (_, i) => `column_${i}`).join(', ');
    const s = await scan(Buffer.from(`COPY public.wide (${cols}) FROM stdin;\n\\.\n`), [4000, 4100, 9000]);
    expect([...s.copies]).toEqual(['public.wide']);
  });

  test('a short dump: head is all of it, tail is all of it', async () => {
    const small = '--\n-- PostgreSQL database dump\n--\n';
    const s = await scan(Buffer.from(small), [3, 10]);
    expect(s.head).toBe(small);
    expect(s.tail).toBe(small);
  });

  // Was a bug (fixed): each chunk is decoded to UTF-8 on its own, so a multi-byte character split across two chunks (a gunzip
  // chunk boundary inside a COPY line) becomes two U+FFFD characters. The table is then missing from `copies`,
  // and quickVerify fails a good plain dump with "structure (no data for public.Ünïcode)".
  test('a COPY line whose non-ASCII table name is split inside a character', async () => {
    const b = Buffer.from('COPY public."Ünïcode" (id) FROM stdin;\n\\.\n', 'utf8');
    const cut = b.indexOf(Buffer.from('Ü', 'utf8')) + 1; // between the two bytes of "Ü"
    const s = await scan(b, [cut]);
    expect([...s.copies]).toEqual(['public.Ünïcode']);
  });
});
