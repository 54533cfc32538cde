// Retention proven by a model (issue 14): random sequences of backups (good, failed, unverified, empty, encrypted),
// checks (passed, damage, wrong key, unreachable target, missing tool, cancelled) and prunes (random policies,
// failing listings) run through the real state code: manifests written by writeManifest, checks classified and
// recorded by checkAndRecord, standing derived by standingOf, the local storage's listing and deletes, and
// applyRetention's plan. After every step: the newest keep-min good backups exist, nothing was deleted or recorded
// because a check could not run, and a failed listing deleted nothing. No PostgreSQL is needed: the archives are
// small files, and each check's verdict is what the step says the real check found.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { MANIFEST_VERSION, readManifest, standingOf, TOOL_NAME, writeManifest, type Manifest, type Standing, type Verification } from '../../src/archive/manifest.js';
import { buildConfig } from '../../src/config.js';
import type { Context } from '../../src/context.js';
import { BackupError, ConfigurationError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { applyRetention } from '../../src/modes/prune.js';
import { checkAndRecord } from '../../src/modes/verify.js';
import { LocalStorage, scanLocal } from '../../src/storage/local.js';
import type { Storage, StoredBackup } from '../../src/storage/storage.js';

const DB = 'model_db';
const DAY = 86_400_000;
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const quiet: Logger = { info() {}, warning() {}, error() {}, debug() {}, group: (_n, fn) => fn() };

type BackupKind = 'good-quick' | 'good-full' | 'unverified' | 'failed' | 'empty' | 'encrypted';
type CheckOutcome = 'pass' | 'damage' | 'wrong-key' | 'unreachable-target' | 'missing-tool' | 'full-tmpdir';
type Step =
  | { kind: 'backup'; what: BackupKind; hoursLater: number }
  | { kind: 'check'; pick: number; level: Verification['level']; outcome: CheckOutcome }
  | { kind: 'prune'; days: number; keepMin: number; daily: number; weekly: number; listingFails: boolean };

/** The local storage, whose listing can be made to fail (as an unreachable bucket's does). */
class FlakyLocal implements Storage {
  readonly id = 'local';
  failList = false;
  private readonly inner: LocalStorage;
  constructor(dir: string) {
    this.inner = new LocalStorage(dir);
  }
  put = (b: Parameters<Storage['put']>[0]) => this.inner.put(b);
  get = (b: StoredBackup) => this.inner.get(b);
  delete = (b: StoredBackup) => this.inner.delete(b);
  orphans = (db?: string) => this.inner.orphans(db);
  async list(database?: string): Promise<StoredBackup[]> {
    if (this.failList) throw new BackupError('Listing failed (injected)', 'Fix access', { code: 'storage-list-failed' });
    return this.inner.list(database);
  }
}

/** What a check throws for each outcome: the same classes and flags the real checks use. */
function verdict(outcome: CheckOutcome): () => Promise<string[]> {
  return async () => {
    switch (outcome) {
      case 'pass':
        return ['size and sha256 match the manifest'];
      case 'damage':
        throw new BackupError('Backup x failed the sha256 check', 'The backup is damaged', { code: 'verify-checksum', damage: true });
      case 'wrong-key':
        throw new BackupError('Cannot decrypt backup x: the key does not match', 'Use the right key', { code: 'crypto-wrong-key' });
      case 'unreachable-target':
        throw new BackupError('Cannot connect to PostgreSQL at 127.0.0.1:1 (test-restore-url): connection refused', 'Check test-restore-url', { code: 'connect-refused' });
      case 'missing-tool':
        throw new ConfigurationError('No pg_restore of version 17 or newer', { code: 'config-invalid-input' });
      case 'full-tmpdir':
        throw new BackupError('No space left in /tmp to decrypt backup x', 'Free space', { code: 'disk-full' });
    }
  };
}

/** The model: what each backup's standing must be, by name. */
interface ModelBackup {
  name: string;
  createdAt: number;
  standing: Standing;
  /** Failed level rank while bad (a quick pass does not clear a full failure). */
  failedRank: number;
}

const rank = (l: Verification['level']): number => (l === 'full' ? 2 : 1);

function modelApply(b: ModelBackup, level: Verification['level'], outcome: CheckOutcome): void {
  if (outcome === 'pass') {
    if (b.standing !== 'bad' || rank(level) >= b.failedRank) {
      b.standing = 'good';
      b.failedRank = 0;
    }
  } else if (outcome === 'damage') {
    b.failedRank = b.standing === 'bad' ? Math.max(b.failedRank, rank(level)) : rank(level);
    b.standing = 'bad';
  }
  // Anything else: the check could not run; nothing changes.
}

const files = (dir: string): Record<string, string> => Object.fromEntries(readdirSync(dir).sort().map((f) => [f, readFileSync(path.join(dir, f), 'latin1')]));

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('backup' as const), what: fc.constantFrom<BackupKind>('good-quick', 'good-full', 'unverified', 'failed', 'empty', 'encrypted'), hoursLater: fc.integer({ min: 1, max: 72 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('check' as const), pick: fc.nat(), level: fc.constantFrom<Verification['level']>('quick', 'full'), outcome: fc.constantFrom<CheckOutcome>('pass', 'damage', 'wrong-key', 'unreachable-target', 'missing-tool', 'full-tmpdir') }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('prune' as const),
      // Short age limits and mostly no GFS buckets, so that keep-min and "newest good" are what keeps backups.
      days: fc.constantFrom(0, 1, 1, 2, 3, 7),
      keepMin: fc.integer({ min: 1, max: 4 }),
      daily: fc.constantFrom(0, 0, 0, 1, 3),
      weekly: fc.constantFrom(0, 0, 0, 1),
      listingFails: fc.boolean(),
    }),
  },
);

