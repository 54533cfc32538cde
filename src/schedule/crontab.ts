// The crontab editor: our entry lives between two marker lines, and install/remove touch only that block. Every
// other line stays byte-identical (CRLF endings, blank lines, comments, other tools' blocks), so `crontab -` gets
// back exactly what the user had plus or minus our block. Pure; table-tested.
import { ConfigurationError } from '../errors.js';

export const BEGIN_MARKER = '# BEGIN pgvector-backup schedule';
export const END_MARKER = '# END pgvector-backup schedule';
/** Follows BEGIN on its line, for whoever reads the crontab. */
const BEGIN_NOTE = ' (managed by `pgvector-backup schedule install` and `schedule remove`; edits inside are replaced)';

interface Block {
  /** Index of the BEGIN line and of the END line in the split lines. */
  begin: number;
  end: number;
}

/** Lines with their endings ("\n" or none for the last one; a "\r" before "\n" stays part of the line). */
function splitLines(text: string): string[] {
  if (text === '') return [];
  const out = text.split('\n').map((l, i, all) => (i < all.length - 1 ? l + '\n' : l));
  if (out[out.length - 1] === '') out.pop();
  return out;
}

const bare = (line: string): string => line.replace(/\r?\n$/, '').replace(/\r$/, '').trimEnd();

function findBlocks(lines: string[]): Block[] {
  const blocks: Block[] = [];
  let open: number | undefined;
  lines.forEach((line, i) => {
    const l = bare(line);
    if (l.startsWith(BEGIN_MARKER)) {
      if (open !== undefined) throw broken(open, 'a second BEGIN line before its END line');
      open = i;
    } else if (l === END_MARKER) {
      if (open === undefined) throw broken(i, 'an END line without its BEGIN line');
      blocks.push({ begin: open, end: i });
      open = undefined;
    }
  });
  if (open !== undefined) throw broken(open, 'a BEGIN line without its END line');
  return blocks;
}

function broken(index: number, what: string): ConfigurationError {
  return new ConfigurationError(
    `Your crontab has ${what} of the pgvector-backup block (line ${index + 1}); nothing was changed. Fix it with crontab -e (delete the block's lines), then run pgvector-backup schedule install again`,
    { code: 'config-crontab-block' },
  );
}

/** The block for `entry` (one or more crontab lines without newlines). */
export function renderBlock(entry: string[]): string {
  for (const l of entry) if (/[\r\n]/.test(l)) throw new Error('a crontab entry line cannot contain a newline');
  return [BEGIN_MARKER + BEGIN_NOTE, ...entry, END_MARKER].map((l) => l + '\n').join('');
}

/** The entry lines of our block(s), or undefined when none is installed. */
export function readBlock(text: string): string[] | undefined {
  const lines = splitLines(text);
  const blocks = findBlocks(lines);
  if (blocks.length === 0) return undefined;
  return blocks.flatMap((b) => lines.slice(b.begin + 1, b.end).map(bare)).filter((l) => l !== '');
}

/**
 * Installs `entry` as our block: in place of the first existing block (any further ones are removed), else
 * appended. A last line without its newline gets one first (cron ignores such a line anyway).
 */
export function installBlock(text: string, entry: string[]): string {
  const lines = splitLines(text);
  const blocks = findBlocks(lines);
  const block = renderBlock(entry);
  if (blocks.length === 0) {
    const body = lines.join('');
    return body === '' || body.endsWith('\n') ? body + block : body + '\n' + block;
  }
  const out: string[] = [];
  let i = 0;
  for (const [n, b] of blocks.entries()) {
    out.push(...lines.slice(i, b.begin));
    if (n === 0) out.push(block);
    i = b.end + 1;
  }
  out.push(...lines.slice(i));
  return out.join('');
}

/** Removes every block of ours; everything else stays as it was. */
export function removeBlock(text: string): { text: string; removed: number } {
  const lines = splitLines(text);
  const blocks = findBlocks(lines);
  const out: string[] = [];
  let i = 0;
  for (const b of blocks) {
    out.push(...lines.slice(i, b.begin));
    i = b.end + 1;
  }
  out.push(...lines.slice(i));
  return { text: blocks.length ? out.join('') : text, removed: blocks.length };
}
