/**
 * The cryptography of the Key Vault keys data plane (keys spec §1.5, §1.7, §4): key material (generate, import,
 * public JWK) and prepared keys doing encrypt, decrypt, wrapKey, unwrapKey, sign and verify. Pure: no storage, no
 * HTTP. Every caller error is a KeyCryptoError whose message the routes send as 400 BadParameter; anything else
 * thrown is a fault of the stored material or of this code.
 */
import { cipherAlgorithm, describeKind, signatureAlgorithm, type CipherOperation } from './algorithms.js';
import { prepareAes } from './aes.js';
import { leftPad } from './base64.js';
import { CURVES } from './curves.js';
import { prepareEc } from './ec.js';
import { curveOf, privateJwkOf, privateKeyOf } from './material.js';
import { prepareRsa } from './rsa.js';
import { KeyCryptoError, type CipherInput, type CipherOutput, type KeyKind, type KeyMaterial } from './types.js';

export { ENCRYPTION_ALGORITHMS, SIGNATURE_ALGORITHMS } from './algorithms.js';
export { AES_SIZES, DEFAULT_AES_SIZE, DEFAULT_CURVE, DEFAULT_RSA_SIZE, RSA_SIZES, generateKeyMaterial, importKeyMaterial, publicJwk } from './material.js';
export { KeyCryptoError, type CipherInput, type CipherOutput, type CurveName, type KeyKind, type KeyMaterial } from './types.js';

/** Parsed once per key version and cached by the caller: holds KeyObjects / raw keys so the hot path does no parsing. */
export interface PreparedKey {
  readonly kind: KeyKind;
  encrypt(
    alg: string,
    input: { value: Uint8Array; iv?: Uint8Array; aad?: Uint8Array },
  ): { value: Uint8Array; iv?: Uint8Array; tag?: Uint8Array; aad?: Uint8Array };
  decrypt(alg: string, input: { value: Uint8Array; iv?: Uint8Array; aad?: Uint8Array; tag?: Uint8Array }): { value: Uint8Array };
  wrapKey(
    alg: string,
    input: { value: Uint8Array; iv?: Uint8Array; aad?: Uint8Array },
  ): { value: Uint8Array; iv?: Uint8Array; tag?: Uint8Array; aad?: Uint8Array };
  unwrapKey(alg: string, input: { value: Uint8Array; iv?: Uint8Array; aad?: Uint8Array; tag?: Uint8Array }): { value: Uint8Array };
  sign(alg: string, digest: Uint8Array): Uint8Array;
  /** Never throws for a bad signature (false); throws KeyCryptoError for a wrong digest length or an algorithm not for this key. */
  verify(alg: string, digest: Uint8Array, signature: Uint8Array): boolean;
}

function bytes(value: unknown, field: string): void {
  if (!(value instanceof Uint8Array)) throw new KeyCryptoError(`The property '${field}' must be bytes encoded with base64url.`);
}

function checkInput(input: CipherInput): void {
  if (typeof input !== 'object' || input === null) throw new KeyCryptoError("The property 'value' must be bytes encoded with base64url.");
  bytes(input.value, 'value');
  for (const field of ['iv', 'aad', 'tag'] as const) if (input[field] !== undefined) bytes(input[field], field);
}

interface Ops {
  encrypt(alg: string, op: CipherOperation, input: CipherInput): CipherOutput;
  decrypt(alg: string, op: CipherOperation, input: CipherInput): { value: Uint8Array };
  sign(alg: string, digest: Uint8Array): Uint8Array;
  verify(alg: string, digest: Uint8Array, signature: Uint8Array): boolean;
}

