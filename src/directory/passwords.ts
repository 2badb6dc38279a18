/**
 * Users' password hashes: scrypt (memory-hard, node:crypto), stored in a self-describing form
 * `scrypt$N$r$p$salt$hash` (base64url salt and hash), so the parameters can be raised later and old hashes
 * still verify. Checks compare in constant time. docs/security.md states the parameters.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** The parameters new hashes use: N = 2^15, r = 8, p = 1 (32 MiB, OWASP's scrypt floor is N=2^17 r=8 p=1 at 128 MiB; see docs/security.md). */
export const SCRYPT_PARAMS = { N: 2 ** 15, r: 8, p: 1 } as const;
export const SALT_BYTES = 16;
export const HASH_BYTES = 32;
/** Stored hashes with a larger cost than this are refused rather than computed (a corrupt row must not stall the server). */
const MAX_N = 2 ** 20;

function scryptAsync(password: string, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, length, options, (err, key) => (err === null ? resolve(key) : reject(err)));
  });
}

/** scrypt needs 128·N·r bytes; node's default ceiling (32 MiB) is exactly N=2^15, r=8, so give it room. */
function optionsFor(N: number, r: number, p: number): ScryptOptions {
  return { N, r, p, maxmem: 256 * N * r + 1024 * 1024 };
}

/** A new hash of `password` with a fresh random salt. */
export async function hashPassword(password: string): Promise<string> {
  const { N, r, p } = SCRYPT_PARAMS;
  const salt = randomBytes(SALT_BYTES);
  const hash = await scryptAsync(password, salt, HASH_BYTES, optionsFor(N, r, p));
  return `scrypt$${String(N)}$${String(r)}$${String(p)}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** Whether `password` matches `stored`: false for a wrong password or a malformed hash; constant-time compare. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((n) => Number.isInteger(n) && n > 0) || N > MAX_N || (N & (N - 1)) !== 0 || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const expected = Buffer.from(parts[5] ?? '', 'base64url');
  if (salt.length < 8 || expected.length < 16) return false;
  const actual = await scryptAsync(password, salt, expected.length, optionsFor(N, r, p));
  return timingSafeEqual(actual, expected);
}

let dummy: Promise<string> | undefined;

/**
 * A hash no password is known for: a sign-in for an unknown user is checked against it, so that it takes as
 * long as one for a known user and the response time does not tell which names exist.
 */
export function dummyPasswordHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(32).toString('base64url'));
  return dummy;
}

const MIN_LENGTH = 8;
const MAX_LENGTH = 256;

/**
 * Entra's password policy for cloud users: 8 to 256 characters, and three of lower case, upper case,
 * digits and symbols. Returns the reason a password is refused, or undefined.
 */
export function passwordPolicyViolation(password: string): string | undefined {
  if (password.length < MIN_LENGTH || password.length > MAX_LENGTH) return `a password has ${String(MIN_LENGTH)} to ${String(MAX_LENGTH)} characters`;
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
  if (classes < 3) return 'a password has three of: lower-case letters, upper-case letters, digits and symbols';
  return undefined;
}
