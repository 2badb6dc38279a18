/**
 * The algorithm tables of the keys data plane (keys spec §1.7): which key kind each `alg` needs, which operations
 * it serves, and its parameters. Lookups throw KeyCryptoError with a message naming the algorithm and the key.
 */
import { KeyCryptoError, type CurveName, type KeyKind } from './types.js';

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** Output bytes of each hash. */
export const HASH_BYTES: Readonly<Record<HashName, number>> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

export type CipherOperation = 'encrypt' | 'decrypt' | 'wrapKey' | 'unwrapKey';
export type SignOperation = 'sign' | 'verify';

export type RsaCipher =
  { readonly kind: 'RSA'; readonly padding: 'pkcs1' } | { readonly kind: 'RSA'; readonly padding: 'oaep'; readonly hash: 'sha1' | 'sha256' };

/** `bits` undefined: the CKM_* algorithms, which take the key's own size. */
export interface AesCipher {
  readonly kind: 'oct';
  readonly mode: 'gcm' | 'cbc' | 'cbcpad' | 'kw' | 'kwp';
  readonly bits: 128 | 192 | 256 | undefined;
}

export type CipherAlgorithm = RsaCipher | AesCipher;

export type RsaSignature =
  { readonly kind: 'RSA'; readonly scheme: 'pkcs1' | 'pss'; readonly hash: 'sha256' | 'sha384' | 'sha512' } | { readonly kind: 'RSA'; readonly scheme: 'raw' };
export interface EcSignature {
  readonly kind: 'EC';
  readonly curve: CurveName;
  readonly digestBytes: number;
}
export type SignatureAlgorithm = RsaSignature | EcSignature;

interface CipherEntry {
  readonly alg: CipherAlgorithm;
  /** encrypt/decrypt, wrapKey/unwrapKey, or both. */
  readonly use: 'encrypt' | 'wrap' | 'both';
}

const RSA15: RsaCipher = { kind: 'RSA', padding: 'pkcs1' };
const aes = (mode: AesCipher['mode'], bits: AesCipher['bits'], use: CipherEntry['use']): CipherEntry => ({ alg: { kind: 'oct', mode, bits }, use });

// RSA serves both pairs of operations; AES-GCM/CBC only encrypt/decrypt and AES key wrap only wrapKey/unwrapKey,
// as Managed HSM and the SDKs' KeyWrapAlgorithm/EncryptionAlgorithm types split them.
const CIPHERS: ReadonlyMap<string, CipherEntry> = new Map<string, CipherEntry>([
  ['RSA1_5', { alg: RSA15, use: 'both' }],
  ['RSA-OAEP', { alg: { kind: 'RSA', padding: 'oaep', hash: 'sha1' }, use: 'both' }],
  ['RSA-OAEP-256', { alg: { kind: 'RSA', padding: 'oaep', hash: 'sha256' }, use: 'both' }],
  ['A128GCM', aes('gcm', 128, 'encrypt')],
  ['A192GCM', aes('gcm', 192, 'encrypt')],
  ['A256GCM', aes('gcm', 256, 'encrypt')],
  ['A128CBC', aes('cbc', 128, 'encrypt')],
  ['A192CBC', aes('cbc', 192, 'encrypt')],
  ['A256CBC', aes('cbc', 256, 'encrypt')],
  ['A128CBCPAD', aes('cbcpad', 128, 'encrypt')],
  ['A192CBCPAD', aes('cbcpad', 192, 'encrypt')],
  ['A256CBCPAD', aes('cbcpad', 256, 'encrypt')],
  ['A128KW', aes('kw', 128, 'wrap')],
  ['A192KW', aes('kw', 192, 'wrap')],
  ['A256KW', aes('kw', 256, 'wrap')],
  ['CKM_AES_KEY_WRAP', aes('kw', undefined, 'wrap')],
  ['CKM_AES_KEY_WRAP_PAD', aes('kwp', undefined, 'wrap')],
]);

