// Prometheus metrics, built with prom-client: the old kit's set (success, last success/failure timestamps,
// duration, size, verification, count) and ours on top. Written atomically to a node_exporter textfile, with
// values carried over from the previous file so that a failure never erases the last success, and pushed to
// a Pushgateway: the full group on success (PUT), only the failure metrics on failure (POST).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import client from 'prom-client';

export interface RunFacts {
  database: string;
  destination: string;
  /** The backup's result; undefined for runs that only verified (they touch only the verification metrics). */
  success?: boolean;
  at: Date;
  durationSeconds?: number;
  sizeBytes?: number;
  dumpBytes?: number;
  rows?: number;
  vectors?: number;
  tables?: number;
  /** undefined when this run did not verify, or its check could not run. */
  verificationSuccess?: boolean;
  /** true: a check was attempted and could not run (no key, tool or target; cancelled); false: a check ran. */
  verificationInconclusive?: boolean;
  restoreSeconds?: number;
  indexBuildSeconds?: number;
  totalCount?: number;
  oldestBackupSeconds?: number;
}

interface MetricDef {
  name: string;
  help: string;
  /** The value for this run; undefined leaves the previous value (or none). */
  value: (f: RunFacts) => number | undefined;
}

const ts = (d: Date): number => Math.floor(d.getTime() / 1000);

export const METRICS: MetricDef[] = [
  { name: 'success', help: 'Last backup status (1 = success, 0 = failure).', value: (f) => (f.success === undefined ? undefined : f.success ? 1 : 0) },
  { name: 'last_success_timestamp_seconds', help: 'Unix time of the last successful backup.', value: (f) => (f.success === true ? ts(f.at) : undefined) },
  { name: 'last_failure_timestamp_seconds', help: 'Unix time of the last failed backup.', value: (f) => (f.success === false ? ts(f.at) : undefined) },
  { name: 'duration_seconds', help: 'Duration of the last successful dump.', value: (f) => (f.success ? f.durationSeconds : undefined) },
  { name: 'size_bytes', help: 'Size of the last successful backup archive.', value: (f) => (f.success ? f.sizeBytes : undefined) },
  {
    name: 'verification_success',
    help: 'Last verification status (1 = the backup verified, 0 = it did not).',
    value: (f) => (f.verificationSuccess === undefined ? undefined : f.verificationSuccess ? 1 : 0),
  },
  {
    name: 'verification_inconclusive',
    help: 'Whether the last verification attempt could not run (1 = no key, tool or target, or cancelled: it proved nothing; 0 = it ran).',
    value: (f) => (f.verificationInconclusive === undefined ? undefined : f.verificationInconclusive ? 1 : 0),
  },
  { name: 'total_count', help: 'Complete backups retained for the database.', value: (f) => f.totalCount },
  { name: 'rows', help: 'Rows in the last successful backup (exact).', value: (f) => (f.success ? f.rows : undefined) },
  { name: 'vectors', help: 'Non-null vector values in the last successful backup.', value: (f) => (f.success ? f.vectors : undefined) },
  { name: 'tables', help: 'Tables in the last successful backup.', value: (f) => (f.success ? f.tables : undefined) },
  { name: 'restore_duration_seconds', help: 'Duration of the last test restore.', value: (f) => f.restoreSeconds },
  { name: 'index_build_seconds', help: 'Index-build (post-data) part of the last test restore.', value: (f) => f.indexBuildSeconds },
  {
    name: 'compression_ratio',
    help: 'Bytes pg_dump wrote per byte stored (1 when pg_dump compressed internally).',
    value: (f) => (f.success && f.sizeBytes && f.dumpBytes ? round(f.dumpBytes / f.sizeBytes) : undefined),
  },
  {
    name: 'throughput_bytes_per_second',
    help: 'Bytes pg_dump wrote per second in the last successful backup.',
    value: (f) => (f.success && f.durationSeconds && f.dumpBytes ? Math.round(f.dumpBytes / f.durationSeconds) : undefined),
  },
  { name: 'oldest_backup_timestamp_seconds', help: 'Unix time of the oldest retained backup.', value: (f) => f.oldestBackupSeconds },
];

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Reads the samples of a Prometheus text file (only what we need: name{labels} value). */
export function parseTextfile(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l: RegExpExecArray | null;
    while ((l = re.exec(m[3] ?? '')) !== null) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    const value = Number(m[4]);
    if (Number.isFinite(value)) out.push({ name: m[1]!, labels, value });
  }
  return out;
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

/**
 * A registry with this run's metrics. `previous` samples (from the last textfile) are carried over: other
 * databases' series as they were, and this database's values that this run does not set (a failure keeps the
 * last success's timestamp, size and counts).
 */
export function buildRegistry(prefix: string, facts: RunFacts, previous: Sample[] = [], opts: { onlyThisRun?: boolean } = {}): client.Registry {
  const registry = new client.Registry();
  const labels = { database: facts.database, destination: facts.destination };
  for (const def of METRICS) {
    if (opts.onlyThisRun && def.value(facts) === undefined) continue;
    const name = `${prefix}_${def.name}`;
    const gauge = new client.Gauge({ name, help: def.help, labelNames: ['database', 'destination'], registers: [registry] });
    if (!opts.onlyThisRun) {
      for (const s of previous) {
        if (s.name === name && s.labels.database !== undefined && s.labels.destination !== undefined) {
          gauge.set({ database: s.labels.database, destination: s.labels.destination }, s.value);
        }
      }
    }
    const v = def.value(facts);
    if (v !== undefined) gauge.set(labels, v);
    else if (!previous.some((s) => s.name === name && sameLabels(s.labels, labels))) {
      // Nothing to report for this series yet: leave it out rather than export a made-up 0.
      gauge.remove(labels);
    }
  }
  return registry;
}

export async function readTextfile(file: string): Promise<Sample[]> {
  try {
    return parseTextfile(await fs.readFile(file, 'utf8'));
  } catch {
    return [];
  }
}

/** Writes the textfile atomically (temp file + rename), as node_exporter's textfile collector needs. */
export async function writeTextfile(file: string, prefix: string, facts: RunFacts, previous: Sample[]): Promise<string> {
  const text = await buildRegistry(prefix, facts, previous).metrics();
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
  return text;
}

export interface PushOptions {
  url: string;
  job: string;
  token?: string;
  timeoutMs?: number;
}

/**
 * Pushes to a Pushgateway: after a successful backup PUT the whole group (this run's values, the rest carried
 * over from `previous`); otherwise POST only what this run measured (a failure: success 0 and its timestamp), so
 * the group's last success survives.
 */
export async function push(prefix: string, facts: RunFacts, opts: PushOptions, previous: Sample[] = []): Promise<void> {
  const mine = previous.filter((s) => s.labels.database === facts.database && s.labels.destination === facts.destination);
  const registry = buildRegistry(prefix, facts, mine, { onlyThisRun: facts.success !== true });
  const headers: Record<string, string> = {};
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  const gateway = new client.Pushgateway(opts.url, { headers, timeout: opts.timeoutMs ?? 10_000 }, registry);
  const params = { jobName: opts.job, groupings: { database: facts.database } };
  if (facts.success === true) await gateway.push(params);
  else await gateway.pushAdd(params);
}
