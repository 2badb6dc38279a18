/**
 * ECDSA over a caller-supplied digest (ES256, ES256K, ES384, ES512) with @noble/curves: no prehash, RFC 6979
 * deterministic nonces, signatures as JWS `r‖s` of fixed width, high-S accepted on verify (as OpenSSL does).
 */
import { digestLengthError, type EcSignature } from './algorithms.js';
import { CURVES } from './curves.js';
import { KeyCryptoError, type CurveName } from './types.js';

/** The EC half of a prepared key. */
export interface EcKey {
  sign(name: string, alg: EcSignature, digest: Uint8Array): Uint8Array;
  verify(name: string, alg: EcSignature, digest: Uint8Array, signature: Uint8Array): boolean;
}

/**
 * An EC private key ready for use.
 * @param curve - its curve.
 * @param scalar - the private scalar, big-endian, exactly the curve's width.
 * @param publicPoint - the uncompressed public point `04 ‖ x ‖ y`.
 */
export function prepareEc(curve: CurveName, scalar: Uint8Array, publicPoint: Uint8Array): EcKey {
  const { ecdsa, bytes } = CURVES[curve];
  const check = (name: string, alg: EcSignature, digest: Uint8Array): void => {
    if (alg.curve !== curve) throw new KeyCryptoError(`Algorithm ${name} is not valid for a ${curve} key; it needs a ${alg.curve} key.`);
    if (digest.length !== alg.digestBytes) throw digestLengthError(name, digest.length, alg.digestBytes);
  };
  return {
    sign(name, alg, digest) {
      check(name, alg, digest);
      return ecdsa.sign(digest, scalar, { prehash: false, lowS: false, format: 'compact' });
    },
    verify(name, alg, digest, signature) {
      check(name, alg, digest);
      if (signature.length !== 2 * bytes) return false;
      try {
        return ecdsa.verify(signature, digest, publicPoint, { prehash: false, lowS: false, format: 'compact' });
      } catch {
        // r or s out of range and the like: a bad signature, not a caller error.
        return false;
      }
    },
  };
}