const SIGNATURES: ReadonlyMap<string, SignatureAlgorithm> = new Map<string, SignatureAlgorithm>([
  ['RS256', { kind: 'RSA', scheme: 'pkcs1', hash: 'sha256' }],
  ['RS384', { kind: 'RSA', scheme: 'pkcs1', hash: 'sha384' }],
  ['RS512', { kind: 'RSA', scheme: 'pkcs1', hash: 'sha512' }],
  ['PS256', { kind: 'RSA', scheme: 'pss', hash: 'sha256' }],
  ['PS384', { kind: 'RSA', scheme: 'pss', hash: 'sha384' }],
  ['PS512', { kind: 'RSA', scheme: 'pss', hash: 'sha512' }],
  ['RSNULL', { kind: 'RSA', scheme: 'raw' }],
  ['ES256', { kind: 'EC', curve: 'P-256', digestBytes: 32 }],
  ['ES256K', { kind: 'EC', curve: 'P-256K', digestBytes: 32 }],
  ['ES384', { kind: 'EC', curve: 'P-384', digestBytes: 48 }],
  // ES512 signs a 64-byte SHA-512 digest on P-521 as is (no truncation: the order has 521 bits).
  ['ES512', { kind: 'EC', curve: 'P-521', digestBytes: 64 }],
]);

/** Every algorithm encrypt, decrypt, wrapKey or unwrapKey knows (for docs and request validation). */
export const ENCRYPTION_ALGORITHMS: readonly string[] = Object.freeze([...CIPHERS.keys()]);

/** Every algorithm sign and verify know. */
export const SIGNATURE_ALGORITHMS: readonly string[] = Object.freeze([...SIGNATURES.keys()]);

/** The key's description in messages: `an RSA key`, `an EC key`, `an oct key`. */
export function describeKind(kind: KeyKind): string {
  return kind === 'oct' ? 'an oct key' : `an ${kind} key`;
}

function name(alg: unknown): string {
  return typeof alg === 'string' ? alg : String(alg);
}

/** The cipher `alg` for `op` on a key of `kind`; KeyCryptoError when it is unknown, for another kind or another operation. */
export function cipherAlgorithm(alg: string, op: CipherOperation, kind: 'RSA'): RsaCipher;
export function cipherAlgorithm(alg: string, op: CipherOperation, kind: 'oct'): AesCipher;
export function cipherAlgorithm(alg: string, op: CipherOperation, kind: KeyKind): CipherAlgorithm;
export function cipherAlgorithm(alg: string, op: CipherOperation, kind: KeyKind): CipherAlgorithm {
  const entry = typeof alg === 'string' ? CIPHERS.get(alg) : undefined;
  if (entry === undefined) {
    throw new KeyCryptoError(
      SIGNATURES.has(alg) ? `Algorithm ${alg} is a signature algorithm and cannot be used to ${op}.` : `Unsupported algorithm for ${op}: ${name(alg)}.`,
    );
  }
  if (entry.alg.kind !== kind) throw new KeyCryptoError(`Algorithm ${alg} is not valid for ${describeKind(kind)}.`);
  const wrapping = op === 'wrapKey' || op === 'unwrapKey';
  if (entry.use === 'wrap' && !wrapping)
    throw new KeyCryptoError(`Algorithm ${alg} is a key wrap algorithm and cannot be used to ${op}; use wrapKey or unwrapKey.`);
  if (entry.use === 'encrypt' && wrapping) throw new KeyCryptoError(`Algorithm ${alg} cannot be used to ${op}; use encrypt or decrypt.`);
  return entry.alg;
}

/** The signature `alg` on a key of `kind`; KeyCryptoError when it is unknown or for another kind (the curve is checked by the EC key). */
export function signatureAlgorithm(alg: string, op: SignOperation, kind: 'RSA'): RsaSignature;
export function signatureAlgorithm(alg: string, op: SignOperation, kind: 'EC'): EcSignature;
export function signatureAlgorithm(alg: string, op: SignOperation, kind: KeyKind): SignatureAlgorithm;
export function signatureAlgorithm(alg: string, op: SignOperation, kind: KeyKind): SignatureAlgorithm {
  const entry = typeof alg === 'string' ? SIGNATURES.get(alg) : undefined;
  if (entry === undefined) {
    throw new KeyCryptoError(
      CIPHERS.has(alg) ? `Algorithm ${alg} is an encryption algorithm and cannot be used to ${op}.` : `Unsupported algorithm for ${op}: ${name(alg)}.`,
    );
  }
  if (entry.kind !== kind) throw new KeyCryptoError(`Algorithm ${alg} is not valid for ${describeKind(kind)}.`);
  return entry;
}

/** Key Vault's message for a digest of the wrong size (keys spec §1.10). */
export function digestLengthError(alg: string, got: number, required: number): KeyCryptoError {
  return new KeyCryptoError(`Invalid length of 'value': ${got} bytes. ${alg} requires ${required} bytes, encoded with base64url.`);
}
