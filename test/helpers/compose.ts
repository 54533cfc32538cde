// compose.yaml as docker compose reads it, for tests without a Docker engine: the parsed file and the backup
// service's command after compose's ${VAR:-default} substitution.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  command?: string[];
  environment?: Record<string, string>;
  env_file?: unknown;
  volumes?: string[];
  working_dir?: string;
  depends_on?: Record<string, { condition: string }>;
  init?: boolean;
  restart?: string;
}

export function readCompose(): { services: Record<string, Service>; volumes: Record<string, unknown> } {
  return parse(readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
}

/** Compose's ${VAR:-default} and ${VAR:?error} substitution, with `vars` standing for .env. */
export function interpolate(s: string, vars: Record<string, string> = {}): string {
  return s.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::([-?])([^}]*))?\}/g, (_m, name: string, op: string | undefined, arg: string | undefined) => {
    const v = vars[name];
    if (v !== undefined && v !== '') return v;
    if (op === '-') return arg ?? '';
    if (op === '?') throw new Error(`${name}: ${arg}`);
    return '';
  });
}

/** The backup service's command, as compose passes it to the image's entrypoint. */
export function composeBackupCommand(vars: Record<string, string> = {}): string[] {
  return readCompose().services.backup!.command!.map((a) => interpolate(a, vars));
}

/** The Dockerfile's exec-form instruction (ENTRYPOINT, CMD) as an array. */
export function dockerfileExec(instruction: 'ENTRYPOINT' | 'CMD'): string[] {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const m = new RegExp(`^${instruction} (\\[.*\\])$`, 'm').exec(text);
  if (!m) throw new Error(`Dockerfile has no exec-form ${instruction}`);
  return JSON.parse(m[1]!) as string[];
}
