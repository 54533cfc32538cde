// `pgvector-backup demo` (npm run demo): a throwaway pgvector cluster with a RAG-like dataset, then the bundled
// action itself (`node dist/index.js` with INPUT_* variables and GITHUB_OUTPUT/GITHUB_STEP_SUMMARY files, as the
// runner runs it) through backup (with a full test restore) and list. Everything it writes stays in ./.demo.
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { INPUTS } from '../inputs.js';
import { findServers, providesExtensions, startCluster } from '../postgres/cluster.js';
import { connect } from '../postgres/connection.js';
import { seedRagDataset } from './seed.js';

const DEMO_PASSWORD = 'demo p@ss:/w%rd';

/** The environment a runner gives an action: INPUT_* (hyphens kept), the file commands, nothing inherited. */
export function actionEnv(inputs: Record<string, string>, files: { output: string; summary: string; state?: string }, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (/^(GITHUB_|INPUT_|ACTIONS_|RUNNER_|PG)/.test(k)) continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  env.GITHUB_OUTPUT = files.output;
  env.GITHUB_STEP_SUMMARY = files.summary;
  if (files.state) env.GITHUB_STATE = files.state;
  return env;
}

/** Parses a GITHUB_OUTPUT file (name<<delimiter blocks and name=value lines). */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const m = /^([^=<]+)<<(.+)$/.exec(line);
    if (m) {
      const value: string[] = [];
      i++;
      while (i < lines.length && lines[i] !== m[2]) value.push(lines[i++]!);
      out[m[1]!] = value.join('\n');
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}

function runAction(actionJs: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [actionJs], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    // The runner consumes ::add-mask:: commands and never shows them; neither does the demo.
    let carry = '';
    child.stdout.on('data', (d: Buffer) => {
      const lines = (carry + d.toString()).split('\n');
      carry = lines.pop() ?? '';
      for (const l of lines) if (!l.startsWith('::add-mask::')) process.stderr.write(l + '\n');
    });
    child.stdout.on('end', () => carry && process.stderr.write(carry + '\n'));
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

export async function runDemo(): Promise<number> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const actionJs = path.resolve(here, '..', 'index.js');
  if (!existsSync(actionJs)) {
    process.stderr.write(`The bundled action ${actionJs} is missing: run npm run build first\n`);
    return 1;
  }
  // (Computed at run time: a literal path relative to the working directory would be rewritten by ncc into
  // a bundled asset path.)
  const work = path.resolve(process.env.PGVB_DEMO_DIR ?? ['.', 'demo'].join(''));
  await fs.rm(work, { recursive: true, force: true });
  await fs.mkdir(work, { recursive: true });
  const servers = (await findServers(process.env)).filter((s) => providesExtensions(s, ['vector']).length === 0);
  const server = servers[0];
  if (!server) {
    process.stderr.write('No local PostgreSQL server with pgvector was found. Run: bash test/setup/ensure-pgvector.sh\n');
    return 1;
  }
  process.stderr.write(`== Starting a throwaway PostgreSQL ${server.version} cluster with pgvector\n`);
  const cluster = await startCluster({ binDir: server.dir, auth: 'scram', password: DEMO_PASSWORD });
  try {
    const admin = await connect(cluster.conn('postgres'));
    await admin.query('CREATE DATABASE vector_db');
    await admin.end();
    const db = await connect(cluster.conn('vector_db'));
    const seeded = await seedRagDataset(db);
    await db.end();
    process.stderr.write(`   seeded vector_db: ${seeded.documents} documents (vector(384), HNSW), ${seeded.chunks} chunks (halfvec(64), IVFFlat)\n`);
    const url = `postgresql://postgres:${encodeURIComponent(DEMO_PASSWORD)}@127.0.0.1:${cluster.port}/vector_db`;
    const backupDir = path.join(work, 'backups', 'postgres');
    const metricsFile = path.join(work, 'metrics', 'backup.prom');
    let status = 0;
    for (const [step, inputs] of [
      ['backup (verify: full = checksum + structure + test restore)', { mode: 'backup', verify: 'full' }],
      ['list', { mode: 'list' }],
    ] as const) {
      const files = { output: path.join(work, `${inputs.mode}.output`), summary: path.join(work, `${inputs.mode}.summary.md`), state: path.join(work, `${inputs.mode}.state`) };
      for (const f of Object.values(files)) await fs.writeFile(f, '');
      process.stderr.write(`\n== node dist/index.js: ${step}\n`);
      const code = await runAction(
        actionJs,
        // destination local: the action's default (artifact) needs GitHub's artifact service.
        actionEnv({ ...defaultsFor(), destination: 'local', ...inputs, 'database-url': url, 'backup-dir': backupDir, 'metrics-file': metricsFile }, files, process.env),
      );
      const outputs = parseOutputFile(await fs.readFile(files.output, 'utf8'));
      process.stderr.write(`   exit code ${code}; outputs:\n`);
      for (const [k, v] of Object.entries(outputs)) process.stderr.write(`     ${k} = ${v}\n`);
      process.stderr.write(`   job summary: ${files.summary}\n`);
      if (code !== 0) status = code;
      if (inputs.mode === 'backup' && existsSync(metricsFile)) {
        process.stderr.write(`\n== Prometheus textfile ${metricsFile}\n`);
        const text = await fs.readFile(metricsFile, 'utf8');
        process.stderr.write(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => `   ${l}`).join('\n') + '\n');
      }
    }
    process.stderr.write(`\n== Done. Backups and manifests are in ${backupDir}; summaries and outputs in ${work}\n`);
    return status;
  } finally {
    await cluster.stop();
  }
}

/** The defaults the runner injects from action.yml. */
function defaultsFor(): Record<string, string> {
  return Object.fromEntries(INPUTS.map((i) => [i.name, i.default]));
}
