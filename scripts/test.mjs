// The whole test suite (`npm test`, also what .ci/run calls): installs and starts what it needs, builds dist/
// from the source (the integration tests run the bundle the way the runner does), runs vitest on Node 24 and
// prints one plain closing line "N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
process.chdir(root);

function step(what, cmd, args, opts = {}) {
  console.log(`\n== ${what}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`${what} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

if (!process.env.PGVB_TEST_DATABASE_URL) step('PostgreSQL and pgvector', 'bash', ['test/setup/ensure-pgvector.sh']);
step('Prometheus Pushgateway and promtool', 'bash', ['test/setup/ensure-prometheus.sh']);
step('OpenSSH server (sftp:// tests)', 'bash', ['test/setup/ensure-openssh.sh']);
step('age, GnuPG and cron (encryption interoperability, crontab)', 'bash', ['test/setup/ensure-crypto-tools.sh']);
if (!existsSync('node_modules/node/bin/node') || !existsSync('node_modules/vitest')) {
  step('npm ci', 'npm', ['ci', '--no-audit', '--no-fund']);
}
const node24 = existsSync('node_modules/node/bin/node') ? path.resolve('node_modules/node/bin/node') : process.execPath;
step('Type-check src/ and test/', 'npm', ['run', 'typecheck', '--silent']);
step('Build dist/ (ncc)', 'npm', ['run', 'build', '--silent']);
if (process.env.CI === 'true' && existsSync('.git')) {
  // The committed bundle must be what the source builds to (the runner runs dist/, not src/).
  step('dist/, action.yml and README tables match the source', 'git', ['diff', '--stat', '--exit-code', '--', 'dist', 'action.yml', 'README.md']);
}

const report = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgvb-vitest-')), 'report.json');
console.log(`\n== vitest on Node ${spawnSync(node24, ['--version']).stdout.toString().trim()}`);
const r = spawnSync(node24, ['node_modules/vitest/vitest.mjs', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
});
let counts = { passed: 0, failed: 0, skipped: 0 };
try {
  const j = JSON.parse(readFileSync(report, 'utf8'));
  counts = { passed: j.numPassedTests, failed: j.numFailedTests, skipped: j.numPendingTests + (j.numTodoTests ?? 0) };
} catch {
  counts.failed = Math.max(1, counts.failed);
}
console.log(`\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exit(r.status === 0 && counts.failed === 0 && counts.passed > 0 ? 0 : 1);
