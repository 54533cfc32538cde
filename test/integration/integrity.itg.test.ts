// Issue 14, end to end with the bundled action and CLI: what we record about a backup never lies, and retention
// cannot be tricked into deleting the good ones. Each scenario is one a new user meets by an ordinary mistake:
// a wrong key, an unreachable test-restore target, an old client, a pooler, a full disk, a migration that prints
// its environment. A check that could not run fails the run and leaves every manifest byte-identical.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { standingOf, type Manifest } from '../../src/archive/manifest.js';
import { keygen } from '../../src/keygen.js';
import { findClientTools } from '../../src/postgres/tools.js';
import { runAction, runCli, type RunResult } from '../helpers/action.js';
import { adminUrl, createDatabase, dropDatabase, sql, urlFor, withClient } from '../helpers/pg.js';

let db: { name: string; url: string };
let work: string;
let key: { file: string; recipient: string };
let otherKey: { file: string; recipient: string };

beforeAll(async () => {
  db = await createDatabase('integ_db', { documents: 60, dimensions: 8 });
  work = mkdtempSync(path.join(os.tmpdir(), 'pgvb-integ-'));
  key = await keygen();
  otherKey = await keygen();
});
afterAll(async () => {
  await dropDatabase(db.name);
  rmSync(work, { recursive: true, force: true });
});

function freshDir(name: string): string {
  const d = path.join(work, name);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Every manifest in dir, by file name, as bytes: "changes nothing recorded" is checked byte for byte. */
function manifests(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => [f, readFileSync(path.join(dir, f), 'utf8')]),
  );
}

/** The real client binaries of the test server's major. */
async function realBinDir(url: string): Promise<string> {
  const n = (await sql<{ n: string }>(url, `SELECT current_setting('server_version_num') AS n`))[0]!.n;
  const tools = await findClientTools(Math.floor(Number(n) / 10000), { env: process.env, logger: { info() {}, warning() {}, error() {}, debug() {}, group: (_n, fn) => fn() } });
  expect(tools.kind).toBe('local');
  return tools.kind === 'local' ? tools.dir : '';
}

/**
 * A pg-bin-dir of shell wrappers: each of pg_dump, pg_restore and psql execs the real one, except those given a
 * script body (null: left out). A pg_dump body's --version is the real one's.
 */
function binWrappers(real: string, bodies: Partial<Record<'pg_dump' | 'pg_restore' | 'psql', string | null>>): string {
  const wrap = mkdtempSync(path.join(os.tmpdir(), 'pgvb-wrap-'));
  for (const t of ['pg_dump', 'pg_restore', 'psql'] as const) {
    const body = bodies[t];
    if (body === null) continue;
    const script = body === undefined ? `exec "${real}/${t}" "$@"` : `if [ "$1" = "--version" ]; then exec "${real}/${t}" --version; fi\n${body}`;
    writeFileSync(path.join(wrap, t), `#!/bin/sh\n${script}\n`);
    chmodSync(path.join(wrap, t), 0o755);
  }
  return wrap;
}

const errorLines = (r: RunResult): string[] => r.stdout.split('\n').filter((l) => l.startsWith('::error::'));

/** Moves a backup's createdAt into the past (retention orders and ages by the manifest's time). */
function age(dir: string, file: string, daysAgo: number): void {
  const f = path.join(dir, file);
  const m = JSON.parse(readFileSync(f, 'utf8')) as Manifest;
  m.createdAt = new Date(Date.now() - daysAgo * 86_400_000).toISOString();
  writeFileSync(f, JSON.stringify(m, null, 2));
}

