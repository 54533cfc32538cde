// `pgvector-backup keygen`: a new age key pair in age-keygen's file format (so `age -d -i key.txt` reads it),
// and the two lines to put into a repository secret and a variable.
import { promises as fs } from 'node:fs';
import { newAgeKeyPair } from './archive/crypto.js';
import { ConfigurationError } from './errors.js';

export interface KeygenResult {
  /** The identity file (stdout, or written to --output). */
  file: string;
  recipient: string;
  /** What to do next (stderr). */
  guidance: string;
}

export async function keygen(now = new Date()): Promise<KeygenResult> {
  const { identity, recipient } = await newAgeKeyPair();
  const file = `# created: ${now.toISOString().replace(/\.\d{3}Z$/, 'Z')}\n# public key: ${recipient}\n${identity}\n`;
  const guidance = [
    'A new age key pair. Keep the identity (AGE-SECRET-KEY-1...) secret and somewhere other than the backups;',
    'whoever has it can read every backup encrypted to the recipient. Without it those backups cannot be restored.',
    '',
    'GitHub: store the identity as a secret and the recipient as a variable, e.g.',
    '  gh secret set BACKUP_AGE_IDENTITY < key.txt',
    `  gh variable set BACKUP_AGE_RECIPIENT --body ${recipient}`,
    'then in the workflow:',
    '  encryption-recipients: ${{ vars.BACKUP_AGE_RECIPIENT }}',
    '  decryption-identity: ${{ secrets.BACKUP_AGE_IDENTITY }}   # only in jobs that verify, test-restore or restore',
    '',
    'By hand: age -d -i key.txt BACKUP.dump.age | pg_restore --dbname=... ',
  ].join('\n');
  return { file, recipient, guidance };
}

/** `keygen [--output FILE]`: the identity goes to FILE (mode 0600, never overwritten) or stdout. */
export async function keygenCommand(argv: string[], io: { stdout: (s: string) => void; stderr: (s: string) => void }): Promise<number> {
  let output: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--output' || a === '-o') output = argv[++i];
    else if (a.startsWith('--output=')) output = a.slice('--output='.length);
    else throw new ConfigurationError(`Unknown option ${a}; keygen takes --output FILE`, { code: 'config-cli-usage' });
    if (output === undefined || output === '') throw new ConfigurationError('--output needs a file name', { code: 'config-cli-usage' });
  }
  const k = await keygen();
  if (output) {
    try {
      await fs.writeFile(output, k.file, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ConfigurationError(`${output} exists; keygen never overwrites a key (choose another file)`, { code: 'config-cli-usage' });
      throw err;
    }
    io.stderr(`Wrote the identity to ${output} (mode 0600). Public key (recipient): ${k.recipient}\n\n`);
  } else {
    io.stdout(k.file);
  }
  io.stderr(k.guidance + '\n');
  return 0;
}
