/**
 * PKCS#1 v1.5 encryption unpadding (EME-PKCS1-v1_5, type 2) with implicit rejection, as in OpenSSL 3.2+ and
 * draft-irtf-cfrg-rsa-guidance: a ciphertext whose padding is wrong decrypts to a deterministic pseudo-random
 * message instead of an error, so neither the answer nor its timing tells an attacker whether the padding held
 * (the Bleichenbacher/Marvin oracle). The synthetic message is derived exactly as OpenSSL derives it, so the same
 * key and ciphertext give the same bytes here and there.
 *
 * Every step that depends on the decrypted block runs in constant time: no early exit, no branch on its bytes,
 * selections by all-ones/all-zeros int32 masks.
 */
import { createHash, createHmac } from 'node:crypto';
import { leftPad } from './base64.js';

/** How many 16-bit length candidates are drawn: with none short enough (chance 2^-128) the length is 0. */
const LENGTH_TRIES = 128;

// Masks are int32 all-ones (-1) or zero. Inputs are small non-negative integers (bytes or indices below 2^16).
const isZero = (x: number): number => (x - 1) >> 31;
const equals = (a: number, b: number): number => isZero(a ^ b);
const lessThan = (a: number, b: number): number => (a - b) >> 31;
const select = (mask: number, a: number, b: number): number => (a & mask) | (b & ~mask);

/**
 * The per-key secret of implicit rejection: SHA-256 of the private exponent as a k-byte big-endian integer.
 * Computed once per prepared key.
 */
export function implicitRejectionKey(d: Uint8Array, k: number): Buffer {
  return createHash('sha256').update(leftPad(d, k)).digest();
}

/** OpenSSL's ossl_rsa_prf: HMAC-SHA256(kdk, BE16(i) ‖ label ‖ BE16(bits)) blocks, concatenated, truncated to `bytes`. */
function prf(kdk: Buffer, label: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  const bits = Buffer.alloc(2);
  bits.writeUInt16BE((bytes * 8) & 0xffff);
  const counter = Buffer.alloc(2);
  for (let pos = 0, i = 0; pos < bytes; pos += 32, i++) {
    counter.writeUInt16BE(i);
    const block = createHmac('sha256', kdk).update(counter).update(label, 'latin1').update(bits).digest();
    block.copy(out, pos, 0, Math.min(32, bytes - pos));
  }
  return out;
}

/**
 * The message inside `em` (the raw k-byte RSA decryption of `ciphertext`), or, when `em` is not
 * `00 02 PS(≥ 8 non-zero bytes) 00 M`, the synthetic message for this key and ciphertext. Never throws on bad padding.
 *
 * @param em - the raw RSA output, k bytes.
 * @param ciphertext - the ciphertext as received, k bytes (the caller refused any other length).
 * @param rejectionKey - {@link implicitRejectionKey} of the private key.
 */
export function unpadPkcs1Type2(em: Uint8Array, ciphertext: Uint8Array, rejectionKey: Buffer): Buffer {
  const k = em.length;
  const kdk = createHmac('sha256', rejectionKey).update(ciphertext).digest();
  const synthetic = prf(kdk, 'message', k);
  const candidates = prf(kdk, 'length', LENGTH_TRIES * 2);

  // The longest message: k less 00 02 and eight bytes of padding (OpenSSL also excludes exactly this value).
  const maxLength = k - 2 - 8;
  let lengthMask = maxLength;
  lengthMask |= lengthMask >> 1;
  lengthMask |= lengthMask >> 2;
  lengthMask |= lengthMask >> 4;
  lengthMask |= lengthMask >> 8;
  let syntheticLength = 0;
  for (let i = 0; i < LENGTH_TRIES * 2; i += 2) {
    const candidate = ((candidates[i]! << 8) | candidates[i + 1]!) & lengthMask;
    syntheticLength = select(lessThan(candidate, maxLength), candidate, syntheticLength);
  }
  const syntheticIndex = k - syntheticLength;

  let good = isZero(em[0]!) & equals(em[1]!, 2);
  let foundZero = 0;
  let zeroIndex = 0;
  for (let i = 2; i < k; i++) {
    const zero = isZero(em[i]!);
    zeroIndex = select(~foundZero & zero, i, zeroIndex);
    foundZero |= zero;
  }
  // At least eight bytes of padding; with no separator zeroIndex is 0 and this fails too.
  good &= ~lessThan(zeroIndex, 2 + 8);
  const messageIndex = select(good, zeroIndex + 1, syntheticIndex);

  // Both buffers are read at every position, whichever is kept.
  const out = Buffer.alloc(k - messageIndex);
  for (let i = messageIndex, j = 0; i < k; i++, j++) out[j] = select(good, em[i]!, synthetic[i]!);
  return out;
}