describe('a check that could not run changes nothing and never feeds retention', () => {
  let dir: string;
  let made: string[];
  beforeAll(async () => {
    // Three good encrypted backups (verified in full by the runs that wrote them), aged past retention-days.
    dir = freshDir('three-good');
    made = [];
    for (let i = 0; i < 3; i++) {
      const r = await runAction({ 'database-url': db.url, 'backup-dir': dir, 'encryption-recipients': key.recipient, verify: 'quick' });
      expect(r.code, r.stdout).toBe(0);
      made.push(path.basename(r.outputs['manifest-path']!));
      // Distinct names: backups are named by the second.
      await new Promise((res) => setTimeout(res, 1100));
    }
    made.forEach((f, i) => age(dir, f, 10 + i));
  }, 180_000);

  test('verify --all with the wrong decryption-identity: fails naming the key, every manifest byte-identical, prune keeps all three', async () => {
    const before = manifests(dir);
    const r = await runAction({ mode: 'verify', all: 'true', 'backup-dir': dir, 'database-url': db.url, 'decryption-identity': otherKey.file });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::3 of 3 backups could not be checked: Cannot decrypt backup \w+: the key does not match/);
    expect(r.stdout).toMatch(/This says nothing about those backups and nothing was recorded about them/);
    expect(r.summary).toMatch(/could not check \(nothing recorded\)/);
    expect(manifests(dir)).toEqual(before);
    for (const f of made) expect(standingOf((JSON.parse(before[f]!) as Manifest).verifications).standing).toBe('good');

    // The next scheduled run's retention: keep-min 3 holds, nothing is deleted.
    const p = await runAction({ mode: 'prune', 'backup-dir': dir, 'database-url': db.url, 'retention-days': '1', 'keep-min': '3', 'dry-run': 'false' });
    expect(p.code, p.stdout).toBe(0);
    expect(Object.keys(manifests(dir))).toEqual(Object.keys(before));
    // latest (for a restore) still finds the newest good one.
    const l = await runAction({ mode: 'list', 'backup-dir': dir, 'database-url': db.url });
    expect(l.summary.match(/\| good \(quick\) \|/g)).toHaveLength(3);
  });

  test('a single verify with the wrong key: one error line, the manifest unchanged, the metrics say inconclusive', async () => {
    const before = manifests(dir);
    const metrics = path.join(work, 'wrong-key.prom');
    const r = await runAction({ mode: 'verify', 'backup-dir': dir, 'database-url': db.url, backup: made[0]!, 'decryption-identity': otherKey.file, 'metrics-file': metrics });
    expect(r.code).not.toBe(0);
    // Printed once, with its pointer.
    expect(errorLines(r)).toHaveLength(1);
    expect(errorLines(r)[0]).toMatch(/the key does not match .*#crypto-wrong-key\)$/);
    expect(manifests(dir)).toEqual(before);
    const text = readFileSync(metrics, 'utf8');
    expect(text).toMatch(/^pgvector_backup_verification_inconclusive\{[^}]*\} 1$/m);
    expect(text).not.toMatch(/^pgvector_backup_verification_success\{[^}]*\} 0$/m);
  });

  test('verify with a pg_restore older than the archive\'s pg_dump: could not check, nothing recorded', async () => {
    const plainDir = freshDir('old-client');
    const made1 = await runAction({ 'database-url': db.url, 'backup-dir': plainDir, verify: 'quick' });
    expect(made1.code, made1.stdout).toBe(0);
    const before = manifests(plainDir);
    const fake = mkdtempSync(path.join(os.tmpdir(), 'pgvb-oldclient-'));
    for (const tool of ['pg_dump', 'pg_restore', 'psql']) {
      writeFileSync(path.join(fake, tool), `#!/bin/sh\necho "${tool} (PostgreSQL) 12.22"\n`);
      chmodSync(path.join(fake, tool), 0o755);
    }
    const r = await runAction({ mode: 'verify', 'backup-dir': plainDir, 'database-url': db.url, 'pg-bin-dir': fake });
    expect(r.code).not.toBe(0);
    expect(errorLines(r)).toHaveLength(1);
    expect(errorLines(r)[0]).toMatch(/12\.22/);
    expect(manifests(plainDir)).toEqual(before);
    expect(r.outputs.verified).toBe('false');
  });

  test('verify --all over good plain backups and encrypted ones with the wrong key: the metrics say inconclusive, not passed', async () => {
    const mixed = freshDir('mixed');
    for (const f of readdirSync(dir)) if (!f.endsWith('.partial')) copyFileSync(path.join(dir, f), path.join(mixed, f));
    const plain = await runAction({ 'database-url': db.url, 'backup-dir': mixed, verify: 'quick', 'retention-days': '0' });
    expect(plain.code, plain.stdout).toBe(0);
    const before = manifests(mixed);
    const metrics = path.join(work, 'mixed.prom');
    const r = await runAction({ mode: 'verify', all: 'true', 'backup-dir': mixed, 'database-url': db.url, 'decryption-identity': otherKey.file, 'metrics-file': metrics });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::3 of 4 backups could not be checked/);
    const text = readFileSync(metrics, 'utf8');
    expect(text).toMatch(/^pgvector_backup_verification_inconclusive\{[^}]*\} 1$/m);
    // The plain backup's pass is recorded; the encrypted ones are untouched.
    const after = manifests(mixed);
    for (const f of made) expect(after[f]).toBe(before[f]);
  });

  test('a pg_restore that cannot run (missing library, killed, out of memory, missing altogether) records nothing and prints one clean error', async () => {
    const d = freshDir('broken-restore');
    const made1 = await runAction({ 'database-url': db.url, 'backup-dir': d, verify: 'quick' });
    expect(made1.code, made1.stdout).toBe(0);
    const before = manifests(d);
    const real = await realBinDir(db.url);
    for (const body of [
      'echo "pg_restore: error while loading shared libraries: libpq.so.5: cannot open shared object file" >&2; exit 127',
      'kill -KILL $$',
      'echo "pg_restore: error: out of memory" >&2; exit 1',
      'echo "pg_restore: error: something nobody expected" >&2; exit 1',
      null,
    ]) {
      const wrap = binWrappers(real, { pg_restore: body });
      const r = await runAction({ mode: 'verify', 'backup-dir': d, 'database-url': db.url, 'pg-bin-dir': wrap });
      expect(r.code, `${body}: ${r.stdout}`).not.toBe(0);
      expect(errorLines(r), `${body}: ${r.stdout}`).toHaveLength(1);
      expect(r.stdout + r.stderr).not.toMatch(/\n\s+at .*\.js:\d+/);
      expect(manifests(d), String(body)).toEqual(before);
    }
  });

  test('test-restore into an unreachable test-restore-url: names test-restore-url, records nothing', async () => {
    const before = manifests(dir);
    const r = await runAction({
      mode: 'test-restore',
      'backup-dir': dir,
      'database-url': db.url,
      'decryption-identity': key.file,
      'test-restore-url': 'postgresql://postgres@127.0.0.1:1/postgres',
    });
    expect(r.code).not.toBe(0);
    expect(errorLines(r)).toHaveLength(1);
    expect(errorLines(r)[0]).toMatch(/Cannot connect to PostgreSQL at 127\.0\.0\.1:1 \(test-restore-url\): connection refused\. Check the host and port in test-restore-url/);
    expect(errorLines(r)[0]).not.toMatch(/database-url/);
    // Its quick check passed, but the test restore it was for could not run: nothing at all is recorded.
    expect(manifests(dir)).toEqual(before);
    expect(r.summary).toMatch(/could not check \(nothing recorded about the backup\)/);
  });

  test('a backup whose own test restore cannot run stays unverified, is not counted, and is not uploaded', async () => {
    const d = freshDir('own-verify-unreachable');
    const metrics = path.join(work, 'own.prom');
    const r = await runAction({ 'database-url': db.url, 'backup-dir': d, verify: 'full', 'test-restore-url': 'postgresql://postgres@127.0.0.1:1/postgres', 'metrics-file': metrics });
    expect(r.code).not.toBe(0);
    expect(errorLines(r)).toHaveLength(1);
    expect(errorLines(r)[0]).toMatch(/Backup \w+ was written but could not be verified: Cannot connect to PostgreSQL at 127\.0\.0\.1:1 \(test-restore-url\).*kept in .* as unverified/);
    const [file] = Object.keys(manifests(d));
    const m = JSON.parse(manifests(d)[file!]!) as Manifest;
    // The quick check passed, but the requested level did not finish: nothing recorded, unverified.
    expect(m.verifications).toEqual([]);
    expect(standingOf(m.verifications).standing).toBe('unverified');
    const text = readFileSync(metrics, 'utf8');
    expect(text).toMatch(/^pgvector_backup_verification_inconclusive\{[^}]*\} 1$/m);
    const restore = await runAction({ mode: 'restore', 'backup-dir': d, 'database-url': db.url, 'target-database-url': urlFor(`${db.name}_never`), confirm: `${db.name}_never` });
    expect(restore.code).not.toBe(0);
    expect(restore.stdout).toMatch(/No verified backup of database integ_db_\w+ found .*\(1 unverified/);
  });
});

