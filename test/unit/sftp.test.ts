// The sftp:// destination's pure parts: the URL, known_hosts matching (plain, [host]:port, patterns, negation,
// hashed names as ssh-keygen -H writes them, @revoked), fingerprints as ssh-keygen -l prints them, and the
// settings checks config.ts runs before anything connects. Fixture keys are public keys made by ssh-keygen;
// private keys are made by ssh2 at test time.
import path from 'node:path';
import ssh2 from 'ssh2';
import { describe, expect, test } from 'vitest';
import { ConfigurationError } from '../../src/errors.js';
import { fingerprint, hostFieldMatches, hostKeyAlgorithms, knownHostKeys } from '../../src/storage/known-hosts.js';
import { parseSftpDestination, readPrivateKey, sftpSettings } from '../../src/storage/sftp.js';

// ssh-keygen -t ed25519; fingerprints from ssh-keygen -lf.
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMl/FQ2S9wLO/axfiLfxgweeuxmBUYhmJOXspPEkhhM/';
const KEY_FP = 'SHA256:JGuq9GAEVwIom4mc9Yk4BfkIQc61AzK9yPEHOO7KFk8';
const OTHER = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnuoIZ36cORUIyNVZTVTZWo5/tMEcBKp2WPh4oki+Hy';
const OTHER_FP = 'SHA256:xHZwxeYuAQ4vjp8v0+ETdlCwK1P1YxxvFwwoLOn9REc';
// `[127.0.0.1]:2222 KEY` and `backup.example.com KEY` after ssh-keygen -H.
const HASHED = [
  `|1|NtqIY3j8JLn7RubUtIdfwgPThBs=|NhbYd7AWD13vgO6/k6k/NQg+OlA= ${KEY}`,
  `|1|QJhfrhwwMD2N4JdxuMipZr2FIaY=|uGsizfA/redEFNJDZm+fB1yLRxw= ${KEY}`,
].join('\n');

const fps = (text: string, host: string, port: number): string[] => knownHostKeys(text, host, port).keys.map((k) => fingerprint(k.blob));

describe('parseSftpDestination', () => {
  test.each([
    ['sftp://backup@nas.local/srv/backups', { user: 'backup', host: 'nas.local', port: 22, dir: '/srv/backups' }],
    ['sftp://backup@nas.local:2222/srv/backups/', { user: 'backup', host: 'nas.local', port: 2222, dir: '/srv/backups' }],
    ['sftp://root@127.0.0.1:40022//tmp/x', { user: 'root', host: '127.0.0.1', port: 40022, dir: '/tmp/x' }],
    ['sftp://u@h/~/backups/pg', { user: 'u', host: 'h', port: 22, dir: 'backups/pg' }],
    ['sftp://u@h/~', { user: 'u', host: 'h', port: 22, dir: '.' }],
    ['sftp://u@h', { user: 'u', host: 'h', port: 22, dir: '.' }],
    ['sftp://u@[::1]:2200/b', { user: 'u', host: '::1', port: 2200, dir: '/b' }],
    ['sftp://first.last%40corp@h/with%20space', { user: 'first.last@corp', host: 'h', port: 22, dir: '/with space' }],
  ])('%s', (dest, want) => {
    expect(parseSftpDestination(dest)).toEqual(want);
  });

  test.each([
    ['sftp://h/backups', /names no user/],
    ['sftp://u:hunter22@h/backups', /Destination "sftp:\/\/u:\*\*\*@h\/backups" has a password in it, which is refused: log in with a key instead/],
    ['sftp://u@h/a/../etc', /must not contain \. or \.\. segments/],
    ['sftp://u@h/a?x=1', /must not have a \?query/],
    ['sftp://u@h:99999/a', /not a valid sftp:\/\/ location/],
    ['sftp://u@/a', /not a valid sftp:\/\/ location/],
  ])('%s is refused', (dest, message) => {
    expect(() => parseSftpDestination(dest)).toThrow(ConfigurationError);
    expect(() => parseSftpDestination(dest)).toThrow(message);
    expect(() => parseSftpDestination(dest)).not.toThrow(/hunter22/);
  });
});

