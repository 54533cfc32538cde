// The Docker service files, checked where no Docker engine exists: compose.yaml parses and its backup service runs
// a valid `schedule run` with no secret on its command line; the Dockerfile starts our CLI with a command it has;
// the image is built and run on GitHub by .github/workflows/docker.yml. (The integration test runs these commands.)
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { cliEnvironment, cliInputGetter, parseArgs } from '../../src/cli.js';
import { buildConfig } from '../../src/config.js';
import { parseScheduleArgs } from '../../src/schedule/command.js';
import { parseSchedule } from '../../src/schedule/cron.js';
import { refuseSecrets } from '../../src/schedule/line.js';
import { composeBackupCommand, dockerfileExec, interpolate, readCompose, ROOT } from '../helpers/compose.js';

const read = (f: string): string => readFileSync(path.join(ROOT, f), 'utf8');

const compose = readCompose();

describe('compose.yaml', () => {
  test('a pgvector database and, under the backup profile, the backup service and its restore target', () => {
    const { db, backup, 'restore-target': target } = compose.services;
    expect(db?.image).toBe('pgvector/pgvector:pg17');
    expect(db?.profiles).toBeUndefined();
    expect(backup?.profiles).toEqual(['backup']);
    expect(target?.profiles).toEqual(['backup']);
    expect(target?.image).toMatch(/^pgvector\/pgvector:pg17$/);
    expect(backup?.build).toBe('.');
    expect(backup?.env_file).toBe('.env');
    expect(backup?.depends_on?.db?.condition).toBe('service_healthy');
    expect(backup?.working_dir).toBe('/data');
    // The loop runs for good; an init process reaps what a killed backup leaves behind.
    expect([backup?.restart, backup?.init]).toEqual(['unless-stopped', true]);
    expect(backup?.volumes).toEqual(expect.arrayContaining(['backups:/data/backups', 'logs:/data/logs']));
    for (const v of backup!.volumes!) expect(Object.keys(compose.volumes)).toContain(v.split(':')[0]);
  });

  test("the backup service runs a valid schedule: its options are backup options and carry no secret", () => {
    const argv = composeBackupCommand();
    expect(argv.slice(0, 2)).toEqual(['schedule', 'run']);
    const args = parseScheduleArgs(argv.slice(1));
    expect(args.action).toBe('run');
    expect(parseSchedule(args.time!, { seconds: true }).expression).toBe('0 2 * * *');
    const parsed = parseArgs(['backup', ...args.rest]);
    expect(parsed.command).toBe('backup');
    expect(() => refuseSecrets(parsed.inputs, '/data', 'schedule run')).not.toThrow();
    // The values are valid settings (as the container will read them, PG* from .env and PGHOST from compose).
    const env = cliEnvironment({ PGHOST: 'db', PGUSER: 'postgres', PGPASSWORD: 'x', PGDATABASE: 'vector_db' }, '/nonexistent');
    const get = cliInputGetter(parsed.inputs, env);
    const config = buildConfig((n) => (n === 'mode' ? 'backup' : get(n)), env);
    expect(config.testRestoreUrl).toBe('postgresql://postgres@restore-target:5432/postgres');
    expect(config.destination).toEqual(['local']);
    // A schedule with seconds from .env (as the docker workflow uses) is valid too.
    expect(parseScheduleArgs(composeBackupCommand({ BACKUP_SCHEDULE: '*/30 * * * * *' }).slice(1)).time).toBe('*/30 * * * * *');
  });

  test('the database password comes from .env only', () => {
    expect(() => interpolate(compose.services.db!.environment!.POSTGRES_PASSWORD!)).toThrow(/set PGPASSWORD in \.env/);
    expect(read('compose.yaml')).not.toMatch(/PASSWORD:\s*['"]?\w/);
  });
});

describe('Dockerfile', () => {
  const text = read('Dockerfile');

  test('Node 24 on Debian, PostgreSQL clients 13 to 17 from PGDG, our bundled CLI as the entrypoint', () => {
    expect(text).toMatch(/^FROM node:24-bookworm-slim$/m);
    expect(/^ARG PG_MAJORS="([^"]*)"$/m.exec(text)?.[1]).toBe('13 14 15 16 17');
    expect(text).toContain('/usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y');
    expect(dockerfileExec('ENTRYPOINT')).toEqual(['node', '/opt/pgvector-backup/dist/cli/index.js']);
    expect(text).toMatch(/^COPY dist\/cli\/ \/opt\/pgvector-backup\/dist\/cli\/$/m);
    expect(text).toMatch(/^USER node$/m);
  });

  test('its default command is the schedule in the foreground', () => {
    const cmd = dockerfileExec('CMD');
    expect(cmd).toEqual(['schedule', 'run']);
    expect(parseScheduleArgs(cmd.slice(1)).action).toBe('run');
  });

  test('the build context holds what COPY needs and nothing else', () => {
    const ignore = read('.dockerignore').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    const copied = [...text.matchAll(/^COPY (.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '));
    for (const src of copied) expect(ignore, src).toContain(`!${src}`);
  });

  test('no package registry host and no install step: the bundle is copied', () => {
    for (const f of ['Dockerfile', 'compose.yaml', '.github/workflows/docker.yml', '.dockerignore']) {
      expect(read(f), f).not.toMatch(/registry\.npmjs|npmjs\.(org|com)|yarnpkg\.com/);
    }
    const instructions = text.split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n');
    expect(instructions).not.toMatch(/\bnpm (ci|install)\b/);
  });
});

test('the docker workflow builds the image without pushing and runs the CLI in it', () => {
  const wf = parse(read('.github/workflows/docker.yml')) as { jobs: Record<string, { steps: Array<{ uses?: string; with?: Record<string, unknown>; run?: string }> }> };
  const steps = wf.jobs.image!.steps;
  const build = steps.find((s) => s.uses?.startsWith('docker/build-push-action@'));
  expect(build?.with).toMatchObject({ push: false, load: true, tags: 'pgvector-backup:ci' });
  const runs = steps.map((s) => s.run ?? '').join('\n');
  expect(runs).toContain('docker run --rm pgvector-backup:ci --version');
  expect(runs).toContain('docker compose --profile backup config --quiet');
});
