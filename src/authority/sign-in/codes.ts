/**
 * The sign-in flows' codes: authorization codes and device codes are 256 random bits, stored only as their
 * SHA-256; user codes are short enough to type and drawn from letters that cannot be mistaken for each other.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';

/** Authorization codes live this long (Entra: about 10 minutes; MSAL redeems within a second). */
export const AUTHORIZATION_CODE_LIFETIME_MS = 5 * 60 * 1000;
/** Device codes live this long (Entra: 15 minutes). */
export const DEVICE_CODE_LIFETIME_MS = 15 * 60 * 1000;
/** The polling interval devices are told (Entra: 5 s). */
export const DEVICE_CODE_INTERVAL_SECONDS = 5;
/** Device codes one source may ask for per window (a device needs one per sign-in). */
export const DEVICE_CODES_PER_SOURCE = 20;
export const DEVICE_CODE_WINDOW_MS = 15 * 60 * 1000;

/** 26 consonants and digits, without vowels (no words) or look-alikes (0/O, 1/I/L, U/V): 9 of them are 42 bits. */
const USER_CODE_ALPHABET = 'BCDFGHJKMNPQRSTWXZ23456789';
export const USER_CODE_LENGTH = 9;

export function newSecretCode(): string {
  return randomBytes(32).toString('base64url');
}

export function codeHash(code: string): string {
  return createHash('sha256').update(code, 'utf8').digest('base64url');
}

export function newUserCode(): string {
  let code = '';
  for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return code;
}

/** A typed user code, normalised (case, spaces and dashes people add); undefined when it cannot be one. */
export function normaliseUserCode(typed: string): string | undefined {
  const code = typed.replace(/[\s-]/g, '').toUpperCase();
  return code.length === USER_CODE_LENGTH && [...code].every((c) => USER_CODE_ALPHABET.includes(c)) ? code : undefined;
}
