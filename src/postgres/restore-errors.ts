// pg_restore's and psql's words, sorted into evidence about the archive and trouble with where it is restored.
// Only the first makes a backup bad (BackupError.damage); the checksum matched, so the archive was written so.

/**
 * The archive's bytes or content are broken: a compressed stream that does not decompress, a file that ends early,
 * blocks that are not where the table of contents says, COPY data that is not what COPY writes.
 */
export const PG_RESTORE_DAMAGED = new RegExp(
  [
    'could not uncompress data',
    'corrupt',
    'unexpected end of file',
    'did not find magic string',
    'found unexpected block ID',
    'could not find block ID',
    'invalid (compressed )?data',
    'could not read from input file: end of file',
    'could not close data file',
    'could not read input file',
    'invalid input syntax for type',
    'extra data after last expected column',
    'missing data for column',
    'end-of-copy marker',
    'invalid byte sequence for encoding',
    'incorrect header check',
  ].join('|'),
  'i',
);

/** Trouble on the restoring side, whatever else the output says: never evidence about the archive. */
export const PG_RESTORE_ENVIRONMENT = /No space left|out of memory|could not extend file|could not resize shared memory|permission denied|must be owner|role .* does not exist|extension .* is not available|could not open extension control file|terminating connection|server closed the connection/i;

/** pg_restore's words for an archive it cannot read through no fault of the archive (or a pg_restore that cannot run). */
export const PG_RESTORE_CANNOT_READ = /unsupported version|not built with|does not support|cannot restore from compressed archive|could not open input file|Permission denied|out of memory|error while loading shared libraries|No space left/i;
