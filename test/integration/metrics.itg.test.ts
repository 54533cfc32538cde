// Metrics: the textfile (atomic, carried over so a failure keeps the last success), a real Pushgateway (full group
// on success, failure only on failure, a dead gateway only warns), the post step, alert rules (promtool) and the
// Grafana dashboard.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { METRICS, parseTextfile } from '../../src/metrics/metrics.js';
import { ACTION, CLI, ROOT, runAction } from '../helpers/action.js';
import { startPushgateway, value, type Gateway } from '../helpers/pushgateway.js';
import { createDatabase, dropDatabase } from '../helpers/pg.js';
import { actionEnv } from '../../src/demo/run.js';
import { INPUTS } from '../../src/inputs.js';

let db: { name: string; url: string };
let gw: Gateway;

beforeAll(async () => {
  db = await createDatabase('metrics_db', { documents: 60, dimensions: 8 });
  gw = await startPushgateway();
});
afterAll(async () => {
  await gw?.stop();
  await dropDatabase(db.name);
});

const P = 'pgvector_backup';

describe('textfile', () => {
  test('a success, then a failure: the failure keeps the last success, size and count', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-metrics-'));
    const file = path.join(dir, 'metrics', 'backup.prom');
    const ok = await runAction({ 'database-url': db.url, 'backup-dir': path.join(dir, 'b'), 'metrics-file': file });
    expect(ok.code, ok.stdout).toBe(0);
    const labels = { database: db.name, destination: 'local' };
    const s1 = parseTextfile(readFileSync(file, 'utf8'));
    const v1 = (n: string): number | undefined => value(s1, `${P}_${n}`, labels);
    expect(v1('success')).toBe(1);
    expect(v1('last_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 120);
    expect(v1('last_failure_timestamp_seconds')).toBeUndefined();
    expect(v1('size_bytes')).toBe(Number(ok.outputs['size-bytes']));
    expect(v1('duration_seconds')).toBe(Number(ok.outputs['duration-seconds']));
    expect(v1('rows')).toBe(Number(ok.outputs.rows));
    expect(v1('vectors')).toBe(Number(ok.outputs.vectors));
    expect(v1('tables')).toBe(2);
    expect(v1('verification_success')).toBe(1);
    expect(v1('total_count')).toBe(1);
    expect(v1('restore_duration_seconds')).toBe(Number(ok.outputs['restore-seconds']));
    expect(v1('index_build_seconds')).toBe(Number(ok.outputs['index-build-seconds']));
    // Bytes pg_dump wrote per byte stored: 1 when pg_dump compressed itself (zstd with pg_dump 16+), else the stream's ratio.
    const m = JSON.parse(readFileSync(ok.outputs['manifest-path']!, 'utf8')) as { archive: { size: number; dumpBytes: number } };
    expect(v1('compression_ratio')).toBeCloseTo(m.archive.dumpBytes / m.archive.size, 2);
    expect(v1('throughput_bytes_per_second')).toBeGreaterThan(0);
    expect(v1('oldest_backup_timestamp_seconds')).toBeLessThanOrEqual(v1('last_success_timestamp_seconds')!);
    expect(readFileSync(file, 'utf8')).toContain(`# TYPE ${P}_success gauge`);

    const bad = await runAction({ 'database-url': db.url, 'backup-dir': path.join(dir, 'b'), 'metrics-file': file, 'pg-bin-dir': '/nonexistent' });
    expect(bad.code).not.toBe(0);
    const s2 = parseTextfile(readFileSync(file, 'utf8'));
    const v2 = (n: string): number | undefined => value(s2, `${P}_${n}`, labels);
    expect(v2('success')).toBe(0);
    expect(v2('last_failure_timestamp_seconds')).toBeGreaterThanOrEqual(v1('last_success_timestamp_seconds')!);
    expect(v2('last_success_timestamp_seconds')).toBe(v1('last_success_timestamp_seconds'));
    expect(v2('size_bytes')).toBe(v1('size_bytes'));
    expect(v2('total_count')).toBe(1);
    // Written atomically: no temp file left beside it.
    expect(readdirSync(path.dirname(file))).toEqual(['backup.prom']);
  });

  test('metrics-prefix rag_backup keeps the old kit\'s names; other databases\' series are kept', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-metrics-prefix-'));
    const file = path.join(dir, 'backup.prom');
    writeFileSync(file, '# TYPE rag_backup_success gauge\nrag_backup_success{database="elsewhere",destination="local"} 1\n');
    const r = await runAction({ 'database-url': db.url, 'backup-dir': path.join(dir, 'b'), 'metrics-file': file, 'metrics-prefix': 'rag_backup', verify: 'none' });
    expect(r.code, r.stdout).toBe(0);
    const s = parseTextfile(readFileSync(file, 'utf8'));
    expect(value(s, 'rag_backup_success', { database: db.name })).toBe(1);
    expect(value(s, 'rag_backup_success', { database: 'elsewhere' })).toBe(1);
    // verify: none measured no verification.
    expect(value(s, 'rag_backup_verification_success', { database: db.name })).toBeUndefined();
  });
});

