/**
 * How the agent holds and compares its secrets (the machine-wide header secret, `openmsi run` session
 * secrets, the control secret): only their SHA-256 is kept, and a presented secret is compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export function digestOf(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Constant-time comparison of a presented secret with the digest of the expected one. */
export function secretMatches(presented: string, expectedDigest: Buffer): boolean {
  return timingSafeEqual(digestOf(presented), expectedDigest);
}
