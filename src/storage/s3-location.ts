// S3 destinations as the configuration sees them (s3://bucket/prefix, options, part sizes): kept apart from the
// AWS SDK, which loads only when an s3:// destination is used.
import { ConfigurationError } from '../errors.js';

export interface S3Options {
  endpoint?: string;
  region?: string;
  forcePathStyle: boolean;
  /** 'when-required' (default) suits most S3-compatible services; 'when-supported' is the SDK's default. */
  checksums: 'when-required' | 'when-supported';
  /** Multipart part size; undefined: chosen from the file size. */
  partSize?: number;
  /** network-timeout: connecting, or no byte either way for this long, fails a request (ms; default 60 s). */
  networkTimeoutMs?: number;
}

const MiB = 1024 * 1024;
const MAX_PARTS = 10_000;

/** 8 MiB, or more so that the file fits in fewer than 10,000 parts (with a margin for growth). */
export function choosePartSize(size: number, minimum = 8 * MiB): number {
  const needed = Math.ceil(size / (MAX_PARTS * 0.9));
  return Math.max(minimum, Math.ceil(needed / MiB) * MiB);
}

export function parseS3Destination(dest: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(dest);
  if (!m || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(m[1]!)) {
    throw new ConfigurationError(`Destination "${dest}" is not a valid S3 location; use s3://bucket/prefix`, { code: 'config-destination' });
  }
  const prefix = m[2]!.replace(/\/+$/, '');
  if (prefix.split('/').some((p) => p === '..' || p === '.') || /[\0\n\r]/.test(prefix)) {
    throw new ConfigurationError(`Destination "${dest}": the prefix must not contain . or .. segments or control characters`, { code: 'config-destination' });
  }
  return { bucket: m[1]!, prefix };
}
