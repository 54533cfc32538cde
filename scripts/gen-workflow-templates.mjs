// Generates src/init-workflow-templates.ts from examples/: `pgvector-backup init-workflow` writes these workflows,
// so the examples stay the one source (and are tested as workflows by test/unit/examples.test.ts).
// `node scripts/gen-workflow-templates.mjs --check` fails when the generated file is out of date (used by the tests).
import { readFileSync, writeFileSync } from 'node:fs';

/** The workflow init-workflow writes -> the example it comes from. */
const SOURCES = {
  backup: 'examples/nightly-backup.yml',
  restore: 'examples/manual-restore.yml',
  'test-restore': 'examples/pr-test-restore.yml',
};
const OUT = 'src/init-workflow-templates.ts';

export function generate() {
  const entries = Object.entries(SOURCES).map(([k, file]) => `  ${JSON.stringify(k)}: {\n    source: ${JSON.stringify(file)},\n    text: ${JSON.stringify(readFileSync(file, 'utf8'))},\n  },`);
  return [
    '// Generated from examples/ by scripts/gen-workflow-templates.mjs (npm run build): edit the examples, not this file.',
    'export const WORKFLOW_TEMPLATES = {',
    ...entries,
    '} as const;',
    '',
  ].join('\n');
}

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(OUT, 'utf8');
  } catch {
    /* missing */
  }
  if (current !== generate()) {
    process.stderr.write(`${OUT} is out of date with examples/: run npm run build (or node scripts/gen-workflow-templates.mjs)\n`);
    process.exit(1);
  }
} else {
  writeFileSync(OUT, generate());
}
