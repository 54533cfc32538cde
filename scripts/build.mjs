// Bundles the action (dist/index.js) and the CLI (dist/cli/index.js) with ncc, and regenerates action.yml.
// ncc type-checks src/ with tsconfig.json; the tests have their own test/tsconfig.json.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

const ncc = 'node_modules/@vercel/ncc/dist/ncc/cli.js';
// ssh2's optional native addons (cpu-features, its sshcrypto binding) are built by install scripts for whichever
// Node ran npm, or not at all: bundled, they would make dist/ differ from machine to machine and fail to load on
// another Node ABI anyway. Left external, the bundle's require of them fails and ssh2 uses its pure JavaScript
// and Node crypto paths, the same everywhere.
const SSH2_NATIVE = ['-e', 'cpu-features', '-e', './crypto/build/Release/sshcrypto.node'];
// CommonJS code inside the ESM bundle that reads __dirname (ssh2's Emscripten-built poly1305 does, at load)
// would throw a ReferenceError: give the bundle the __dirname CommonJS would have.
const ESM_DIRNAME =
  "import { dirname as __pgvbDirname } from 'node:path';\n" +
  "import { fileURLToPath as __pgvbFileURLToPath } from 'node:url';\n" +
  'var __dirname = __pgvbDirname(__pgvbFileURLToPath(import.meta.url));\n';
execFileSync(process.execPath, ['scripts/gen-action.mjs'], { stdio: 'inherit' });
// init-workflow's templates come from examples/.
execFileSync(process.execPath, ['scripts/gen-workflow-templates.mjs'], { stdio: 'inherit' });
// Built beside dist/ and swapped in with one rename, so a test or run that starts meanwhile never finds dist/ half
// written or missing.
const staging = `.dist-build-${process.pid}`;
rmSync(staging, { recursive: true, force: true });
for (const [entry, out] of [
  ['src/index.ts', staging],
  ['src/bin.ts', `${staging}/cli`],
  ['src/post.ts', `${staging}/post`],
]) {
  execFileSync(process.execPath, [ncc, 'build', entry, '-o', out, '--license', 'licenses.txt', '--quiet', '--target', 'es2023', ...SSH2_NATIVE], { stdio: 'inherit' });
  // index.js and the chunks ncc splits off for dynamic imports (storage clients that load on first use).
  for (const name of readdirSync(out).filter((f) => f.endsWith('.js'))) {
    const file = `${out}/${name}`;
    const code = readFileSync(file, 'utf8');
    if (/^(?:var|let|const) __dirname\b/m.test(code)) throw new Error(`${file} declares __dirname itself: drop ESM_DIRNAME from scripts/build.mjs`);
    const shebang = code.startsWith('#!') ? code.slice(0, code.indexOf('\n') + 1) : '';
    writeFileSync(file, shebang + ESM_DIRNAME + code.slice(shebang.length));
  }
}
chmodSync(`${staging}/cli/index.js`, 0o755);
const old = `.dist-old-${process.pid}`;
if (existsSync('dist')) renameSync('dist', old);
renameSync(staging, 'dist');
rmSync(old, { recursive: true, force: true });
