// The benchmark's figures: raw samples per variant, their summary (median wall time, ratios to the floor and to
// the old kit) and the targets checked against them. Pure: no I/O; table-tested in test/unit/bench.test.ts.

export type VariantKind = 'floor' | 'backup' | 'verify' | 'restore';
/** Who wrote the program being measured: us, the old shell kit, or plain PostgreSQL tools. */
export type Owner = 'ours' | 'kit' | 'postgres';

export interface Sample {
  /** Wall seconds. */
  wall: number;
  /** user + sys seconds of the measured process tree (our process and the tools it started). */
  cpu: number;
  /** user + sys seconds of the PostgreSQL server's processes (backends, parallel workers) meanwhile. */
  serverCpu: number;
  /** Peak RSS of our node process in bytes (VmHWM); null for programs that are not ours. */
  rss: number | null;
  /** Wall seconds during which an HNSW index build was running (restores); null when not watched. */
  hnsw: number | null;
  /** The machine's 1-minute load average when the round ended (ours adds about 1-2: more means other work). */
  load?: number;
}

export interface VariantResult {
  id: string;
  label: string;
  kind: VariantKind;
  owner: Owner;
  samples: Sample[];
  /** Bytes of the archive the variant wrote (backups) or read (verify, restore). */
  archiveBytes: number | null;
  /** Set when a round failed: the variant's figures are not valid. */
  error?: string;
}

export interface Row {
  id: string;
  label: string;
  kind: VariantKind;
  owner: Owner;
  rounds: number;
  wall: number;
  wallMin: number;
  wallMax: number;
  cpu: number;
  serverCpu: number;
  rss: number | null;
  archiveBytes: number | null;
  /** MB/s (10^6 bytes) of source data: the bytes COPY TO STDOUT hands over for every table. */
  mbps: number;
  /** Median wall time over the floor's (backups and the floor). */
  vsFloor: number | null;
  /** Median wall time over the old kit's for the same job (backup, verify, restore). */
  vsKit: number | null;
  /** Share of the wall time spent building HNSW indexes. */
  hnswShare: number | null;
  /** Median load average at the end of the rounds. */
  load: number | null;
  error?: string;
}

export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The old kit's variant for each kind of job: what our variants are compared with. */
export const KIT_BASELINE: Record<VariantKind, string | null> = {
  floor: null,
  backup: 'kit:backup',
  verify: 'kit:verify',
  restore: 'kit:restore',
};
export const FLOOR_ID = 'floor';

export function summarize(results: readonly VariantResult[], sourceBytes: number): Row[] {
  const medianWall = (id: string | null): number | null => {
    const r = id ? results.find((x) => x.id === id && !x.error && x.samples.length) : undefined;
    return r ? median(r.samples.map((s) => s.wall)) : null;
  };
  const floor = medianWall(FLOOR_ID);
  return results.map((r) => {
    const walls = r.samples.map((s) => s.wall);
    const wall = median(walls);
    const rss = r.samples.map((s) => s.rss).filter((x): x is number => x !== null);
    const hnsw = r.samples.map((s) => s.hnsw).filter((x): x is number => x !== null);
    const kit = medianWall(KIT_BASELINE[r.kind]);
    const row: Row = {
      id: r.id,
      label: r.label,
      kind: r.kind,
      owner: r.owner,
      rounds: r.samples.length,
      wall,
      wallMin: walls.length ? Math.min(...walls) : NaN,
      wallMax: walls.length ? Math.max(...walls) : NaN,
      cpu: median(r.samples.map((s) => s.cpu)),
      serverCpu: median(r.samples.map((s) => s.serverCpu)),
      rss: rss.length ? Math.max(...rss) : null,
      archiveBytes: r.archiveBytes,
      mbps: wall > 0 ? sourceBytes / 1e6 / wall : NaN,
      vsFloor: floor && (r.kind === 'backup' || r.kind === 'floor') ? wall / floor : null,
      vsKit: kit && r.id !== KIT_BASELINE[r.kind] ? wall / kit : null,
      hnswShare: hnsw.length && wall > 0 ? median(hnsw) / wall : null,
      load: r.samples.some((s) => s.load !== undefined) ? median(r.samples.flatMap((s) => (s.load === undefined ? [] : [s.load]))) : null,
    };
    if (r.error) row.error = r.error;
    return row;
  });
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}

