// User mistakes (bad inputs) and run failures (the database, the disk, a tool) are different classes with
// different exit codes; anything else is a bug. Every message that reaches a user says what to do.

/**
 * Every user-facing error carries a stable code, grouped by area, whose entry (the heading's anchor) in
 * docs/TROUBLESHOOTING.md gives the symptom, the cause and the fix. test/unit/troubleshooting.test.ts checks that
 * each `new BackupError(` and `new ConfigurationError(` has one and that each code has its entry. One code may
 * cover several sites with the same cause and fix; a code never changes meaning once released.
 */
export type ErrorArea =
  | 'config'
  | 'connect'
  | 'pg'
  | 'tool'
  | 'dump'
  | 'disk'
  | 'manifest'
  | 'verify'
  | 'target'
  | 'restore'
  | 'storage'
  | 'crypto'
  | 'run';
export type ErrorCode = `${ErrorArea}-${string}`;

/** Where the codes are explained, relative to the repository (and the npm package) root. */
export const TROUBLESHOOTING_DOC = 'docs/TROUBLESHOOTING.md';

/** A bad input or setting: the user fixes the configuration. CLI exit code 2. */
export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
  readonly code: ErrorCode | undefined;
  constructor(message: string, options?: { code?: ErrorCode; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code;
  }
}

/** The run failed for a reason outside our code (connection, disk, tool, data). CLI exit code 1. */
export class BackupError extends Error {
  override readonly name = 'BackupError';
  readonly code: ErrorCode | undefined;
  /**
   * Evidence about the archive itself (its stored bytes differ, its structure is broken, its ciphertext fails
   * authentication under a matching key, its restored data differs from the manifest). Only such an error makes
   * a backup bad; every other failure of a check means the check could not run and records nothing.
   */
  readonly damage: boolean;
  constructor(
    message: string,
    /** What the user should do about it. */
    readonly hint?: string,
    options?: { code?: ErrorCode; cause?: unknown; damage?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code;
    this.damage = options?.damage === true;
  }
}

/** True when the error proves the archive damaged (see BackupError.damage); anything else proves nothing. */
export function isDamage(err: unknown): err is BackupError {
  return err instanceof BackupError && err.damage;
}

/** One line for the user: the message and, when known, what to do. */
export function describeError(err: unknown): string {
  if (err instanceof BackupError) return err.hint ? `${err.message}. ${err.hint}` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The error's code, when it is one of ours and has one. */
export function errorCode(err: unknown): ErrorCode | undefined {
  return err instanceof BackupError || err instanceof ConfigurationError ? err.code : undefined;
}

/**
 * The line the action's ::error:: annotation and the CLI's `error:` line print: describeError and, when the error
 * has a code, where it is explained: `... (see docs/TROUBLESHOOTING.md#connect-refused)`.
 */
export function errorLine(err: unknown): string {
  const code = errorCode(err);
  return code ? `${describeError(err)} (see ${TROUBLESHOOTING_DOC}#${code})` : describeError(err);
}

export function exitCodeFor(err: unknown): number {
  return err instanceof ConfigurationError ? 2 : 1;
}
