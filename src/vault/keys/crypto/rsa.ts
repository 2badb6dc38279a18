/**
 * RSA operations of a prepared key: RSA1_5 and RSA-OAEP(-256) encryption, RS*, PS* and RSNULL signatures over a
 * caller-supplied digest (keys spec §1.7, §4). node:crypto refuses PKCS#1 v1.5 private decryption and cannot sign a
 * given digest with PSS, so those two run as a raw RSA operation (RSA_NO_PADDING) around the padding code of
 * pkcs1.ts and pss.ts.
 */
import {
  constants,
  createPublicKey,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { HASH_BYTES, digestLengthError, type CipherOperation, type RsaCipher, type RsaSignature } from './algorithms.js';
import { implicitRejectionKey, unpadPkcs1Type2 } from './pkcs1.js';
import { emsaPssEncode, emsaPssVerify } from './pss.js';
import { KeyCryptoError, type CipherInput, type CipherOutput } from './types.js';

/** DER of DigestInfo up to the digest (RFC 8017 §9.2 note 1). */
const DIGEST_INFO: Readonly<Record<'sha256' | 'sha384' | 'sha512', Buffer>> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** The RSA half of a prepared key. */
export interface RsaKey {
  readonly bits: number;
  encrypt(name: string, alg: RsaCipher, input: CipherInput): CipherOutput;
  decrypt(name: string, alg: RsaCipher, op: CipherOperation, input: CipherInput): { value: Uint8Array };
  sign(name: string, alg: RsaSignature, digest: Uint8Array): Uint8Array;
  verify(name: string, alg: RsaSignature, digest: Uint8Array, signature: Uint8Array): boolean;
}

/**
 * An RSA private key ready for use.
 * @param privateKey - the parsed private key.
 * @param d - its private exponent (for the implicit-rejection secret).
 */
export function prepareRsa(privateKey: KeyObject, d: Uint8Array): RsaKey {
  const bits = privateKey.asymmetricKeyDetails?.modulusLength;
  if (bits === undefined) throw new Error('stored RSA key material has no modulus length');
  const publicKey = createPublicKey(privateKey);
  const k = Math.ceil(bits / 8);
  const rejectionKey = implicitRejectionKey(d, k);
  const emBits = bits - 1;
  const emLen = Math.ceil(emBits / 8);

  const rawPrivate = (block: Buffer): Buffer => privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, block);

  /** The raw public operation on a k-byte value, or undefined when it is not below the modulus. */
  const rawPublic = (value: Uint8Array): Buffer | undefined => {
    try {
      return publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, value);
    } catch {
      return undefined;
    }
  };

  const maxPlaintext = (alg: RsaCipher): number => (alg.padding === 'pkcs1' ? k - 11 : k - 2 * HASH_BYTES[alg.hash] - 2);

  return {
    bits,

    encrypt(name, alg, input) {
      const max = maxPlaintext(alg);
      if (input.value.length > max) {
        throw new KeyCryptoError(`The plaintext is too long for ${name} with a ${bits}-bit key: ${input.value.length} bytes, at most ${max}.`);
      }
      const value =
        alg.padding === 'pkcs1'
          ? publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, input.value)
          : publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg.hash }, input.value);
      return { value };
    },

    decrypt(name, alg, op, input) {
      // The length is public: refusing it tells nothing about the plaintext.
      if (input.value.length !== k)
        throw new KeyCryptoError(`The ciphertext for ${name} must be ${k} bytes with this ${bits}-bit key, not ${input.value.length}.`);
      const ciphertext = Buffer.from(input.value);
      if (alg.padding === 'pkcs1') {
        let em: Buffer;
        try {
          em = rawPrivate(ciphertext);
        } catch {
          // Only a ciphertext not below the modulus fails here: public too.
          throw new KeyCryptoError(`The ciphertext is not valid for ${name} with this key: it is not below the modulus.`);
        }
        // Implicit rejection: bad padding gives a synthetic message, never an error (pkcs1.ts).
        return { value: unpadPkcs1Type2(em, ciphertext, rejectionKey) };
      }
      try {
        return { value: privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg.hash }, ciphertext) };
      } catch {
        // OpenSSL's OAEP decoding fails uniformly (no Manger oracle); one message for every cause.
        throw new KeyCryptoError(`The ciphertext could not be ${op === 'decrypt' ? 'decrypted' : 'unwrapped'} with ${name} and this key.`);
      }
    },

    sign(name, alg, digest) {
      if (alg.scheme === 'raw') {
        if (digest.length > k - 11)
          throw new KeyCryptoError(`Invalid length of 'value': ${digest.length} bytes. ${name} accepts at most ${k - 11} bytes with this key.`);
        return privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, digest);
      }
      const hLen = HASH_BYTES[alg.hash];
      if (digest.length !== hLen) throw digestLengthError(name, digest.length, hLen);
      if (alg.scheme === 'pkcs1')
        return privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([DIGEST_INFO[alg.hash], digest]));
      // PSS: salt length = hash length (what Key Vault uses and Python verifies with); emBits = modBits − 1 keeps EM below n.
      const em = emsaPssEncode(alg.hash, digest, emBits, randomBytes(hLen));
      const block = Buffer.alloc(k);
      em.copy(block, k - emLen);
      return rawPrivate(block);
    },

    verify(name, alg, digest, signature) {
      if (alg.scheme === 'raw') {
        if (digest.length > k - 11)
          throw new KeyCryptoError(`Invalid length of 'value': ${digest.length} bytes. ${name} accepts at most ${k - 11} bytes with this key.`);
      } else if (digest.length !== HASH_BYTES[alg.hash]) {
        throw digestLengthError(name, digest.length, HASH_BYTES[alg.hash]);
      }
      if (signature.length !== k) return false;
      if (alg.scheme === 'pss') {
        const m = rawPublic(signature);
        if (m === undefined) return false;
        // With modBits ≡ 1 (mod 8) EM is one byte shorter than the modulus; that byte must be zero.
        for (let i = 0; i < k - emLen; i++) if (m[i] !== 0) return false;
        return emsaPssVerify(alg.hash, digest, m.subarray(k - emLen), emBits, HASH_BYTES[alg.hash]);
      }
      let recovered: Buffer;
      try {
        recovered = publicDecrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
      } catch {
        return false;
      }
      const expected = alg.scheme === 'raw' ? Buffer.from(digest) : Buffer.concat([DIGEST_INFO[alg.hash], digest]);
      return recovered.length === expected.length && timingSafeEqual(recovered, expected);
    },
  };
}
