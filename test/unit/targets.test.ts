import { describe, expect, test } from 'vitest';
import { dockerRunArgs, tempDatabaseName } from '../../src/postgres/targets.js';

describe('dockerRunArgs (the Docker test-restore target; no Docker engine here, so argv only)', () => {
  const args = dockerRunArgs('pgvb-test-abc', 'pgvector/pgvector:pg16', 45678);
  test('runs the pgvector image detached, removed on stop, on a loopback port', () => {
    expect(args.slice(0, 5)).toEqual(['run', '-d', '--rm', '--name', 'pgvb-test-abc']);
    expect(args).toContain('127.0.0.1:45678:5432');
    expect(args[args.indexOf('-p') + 1]).toBe('127.0.0.1:45678:5432');
    expect(args[args.indexOf('127.0.0.1:45678:5432') + 1]).toBe('pgvector/pgvector:pg16');
  });
  test('the password comes from the environment (-e NAME without a value)', () => {
    expect(args[args.indexOf('-e') + 1]).toBe('POSTGRES_PASSWORD');
    expect(args.some((a) => a.startsWith('POSTGRES_PASSWORD='))).toBe(false);
  });
  test('raises maintenance_work_mem for the index builds', () => {
    expect(args.join(' ')).toContain('-c maintenance_work_mem=1GB');
  });
});

test('temporary database names are unique, dated and safe identifiers', () => {
  const a = tempDatabaseName(new Date(Date.UTC(2026, 0, 7, 14, 30, 22)));
  expect(a).toMatch(/^pgvb_test_20260107143022_[0-9a-f]{6}$/);
  expect(tempDatabaseName()).not.toBe(tempDatabaseName());
});