describe('known_hosts', () => {
  test('fingerprints are ssh-keygen -l\'s', () => {
    expect(fps(`h ${KEY}\nh ${OTHER}`, 'h', 22)).toEqual([KEY_FP, OTHER_FP]);
  });

  test.each([
    // [known_hosts text, host, port, fingerprints that apply]
    [`127.0.0.1 ${KEY}`, '127.0.0.1', 22, [KEY_FP]],
    [`127.0.0.1 ${KEY}`, '127.0.0.1', 2222, []],
    [`[127.0.0.1]:2222 ${KEY}`, '127.0.0.1', 2222, [KEY_FP]],
    [`[127.0.0.1]:2222 ${KEY}`, '127.0.0.1', 22, []],
    [`a.example.com,b.example.com ${KEY}`, 'B.Example.com', 22, [KEY_FP]],
    [`*.example.com ${KEY}`, 'nas.example.com', 22, [KEY_FP]],
    [`*.example.com,!evil.example.com ${KEY}`, 'evil.example.com', 22, []],
    [`nas?.lan ${KEY}`, 'nas1.lan', 22, [KEY_FP]],
    [`nas?.lan ${KEY}`, 'nas10.lan', 22, []],
    [`# a comment\n\n   \nh ${KEY} with a comment\nother ${OTHER}`, 'h', 22, [KEY_FP]],
    [`@cert-authority *.example.com ${OTHER}\nh.example.com ${KEY}`, 'h.example.com', 22, [KEY_FP]],
    [HASHED, '127.0.0.1', 2222, [KEY_FP]],
    [HASHED, 'backup.example.com', 22, [KEY_FP]],
    [HASHED, '127.0.0.1', 22, []],
    [HASHED, 'backup.example.org', 22, []],
  ])('%#: %s for %s:%i', (text, host, port, want) => {
    expect(fps(text, host, port)).toEqual(want);
  });

  test('@revoked keys are returned apart', () => {
    const k = knownHostKeys(`@revoked * ${OTHER}\nh ${KEY}`, 'h', 22);
    expect(k.keys.map((x) => fingerprint(x.blob))).toEqual([KEY_FP]);
    expect(k.revoked.map((x) => fingerprint(x.blob))).toEqual([OTHER_FP]);
  });

  test.each([
    ['h ssh-ed25519', /known-hosts line 1 is not a known_hosts line/],
    [`h\n\nh ssh-rsa ${KEY.split(' ')[1]}`, /known-hosts line 1 is not/],
    [`ok ${KEY}\n\nh ssh-rsa ${KEY.split(' ')[1]}`, /known-hosts line 3 is not a known_hosts line.*ssh-keyscan prints whole/],
    [`h ssh-ed25519 ${KEY.split(' ')[1]!.slice(0, 30)}`, /line 1 is not/],
    [`@marker h ${KEY}`, /line 1 has the unknown marker @marker/],
  ])('%s is refused', (text, message) => {
    expect(() => knownHostKeys(text, 'h', 22)).toThrow(ConfigurationError);
    expect(() => knownHostKeys(text, 'h', 22)).toThrow(message);
  });

  test.each([
    ['h,!h', 'h', false],
    ['!x,*', 'h', true],
    ['[h]:*', '[h]:2222', true],
    ['*', '[h]:2222', true],
  ])('host field %s against %s', (field, name, want) => {
    expect(hostFieldMatches(field, name)).toBe(want);
  });

  test('host key algorithms: the known types only, RSA with SHA-2 first', () => {
    expect(hostKeyAlgorithms(['ssh-ed25519'])).toEqual(['ssh-ed25519']);
    expect(hostKeyAlgorithms(['ssh-rsa', 'ecdsa-sha2-nistp256', 'ssh-rsa'])).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ecdsa-sha2-nistp256']);
  });
});

