// network-timeout: parsed once (config.ts) into milliseconds and handed to every remote destination and the
// Pushgateway; bad values are a ConfigurationError that names the input and says what it takes. The CLI's flag of
// the same name comes from INPUTS.
import { describe, expect, test } from 'vitest';
import { cliInputGetter, parseArgs } from '../../src/cli.js';
import { buildConfig, type InputGetter } from '../../src/config.js';
import { ConfigurationError } from '../../src/errors.js';
import type { InputName } from '../../src/inputs.js';

const URL = 'postgresql://alice:secret@db.example.com:5432/vectors';

function build(inputs: Partial<Record<InputName, string>>) {
  const get: InputGetter = (name) => ({ 'database-url': URL, destination: 'local', ...inputs })[name];
  return buildConfig(get, {});
}

describe('network-timeout', () => {
  test('absent: 60 s, in the config and in every remote setting', () => {
    const c = build({ 'pushgateway-url': 'http://pushgateway:9091' });
    expect(c.networkTimeoutMs).toBe(60_000);
    expect(c.s3.networkTimeoutMs).toBe(60_000);
    expect(c.sftp.networkTimeoutMs).toBe(60_000);
    expect(c.pushgateway?.timeoutMs).toBe(60_000);
  });

  test.each([
    { value: '60', ms: 60_000 },
    { value: '3', ms: 3_000 },
    { value: ' 120 ', ms: 120_000 },
    { value: '86400', ms: 86_400_000 },
  ])('"$value" -> $ms ms', ({ value, ms }) => {
    const c = build({ 'network-timeout': value, 'pushgateway-url': 'http://pushgateway:9091' });
    expect([c.networkTimeoutMs, c.s3.networkTimeoutMs, c.sftp.networkTimeoutMs, c.pushgateway?.timeoutMs]).toEqual([ms, ms, ms, ms]);
  });

  test.each([
    { value: '0', why: 'zero' },
    { value: '-5', why: 'negative' },
    { value: 'abc', why: 'not a number' },
    { value: '1.5', why: 'a fraction' },
    { value: '60s', why: 'with a unit' },
    { value: '', why: 'empty (the runner passes the default; empty is a choice)' },
    { value: '86401', why: 'more than a day' },
  ])('$why ("$value") is refused, naming the input and what it takes', ({ value }) => {
    expect(() => build({ 'network-timeout': value })).toThrow(ConfigurationError);
    expect(() => build({ 'network-timeout': value })).toThrow(
      `Input network-timeout must be a whole number of seconds from 1 to 86400 (how long a remote call may go without moving a byte before it is abandoned), such as 60; got "${value}"`,
    );
  });

  test('the CLI flag --network-timeout reaches the same config', () => {
    const args = parseArgs(['backup', '--network-timeout', '7', '--database-url', URL]);
    const c = buildConfig(cliInputGetter(args.inputs, {}), {});
    expect(c.networkTimeoutMs).toBe(7_000);
    expect(buildConfig(cliInputGetter(parseArgs(['backup', '--database-url', URL]).inputs, {}), {}).networkTimeoutMs).toBe(60_000);
  });
});
