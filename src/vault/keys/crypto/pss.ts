/**
 * EMSA-PSS encoding and verification (RFC 8017 §9.1) with MGF1 over the same hash. node:crypto signs PSS only
 * over data it hashes itself, and Key Vault signs a caller-supplied digest, so the encoding is done here and the
 * RSA operation is raw.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { HASH_BYTES, type HashName } from './algorithms.js';

/** MGF1 (RFC 8017 §B.2.1). */
export function mgf1(hash: HashName, seed: Uint8Array, length: number): Buffer {
  const hLen = HASH_BYTES[hash];
  const out = Buffer.alloc(length);
  const counter = Buffer.alloc(4);
  for (let pos = 0, i = 0; pos < length; pos += hLen, i++) {
    counter.writeUInt32BE(i);
    createHash(hash)
      .update(seed)
      .update(counter)
      .digest()
      .copy(out, pos, 0, Math.min(hLen, length - pos));
  }
  return out;
}

function mPrimeHash(hash: HashName, mHash: Uint8Array, salt: Uint8Array): Buffer {
  return createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
}

/**
 * EMSA-PSS-ENCODE (RFC 8017 §9.1.1) of the digest `mHash` with the given salt: emLen = ⌈emBits/8⌉ bytes.
 * The signer passes a fresh random salt of hLen bytes; tests pass a fixed one.
 */
export function emsaPssEncode(hash: HashName, mHash: Uint8Array, emBits: number, salt: Uint8Array): Buffer {
  const hLen = HASH_BYTES[hash];
  const emLen = Math.ceil(emBits / 8);
  if (mHash.length !== hLen) throw new RangeError(`the digest must be ${hLen} bytes`);
  if (emLen < hLen + salt.length + 2) throw new RangeError('encoding error: the modulus is too short for this hash and salt');
  const h = mPrimeHash(hash, mHash, salt);
  const dbLength = emLen - hLen - 1;
  const db = Buffer.alloc(dbLength);
  db[dbLength - salt.length - 1] = 0x01;
  db.set(salt, dbLength - salt.length);
  const mask = mgf1(hash, h, dbLength);
  for (let i = 0; i < dbLength; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  return Buffer.concat([db, h, Buffer.of(0xbc)]);
}

/**
 * EMSA-PSS-VERIFY (RFC 8017 §9.1.2) of `em` (⌈emBits/8⌉ bytes) against the digest, with a salt of `saltLength` bytes.
 * Works on public values only; answers false for anything inconsistent.
 */
export function emsaPssVerify(hash: HashName, mHash: Uint8Array, em: Uint8Array, emBits: number, saltLength: number): boolean {
  const hLen = HASH_BYTES[hash];
  const emLen = Math.ceil(emBits / 8);
  if (mHash.length !== hLen || em.length !== emLen || emLen < hLen + saltLength + 2) return false;
  if (em[emLen - 1] !== 0xbc) return false;
  const dbLength = emLen - hLen - 1;
  const topMask = 0xff >> (8 * emLen - emBits);
  if ((em[0]! & ~topMask) !== 0) return false;
  const h = em.subarray(dbLength, dbLength + hLen);
  const db = mgf1(hash, h, dbLength);
  for (let i = 0; i < dbLength; i++) db[i]! ^= em[i]!;
  db[0]! &= topMask;
  const separator = dbLength - saltLength - 1;
  for (let i = 0; i < separator; i++) if (db[i] !== 0) return false;
  if (db[separator] !== 0x01) return false;
  return timingSafeEqual(mPrimeHash(hash, mHash, db.subarray(separator + 1)), h);
}