export interface TargetInputs {
  rows: Row[];
  /** The product's default backup variant (its defaults for format and compression). */
  defaultBackup: string;
  /** The same backup's peak RSS in a run on a 5x larger dataset (or a smaller one, compared the other way). */
  otherRun?: { rss: number | null; sourceBytes: number; label: string };
  sourceBytes: number;
}

const fmtX = (x: number): string => `${x.toFixed(2)}x`;
export const mib = (b: number): string => `${(b / 1024 / 1024).toFixed(0)} MiB`;

/** The targets, each with what was measured and whether it is met (null: not measured in this run). */
export function checkTargets(t: TargetInputs): TargetCheck[] {
  const by = (id: string): Row | undefined => t.rows.find((r) => r.id === id && !r.error);
  const out: TargetCheck[] = [];
  const ours = by(t.defaultBackup);
  const floor = by(FLOOR_ID);
  const kit = by('kit:backup');
  out.push(
    ours && floor
      ? { target: `Backup (${t.defaultBackup}) at most 1.25x the raw floor`, measured: `${fmtX(ours.wall / floor.wall)} (${ours.wall.toFixed(1)} s vs ${floor.wall.toFixed(1)} s)`, met: ours.wall / floor.wall <= 1.25 }
      : { target: 'Backup at most 1.25x the raw floor', measured: 'not run', met: null },
  );
  if (ours && kit && ours.archiveBytes !== null && kit.archiveBytes !== null) {
    const speed = kit.wall / ours.wall;
    const smaller = ours.archiveBytes <= kit.archiveBytes;
    out.push({
      target: `Backup at least 2x faster than pg_dump | gzip, archive no larger`,
      measured: `${speed.toFixed(2)}x faster (${ours.wall.toFixed(1)} s vs ${kit.wall.toFixed(1)} s); archive ${mib(ours.archiveBytes)} vs ${mib(kit.archiveBytes)}`,
      met: speed >= 2 && smaller,
    });
  } else out.push({ target: 'Backup at least 2x faster than pg_dump | gzip, archive no larger', measured: 'not run', met: null });

  const rss = t.rows.filter((r) => r.owner === 'ours' && r.rss !== null && !r.error);
  if (rss.length) {
    const worst = rss.reduce((a, b) => ((b.rss ?? 0) > (a.rss ?? 0) ? b : a));
    out.push({ target: 'Peak RSS of our process under 200 MB (every variant of ours)', measured: `${mib(worst.rss!)} at most (${worst.id})`, met: worst.rss! < 200 * 1024 * 1024 });
  } else out.push({ target: 'Peak RSS of our process under 200 MB', measured: 'not run', met: null });
  if (t.otherRun && ours?.rss && t.otherRun.rss) {
    const ratio = ours.rss / t.otherRun.rss;
    out.push({
      target: 'Peak RSS within 10% for a dataset 5x larger',
      measured: `${mib(ours.rss)} here (${(t.sourceBytes / 1e9).toFixed(2)} GB of source text) vs ${mib(t.otherRun.rss)} in ${t.otherRun.label} (${(t.otherRun.sourceBytes / 1e9).toFixed(2)} GB): ${((ratio - 1) * 100).toFixed(1)}%`,
      met: Math.abs(ratio - 1) <= 0.1,
    });
  }

  const kitRestore = by('kit:restore');
  for (const r of t.rows.filter((x) => x.kind === 'restore' && x.owner === 'ours' && !x.error)) {
    out.push(
      kitRestore
        ? {
            target: `${r.id} at least 3x faster than gunzip -c | psql`,
            measured: `${(kitRestore.wall / r.wall).toFixed(2)}x faster (${r.wall.toFixed(1)} s vs ${kitRestore.wall.toFixed(1)} s)` + (r.hnswShare !== null ? `; HNSW build ${(r.hnswShare * 100).toFixed(0)}% of it` : ''),
            met: kitRestore.wall / r.wall >= 3,
          }
        : { target: `${r.id} at least 3x faster than gunzip -c | psql`, measured: 'kit:restore not run', met: null },
    );
  }
  for (const r of t.rows.filter((x) => x.kind === 'verify' && x.owner === 'ours' && !x.error && x.archiveBytes)) {
    const rate = r.archiveBytes! / 1e6 / r.wall;
    out.push({ target: `${r.id} at least 300 MB/s of archive`, measured: `${rate.toFixed(0)} MB/s (${mib(r.archiveBytes!)} in ${r.wall.toFixed(2)} s)`, met: rate >= 300 });
  }
  return out;
}
