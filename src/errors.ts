// User mistakes (bad inputs) and run failures (the database, the disk, a tool) are different classes with
// different exit codes; anything else is a bug. Every message that reaches a user says what to do.

/** A bad input or setting: the user fixes the configuration. CLI exit code 2. */
export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

/** The run failed for a reason outside our code (connection, disk, tool, data). CLI exit code 1. */
export class BackupError extends Error {
  override readonly name = 'BackupError';
  constructor(
    message: string,
    /** What the user should do about it. */
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One line for the user: the message and, when known, what to do. */
export function describeError(err: unknown): string {
  if (err instanceof BackupError) return err.hint ? `${err.message}. ${err.hint}` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

export function exitCodeFor(err: unknown): number {
  return err instanceof ConfigurationError ? 2 : 1;
}
