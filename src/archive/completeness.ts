// The backup's self-check while it is written (issue 14): a pg_dump (or a wrapper around it) that exits 0 having
// written nothing, or only its first megabyte, must never become a backup, whatever `verify` says. The bytes pg_dump
// wrote are walked as they pass (dump-check.ts): a custom archive's header, table of contents and every data block
// to its end; a plain dump's header, COPY statements and completion footer. Where only compressed bytes pass through
// this process (the zstd program writes the archive file itself), they are decompressed on libuv's thread pool
// beside the checksum's read, with backpressure. A directory archive is checked from its files once pg_dump exited.
import type { Duplex } from 'node:stream';
import { BackupError } from '../errors.js';
import { checkCustomComplete, checkDirectoryComplete, checkPlainComplete, CustomArchiveWalker, nodeDecoder, PlainDumpChecker, type CustomArchiveStructure, type DumpTable, type PlainDumpResult } from './dump-check.js';
import type { CompressionMethod, Format } from './manifest.js';

/** What the walk found, judged against the snapshot's tables once both are known. */
export type DumpShape = { format: 'custom'; structure: CustomArchiveStructure } | { format: 'plain'; result: PlainDumpResult };

type Decoder = Duplex;

function decoderFor(method: Exclude<CompressionMethod, 'none'>): Decoder {
  const d = nodeDecoder(method);
  if (!d) throw new BackupError('This Node.js has no zstd decompression for the backup\'s self-check', 'Run on Node 24 (the action does), or set compression: gzip', { code: 'tool-zstd' });
  return d;
}

/**
 * Takes the dump's bytes in order (plain, or compressed with `compressed`) and walks them. write() may be given a
 * buffer the caller reuses once it returns (or once its promise settles); the promise is backpressure.
 */
export class CompletenessTap {
  private readonly walker: CustomArchiveWalker | PlainDumpChecker;
  private readonly decoder: Decoder | undefined;
  private decodeError: Error | undefined;
  private decoded: Promise<void> | undefined;

  constructor(
    private readonly format: 'custom' | 'plain',
    compressed?: CompressionMethod,
  ) {
    this.walker = format === 'custom' ? new CustomArchiveWalker() : new PlainDumpChecker();
    if (compressed && compressed !== 'none') {
      const d = (this.decoder = decoderFor(compressed));
      d.on('data', (c: Buffer) => this.walker.push(c));
      this.decoded = new Promise<void>((resolve) => {
        d.once('end', resolve);
        d.once('error', (err: Error) => {
          this.decodeError = err;
          resolve();
        });
      });
    }
  }

  write(chunk: Buffer): void | Promise<void> {
    if (!this.decoder) {
      this.walker.push(chunk);
      return;
    }
    if (this.decodeError) return;
    // The caller reuses its buffer once this settles: wait until the decoder consumed it (no copy, and at most one
    // chunk in flight, so memory stays flat whatever the dump's size).
    const decoder = this.decoder;
    return new Promise<void>((resolve) => {
      decoder.write(chunk, () => resolve());
    });
  }

  /** The walk's result; an ArchiveStructureError (thrown) when the bytes end inside the archive's structure. */
  async end(): Promise<DumpShape> {
    if (this.decoder) {
      this.decoder.end();
      await this.decoded;
      if (this.decodeError) throw Object.assign(new Error(`the compressed stream does not decompress (${this.decodeError.message})`), { name: 'ArchiveStructureError' });
    }
    if (this.walker instanceof CustomArchiveWalker) return { format: 'custom', structure: this.walker.end() };
    return { format: 'plain', result: this.walker.end() };
  }

  get kind(): 'custom' | 'plain' {
    return this.format;
  }
}

/** A tap for a streamed dump (custom or plain); none for a directory (checked from its files afterwards). */
export function completenessTap(format: Format, compressed?: CompressionMethod): CompletenessTap | undefined {
  return format === 'directory' ? undefined : new CompletenessTap(format, compressed);
}

/**
 * Judges the dump against the snapshot's tables: throws `dump-incomplete` (nothing is kept) when pg_dump's output
 * is empty, cut, or lacks a table's data. `shape` is the tap's result (or its error) for streamed formats; a
 * directory archive is read from `dir`.
 */
export async function assertDumpComplete(opts: {
  format: Format;
  dumpBytes: number;
  tables: readonly DumpTable[];
  shape?: Promise<DumpShape>;
  dir?: string;
  warn: (message: string) => void;
}): Promise<string> {
  const incomplete = (why: string): BackupError =>
    new BackupError(
      `pg_dump exited successfully but its output is not a complete dump: ${why}`,
      'Nothing was kept from this run. Check pg-bin-dir (a wrapper or a broken pg_dump), free space and the network to the database, then run the backup again',
      { code: 'dump-incomplete' },
    );
  if (opts.dumpBytes === 0) throw incomplete('it wrote nothing');
  let problems: string[];
  let what: string;
  if (opts.format === 'directory') {
    const r = await checkDirectoryComplete(opts.dir!, opts.tables);
    if (!r.checked) {
      opts.warn(`The directory archive's table of contents could not be walked (${r.reason ?? 'unknown version'}); its completeness is left to the verification`);
      return 'directory archive: table of contents of an unknown version, not walked';
    }
    problems = r.problems;
    what = `table of contents and a data file for every table with data (${r.structure?.entries.length ?? 0} entries)`;
  } else {
    let shape: DumpShape;
    try {
      shape = await opts.shape!;
    } catch (err) {
      if ((err as Error).name === 'ArchiveStructureError') throw incomplete((err as Error).message);
      throw err;
    }
    if (shape.format === 'custom') {
      if (!shape.structure.walked) {
        opts.warn(`This pg_dump writes archive version ${shape.structure.version}, which the self-check does not know (${shape.structure.reason ?? ''}); its completeness is left to the verification`);
        return `custom archive version ${shape.structure.version}: not walked`;
      }
      problems = checkCustomComplete(shape.structure, opts.tables);
      what = `header, table of contents and all ${shape.structure.blocks.size} data blocks walked to their end`;
    } else {
      problems = checkPlainComplete(shape.result, opts.tables);
      what = `header, a COPY for every table with data and the completion footer`;
    }
  }
  if (problems.length) throw incomplete(problems.slice(0, 5).join('; ') + (problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''));
  return what;
}
