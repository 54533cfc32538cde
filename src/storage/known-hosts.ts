// OpenSSH known_hosts, as far as checking one server's host key needs: which keys are known (or revoked) for a
// host and port. Host patterns with * and ?, negation (!pattern), [host]:port for ports other than 22, and
// hashed names (|1|salt|hash, as ssh-keygen -H writes them) are understood. @cert-authority lines are skipped:
// host certificates are not supported, so such a host needs a plain key line. Pure; table-tested.
import { createHash, createHmac } from 'node:crypto';
import { ConfigurationError } from '../errors.js';

export interface KnownKey {
  /** ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa ... */
  type: string;
  /** The public key blob (SSH wire format), as the server sends it. */
  blob: Buffer;
  /** 1-based line number, for messages. */
  line: number;
}

export interface KnownHostKeys {
  keys: KnownKey[];
  revoked: KnownKey[];
}

/** The name a host is looked up by: host for port 22, [host]:port otherwise (as ssh and ssh-keyscan write it). */
export function knownHostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** `SHA256:<base64 without padding>`, as ssh-keygen -l prints it. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The key type written inside a public key blob (its first SSH string). */
export function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const n = blob.readUInt32BE(0);
  if (n === 0 || n > 64 || blob.length < 4 + n) return undefined;
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** Whether a blob is a sequence of whole SSH strings (type, then the key's fields): a key cut short is not. */
function wellFormed(blob: Buffer): boolean {
  let at = 0;
  let fields = 0;
  while (at < blob.length) {
    if (at + 4 > blob.length) return false;
    at += 4 + blob.readUInt32BE(at);
    fields++;
  }
  return at === blob.length && fields >= 2;
}

/** A glob of ssh's host patterns: * any run, ? one character; case-insensitive. */
function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp('^' + pattern.toLowerCase().replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
  return re.test(name);
}

function hashedMatch(entry: string, name: string): boolean {
  const [, , salt, hash] = entry.split('|');
  if (!salt || !hash) return false;
  return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
}

/** Whether a known_hosts host field (comma-separated patterns) matches `name` (host or [host]:port). */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) return hashedMatch(field, name);
  let matched = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (!pattern) continue;
    // (Compared with the whole name, as ssh does: a plain host pattern names port 22, [host]:port another.)
    if (!globMatch(pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/**
 * Parses known_hosts text and returns the keys that apply to host:port. Throws a ConfigurationError naming the
 * line for a line that is not `[marker] hosts keytype base64 [comment]`, so a pasted line that was cut short is
 * caught before the run rather than reported as an unknown host.
 */
export function knownHostKeys(text: string, host: string, port: number, source = 'known-hosts'): KnownHostKeys {
  const name = knownHostName(host, port);
  const out: KnownHostKeys = { keys: [], revoked: [] };
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]!.startsWith('@')) marker = fields.shift();
    const [hosts, type, b64] = fields;
    const blob = b64 && /^[A-Za-z0-9+/]+={0,2}$/.test(b64) ? Buffer.from(b64, 'base64') : undefined;
    if (!hosts || !type || !blob || blobType(blob) !== type || !wellFormed(blob)) {
      throw new ConfigurationError(
        `${source} line ${i + 1} is not a known_hosts line ("host keytype base64key"): ${line.slice(0, 60)}${line.length > 60 ? '…' : ''}. Copy the lines ssh-keyscan prints whole`,
        { code: 'config-known-hosts' },
      );
    }
    if (marker === '@cert-authority') continue;
    if (marker !== undefined && marker !== '@revoked') {
      throw new ConfigurationError(`${source} line ${i + 1} has the unknown marker ${marker}; only @revoked and @cert-authority exist`, { code: 'config-known-hosts' });
    }
    if (!hostFieldMatches(hosts, name)) continue;
    (marker === '@revoked' ? out.revoked : out.keys).push({ type, blob, line: i + 1 });
  }
  return out;
}

/** The host key algorithms to offer for known key types (RSA keys sign with SHA-2 first). */
export function hostKeyAlgorithms(types: Iterable<string>): string[] {
  const out: string[] = [];
  for (const t of types) {
    const algos = t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t];
    for (const a of algos) if (!out.includes(a)) out.push(a);
  }
  return out;
}