describe('Pushgateway', () => {
  test('success pushes the group; failure pushes only the failure and the last success survives', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-push-'));
    const inputs = { 'database-url': db.url, 'backup-dir': dir, 'pushgateway-url': gw.url, 'metrics-file': '', verify: 'quick' };
    const ok = await runAction(inputs);
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toContain('Metrics pushed to the Pushgateway');
    const group = { job: 'pgvector-backup', database: db.name };
    const s1 = await gw.samples();
    expect(value(s1, `${P}_success`, group)).toBe(1);
    expect(value(s1, `${P}_rows`, group)).toBe(Number(ok.outputs.rows));
    const lastSuccess = value(s1, `${P}_last_success_timestamp_seconds`, group)!;
    expect(lastSuccess).toBeGreaterThan(Date.now() / 1000 - 120);
    // No instance label on pushed series.
    expect(s1.filter((s) => s.name.startsWith(P)).every((s) => !('instance' in s.labels) || s.labels.instance === '')).toBe(true);

    const bad = await runAction({ ...inputs, 'pg-bin-dir': '/nonexistent' });
    expect(bad.code).not.toBe(0);
    const s2 = await gw.samples();
    expect(value(s2, `${P}_success`, group)).toBe(0);
    expect(value(s2, `${P}_last_failure_timestamp_seconds`, group)).toBeGreaterThanOrEqual(lastSuccess);
    expect(value(s2, `${P}_last_success_timestamp_seconds`, group)).toBe(lastSuccess);
    expect(value(s2, `${P}_rows`, group)).toBe(Number(ok.outputs.rows));
  });

  test('hosted gateways: basic auth from the URL, or a bearer token; neither is printed', async () => {
    const seen: Array<{ auth: string | undefined; url: string | undefined; method: string | undefined }> = [];
    const server = http.createServer((req, res) => {
      seen.push({ auth: req.headers.authorization, url: req.url, method: req.method });
      req.resume();
      req.on('end', () => {
        res.writeHead(200);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-push-auth-'));
      const basic = await runAction({ 'database-url': db.url, 'backup-dir': dir, 'pushgateway-url': `http://pusher:gw-s3cret@127.0.0.1:${port}`, 'metrics-file': '', verify: 'none' });
      expect(basic.code, basic.stdout).toBe(0);
      expect(seen[0]!.auth).toBe(`Basic ${Buffer.from('pusher:gw-s3cret').toString('base64')}`);
      expect(seen[0]!.method).toBe('PUT');
      expect(seen[0]!.url).toBe(`/metrics/job/pgvector-backup/database/${db.name}`);
      const bearer = await runAction({ 'database-url': db.url, 'backup-dir': dir, 'pushgateway-url': `http://127.0.0.1:${port}`, 'pushgateway-token': 'tok-123456', 'metrics-file': '', verify: 'none' });
      expect(bearer.code, bearer.stdout).toBe(0);
      expect(seen[1]!.auth).toBe('Bearer tok-123456');
      for (const r of [basic, bearer]) {
        expect(r.visible + r.stderr + r.summary).not.toContain('gw-s3cret');
        expect(r.visible + r.stderr + r.summary).not.toContain('tok-123456');
      }
    } finally {
      server.close();
    }
  });

  test('a gateway that is down only warns; the backup still succeeds', async () => {
    const dead = await startPushgateway();
    await dead.stop();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-push-dead-'));
    const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, 'pushgateway-url': dead.url, 'metrics-file': '', verify: 'none' });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/::warning::Pushing metrics to the Pushgateway failed \(the backup's result is unchanged\)/);
  });

  test('a gateway that answers 4xx only warns', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-push-4xx-'));
    // A path prefix the gateway does not serve: 404.
    const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, 'pushgateway-url': `${gw.url}/not/here`, 'metrics-file': '', verify: 'none' });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/::warning::Pushing metrics .* failed .*status 404/);
  });

  test('the post step records a crashed or cancelled backup, and nothing after a finished one', async () => {
    const name = `post_${Math.random().toString(36).slice(2, 8)}`;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-post-'));
    const defaults = Object.fromEntries(INPUTS.map((i) => [i.name, i.default]));
    const files = { output: path.join(dir, 'out'), summary: path.join(dir, 'sum') };
    writeFileSync(files.output, '');
    writeFileSync(files.summary, '');
    const url = db.url.replace(/\/[^/]*$/, `/${name}`);
    const env = actionEnv({ ...defaults, destination: 'local', 'database-url': url, 'pushgateway-url': gw.url, 'metrics-file': path.join(dir, 'm.prom'), 'backup-dir': dir }, files, process.env);
    const post = path.join(path.dirname(ACTION), 'post', 'index.js');
    // The main step finished (it saved its state): the post step does nothing.
    const quiet = spawnSync(process.execPath, [post], { env: { ...env, 'STATE_main-finished': 'true' }, encoding: 'utf8' });
    expect(quiet.status).toBe(0);
    expect((await gw.samples()).some((s) => s.labels.database === name)).toBe(false);
    // The main step never finished: the failure is recorded.
    const r = spawnSync(process.execPath, [post], { env, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('did not finish');
    const s = await gw.samples();
    expect(value(s, `${P}_success`, { job: 'pgvector-backup', database: name })).toBe(0);
    expect(value(parseTextfile(readFileSync(path.join(dir, 'm.prom'), 'utf8')), `${P}_success`, { database: name })).toBe(0);
  });

  test('the main step saves the state the post step reads', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-state-'));
    const stateFile = path.join(dir, 'state');
    writeFileSync(stateFile, '');
    const r = await runAction({ mode: 'list', 'backup-dir': dir }, { env: { GITHUB_STATE: stateFile } });
    expect(r.code).toBe(0);
    expect(readFileSync(stateFile, 'utf8')).toMatch(/^main-finished<<ghadelimiter_[\w-]+\ntrue\n/);
  });
});