describe('private key and settings', () => {
  const plain = ssh2.utils.generateKeyPairSync('ed25519');
  const locked = ssh2.utils.generateKeyPairSync('ed25519', { passphrase: 'open sesame', cipher: 'aes256-ctr', rounds: 2 });
  const dest = 'sftp://backup@nas.example.com:2222/srv/pg';
  const known = `[nas.example.com]:2222 ${KEY}`;

  test('a key is taken whole, also with \\r\\n or as one line with \\n escapes (a .env file)', () => {
    expect(readPrivateKey(plain.private)).toBe(plain.private.trim() + '\n');
    expect(readPrivateKey(plain.private.replace(/\n/g, '\r\n'))).toBe(plain.private.trim() + '\n');
    expect(readPrivateKey(plain.private.trim().replace(/\n/g, '\\n'))).toBe(plain.private.trim() + '\n');
    expect(readPrivateKey(locked.private, 'open sesame')).toBe(locked.private.trim() + '\n');
  });

  test.each([
    ['not a key', undefined, /Input ssh-private-key could not be read \(Unsupported key format\): give the whole private key file/],
    [locked.private, undefined, /could not be read \(Encrypted private OpenSSH key detected, but no passphrase given\): set ssh-passphrase/],
    [locked.private, 'wrong', /could not be read \(.*\): set ssh-passphrase/],
    [plain.public, undefined, /holds a public key: give the private key/],
  ])('%#: a key that cannot be used is a configuration error', (key, passphrase, message) => {
    expect(() => readPrivateKey(key, passphrase)).toThrow(ConfigurationError);
    expect(() => readPrivateKey(key, passphrase)).toThrow(message);
  });

  test('settings: key, agent, known-hosts (the input, or the CLI\'s ~/.ssh/known_hosts)', () => {
    const withKey = sftpSettings({ destinations: ['local', dest], privateKey: locked.private, passphrase: 'open sesame', knownHosts: known, env: {} });
    expect(withKey.options).toEqual({ privateKey: locked.private.trim() + '\n', passphrase: 'open sesame', knownHosts: known });
    // The key, each of its lines and the passphrase are masked.
    expect(withKey.secrets).toContain(locked.private.trim());
    expect(withKey.secrets).toContain('open sesame');
    for (const line of locked.private.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'))) expect(withKey.secrets).toContain(line);
    expect(sftpSettings({ destinations: [dest], privateKey: undefined, passphrase: undefined, knownHosts: known, env: { SSH_AUTH_SOCK: '/run/agent.sock' } }).options).toEqual({ agent: '/run/agent.sock', knownHosts: known });
    expect(sftpSettings({ destinations: [dest], privateKey: undefined, passphrase: undefined, knownHosts: undefined, env: { SSH_AUTH_SOCK: '/a', HOME: '/home/me' } }).options).toEqual({
      agent: '/a',
      knownHostsFile: path.join('/home/me', '.ssh', 'known_hosts'),
    });
    // Without an sftp:// destination nothing is checked, but the secrets are still masked.
    const none = sftpSettings({ destinations: ['local'], privateKey: 'whatever it is', passphrase: 'pw-pw', knownHosts: '', env: {} });
    expect(none.options).toEqual({});
    expect(none.secrets).toEqual(['whatever it is', 'pw-pw']);
  });

  test.each([
    [{ privateKey: undefined, knownHosts: known, env: {} }, /The sftp:\/\/ destination needs a key: set ssh-private-key .* or run an SSH agent/],
    [{ privateKey: plain.private, knownHosts: '', env: {} }, /Input known-hosts is empty, so the sftp:\/\/ server cannot be told from an impostor\. Get its key lines with: ssh-keyscan -p 2222 nas\.example\.com/],
    [{ privateKey: plain.private, knownHosts: `nas.example.com ${KEY}`, env: {} }, /Input known-hosts has no host key for \[nas\.example\.com\]:2222, and an unknown host key is never accepted\. Get the server's key lines with: ssh-keyscan -p 2222 nas\.example\.com/],
    [{ privateKey: plain.private, knownHosts: 'garbage', env: {} }, /known-hosts line 1 is not a known_hosts line/],
  ])('%#: refused before anything runs', (i, message) => {
    const run = () => sftpSettings({ destinations: [dest], passphrase: undefined, ...i });
    expect(run).toThrow(ConfigurationError);
    expect(run).toThrow(message);
  });
});
