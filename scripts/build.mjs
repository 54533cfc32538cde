// Bundles the action (dist/index.js) and the CLI (dist/cli/index.js) with ncc, and regenerates action.yml.
// ncc type-checks src/ with tsconfig.json; the tests have their own test/tsconfig.json.
import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';

const ncc = 'node_modules/@vercel/ncc/dist/ncc/cli.js';
execFileSync(process.execPath, ['scripts/gen-action.mjs'], { stdio: 'inherit' });
rmSync('dist', { recursive: true, force: true });
for (const [entry, out] of [
  ['src/index.ts', 'dist'],
  ['src/bin.ts', 'dist/cli'],
  ['src/post.ts', 'dist/post'],
]) {
  execFileSync(process.execPath, [ncc, 'build', entry, '-o', out, '--license', 'licenses.txt', '--quiet', '--target', 'es2023'], { stdio: 'inherit' });
}
chmodSync('dist/cli/index.js', 0o755);