describe('alert rules and dashboard', () => {
  const promtool = (args: string[]): { status: number | null; out: string } => {
    const r = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8' });
    return { status: r.status, out: r.stdout + r.stderr };
  };

  test('promtool check rules and test rules pass', () => {
    const check = promtool(['check', 'rules', 'monitoring/alerts.yml']);
    expect(check.status, check.out).toBe(0);
    expect(check.out).toContain('SUCCESS: 6 rules found');
    const t = promtool(['test', 'rules', 'monitoring/alerts.test.yml']);
    expect(t.status, t.out).toBe(0);
  });

  test('pgvector-backup alerts prints the checked-in rules, and valid rules for another prefix', () => {
    const out = execFileSync(process.execPath, [CLI, 'alerts'], { encoding: 'utf8' });
    expect(out).toBe(readFileSync(path.join(ROOT, 'monitoring/alerts.yml'), 'utf8'));
    const custom = execFileSync(process.execPath, [CLI, 'alerts', '--metrics-prefix', 'rag_backup', '--stale-hours', '24'], { encoding: 'utf8' });
    expect(custom).toContain('time() - rag_backup_last_success_timestamp_seconds > 24 * 3600');
    const f = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgvb-alerts-')), 'alerts.yml');
    writeFileSync(f, custom);
    const check = promtool(['check', 'rules', f]);
    expect(check.status, check.out).toBe(0);
  });

  test('the Grafana dashboard parses and every query names a metric we export', () => {
    const dash = JSON.parse(readFileSync(path.join(ROOT, 'monitoring/grafana-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const exported = new Set(METRICS.map((m) => `${P}_${m.name}`));
    const titles = dash.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const want of ['last backup', 'last success age', 'size', 'duration', 'success rate', 'rows and vectors']) expect(titles).toContain(want);
    let queries = 0;
    for (const p of dash.panels) {
      for (const t of p.targets) {
        const names = t.expr.match(/\b[a-z_:][a-z0-9_:]*(?=\{|\[|\s|$|\))/g)?.filter((n) => n.startsWith(`${P}_`)) ?? [];
        expect(names.length, `${p.title}: ${t.expr}`).toBeGreaterThan(0);
        for (const n of names) expect(exported.has(n), `${p.title}: ${n}`).toBe(true);
        queries++;
      }
    }
    expect(queries).toBeGreaterThanOrEqual(10);
  });
});