async function runModel(steps: Step[]): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgvb-model-'));
  roots.push(dir);
  const storage = new FlakyLocal(dir);
  const config = buildConfig((name) => ({ 'database-url': `postgresql://u@localhost/${DB}`, 'backup-dir': dir, destination: 'local' })[name as string], { PATH: '/bin' });
  const ctx: Context = { config, logger: quiet, reporter: { output() {}, summary: async () => undefined }, facts: {}, onCancel: () => () => undefined };
  let clock = Date.UTC(2026, 0, 1);
  let seq = 0;
  const model = new Map<string, ModelBackup>();
  const maxKeepMin = { value: 1 };

  for (const step of steps) {
    const before = files(dir);
    if (step.kind === 'backup') {
      clock += step.hoursLater * 3_600_000;
      // A failed or empty run never writes a manifest (the real backup refuses before the rename, tested end to end).
      if (step.what === 'failed' || step.what === 'empty') {
        expect(files(dir)).toEqual(before);
        continue;
      }
      const name = `${DB}_${String(++seq).padStart(5, '0')}`;
      const at = new Date(clock).toISOString();
      writeFileSync(path.join(dir, `${name}.dump`), `archive ${name}`);
      const m = {
        manifestVersion: MANIFEST_VERSION,
        tool: { name: TOOL_NAME, version: 'test' },
        name,
        createdAt: at,
        database: DB,
        server: { version: '15', versionNum: 150000, pgvectorVersion: '0.8.0' },
        pgDump: { version: '15', major: 15 },
        format: 'custom',
        compression: { method: 'none', level: null, applied: 'none' },
        encryption: step.what === 'encrypted' ? { method: 'age', recipients: ['age1x'], passphrase: false, plaintextSize: 1, plaintextSha256: 'a'.repeat(64) } : null,
        archive: { file: `${name}.dump`, size: 1, sha256: 'b'.repeat(64), dumpBytes: 1 },
        durationSeconds: 1,
        totals: { tables: 0, rows: 0, vectors: 0 },
        extensions: [],
        tables: [],
        indexes: [],
        sequences: [],
        largeObjects: 0,
        roles: [],
        knn: null,
        verifications: [],
        verification: null,
      } as unknown as Manifest;
      await writeManifest(dir, m);
      const entry: ModelBackup = { name, createdAt: clock, standing: 'unverified', failedRank: 0 };
      model.set(name, entry);
      if (step.what !== 'unverified') {
        // The backup's own verification: passes at the level it asked for.
        const b = (await scanLocal(dir, DB)).backups.find((x) => x.name === name)!;
        const level = step.what === 'good-full' ? 'full' : 'quick';
        await checkAndRecord(ctx, b, level, verdict('pass'));
        modelApply(entry, level, 'pass');
      }
    } else if (step.kind === 'check') {
      const live = [...model.values()];
      if (!live.length) continue;
      const target = live[step.pick % live.length]!;
      const b = (await scanLocal(dir, DB)).backups.find((x) => x.name === target.name)!;
      clock += 60_000;
      let threw = false;
      try {
        const o = await checkAndRecord(ctx, b, step.level, verdict(step.outcome));
        expect(o.ok).toBe(step.outcome === 'pass');
      } catch {
        threw = true;
      }
      const couldNotRun = step.outcome !== 'pass' && step.outcome !== 'damage';
      expect(threw).toBe(couldNotRun);
      // A check that could not run changes nothing recorded about any backup.
      if (couldNotRun) expect(files(dir)).toEqual(before);
      modelApply(target, step.level, step.outcome);
    } else {
      storage.failList = step.listingFails;
      ctx.config.retention = { days: step.days, keepMin: step.keepMin, daily: step.daily, weekly: step.weekly, monthly: 0, yearly: 0 };
      maxKeepMin.value = step.keepMin;
      // Chosen from the model before the prune: the newest keep-min good backups must survive it.
      const mustKeep = [...model.values()]
        .filter((b) => b.standing === 'good')
        .sort((a, b) => b.createdAt - a.createdAt)
        .slice(0, step.keepMin);
      const out = await applyRetention(ctx, DB, { dryRun: false, places: [storage], now: new Date(clock) });
      storage.failList = false;
      if (step.listingFails) {
        expect(out[0]!.failure).toBeDefined();
        // A failed listing deletes nothing.
        expect(files(dir)).toEqual(before);
      }
      for (const g of mustKeep) expect(readdirSync(dir), `keep-min ${step.keepMin}: ${g.name}`).toContain(`${g.name}.dump`);
      // Only a prune deletes, and it never deletes what is younger than retention-days.
      for (const b of model.values()) if (step.days > 0 && clock - b.createdAt < step.days * DAY && !step.listingFails) expect(readdirSync(dir)).toContain(`${b.name}.dump`);
      for (const name of [...model.keys()]) if (!readdirSync(dir).includes(`${name}.json`)) model.delete(name);
    }

    // After every step: the state on disk agrees with the model ...
    const onDisk = (await scanLocal(dir, DB)).backups;
    expect(onDisk.map((b) => b.name).sort()).toEqual([...model.keys()].sort());
    for (const b of onDisk) {
      const m = await readManifest(b.manifestPath);
      expect(standingOf(m.verifications).standing, `${b.name}: ${JSON.stringify(m.verifications)}`).toBe(model.get(b.name)!.standing);
    }
    // ... and the newest keep-min good backups (by the model) all exist; so does the newest good one.
    const good = [...model.values()].filter((b) => b.standing === 'good').sort((a, b) => b.createdAt - a.createdAt);
    for (const g of good.slice(0, Math.max(1, maxKeepMin.value))) expect(readdirSync(dir)).toContain(`${g.name}.dump`);
  }
}

