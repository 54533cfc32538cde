// init-workflow's workflows: generated from examples/ (one source), with --schedule and --destination set in the
// right places, still valid workflows that use only real inputs.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { ConfigurationError } from '../../src/errors.js';
import { parseInitArgs, renderWorkflows, secretsUsed, WORKFLOW_FILES } from '../../src/init-workflow.js';
import { WORKFLOW_TEMPLATES } from '../../src/init-workflow-templates.js';
import { INPUTS } from '../../src/inputs.js';
import { readFileSync } from 'node:fs';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

interface Step {
  uses?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Workflow {
  on: { schedule?: Array<{ cron: string }> } & Record<string, unknown>;
  jobs: Record<string, { steps: Step[] }>;
}

function ours(text: string): Step {
  const doc = parse(text) as Workflow;
  const steps = Object.values(doc.jobs).flatMap((j) => j.steps);
  const step = steps.find((s) => /pgvector-backup@/.test(s.uses ?? ''));
  expect(step).toBeDefined();
  return step!;
}

function byKind(files: ReturnType<typeof renderWorkflows>): Record<string, string> {
  return Object.fromEntries(files.map((f) => [f.kind, f.text]));
}

test('the templates are the examples as they are now (run npm run build after editing examples/)', () => {
  const r = spawnSync(path.join(ROOT, 'node_modules', 'node', 'bin', 'node'), ['scripts/gen-workflow-templates.mjs', '--check'], { cwd: ROOT, encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  for (const t of Object.values(WORKFLOW_TEMPLATES)) expect(t.text).toBe(readFileSync(path.join(ROOT, t.source), 'utf8'));
});

describe('renderWorkflows', () => {
  test('without options: the three examples, under their workflow names, unchanged but for a header', () => {
    const files = renderWorkflows({});
    expect(files.map((f) => f.file)).toEqual([
      '.github/workflows/pgvector-backup-backup.yml',
      '.github/workflows/pgvector-backup-restore.yml',
      '.github/workflows/pgvector-backup-test-restore.yml',
    ]);
    for (const f of files) {
      const t = WORKFLOW_TEMPLATES[f.kind];
      expect(f.text).toBe(`# Written by \`pgvector-backup init-workflow\` from ${t.source}; edit freely.\n${t.text}`);
      expect(path.basename(f.file)).toBe(WORKFLOW_FILES[f.kind]);
    }
    const modes = files.map((f) => String(ours(f.text).with?.mode));
    expect(modes).toEqual(['backup', 'restore', 'test-restore']);
  });

  test('--schedule and an s3 destination', () => {
    const t = byKind(renderWorkflows({ schedule: '0 */6 * * *', destination: 's3://bucket/vector_db' }));
    expect((parse(t.backup!) as Workflow).on.schedule).toEqual([{ cron: '0 */6 * * *' }]);
    // The backup also goes to the cache, where the pull-request workflow (no secrets) finds it.
    expect(ours(t.backup!).with?.destination).toBe('s3://bucket/vector_db,cache');
    expect(ours(t.restore!).with?.destination).toBe('s3://bucket/vector_db');
    expect(ours(t['test-restore']!).with?.destination).toBe('cache');
    expect(Object.keys(ours(t.backup!).env ?? {})).toEqual(expect.arrayContaining(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']));
    expect(secretsUsed(t.backup!)).toEqual(expect.arrayContaining(['DATABASE_URL', 'AWS_ACCESS_KEY_ID']));
  });

  test('without s3 the AWS settings go, and the files stay valid', () => {
    const t = byKind(renderWorkflows({ destination: 'artifact,cache' }));
    for (const kind of ['backup', 'restore'] as const) {
      const step = ours(t[kind]!);
      expect(step.with?.destination).toBe('artifact,cache');
      expect(step.env).toBeUndefined();
      expect(t[kind]).not.toMatch(/AWS_/);
    }
    expect(ours(t.backup!).with?.['database-url']).toBe('${{ secrets.DATABASE_URL }}');
  });

  test('every with: key is still an input', () => {
    const inputs = new Set<string>(INPUTS.map((i) => i.name));
    for (const f of renderWorkflows({ schedule: '@daily', destination: 'artifact' })) {
      for (const key of Object.keys(ours(f.text).with ?? {})) expect(inputs.has(key), `${f.file}: ${key}`).toBe(true);
    }
    expect((parse(byKind(renderWorkflows({ schedule: '@daily' })).backup!) as Workflow).on.schedule).toEqual([{ cron: '0 0 * * *' }]);
  });

  test.each<[{ schedule?: string; destination?: string }, RegExp]>([
    [{ schedule: '0 2 * *' }, /--schedule "0 2 \* \*" is not a valid cron schedule: it has 4 fields/],
    [{ schedule: '*/10 * * * * *' }, /--schedule .* has 6 fields/],
    [{ destination: 'local' }, /runner's disk, which is gone after the job/],
    [{ destination: 'dropbox' }, /"dropbox" is not a destination/],
    [{ destination: ' , ' }, /--destination is empty/],
  ])('%j is refused', (opts, message) => {
    expect(() => renderWorkflows(opts)).toThrow(ConfigurationError);
    expect(() => renderWorkflows(opts)).toThrow(message);
  });
});

test('the next steps name the secrets and the variables the workflows use', () => {
  const text = 'a: ${{ secrets.DATABASE_URL }}\nb: ${{ vars.BACKUP_AGE_RECIPIENT }}\nc: ${{ secrets.DATABASE_URL }} mysecrets.X';
  expect(secretsUsed(text)).toEqual(['DATABASE_URL']);
  expect(secretsUsed(text, 'vars')).toEqual(['BACKUP_AGE_RECIPIENT']);
});

describe('parseInitArgs', () => {
  test.each<[string[], ReturnType<typeof parseInitArgs>]>([
    [[], { force: false, help: false }],
    [['--force'], { force: true, help: false }],
    [['--schedule', '0 3 * * 0', '--destination=artifact'], { force: false, help: false, schedule: '0 3 * * 0', destination: 'artifact' }],
    [['-h'], { force: false, help: true }],
  ])('%j', (argv, expected) => {
    expect(parseInitArgs(argv)).toEqual(expected);
  });
  test('unknown arguments are usage errors', () => {
    expect(() => parseInitArgs(['--overwrite'])).toThrow(/Unknown argument --overwrite/);
    expect(() => parseInitArgs(['--schedule'])).toThrow(/--schedule needs a value/);
  });
});
