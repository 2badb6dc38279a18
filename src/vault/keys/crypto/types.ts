/**
 * The shapes shared by the keys crypto module's parts (re-exported by index.ts, which is what callers import).
 */

/** The key families; `-HSM` variants are a protection label kept by the caller, the crypto is the same. */
export type KeyKind = 'RSA' | 'EC' | 'oct';

/** Key Vault's curve names (`P-256K` is secp256k1). */
export type CurveName = 'P-256' | 'P-256K' | 'P-384' | 'P-521';

/** What is stored (sealed by the caller): private material. */
export interface KeyMaterial {
  kind: KeyKind;
  /** RSA/EC: PKCS#8 DER of the private key; oct: the raw AES key bytes. */
  secret: Uint8Array;
  /** RSA: modulus bits; oct: key bits; EC: field size is implied by curve */
  size?: number;
  curve?: CurveName;
}

/** Thrown for every caller error; the routes turn it into Key Vault's 400 BadParameter with this message. */
export class KeyCryptoError extends Error {
  override readonly name = 'KeyCryptoError';
}

/** The byte fields of an encrypt, decrypt, wrapKey or unwrapKey request. */
export interface CipherInput {
  value: Uint8Array;
  iv?: Uint8Array;
  aad?: Uint8Array;
  tag?: Uint8Array;
}

/** What encrypt and wrapKey answer: the ciphertext, and for AES the iv used, the GCM tag and the echoed aad. */
export interface CipherOutput {
  value: Uint8Array;
  iv?: Uint8Array;
  tag?: Uint8Array;
  aad?: Uint8Array;
}
