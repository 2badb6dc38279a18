/**
 * AES operations of an oct key (keys spec §1.7): GCM, CBC without padding, CBC with PKCS#7 padding, and key wrap
 * (RFC 3394, and RFC 5649 with padding) through OpenSSL's id-aesN-wrap(-pad) ciphers.
 */
import { createCipheriv, createDecipheriv, randomBytes, type CipherGCMTypes } from 'node:crypto';
import type { AesCipher, CipherOperation } from './algorithms.js';
import { KeyCryptoError, type CipherInput, type CipherOutput } from './types.js';

const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;
const CBC_IV_BYTES = 16;
/** RFC 3394 §2.2.3.1 default IV and RFC 5649 §3 alternative IV. */
const KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const KWP_IV = Buffer.from('a65959a6', 'hex');

/** The AES half of a prepared key. */
export interface AesKey {
  readonly bits: number;
  encrypt(name: string, alg: AesCipher, input: CipherInput): CipherOutput;
  decrypt(name: string, alg: AesCipher, op: CipherOperation, input: CipherInput): { value: Uint8Array };
}

/** An AES key (16, 24 or 32 bytes) ready for use. */
export function prepareAes(key: Uint8Array): AesKey {
  const secret = Buffer.from(key);
  const bits = secret.length * 8;
  const gcm = `aes-${bits}-gcm` as CipherGCMTypes;

  const checkSize = (name: string, alg: AesCipher): void => {
    if (alg.bits !== undefined && alg.bits !== bits) throw new KeyCryptoError(`Algorithm ${name} needs a ${alg.bits}-bit key; this key has ${bits} bits.`);
  };
  const requireBytes = (name: string, field: 'iv' | 'tag', value: Uint8Array | undefined, length: number): Buffer => {
    if (value === undefined) throw new KeyCryptoError(`Algorithm ${name} requires '${field}'.`);
    if (value.length !== length) throw new KeyCryptoError(`Invalid length of '${field}': ${value.length} bytes. ${name} requires ${length} bytes.`);
    return Buffer.from(value);
  };
  const requireBlocks = (name: string, value: Uint8Array, what: string): void => {
    if (value.length % 16 !== 0)
      throw new KeyCryptoError(`Invalid length of 'value': ${value.length} bytes. ${name} requires the ${what} to be a multiple of 16 bytes.`);
  };

  return {
    bits,

    encrypt(name, alg, input) {
      checkSize(name, alg);
      const value = input.value;
      switch (alg.mode) {
        case 'gcm': {
          // Always a fresh IV from the server: a caller-chosen GCM nonce repeated under a vault key would expose the
          // authentication key. The SDKs send none and read the one returned.
          const iv = randomBytes(GCM_IV_BYTES);
          const cipher = createCipheriv(gcm, secret, iv, { authTagLength: GCM_TAG_BYTES });
          if (input.aad !== undefined) cipher.setAAD(input.aad);
          const out = Buffer.concat([cipher.update(value), cipher.final()]);
          return { value: out, iv, tag: cipher.getAuthTag(), ...(input.aad !== undefined ? { aad: input.aad } : {}) };
        }
        case 'cbc':
        case 'cbcpad': {
          if (alg.mode === 'cbc') requireBlocks(name, value, 'plaintext');
          const iv = input.iv === undefined ? randomBytes(CBC_IV_BYTES) : requireBytes(name, 'iv', input.iv, CBC_IV_BYTES);
          const cipher = createCipheriv(`aes-${bits}-cbc`, secret, iv);
          cipher.setAutoPadding(alg.mode === 'cbcpad');
          return { value: Buffer.concat([cipher.update(value), cipher.final()]), iv };
        }
        case 'kw': {
          if (value.length < 16 || value.length % 8 !== 0) {
            throw new KeyCryptoError(`Invalid length of 'value': ${value.length} bytes. ${name} wraps at least 16 bytes, a multiple of 8.`);
          }
          const cipher = createCipheriv(`id-aes${bits}-wrap`, secret, KW_IV);
          return { value: Buffer.concat([cipher.update(value), cipher.final()]) };
        }
        case 'kwp': {
          if (value.length === 0) throw new KeyCryptoError(`Invalid length of 'value': 0 bytes. ${name} wraps at least 1 byte.`);
          const cipher = createCipheriv(`id-aes${bits}-wrap-pad`, secret, KWP_IV);
          return { value: Buffer.concat([cipher.update(value), cipher.final()]) };
        }
      }
    },

    decrypt(name, alg, op, input) {
      checkSize(name, alg);
      const value = input.value;
      const failed = (): KeyCryptoError =>
        new KeyCryptoError(
          `The ciphertext could not be ${op === 'decrypt' ? 'decrypted' : 'unwrapped'} with ${name} and this key: it was altered, or another key, iv or aad was used.`,
        );
      switch (alg.mode) {
        case 'gcm': {
          const iv = requireBytes(name, 'iv', input.iv, GCM_IV_BYTES);
          const tag = requireBytes(name, 'tag', input.tag, GCM_TAG_BYTES);
          const decipher = createDecipheriv(gcm, secret, iv, { authTagLength: GCM_TAG_BYTES });
          if (input.aad !== undefined) decipher.setAAD(input.aad);
          decipher.setAuthTag(tag);
          try {
            return { value: Buffer.concat([decipher.update(value), decipher.final()]) };
          } catch {
            throw failed();
          }
        }
        case 'cbc':
        case 'cbcpad': {
          const iv = requireBytes(name, 'iv', input.iv, CBC_IV_BYTES);
          requireBlocks(name, value, 'ciphertext');
          if (alg.mode === 'cbcpad' && value.length === 0) throw failed();
          const decipher = createDecipheriv(`aes-${bits}-cbc`, secret, iv);
          decipher.setAutoPadding(alg.mode === 'cbcpad');
          try {
            return { value: Buffer.concat([decipher.update(value), decipher.final()]) };
          } catch {
            throw failed();
          }
        }
        case 'kw':
        case 'kwp': {
          const min = alg.mode === 'kw' ? 24 : 16;
          if (value.length < min || value.length % 8 !== 0) {
            throw new KeyCryptoError(`Invalid length of 'value': ${value.length} bytes. ${name} unwraps at least ${min} bytes, a multiple of 8.`);
          }
          const decipher = createDecipheriv(alg.mode === 'kw' ? `id-aes${bits}-wrap` : `id-aes${bits}-wrap-pad`, secret, alg.mode === 'kw' ? KW_IV : KWP_IV);
          try {
            return { value: Buffer.concat([decipher.update(value), decipher.final()]) };
          } catch {
            throw failed();
          }
        }
      }
    },
  };
}
