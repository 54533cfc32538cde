// The benchmark's pure parts: statistics, targets, options, variant planning, rendering and the dataset's
// deterministic generators. (The benchmark itself is run with npm run bench; no timings are asserted here.)
import { describe, expect, test } from 'vitest';
import { machineSlug, resultsBase } from '../../bench/bench.js';
import { bodyText, copyStream, embedding, halfBits, metadata, prng } from '../../bench/dataset.js';
import { DEFAULTS, defaultVariants, parseBenchArgs, parseVariantId, planVariants, roundsFor, UsageError } from '../../bench/options.js';
import { describeDataset, markdownTable, renderMarkdown, renderSvg, renderTable, rowCells, type RunInfo } from '../../bench/render.js';
import { checkTargets, median, summarize, type Row, type Sample, type VariantResult } from '../../bench/stats.js';

describe('median', () => {
  test.each([
    { xs: [5], expected: 5 },
    { xs: [3, 1, 2], expected: 2 },
    { xs: [4, 1, 3, 2], expected: 2.5 },
    { xs: [10, 10, 1], expected: 10 },
  ])('$xs -> $expected', ({ xs, expected }) => {
    expect(median(xs)).toBe(expected);
  });
  test('of nothing is NaN, and the input is left unsorted', () => {
    expect(median([])).toBeNaN();
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
});

const s = (wall: number, extra: Partial<Sample> = {}): Sample => ({ wall, cpu: wall / 2, serverCpu: wall / 3, rss: null, hnsw: null, ...extra });
const MB = 1024 * 1024;

function results(): VariantResult[] {
  return [
    { id: 'floor', label: 'floor', kind: 'floor', owner: 'postgres', samples: [s(10), s(12), s(11)], archiveBytes: null },
    { id: 'kit:backup', label: 'kit', kind: 'backup', owner: 'kit', samples: [s(100)], archiveBytes: 800e6 },
    { id: 'backup:custom/zstd', label: 'ours', kind: 'backup', owner: 'ours', samples: [s(13, { rss: 150 * MB }), s(12, { rss: 160 * MB }), s(14, { rss: 155 * MB })], archiveBytes: 780e6 },
    { id: 'kit:verify', label: 'kit verify', kind: 'verify', owner: 'kit', samples: [s(8)], archiveBytes: 800e6 },
    { id: 'verify:custom/zstd', label: 'verify', kind: 'verify', owner: 'ours', samples: [s(2, { rss: 120 * MB })], archiveBytes: 780e6 },
    { id: 'kit:restore', label: 'kit restore', kind: 'restore', owner: 'kit', samples: [s(1200, { hnsw: 1000 })], archiveBytes: 800e6 },
    { id: 'restore:custom/zstd', label: 'restore', kind: 'restore', owner: 'ours', samples: [s(300, { rss: 140 * MB, hnsw: 240 }), s(320, { rss: 150 * MB, hnsw: 250 })], archiveBytes: 780e6 },
    { id: 'backup:plain/gzip', label: 'broken', kind: 'backup', owner: 'ours', samples: [], archiveBytes: null, error: 'exited with code 1' },
  ];
}

describe('summarize', () => {
  const rows = summarize(results(), 2e9);
  const row = (id: string): Row => rows.find((r) => r.id === id)!;

  test('median wall, its range, max RSS and the rate of source data', () => {
    const ours = row('backup:custom/zstd');
    expect(ours).toMatchObject({ rounds: 3, wall: 13, wallMin: 12, wallMax: 14, cpu: 6.5, rss: 160 * MB, archiveBytes: 780e6 });
    expect(ours.mbps).toBeCloseTo(2000 / 13, 6);
  });

  test('ratios: to the floor for backups and the floor only, to the old kit for the same kind of job', () => {
    expect(row('floor').vsFloor).toBe(1);
    expect(row('backup:custom/zstd').vsFloor).toBeCloseTo(13 / 11, 9);
    expect(row('backup:custom/zstd').vsKit).toBeCloseTo(0.13, 9);
    expect(row('kit:backup').vsKit).toBeNull();
    expect(row('verify:custom/zstd').vsFloor).toBeNull();
    expect(row('verify:custom/zstd').vsKit).toBe(0.25);
    expect(row('restore:custom/zstd').vsKit).toBeCloseTo(310 / 1200, 9);
  });

  test('the HNSW share is the median build time over the median wall time', () => {
    expect(row('restore:custom/zstd').hnswShare).toBeCloseTo(245 / 310, 9);
    expect(row('kit:restore').hnswShare).toBeCloseTo(1000 / 1200, 9);
    expect(row('backup:custom/zstd').hnswShare).toBeNull();
  });

  test('a failed variant keeps its error and is no baseline', () => {
    expect(row('backup:plain/gzip').error).toBe('exited with code 1');
    const withoutKit = summarize(
      results().map((r) => (r.id === 'kit:backup' ? { ...r, error: 'failed' } : r)),
      2e9,
    );
    expect(withoutKit.find((r) => r.id === 'backup:custom/zstd')!.vsKit).toBeNull();
  });
});

describe('checkTargets', () => {
  const rows = summarize(results(), 2e9);
  test('each target with what was measured and whether it is met', () => {
    const checks = checkTargets({ rows, defaultBackup: 'backup:custom/zstd', sourceBytes: 2e9 });
    expect(checks.map((c) => [c.target, c.met])).toEqual([
      ['Backup (backup:custom/zstd) at most 1.25x the raw floor', true],
      ['Backup at least 2x faster than pg_dump | gzip, archive no larger', true],
      ['Peak RSS of our process under 200 MB (every variant of ours)', true],
      ['restore:custom/zstd at least 3x faster than gunzip -c | psql', true],
      ['verify:custom/zstd at least 300 MB/s of archive', true],
    ]);
    expect(checks[0]!.measured).toBe('1.18x (13.0 s vs 11.0 s)');
    expect(checks[2]!.measured).toBe('160 MiB at most (backup:custom/zstd)');
    expect(checks[3]!.measured).toContain('3.87x faster');
    expect(checks[3]!.measured).toContain('HNSW build 79% of it');
    expect(checks[4]!.measured).toBe('390 MB/s (744 MiB in 2.00 s)');
  });

  test('missed targets: slower than 1.25x the floor, a larger archive, too much memory, a slow verify', () => {
    const slow = summarize(
      results().map((r) =>
        r.id === 'backup:custom/zstd'
          ? { ...r, samples: [s(14, { rss: 210 * MB })], archiveBytes: 801e6 }
          : r.id === 'verify:custom/zstd'
            ? { ...r, samples: [s(3)] }
            : r,
      ),
      2e9,
    );
    const checks = checkTargets({ rows: slow, defaultBackup: 'backup:custom/zstd', sourceBytes: 2e9 });
    expect(checks.slice(0, 3).map((c) => c.met)).toEqual([false, false, false]);
    expect(checks.find((c) => c.target.startsWith('verify'))!.met).toBe(false);
  });

  test('the 5x dataset: peak RSS within 10% of the other run', () => {
    const within = checkTargets({ rows, defaultBackup: 'backup:custom/zstd', sourceBytes: 10e9, otherRun: { rss: 150 * MB, sourceBytes: 2e9, label: 'base.json' } });
    expect(within.find((c) => c.target.includes('dataset 5x'))).toMatchObject({ met: true, measured: expect.stringContaining('6.7%') });
    const over = checkTargets({ rows, defaultBackup: 'backup:custom/zstd', sourceBytes: 10e9, otherRun: { rss: 140 * MB, sourceBytes: 2e9, label: 'base.json' } });
    expect(over.find((c) => c.target.includes('dataset 5x'))!.met).toBe(false);
  });

  test('targets whose variants did not run are reported as not measured', () => {
    const checks = checkTargets({ rows: summarize(results().filter((r) => r.id.startsWith('backup')), 2e9), defaultBackup: 'backup:custom/zstd', sourceBytes: 2e9 });
    expect(checks[0]).toMatchObject({ met: null, measured: 'not run' });
    expect(checks[1]).toMatchObject({ met: null, measured: 'not run' });
  });
});

describe('parseBenchArgs', () => {
  test.each([
    { argv: [], expected: DEFAULTS },
    { argv: ['--rows', '20000', '--dims=384'], expected: { ...DEFAULTS, rows: 20000, dims: 384 } },
    { argv: ['--halfvec', '--tables', '4'], expected: { ...DEFAULTS, halfvec: true, tables: 4 } },
    { argv: ['--rounds', '1'], expected: { ...DEFAULTS, rounds: 1, restoreRounds: 1 } },
    { argv: ['--rounds', '5', '--restore-rounds', '3', '--slow-rounds', '2'], expected: { ...DEFAULTS, rounds: 5, restoreRounds: 3, slowRounds: 2 } },
    { argv: ['--only', 'floor, backup:custom/zstd-1'], expected: { ...DEFAULTS, only: ['floor', 'backup:custom/zstd-1'] } },
    { argv: ['--out', '/tmp/x', '--seed', '0', '--baseline', 'a.json', '--cli', 'b/index.js'], expected: { ...DEFAULTS, out: '/tmp/x', seed: 0, baseline: 'a.json', cli: 'b/index.js' } },
    { argv: ['--no-index'], expected: { ...DEFAULTS, noIndex: true } },
    { argv: ['-h'], expected: { ...DEFAULTS, help: true } },
  ])('$argv', ({ argv, expected }) => {
    expect(parseBenchArgs(argv)).toEqual(expected);
  });

  test.each([
    { argv: ['--rows', '0'], message: '--rows needs a whole number of at least 1; got "0"' },
    { argv: ['--rows'], message: '--rows needs a whole number of at least 1; got nothing' },
    { argv: ['--dims', '1.5'], message: '--dims needs a whole number of at least 1; got "1.5"' },
    { argv: ['--dims', '20000'], message: '--dims must be at most 16000 (pgvector limit)' },
    { argv: ['--tables', '5', '--rows', '4'], message: '--tables cannot exceed --rows' },
    { argv: ['--only', 'backup:tar/zstd'], message: 'Unknown variant "backup:tar/zstd"; see npm run bench -- --help' },
    { argv: ['--only', 'backup:custom/gzip-12'], message: 'Variant "backup:custom/gzip-12": gzip has no level 12' },
    { argv: ['--fast'], message: 'Unknown option --fast; see npm run bench -- --help' },
  ])('$argv is refused', ({ argv, message }) => {
    expect(() => parseBenchArgs(argv)).toThrow(new UsageError(message));
  });
});

describe('variants', () => {
  test.each([
    { id: 'floor', expected: { kind: 'floor', owner: 'postgres', weight: 'fast' } },
    { id: 'kit:restore', expected: { kind: 'restore', owner: 'kit', weight: 'slow', needs: 'kit:backup' } },
    { id: 'backup:custom/zstd-1', expected: { kind: 'backup', owner: 'ours', weight: 'fast', ours: { format: 'custom', compression: 'zstd', level: 1 } } },
    { id: 'backup:plain/gzip', expected: { kind: 'backup', owner: 'ours', weight: 'slow', ours: { format: 'plain', compression: 'gzip' } } },
    { id: 'test-restore:custom/zstd', expected: { kind: 'restore', owner: 'ours', weight: 'restore', needs: 'backup:custom/zstd' } },
    { id: 'verify:directory/gzip-3', expected: { kind: 'verify', owner: 'ours', weight: 'fast', needs: 'backup:directory/gzip-3' } },
  ])('$id', ({ id, expected }) => {
    expect(parseVariantId(id)).toMatchObject({ id, ...expected });
  });

  test('prerequisites are added and every archive is written before it is read', () => {
    expect(planVariants(['restore:custom/zstd', 'kit:verify', 'floor']).map((v) => v.id)).toEqual(['floor', 'backup:custom/zstd', 'kit:backup', 'kit:verify', 'restore:custom/zstd']);
  });

  test('the default set has the issue\'s comparisons around the product default, once each', () => {
    const ids = defaultVariants('custom', 'zstd');
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ['floor', 'kit:backup', 'pg_dump:custom', 'backup:custom/zstd', 'kit:verify', 'verify:custom/zstd', 'kit:restore', 'pg_restore:custom', 'test-restore:custom/zstd', 'restore:custom/zstd']) {
      expect(ids).toContain(id);
    }
    expect(defaultVariants('plain', 'gzip')).toContain('restore:plain/gzip');
  });

  test('rounds by weight', () => {
    const o = { rounds: 3, slowRounds: 1, restoreRounds: 2 };
    expect(roundsFor(parseVariantId('floor'), o)).toBe(3);
    expect(roundsFor(parseVariantId('kit:backup'), o)).toBe(1);
    expect(roundsFor(parseVariantId('restore:custom/zstd'), o)).toBe(2);
  });
});

describe('rendering', () => {
  const rows = summarize(results(), 2e9);

  test('the terminal table: one line per variant under aligned headings, numbers right-aligned', () => {
    const lines = renderTable(rows).trimEnd().split('\n');
    expect(lines).toHaveLength(2 + rows.length);
    expect(lines[0]).toMatch(/^variant\s+n\s+wall s\s+min-max s\s+CPU s/);
    const ours = lines.find((l) => l.startsWith('backup:custom/zstd'))!;
    expect(ours.split(/\s{2,}/)).toEqual(['backup:custom/zstd', '3', '13.0', '12.0-14.0', '6.5', '4.3', '160', '780.0', '154', '1.18x', '0.13x', '-', '-']);
    // Right-aligned: each line's "wall s" value ends where its heading does.
    const end = lines[0]!.indexOf('wall s') + 'wall s'.length;
    expect(ours.slice(0, end).endsWith('13.0')).toBe(true);
    expect(lines.find((l) => l.startsWith('backup:plain/gzip'))).toMatch(/FAILED\s+exited with code 1/);
  });

  test('markdown tables escape pipes', () => {
    expect(markdownTable(['a', 'b'], [['x|y', '1']])).toBe('| a | b |\n| --- | ---: |\n| x\\|y | 1 |');
  });

  test('the report names the machine, the dataset and the targets', () => {
    const info: RunInfo = {
      date: '2026-11-25',
      machine: { slug: '2cpu-amd-epyc', cpus: 2, cpuModel: 'AMD EPYC', memoryBytes: 24 * 1024 ** 3, os: 'Debian 12', node: '24.21.0', postgres: '15.20', pgvector: '0.8.0', pgDump: '15.20', serverSettings: { maintenance_work_mem: '64MB' } },
      dataset: { rows: 200000, dims: 768, type: 'vector', tables: 1, textChars: 500, seed: 42, sourceBytes: 2.1e9, databaseBytes: 3.4e9, seedSeconds: 40, indexSeconds: 300, fingerprint: 'abc' },
      rounds: { fast: 3, slow: 1 },
      notes: ['a note'],
    };
    const md = renderMarkdown(info, rows, checkTargets({ rows, defaultBackup: 'backup:custom/zstd', sourceBytes: 2e9 }));
    expect(md).toContain('- Machine: 2 CPUs (AMD EPYC), 24 GiB RAM, Debian 12; Node 24.21.0; PostgreSQL 15.20 with pgvector 0.8.0; pg_dump 15.20');
    expect(md).toContain('200,000 rows in 1 table of (id, 500 chars of text, jsonb metadata, vector(768))');
    expect(md).toContain('2.10 GB as COPY text');
    expect(md).toContain('| Backup (backup:custom/zstd) at most 1.25x the raw floor | 1.18x (13.0 s vs 11.0 s) | met |');
    expect(md).toContain('- a note');
    expect(md.split('\n').filter((l) => l.startsWith('| backup:custom/zstd |'))).toHaveLength(1);
    expect(describeDataset({ ...info.dataset, hnsw: false })).toContain('without indexes but the primary key');
  });

  test('the SVG: one bar per variant and panel, grouped by job with a time scale per group, text escaped', () => {
    const svg = renderSvg(rows, 'a <b> & c');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('a &lt;b&gt; &amp; c');
    expect(svg).not.toContain('broken');
    const valid = rows.filter((r) => !r.error);
    const bars = [...svg.matchAll(/<rect x="190" y="[\d.]+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(bars).toHaveLength(valid.length);
    const width = (id: string): number => bars[valid.findIndex((r) => r.id === id)]!;
    // The slowest of each group gets the full width (280), the others in proportion within the group.
    expect(width('kit:backup')).toBeCloseTo(280, 1);
    expect(width('floor')).toBeCloseTo((11 / 100) * 280, 1);
    expect(width('kit:restore')).toBeCloseTo(280, 1);
    expect(width('restore:custom/zstd')).toBeCloseTo((310 / 1200) * 280, 1);
    expect(width('kit:verify')).toBeCloseTo(280, 1);
    for (const g of ['backup', 'verify', 'restore']) expect(svg).toContain(`font-weight="bold">${g}</text>`);
    // Size bars only for variants with an archive.
    const sizeBars = [...svg.matchAll(/fill-opacity="0.7"/g)];
    expect(sizeBars).toHaveLength(valid.filter((r) => r.archiveBytes !== null).length);
  });

  test('a row of a variant that failed says so', () => {
    expect(rowCells(rows.find((r) => r.error)!).slice(2, 4)).toEqual(['FAILED', 'exited with code 1']);
  });
});

describe('results file names', () => {
  test.each([
    { cpus: 2, model: 'AMD EPYC', expected: '2cpu-amd-epyc' },
    { cpus: 4, model: 'Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz', expected: '4cpu-intel-xeon' },
    { cpus: 8, model: 'Apple M2 Pro', expected: '8cpu-apple-m2' },
  ])('$model', ({ cpus, model, expected }) => {
    expect(machineSlug(cpus, model)).toBe(expected);
  });
  test('the default dataset has the plain name; others say their size', () => {
    expect(resultsBase('2026-11-25', '2cpu-amd-epyc', DEFAULTS)).toBe('2026-11-25-2cpu-amd-epyc');
    expect(resultsBase('2026-11-25', '2cpu-amd-epyc', { ...DEFAULTS, rows: 1_000_000, dims: 128 })).toBe('2026-11-25-2cpu-amd-epyc-1000000x128');
    expect(resultsBase('2026-11-25', 'x', { ...DEFAULTS, halfvec: true, tables: 4 })).toBe('2026-11-25-x-200000x768h-4t');
  });
});

describe('dataset generators', () => {
  test('the PRNG is deterministic per seed and uniform in [0, 1)', () => {
    const a = prng(42);
    const b = prng(42);
    const xs = Array.from({ length: 10_000 }, () => a());
    expect(Array.from({ length: 10_000 }, () => b())).toEqual(xs);
    expect(prng(43)()).not.toBe(xs[0]);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((x, y) => x + y, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
  });

  test('text, metadata and unit-length embeddings', () => {
    const r = prng(7);
    const t = bodyText(r, 500);
    expect(t).toHaveLength(500);
    expect(t).toMatch(/^[a-z. ]+$/);
    const m = JSON.parse(metadata(r, 70)) as Record<string, unknown>;
    expect(Object.keys(m)).toEqual(['source', 'lang', 'page', 'doc', 'tags', 'score']);
    expect(m.doc).toBe('doc-10');
    const v = new Float64Array(768);
    embedding(r, 768, v);
    expect(Math.hypot(...v)).toBeCloseTo(1, 9);
    const odd = new Float64Array(5);
    embedding(r, 5, odd);
    expect(Math.hypot(...odd)).toBeCloseTo(1, 9);
  });

  test.each([
    { x: 1, bits: 0x3c00 },
    { x: -2, bits: 0xc000 },
    { x: 0.5, bits: 0x3800 },
    { x: 65504, bits: 0x7bff },
    { x: 1e6, bits: 0x7c00 },
    { x: 0, bits: 0 },
    { x: 2 ** -24, bits: 0x0001 },
    { x: 2 ** -15, bits: 0x0200 },
    { x: 1e-9, bits: 0 },
    { x: 0.1, bits: 0x2e66 },
  ])('half-precision bits of $x', ({ x, bits }) => {
    expect(halfBits(x)).toBe(bits);
  });

  async function bytes(o: Parameters<typeof copyStream>[0]): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of copyStream(o)) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }

  test('binary COPY: header, rows of four fields with the vector as pgvector receives it, trailer; the same bytes for the same seed', async () => {
    const o = { firstId: 1, rows: 3, dims: 4, halfvec: false, textChars: 20, seed: 5 };
    const b = await bytes(o);
    expect(b.subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0');
    expect(b.readInt32BE(11)).toBe(0);
    expect(b.readInt32BE(15)).toBe(0);
    let p = 19;
    for (let row = 1; row <= 3; row++) {
      expect(b.readInt16BE(p)).toBe(4);
      expect(b.readInt32BE(p + 2)).toBe(8);
      expect(Number(b.readBigInt64BE(p + 6))).toBe(row);
      p += 14;
      const textLen = b.readInt32BE(p);
      expect(textLen).toBe(20);
      p += 4 + textLen;
      const jsonLen = b.readInt32BE(p);
      expect(b[p + 4]).toBe(1);
      expect(() => JSON.parse(b.subarray(p + 5, p + 4 + jsonLen).toString())).not.toThrow();
      p += 4 + jsonLen;
      expect(b.readInt32BE(p)).toBe(4 + 4 * 4);
      expect(b.readInt16BE(p + 4)).toBe(4);
      expect(b.readInt16BE(p + 6)).toBe(0);
      const v = [0, 1, 2, 3].map((i) => b.readFloatBE(p + 8 + 4 * i));
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
      p += 4 + 4 + 16;
    }
    expect(b.readInt16BE(p)).toBe(-1);
    expect(p + 2).toBe(b.length);
    expect((await bytes(o)).equals(b)).toBe(true);
    expect((await bytes({ ...o, seed: 6 })).equals(b)).toBe(false);
  });

  test('halfvec rows carry two bytes per dimension', async () => {
    const full = await bytes({ firstId: 1, rows: 2, dims: 8, halfvec: false, textChars: 10, seed: 1 });
    const half = await bytes({ firstId: 1, rows: 2, dims: 8, halfvec: true, textChars: 10, seed: 1 });
    expect(full.length - half.length).toBe(2 * 8 * 2);
  });
});