function rsaOps(m: KeyMaterial): Ops {
  const privateKey = privateKeyOf(m);
  const d = privateJwkOf(privateKey).d;
  if (typeof d !== 'string') throw new Error('stored RSA key material has no private exponent');
  const rsa = prepareRsa(privateKey, Buffer.from(d, 'base64url'));
  return {
    encrypt: (alg, op, input) => rsa.encrypt(alg, cipherAlgorithm(alg, op, 'RSA'), input),
    decrypt: (alg, op, input) => rsa.decrypt(alg, cipherAlgorithm(alg, op, 'RSA'), op, input),
    sign: (alg, digest) => rsa.sign(alg, signatureAlgorithm(alg, 'sign', 'RSA'), digest),
    verify: (alg, digest, signature) => rsa.verify(alg, signatureAlgorithm(alg, 'verify', 'RSA'), digest, signature),
  };
}

function ecOps(m: KeyMaterial): Ops {
  const jwk = privateJwkOf(privateKeyOf(m));
  const curve = curveOf(m, jwk);
  const width = CURVES[curve].bytes;
  const part = (value: unknown): Buffer => {
    if (typeof value !== 'string') throw new Error('stored EC key material is incomplete');
    return leftPad(Buffer.from(value, 'base64url'), width);
  };
  const ec = prepareEc(curve, part(jwk.d), Buffer.concat([Buffer.of(4), part(jwk.x), part(jwk.y)]));
  const noCipher = (alg: string, op: CipherOperation): never => {
    cipherAlgorithm(alg, op, 'EC'); // throws the precise message (unknown, or not for an EC key)
    throw new KeyCryptoError(`Algorithm ${alg} is not valid for ${describeKind('EC')}.`);
  };
  return {
    encrypt: (alg, op) => noCipher(alg, op),
    decrypt: (alg, op) => noCipher(alg, op),
    sign: (alg, digest) => ec.sign(alg, signatureAlgorithm(alg, 'sign', 'EC'), digest),
    verify: (alg, digest, signature) => ec.verify(alg, signatureAlgorithm(alg, 'verify', 'EC'), digest, signature),
  };
}

function octOps(m: KeyMaterial): Ops {
  if (!(m.secret instanceof Uint8Array) || ![16, 24, 32].includes(m.secret.length)) throw new Error('stored oct key material is not a 128, 192 or 256-bit key');
  const aes = prepareAes(m.secret);
  return {
    encrypt: (alg, op, input) => aes.encrypt(alg, cipherAlgorithm(alg, op, 'oct'), input),
    decrypt: (alg, op, input) => aes.decrypt(alg, cipherAlgorithm(alg, op, 'oct'), op, input),
    sign: (alg) => {
      signatureAlgorithm(alg, 'sign', 'oct');
      throw new KeyCryptoError(`Algorithm ${alg} is not valid for ${describeKind('oct')}.`);
    },
    verify: (alg) => {
      signatureAlgorithm(alg, 'verify', 'oct');
      throw new KeyCryptoError(`Algorithm ${alg} is not valid for ${describeKind('oct')}.`);
    },
  };
}

/**
 * Parses stored key material once into a key ready for every operation (RSA: key objects and the implicit-rejection
 * secret; EC: the scalar and public point; oct: the AES key). Throws a plain Error when the material itself is broken.
 */
export function prepareKey(m: KeyMaterial): PreparedKey {
  const kind = m.kind;
  const ops = kind === 'RSA' ? rsaOps(m) : kind === 'EC' ? ecOps(m) : kind === 'oct' ? octOps(m) : undefined;
  if (ops === undefined) throw new TypeError(`unknown key kind ${String(kind)}`);
  return {
    kind,
    encrypt(alg, input) {
      checkInput(input);
      return ops.encrypt(alg, 'encrypt', input);
    },
    decrypt(alg, input) {
      checkInput(input);
      return ops.decrypt(alg, 'decrypt', input);
    },
    wrapKey(alg, input) {
      checkInput(input);
      return ops.encrypt(alg, 'wrapKey', input);
    },
    unwrapKey(alg, input) {
      checkInput(input);
      return ops.decrypt(alg, 'unwrapKey', input);
    },
    sign(alg, digest) {
      bytes(digest, 'value');
      return ops.sign(alg, digest);
    },
    verify(alg, digest, signature) {
      bytes(digest, 'digest');
      bytes(signature, 'value');
      return ops.verify(alg, digest, signature);
    },
  };
}
