// Every example workflow parses, uses only inputs action.yml has, and names modes that exist.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { INPUTS, MODES } from '../../src/inputs.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const files = [
  ...readdirSync(path.join(ROOT, 'examples')).map((f) => path.join('examples', f)),
  ...readdirSync(path.join(ROOT, '.github', 'workflows')).map((f) => path.join('.github', 'workflows', f)),
].filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'));
const inputs = new Set<string>(INPUTS.map((i) => i.name));

interface Step {
  uses?: string;
  with?: Record<string, unknown>;
}

function ourSteps(doc: { jobs?: Record<string, { steps?: Step[] }> }): Step[] {
  return Object.values(doc.jobs ?? {}).flatMap((j) => j.steps ?? []).filter((s) => s.uses === './' || /pgvector-backup@/.test(s.uses ?? ''));
}

describe.each(files)('%s', (file) => {
  const doc = parse(readFileSync(path.join(ROOT, file), 'utf8')) as { on?: unknown; jobs?: Record<string, { steps?: Step[] }> };
  test('parses as a workflow', () => {
    expect(doc.on ?? (doc as Record<string, unknown>)['true']).toBeDefined();
    expect(Object.keys(doc.jobs ?? {}).length).toBeGreaterThan(0);
  });
  test('every with: key is an input of action.yml and every mode exists', () => {
    for (const step of ourSteps(doc)) {
      for (const key of Object.keys(step.with ?? {})) expect(inputs.has(key), `${file}: unknown input ${key}`).toBe(true);
      const mode = step.with?.mode;
      if (typeof mode === 'string' && !mode.includes('${{')) expect(MODES as readonly string[]).toContain(mode);
    }
  });
  test('third-party actions are pinned to a commit', () => {
    const all = Object.values(doc.jobs ?? {}).flatMap((j) => j.steps ?? []);
    for (const s of all) {
      if (!s.uses || s.uses === './' || /pgvector-backup@/.test(s.uses)) continue;
      expect(s.uses, file).toMatch(/@[0-9a-f]{40}$/);
    }
  });
});

test('the examples cover the four workflows users copy', () => {
  const ex = readdirSync(path.join(ROOT, 'examples')).map((f) => parse(readFileSync(path.join(ROOT, 'examples', f), 'utf8')) as { jobs: Record<string, { steps?: Step[]; strategy?: { matrix?: unknown } }> });
  const modes = ex.flatMap((d) => ourSteps(d).map((s) => String(s.with?.mode ?? 'backup')));
  expect(modes).toEqual(expect.arrayContaining(['backup', 'restore', 'test-restore']));
  expect(ex.some((d) => Object.values(d.jobs).some((j) => j.strategy?.matrix))).toBe(true);
});