describe('retention model (fast-check, through the real state code)', () => {
  test('random backups, checks and prunes keep the promise', async () => {
    await fc.assert(fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 40 }), runModel), { numRuns: 600 });
  }, 120_000);

  test('unverified backups never displace good ones from keep-min', async () => {
    await runModel([
      { kind: 'backup', what: 'good-quick', hoursLater: 1 },
      { kind: 'backup', what: 'good-full', hoursLater: 24 },
      { kind: 'backup', what: 'unverified', hoursLater: 24 },
      { kind: 'backup', what: 'unverified', hoursLater: 24 },
      { kind: 'prune', days: 1, keepMin: 2, daily: 0, weekly: 0, listingFails: false },
    ]);
  });

  test('the scenario that lost data before: a wrong key on every good backup, then prune with keep-min 3', async () => {
    const steps: Step[] = [
      { kind: 'backup', what: 'encrypted', hoursLater: 1 },
      { kind: 'backup', what: 'encrypted', hoursLater: 24 },
      { kind: 'backup', what: 'encrypted', hoursLater: 24 },
      { kind: 'check', pick: 0, level: 'quick', outcome: 'wrong-key' },
      { kind: 'check', pick: 1, level: 'quick', outcome: 'wrong-key' },
      { kind: 'check', pick: 2, level: 'full', outcome: 'unreachable-target' },
      { kind: 'backup', what: 'empty', hoursLater: 240 },
      { kind: 'prune', days: 1, keepMin: 3, daily: 0, weekly: 0, listingFails: false },
    ];
    await runModel(steps);
  });
});
