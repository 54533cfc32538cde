import { describe, expect, test } from 'vitest';
import { buildRegistry, parseTextfile, type RunFacts } from '../../src/metrics/metrics.js';

const at = new Date(Date.UTC(2026, 0, 7, 2, 0, 0));
const base: RunFacts = { database: 'vector_db', destination: 'local', at };

async function samples(facts: RunFacts, previous = '', onlyThisRun = false): Promise<Record<string, number>> {
  const text = await buildRegistry('p', facts, parseTextfile(previous), { onlyThisRun }).metrics();
  const out: Record<string, number> = {};
  for (const s of parseTextfile(text)) out[`${s.name}{${s.labels.database}}`] = s.value;
  return out;
}

describe('parseTextfile', () => {
  test('reads names, labels (with escapes) and values; skips comments', () => {
    const s = parseTextfile('# HELP x h\n# TYPE x gauge\nx{database="a\\"b",destination="local"} 3.5\ny 7\nbad line\n');
    expect(s).toEqual([
      { name: 'x', labels: { database: 'a"b', destination: 'local' }, value: 3.5 },
      { name: 'y', labels: {}, value: 7 },
    ]);
  });
});

describe('buildRegistry', () => {
  test('a successful backup sets success, its timestamp and the measurements', async () => {
    const s = await samples({ ...base, success: true, sizeBytes: 100, dumpBytes: 250, durationSeconds: 5, rows: 9, verificationSuccess: true, totalCount: 3 });
    expect(s['p_success{vector_db}']).toBe(1);
    expect(s['p_last_success_timestamp_seconds{vector_db}']).toBe(at.getTime() / 1000);
    expect(s['p_last_failure_timestamp_seconds{vector_db}']).toBeUndefined();
    expect(s['p_compression_ratio{vector_db}']).toBe(2.5);
    expect(s['p_throughput_bytes_per_second{vector_db}']).toBe(50);
    expect(s['p_verification_success{vector_db}']).toBe(1);
    expect(s['p_total_count{vector_db}']).toBe(3);
  });

  test('a failure keeps the previous success timestamp and size, and other databases', async () => {
    const prev = 'p_success{database="vector_db",destination="local"} 1\np_last_success_timestamp_seconds{database="vector_db",destination="local"} 1000\np_size_bytes{database="vector_db",destination="local"} 42\np_success{database="other",destination="local"} 1\n';
    const s = await samples({ ...base, success: false }, prev);
    expect(s['p_success{vector_db}']).toBe(0);
    expect(s['p_last_failure_timestamp_seconds{vector_db}']).toBe(at.getTime() / 1000);
    expect(s['p_last_success_timestamp_seconds{vector_db}']).toBe(1000);
    expect(s['p_size_bytes{vector_db}']).toBe(42);
    expect(s['p_success{other}']).toBe(1);
  });

  test('what a failed run pushes: only success 0 and its timestamp', async () => {
    const s = await samples({ ...base, success: false }, '', true);
    expect(Object.keys(s).sort()).toEqual(['p_last_failure_timestamp_seconds{vector_db}', 'p_success{vector_db}']);
  });

  test('a verify-only run touches only the verification metrics', async () => {
    const s = await samples({ ...base, verificationSuccess: false }, '', true);
    expect(Object.keys(s)).toEqual(['p_verification_success{vector_db}']);
    expect(s['p_verification_success{vector_db}']).toBe(0);
  });

  test('nothing measured, nothing invented: no zero series', async () => {
    const s = await samples({ ...base, success: true });
    expect(s['p_size_bytes{vector_db}']).toBeUndefined();
    expect(s['p_rows{vector_db}']).toBeUndefined();
  });
});
