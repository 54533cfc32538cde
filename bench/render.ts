// Renders a benchmark run: a fixed-width table for the terminal, a markdown report and a hand-written SVG bar
// chart (time and archive size per variant). Pure; table-tested in test/unit/bench.test.ts.
import type { Row, TargetCheck } from './stats.js';

export interface RunInfo {
  date: string;
  machine: MachineInfo;
  dataset: DatasetInfo;
  rounds: { fast: number; slow: number };
  notes: string[];
}

export interface MachineInfo {
  slug: string;
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  os: string;
  node: string;
  postgres: string;
  pgvector: string;
  pgDump: string;
  /** Server settings that decide index build speed, as the benchmark's cluster has them. */
  serverSettings: Record<string, string>;
}

export interface DatasetInfo {
  rows: number;
  dims: number;
  type: 'vector' | 'halfvec';
  tables: number;
  textChars: number;
  seed: number;
  /** Bytes COPY TO STDOUT hands over for every table: the "source data" of MB/s. */
  sourceBytes: number;
  /** Size of the database on disk (tables, TOAST, indexes). */
  databaseBytes: number;
  seedSeconds: number;
  indexSeconds: number;
  /** md5 over the first rows' text form: the same seed and options give the same data. */
  fingerprint: string;
  /** Whether the tables have their HNSW index (--no-index runs do not). */
  hnsw?: boolean;
}

const fixed = (x: number | null | undefined, digits: number): string => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(digits));
const ratio = (x: number | null): string => (x === null ? '-' : `${x.toFixed(2)}x`);
const share = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(0)}%`);
const bytesMb = (b: number | null): string => (b === null ? '-' : (b / 1e6).toFixed(1));

export const COLUMNS = ['variant', 'n', 'wall s', 'min-max s', 'CPU s', 'server CPU s', 'peak RSS MiB', 'archive MB', 'MB/s', 'vs floor', 'vs old kit', 'HNSW', 'load'] as const;

export function rowCells(r: Row): string[] {
  if (r.error) return [r.id, String(r.rounds), 'FAILED', r.error, '', '', '', '', '', '', '', '', ''];
  return [
    r.id,
    String(r.rounds),
    fixed(r.wall, 1),
    r.rounds > 1 ? `${fixed(r.wallMin, 1)}-${fixed(r.wallMax, 1)}` : '-',
    fixed(r.cpu, 1),
    fixed(r.serverCpu, 1),
    r.rss === null ? '-' : (r.rss / 1024 / 1024).toFixed(0),
    bytesMb(r.archiveBytes),
    fixed(r.mbps, 0),
    ratio(r.vsFloor),
    ratio(r.vsKit),
    share(r.hnswShare),
    fixed(r.load, 1),
  ];
}

/** A fixed-width table: text left-aligned in the first column, numbers right-aligned. */
export function renderTable(rows: readonly Row[]): string {
  const cells = [[...COLUMNS], ...rows.map(rowCells)];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]): string =>
    c
      .map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n') + '\n';
}

const mdEscape = (s: string): string => s.replace(/\|/g, '\\|');

export function markdownTable(head: readonly string[], rows: readonly string[][]): string {
  return [`| ${head.map(mdEscape).join(' | ')} |`, `| ${head.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.map(mdEscape).join(' | ')} |`)].join('\n');
}

export function renderTargets(checks: readonly TargetCheck[]): string[][] {
  return checks.map((c) => [c.target, c.measured, c.met === null ? 'not measured' : c.met ? 'met' : '**not met**']);
}

export function describeDataset(d: DatasetInfo): string {
  return (
    `${d.rows.toLocaleString('en-US')} rows in ${d.tables} table${d.tables > 1 ? 's' : ''} of (id, ${d.textChars} chars of text, jsonb metadata, ${d.type}(${d.dims})) ` +
    `${d.hnsw === false ? 'without indexes but the primary key' : 'with an HNSW index (vector_cosine_ops, m 16, ef_construction 64)'}; seed ${d.seed}; ${(d.sourceBytes / 1e9).toFixed(2)} GB as COPY text, ${(d.databaseBytes / 1e9).toFixed(2)} GB on disk`
  );
}

export function describeMachine(m: MachineInfo): string {
  return `${m.cpus} CPUs (${m.cpuModel}), ${(m.memoryBytes / 1024 ** 3).toFixed(0)} GiB RAM, ${m.os}; Node ${m.node}; PostgreSQL ${m.postgres} with pgvector ${m.pgvector}; pg_dump ${m.pgDump}`;
}

export function renderMarkdown(info: RunInfo, rows: readonly Row[], checks: readonly TargetCheck[]): string {
  const settings = Object.entries(info.machine.serverSettings)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return [
    `# pgvector-backup benchmark, ${info.date}`,
    '',
    `- Machine: ${describeMachine(info.machine)}`,
    `- Dataset: ${describeDataset(info.dataset)}; seeded in ${info.dataset.seedSeconds.toFixed(0)} s, HNSW built in ${info.dataset.indexSeconds.toFixed(0)} s; fingerprint \`${info.dataset.fingerprint}\``,
    `- Server: one throwaway cluster for everything (${settings}); restores go into fresh databases of it`,
    `- Rounds: ${info.rounds.fast} for fast variants, ${info.rounds.slow} for slow ones (column n); wall is the median`,
    '',
    markdownTable(COLUMNS, rows.map(rowCells)),
    '',
    'CPU s: user+sys of the measured process tree (our node process and the tools it started, or the shell pipeline). Server CPU s: the PostgreSQL processes meanwhile. Peak RSS: our node process (VmHWM). MB/s: source data (COPY text) per wall second. vs floor / vs old kit: median wall time over theirs (below 1 is faster). HNSW: share of the wall time with an HNSW build running. load: the 1-minute load average as the rounds ended (this run itself adds 1-2 on its own; more means other work shared the machine).',
    '',
    '## Targets',
    '',
    markdownTable(['target', 'measured', 'result'], renderTargets(checks)),
    '',
    ...(info.notes.length ? ['## Notes', '', ...info.notes.map((n) => `- ${n}`), ''] : []),
  ].join('\n');
}

const xmlEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export const OWNER_COLOURS: Record<Row['owner'], string> = { ours: '#1f77b4', kit: '#d62728', postgres: '#7f7f7f' };
const FLOOR_COLOUR = '#2ca02c';

/**
 * Two panels of horizontal bars, one row per variant: median wall seconds and archive MB. Variants are grouped by
 * job (backup, verify, restore) and each group's time bars have their own scale: restores take minutes where
 * backups take seconds.
 */
export function renderSvg(rows: readonly Row[], title: string): string {
  const valid = rows.filter((r) => !r.error);
  const groups: Array<{ name: string; rows: Row[] }> = [
    { name: 'backup', rows: valid.filter((r) => r.kind === 'floor' || r.kind === 'backup') },
    { name: 'verify', rows: valid.filter((r) => r.kind === 'verify') },
    { name: 'restore', rows: valid.filter((r) => r.kind === 'restore') },
  ].filter((g) => g.rows.length);
  const labelW = 190;
  const panelW = 330;
  const gap = 40;
  const rowH = 20;
  const top = 58;
  const lines = valid.length + groups.length;
  const width = labelW + 2 * panelW + gap + 70;
  const height = top + lines * rowH + 40;
  const maxSize = Math.max(1e-9, ...valid.map((r) => r.archiveBytes ?? 0));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${xmlEscape(title)}</text>`,
    `<text x="${labelW}" y="${top - 10}" font-weight="bold">wall seconds (median; one scale per group)</text>`,
    `<text x="${labelW + panelW + gap}" y="${top - 10}" font-weight="bold">archive MB</text>`,
  ];
  let line = 0;
  for (const g of groups) {
    const gy = top + line * rowH;
    out.push(`<text x="10" y="${gy + 14}" font-weight="bold">${xmlEscape(g.name)}</text>`);
    out.push(`<line x1="10" y1="${gy + 2}" x2="${width - 10}" y2="${gy + 2}" stroke="#dddddd"/>`);
    line++;
    const maxWall = Math.max(1e-9, ...g.rows.map((r) => r.wall));
    for (const r of g.rows) {
      const y = top + line * rowH;
      line++;
      const colour = r.kind === 'floor' ? FLOOR_COLOUR : OWNER_COLOURS[r.owner];
      out.push(`<text x="${labelW - 8}" y="${y + 14}" text-anchor="end">${xmlEscape(r.id)}</text>`);
      const w = Math.max(1, (r.wall / maxWall) * (panelW - 50));
      out.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${colour}"/>`);
      out.push(`<text x="${(labelW + w + 4).toFixed(1)}" y="${y + 14}">${r.wall < 10 ? r.wall.toFixed(1) : r.wall.toFixed(0)}</text>`);
      if (r.archiveBytes !== null) {
        const sw = Math.max(1, (r.archiveBytes / maxSize) * (panelW - 50));
        const x0 = labelW + panelW + gap;
        out.push(`<rect x="${x0}" y="${y + 3}" width="${sw.toFixed(1)}" height="${rowH - 6}" fill="${colour}" fill-opacity="0.7"/>`);
        out.push(`<text x="${(x0 + sw + 4).toFixed(1)}" y="${y + 14}">${(r.archiveBytes / 1e6).toFixed(r.archiveBytes < 1e7 ? 1 : 0)}</text>`);
      }
    }
  }
  const ly = top + lines * rowH + 22;
  const legend: Array<[string, string]> = [
    ['pgvector-backup', OWNER_COLOURS.ours],
    ['old kit (shell)', OWNER_COLOURS.kit],
    ['pg_dump / pg_restore', OWNER_COLOURS.postgres],
    ['floor (COPY TO STDOUT)', FLOOR_COLOUR],
  ];
  legend.forEach(([name, colour], i) => {
    const x = 10 + i * 190;
    out.push(`<rect x="${x}" y="${ly - 10}" width="12" height="12" fill="${colour}"/>`, `<text x="${x + 18}" y="${ly}">${xmlEscape(name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
