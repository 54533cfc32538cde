// Lets Node 24 run the benchmark's TypeScript (and the src/ modules it reuses) directly: the sources import
// each other as './x.js' (NodeNext style), which resolves here to './x.ts' when only that exists. Used as
// `node --experimental-transform-types --import ./bench/hooks.mjs bench/bench.ts` (npm run bench).
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

registerHooks({
  resolve(specifier, context, next) {
    if (/^\.\.?\//.test(specifier) && specifier.endsWith('.js') && context.parentURL?.startsWith('file:')) {
      const js = new URL(specifier, context.parentURL);
      const ts = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
      if (!existsSync(fileURLToPath(js)) && existsSync(fileURLToPath(ts))) return next(ts.href, context);
    }
    return next(specifier, context);
  },
});