describe('an empty or cut dump is refused while it is written, whatever verify says', () => {
  let big: { name: string; url: string };
  let binDir: string;
  beforeAll(async () => {
    // Over a megabyte of dump, several tables: a cut at 1 MiB lands inside the data.
    big = await createDatabase('integ_cut', { documents: 1500, dimensions: 96 });
    binDir = await realBinDir(big.url);
  }, 120_000);
  afterAll(async () => {
    await dropDatabase(big.name);
  });

  /** A pg-bin-dir whose pg_dump exits 0 after passing on only what `filter` (a shell pipeline stage) lets through. */
  function wrapper(filter: string): string {
    return binWrappers(binDir, { pg_dump: `"${binDir}/pg_dump" "$@" | ${filter}\nexit 0` });
  }

  test.each([
    ['nothing', 'custom', 'zstd', 'none', 'cat >/dev/null', /it wrote nothing/],
    ['13 bytes', 'custom', 'zstd', 'none', 'head -c 13', /ends inside the archive header|ends inside/],
    ['the first MiB (zstd by the program)', 'custom', 'zstd', 'none', 'head -c 1048576', /ends inside|no data block/],
    ['the first MiB (no compression: pg_dump writes the file)', 'custom', 'none', 'quick', 'head -c 1048576', /ends inside|no data block/],
    ['the first MiB (pg_dump\'s own gzip)', 'custom', 'gzip', 'quick', 'head -c 1048576', /ends inside|no data block/],
    ['everything but the last 5 bytes', 'custom', 'zstd', 'quick', 'head -c -5', /ends inside|no data block/],
    ['a plain dump without its last 200 bytes', 'plain', 'zstd', 'none', 'head -c -200', /footer/],
    ['a plain dump cut at 1 MiB (gzip)', 'plain', 'gzip', 'quick', 'head -c 1048576', /footer|no COPY/],
  ])('pg_dump exits 0 having written %s (format %s, compression %s, verify %s): refused, nothing kept, the good backup survives prune', async (_what, format, compression, verify, filter, why) => {
    const d = freshDir(`cut-${format}-${compression}-${verify}-${filter.replace(/\W+/g, '_')}`);
    const good = await runAction({ 'database-url': big.url, 'backup-dir': d, verify: 'quick' });
    expect(good.code, good.stdout).toBe(0);
    const before = readdirSync(d).sort();
    const r = await runAction({ 'database-url': big.url, 'backup-dir': d, format, compression, verify, 'pg-bin-dir': wrapper(filter), 'retention-days': '0' });
    expect(r.code, r.stdout).not.toBe(0);
    expect(errorLines(r)).toHaveLength(1);
    expect(errorLines(r)[0]).toMatch(/pg_dump exited successfully but its output is not a complete dump: .*#dump-incomplete\)$/);
    expect(errorLines(r)[0]).toMatch(why);
    expect(readdirSync(d).sort()).toEqual(before);
    const p = await runAction({ mode: 'prune', 'backup-dir': d, 'database-url': big.url, 'retention-days': '1', 'dry-run': 'false' });
    expect(p.code, p.stdout).toBe(0);
    expect(readdirSync(d).sort()).toEqual(before);
  });

  test('a directory archive whose largest data file is missing, empty or cut short: refused, nothing kept', async () => {
    for (const damage of ['rm -f', ': >', 'truncate -s %half', 'truncate -s -10']) {
      // After pg_dump wrote the directory: remove (or empty, or cut) its largest data file, and exit 0.
      const wrap = binWrappers(binDir, {
        pg_dump: `"${binDir}/pg_dump" "$@" || exit $?\nfor a in "$@"; do case "$a" in --file=*) dir="\${a#--file=}";; esac; done\nbig=$(ls -S "$dir"/*.dat* | head -n 1)\nhalf=$(( $(stat -c %s "$big") / 2 ))\n${damage.replace('%half', '$half')} "$big"\nexit 0`,
      });
      for (const compression of ['gzip', 'none']) {
        const d = freshDir(`cut-dir-${compression}-${damage.replace(/\W+/g, '_')}`);
        const r = await runAction({ 'database-url': big.url, 'backup-dir': d, format: 'directory', compression, verify: 'quick', 'pg-bin-dir': wrap });
        expect(r.code, `${damage} ${compression}: ${r.stdout}`).not.toBe(0);
        expect(errorLines(r)).toHaveLength(1);
        expect(errorLines(r)[0]).toMatch(/pg_dump exited successfully but its output is not a complete dump: .*#dump-incomplete\)$/);
        expect(readdirSync(d)).toEqual([]);
      }
    }
  });

  test('a dump that lost rows (every other COPY line dropped, the structure intact) is refused: its rows are counted', async () => {
    const drop = `awk 'BEGIN{c=0} /^COPY / {inside=1; print; next} inside && /^\\\\\.$/ {inside=0; print; next} inside {c++; if (c % 2) next} {print}'`;
    const plainWrap = wrapper(drop);
    for (const compression of ['none', 'zstd']) {
      const d = freshDir(`thinned-plain-${compression}`);
      const r = await runAction({ 'database-url': big.url, 'backup-dir': d, format: 'plain', compression, verify: 'quick', 'pg-bin-dir': plainWrap });
      expect(r.code, r.stdout).not.toBe(0);
      expect(errorLines(r)[0]).toMatch(/its COPY holds \d+ rows, the snapshot has \d+.*#dump-incomplete\)$/);
      expect(readdirSync(d)).toEqual([]);
    }
    // A directory archive whose data files lost every other row after pg_dump wrote them (end marker kept).
    const wrap = binWrappers(binDir, {
      pg_dump: `"${binDir}/pg_dump" "$@" || exit $?\nfor a in "$@"; do case "$a" in --file=*) dir="\${a#--file=}";; esac; done\nfor f in "$dir"/[0-9]*.dat; do awk 'NR % 2 == 0 && !/^\\\\\.$/ && $0 != "" {next} {print}' "$f" > "$f.x" && mv "$f.x" "$f"; done\nexit 0`,
    });
    const d = freshDir('thinned-dir');
    const r = await runAction({ 'database-url': big.url, 'backup-dir': d, format: 'directory', compression: 'none', verify: 'quick', 'pg-bin-dir': wrap });
    expect(r.code, r.stdout).not.toBe(0);
    expect(errorLines(r)[0]).toMatch(/holds \d+ rows, the snapshot has \d+.*#dump-incomplete\)$/);
    expect(readdirSync(d)).toEqual([]);
  });

  test('a complete dump says what its self-check saw', async () => {
    const d = freshDir('selfcheck-ok');
    for (const [format, compression] of [['custom', 'zstd'], ['custom', 'none'], ['plain', 'gzip'], ['directory', 'gzip']] as const) {
      const r = await runAction({ 'database-url': big.url, 'backup-dir': d, format, compression, verify: 'none' });
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toMatch(/self-check: (header, table of contents and all \d+ data blocks walked to their end|header, a COPY for every table with data and the completion footer|table of contents and a data file for every table with data)/);
      await new Promise((res) => setTimeout(res, 1100));
    }
  });
});

describe('damage is recorded, and the metrics say so', () => {
  test('a backup whose test restore differs from the manifest: recorded bad, verification_success 0, BackupVerificationFailed would fire', async () => {
    // A pg_dump wrapper that blanks one chunk's embedding in a plain dump: the archive is complete (header, every
    // COPY with its exact rows, the footer), but it does not hold what the snapshot recorded.
    const binDir = await realBinDir(db.url);
    // Sets the embedding (the last column) of the first row after the COPY of public.chunks to NULL.
    const wrap = binWrappers(binDir, { pg_dump: `"${binDir}/pg_dump" "$@" | awk 'BEGIN{FS=OFS="\\t"} blank==1 {$NF="\\\\N"; blank=0} /^COPY public.chunks / {blank=1} {print}'` });
    const d = freshDir('dropped-row');
    const metrics = path.join(work, 'damage.prom');
    const r = await runAction({ 'database-url': db.url, 'backup-dir': d, format: 'plain', verify: 'full', 'pg-bin-dir': wrap, 'metrics-file': metrics });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/::error::Backup \w+ was written but failed verification: the test restore differs from the manifest in \d+ places \(see above\)\. The backup is kept for inspection and recorded as bad/);
    expect(r.stdout).toMatch(/::error::vector column public\.chunks\.embedding: expected \d+ non-null, restored \d+ non-null/);
    const [file] = Object.keys(manifests(d));
    const m = JSON.parse(manifests(d)[file!]!) as Manifest;
    expect(standingOf(m.verifications).standing).toBe('bad');
    expect(m.verifications.map((v) => [v.level, v.ok])).toEqual([
      ['quick', true],
      ['full', false],
    ]);
    const text = readFileSync(metrics, 'utf8');
    expect(text).toMatch(/^pgvector_backup_verification_success\{[^}]*\} 0$/m);
    expect(text).toMatch(/^pgvector_backup_verification_inconclusive\{[^}]*\} 0$/m);
  });
});

describe('restore safety and messages', () => {
  test('a restore whose target is a transaction-mode pooler is refused before anything is touched', async () => {
    const d = freshDir('pooler');
    const made = await runAction({ 'database-url': db.url, 'backup-dir': d, verify: 'quick' });
    expect(made.code, made.stdout).toBe(0);
    for (const target of ['postgresql://postgres@127.0.0.1:6543/app', 'postgresql://postgres@aws-0-eu-central-1.pooler.supabase.com:6543/postgres', 'postgresql://u@ep-cool-123-pooler.us-east-2.aws.neon.tech/neondb']) {
      const r = await runAction({ mode: 'restore', 'backup-dir': d, 'database-url': db.url, 'target-database-url': target, confirm: target.replace(/.*\//, '') });
      expect(r.code).not.toBe(0);
      expect(errorLines(r)).toHaveLength(1);
      expect(errorLines(r)[0]).toMatch(/target-database-url .*cannot hold the single session a restore needs.*Nothing was changed/);
    }
  });

  test('a restore that finds the archive damaged records it (latest no longer picks it); one that matches records a full pass', async () => {
    const d = freshDir('restore-damage');
    const made = await runAction({ 'database-url': db.url, 'backup-dir': d, verify: 'quick', compression: 'zstd' });
    expect(made.code, made.stdout).toBe(0);
    const target = `${db.name}_rt`;
    const ok = await runAction({ mode: 'restore', 'backup-dir': d, 'database-url': db.url, 'target-database-url': urlFor(target), confirm: target, backup: 'latest' });
    expect(ok.code, ok.stdout).toBe(0);
    let m = JSON.parse(readFileSync(made.outputs['manifest-path']!, 'utf8')) as Manifest;
    expect(m.verifications.map((v) => [v.level, v.ok])).toEqual([
      ['quick', true],
      ['quick', true],
      ['full', true],
    ]);
    // A byte inside a compressed block, with the manifest rewritten to match: only decompressing finds it.
    const archive = made.outputs['backup-path']!;
    const packed = readFileSync(archive);
    packed[Math.floor(packed.length * 0.6)]! ^= 0x55;
    writeFileSync(archive, packed);
    m.archive.sha256 = createHash('sha256').update(packed).digest('hex');
    writeFileSync(made.outputs['manifest-path']!, JSON.stringify(m, null, 2));
    const bad = await runAction({ mode: 'restore', 'backup-dir': d, 'database-url': db.url, 'target-database-url': urlFor(target), confirm: target, backup: m.name });
    expect(bad.code).not.toBe(0);
    expect(errorLines(bad)[0]).toMatch(/#(restore-archive-damaged|verify-structure|verify-decompression)\)$/);
    m = JSON.parse(readFileSync(made.outputs['manifest-path']!, 'utf8')) as Manifest;
    expect(standingOf(m.verifications).standing).toBe('bad');
    const again = await runAction({ mode: 'restore', 'backup-dir': d, 'database-url': db.url, 'target-database-url': urlFor(target), confirm: target, backup: 'latest' });
    expect(again.code).not.toBe(0);
    expect(again.stdout).toMatch(/No good backup of database integ_db_\w+ found .*\(1 found damaged\)/);
    const left = await sql<{ datname: string }>(adminUrl(), `SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${target}%`]);
    for (const x of left) await dropDatabase(x.datname);
  });

  test('a swap restore says it ends the other sessions on the target, and how many it ended', async () => {
    const d = freshDir('swap-sessions');
    const made = await runAction({ 'database-url': db.url, 'backup-dir': d, verify: 'quick' });
    expect(made.code, made.stdout).toBe(0);
    const target = await createDatabase('integ_swap', { documents: 5, dimensions: 8 });
    const u = new URL(target.url.replace(/^postgresql:/, 'http:'));
    const idle = new pg.Client({ host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: target.name });
    idle.on('error', () => undefined);
    await idle.connect();
    try {
      const r = await runAction({ mode: 'restore', 'backup-dir': d, 'database-url': db.url, 'target-database-url': target.url, confirm: target.name, backup: 'latest' });
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`::warning::Swapping ends every other session connected to ${target.name} \\(1 now\\)`));
      expect(r.stdout).toMatch(new RegExp(`Ended 1 session on ${target.name}`));
      expect(r.summary).toMatch(/\| Sessions ended on the previous database \| 1 \|/);
    } finally {
      await idle.end().catch(() => undefined);
      const left = await sql<{ datname: string }>(adminUrl(), `SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${target.name}%`]);
      for (const x of left) await dropDatabase(x.datname);
    }
  });

  test('the lock-timeout hint\'s SQL runs as printed, even for a name that needs quoting', async () => {
    const locked = await createDatabase('integ_lock', async (c) => {
      await c.query(`CREATE TABLE public."Odd ""Name"" ü" (id int)`);
    });
    try {
      await withClient(locked.url, async (holder) => {
        await holder.query('BEGIN');
        await holder.query(`LOCK TABLE public."Odd ""Name"" ü" IN ACCESS EXCLUSIVE MODE`);
        const r = await runAction({ 'database-url': locked.url, 'backup-dir': freshDir('lock'), 'lock-wait-timeout': '1s', verify: 'none' });
        expect(r.code).not.toBe(0);
        const sqlText = /Find it with (SELECT .*?::regclass);/.exec(errorLines(r)[0] ?? '')?.[1];
        expect(sqlText, r.stdout).toBeDefined();
        // Runs as printed, in another session, while the lock is still held.
        const rows = await sql(locked.url, sqlText!);
        expect(rows.length).toBeGreaterThan(0);
        await holder.query('ROLLBACK');
      });
    } finally {
      await dropDatabase(locked.name);
    }
  });
});

describe('migrate-command gets only what it needs', () => {
  test('its environment holds the restored copy\'s DATABASE_URL and PG*, never inputs, tokens, keys or passphrases', async () => {
    const d = freshDir('migrate-env');
    const made = await runAction({ 'database-url': db.url, 'backup-dir': d, 'encryption-recipients': key.recipient, verify: 'quick' });
    expect(made.code, made.stdout).toBe(0);
    const out = path.join(work, 'migrate-env.txt');
    const r = await runAction(
      { mode: 'test-restore', 'backup-dir': d, 'database-url': db.url, 'decryption-identity': key.file, 'migrate-command': `env > ${out}` },
      { env: { GITHUB_TOKEN: 'ghs_notforthepr_0123456789', ACTIONS_RUNTIME_TOKEN: 'runtime-token-xyz', AWS_SECRET_ACCESS_KEY: 'aws-secret-xyz', GH_TOKEN: 'gh-token-xyz' } },
    );
    expect(r.code, r.stdout).toBe(0);
    const env = readFileSync(out, 'utf8');
    const names = env
      .split('\n')
      .map((l) => l.slice(0, l.indexOf('=')))
      .filter(Boolean);
    expect(env).toMatch(/^DATABASE_URL=postgresql:\/\//m);
    expect(names).toEqual(expect.arrayContaining(['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PATH']));
    for (const n of names) expect(n).not.toMatch(/^(INPUT_|ACTIONS_|GITHUB_TOKEN|GH_TOKEN|AWS_|PGVB_)/);
    for (const secret of ['ghs_notforthepr_0123456789', 'runtime-token-xyz', 'aws-secret-xyz', 'gh-token-xyz', 'AGE-SECRET-KEY-1', db.url]) expect(env).not.toContain(secret);
    // The restored copy, not the source.
    expect(env).not.toMatch(new RegExp(`^PGDATABASE=${db.name}$`, 'm'));
  });
});

const canMount = process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0;

describe.skipIf(!canMount)('a full disk while writing a manifest or recording a verification (a small tmpfs; skipped where mount is not allowed)', () => {
  let mnt: string;
  beforeAll(() => {
    mnt = mkdtempSync(path.join(os.tmpdir(), 'pgvb-full-'));
  });
  const mount = (size: string): boolean => spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt]).status === 0;
  const umount = (): void => void spawnSync('umount', [mnt]);
  /** Fills the tmpfs until `leave` bytes are free. */
  function fillTo(leave: number): void {
    const st = spawnSync('df', ['-B1', '--output=avail', mnt], { encoding: 'utf8' });
    const avail = Number(st.stdout.trim().split('\n').pop());
    writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(Math.max(0, avail - leave)));
  }

  test('recording a verification: disk-full, no .partial, the manifest as it was', async () => {
    if (!mount('1m')) return;
    try {
      const d = path.join(mnt, 'b');
      const made = await runAction({ 'database-url': db.url, 'backup-dir': d, verify: 'none', compression: 'none' });
      expect(made.code, made.stdout).toBe(0);
      const before = manifests(d);
      fillTo(0);
      const r = await runAction({ mode: 'verify', 'backup-dir': d, 'database-url': db.url });
      expect(r.code).not.toBe(0);
      expect(errorLines(r)).toHaveLength(1);
      expect(errorLines(r)[0]).toMatch(/No space left on the device of .* \(see docs\/TROUBLESHOOTING\.md#disk-full\)$/);
      expect(readdirSync(d).filter((f) => f.endsWith('.partial'))).toEqual([]);
      expect(manifests(d)).toEqual(before);
    } finally {
      umount();
    }
  });

  test('writing the backup\'s manifest: disk-full, no .partial, no archive under a final name', async () => {
    // Learn the archive's size on a roomy disk first (an uncompressed custom dump of the same data: the same size).
    const probe = freshDir('probe-size');
    const p = await runAction({ 'database-url': db.url, 'backup-dir': probe, verify: 'none', compression: 'none' });
    expect(p.code, p.stdout).toBe(0);
    const archiveBytes = Number(p.outputs['size-bytes']);
    if (!mount('4m')) return;
    try {
      const d = path.join(mnt, 'b');
      mkdirSync(d);
      // Room for the archive (whole pages) but not for its manifest as well.
      fillTo(Math.ceil(archiveBytes / 4096) * 4096);
      const r = await runAction({ 'database-url': db.url, 'backup-dir': d, verify: 'none', compression: 'none' });
      expect(r.code).not.toBe(0);
      expect(errorLines(r)).toHaveLength(1);
      expect(errorLines(r)[0]).toMatch(/No space left on the device of .*#disk-full\)$/);
      expect(readdirSync(d)).toEqual([]);
    } finally {
      umount();
    }
  });
});
