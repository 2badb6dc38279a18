/**
 * Key material: generation, import of a JsonWebKey, the public JWK, and parsing the stored form back into
 * node:crypto key objects (keys spec §1.5, §4.1). RSA and EC are stored as PKCS#8 DER, oct as the raw key.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import { decodeLenient, leftPad } from './base64.js';
import { CURVES, curveFromJwkName, isCurveName } from './curves.js';
import { KeyCryptoError, type CurveName, type KeyKind, type KeyMaterial } from './types.js';

export const RSA_SIZES: readonly number[] = [2048, 3072, 4096];
export const AES_SIZES: readonly number[] = [128, 192, 256];
export const DEFAULT_RSA_SIZE = 2048;
export const DEFAULT_AES_SIZE = 256;
export const DEFAULT_CURVE: CurveName = 'P-256';
const DEFAULT_EXPONENT = 65537;

const INVALID_JWK = 'The property "key" must be a valid JsonWebKey object.';
const INVALID_RSA = 'RSA key is not valid - cannot instantiate crypto service';

const rsaSizeError = (bits: number): KeyCryptoError =>
  new KeyCryptoError(`The RSA key size ${bits} is not supported. Supported sizes are 2048, 3072 and 4096 bits.`);
const aesSizeError = (bits: number): KeyCryptoError =>
  new KeyCryptoError(`The oct key size ${bits} is not supported. Supported sizes are 128, 192 and 256 bits.`);
const curveError = (crv: unknown): KeyCryptoError =>
  new KeyCryptoError(`The curve ${typeof crv === 'string' ? crv : String(crv)} is not supported. Supported curves are P-256, P-256K, P-384 and P-521.`);

function pkcs8(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' });
}

function generateRsa(modulusLength: number, publicExponent: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    generateKeyPair(
      'rsa',
      { modulusLength, publicExponent, publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } },
      (err, _publicKey, privateKey) => (err ? reject(err) : resolve(privateKey)),
    );
  });
}

function generateEc(namedCurve: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    generateKeyPair(
      'ec',
      { namedCurve, publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } },
      (err, _publicKey, privateKey) => (err ? reject(err) : resolve(privateKey)),
    );
  });
}

/**
 * New key material. RSA 2048/3072/4096 (default 2048, public exponent 65537 unless given), EC on P-256 (default),
 * P-256K, P-384 or P-521, oct 128/192/256 (default 256). The key pair is generated off the event loop.
 * `size` is ignored for EC and `curve` for RSA and oct, as Key Vault reads only the parameters of the key type.
 * @throws KeyCryptoError for an unknown kind, size, curve or exponent.
 */
export async function generateKeyMaterial(spec: { kind: KeyKind; size?: number; curve?: CurveName; publicExponent?: number }): Promise<KeyMaterial> {
  switch (spec.kind) {
    case 'RSA': {
      const size = spec.size ?? DEFAULT_RSA_SIZE;
      if (!RSA_SIZES.includes(size)) throw rsaSizeError(size);
      const exponent = spec.publicExponent ?? DEFAULT_EXPONENT;
      if (!Number.isSafeInteger(exponent) || exponent < 3 || exponent > 0xffffffff || exponent % 2 === 0) {
        throw new KeyCryptoError(`The public exponent ${exponent} is not supported: it must be an odd number from 3 to 4294967295.`);
      }
      return { kind: 'RSA', secret: await generateRsa(size, exponent), size };
    }
    case 'EC': {
      const curve = spec.curve ?? DEFAULT_CURVE;
      if (!isCurveName(curve)) throw curveError(curve);
      return { kind: 'EC', secret: await generateEc(CURVES[curve].nodeName), curve };
    }
    case 'oct': {
      const size = spec.size ?? DEFAULT_AES_SIZE;
      if (!AES_SIZES.includes(size)) throw aesSizeError(size);
      return { kind: 'oct', secret: randomBytes(size / 8), size };
    }
    default:
      throw new KeyCryptoError(`The key type ${String((spec as { kind: unknown }).kind)} is not supported. Supported types are RSA, EC and oct.`);
  }
}

const toBigInt = (bytes: Buffer): bigint => (bytes.length === 0 ? 0n : BigInt(`0x${bytes.toString('hex')}`));

function bitLength(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  return i === bytes.length ? 0 : (bytes.length - i) * 8 - Math.clz32(bytes[i]!) + 24;
}

function importRsa(jwk: Record<string, unknown>): KeyMaterial {
  const names = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'] as const;
  const parts = {} as Record<(typeof names)[number], Buffer>;
  for (const name of names) {
    const bytes = decodeLenient(jwk[name]);
    if (bytes === undefined || bytes.length === 0) throw new KeyCryptoError(INVALID_JWK);
    parts[name] = bytes;
  }
  const bits = bitLength(parts.n);
  if (!RSA_SIZES.includes(bits)) throw rsaSizeError(bits);
  // OpenSSL takes the CRT parts on trust, and a CRT signature made with inconsistent parts leaks the factors: check
  // that the parts are one key before storing them.
  const [n, e, d, p, q, dp, dq, qi] = names.map((name) => toBigInt(parts[name])) as [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
  const consistent =
    p > 1n &&
    q > 1n &&
    p * q === n &&
    e > 1n &&
    e % 2n === 1n &&
    d > 0n &&
    d < n &&
    d % (p - 1n) === dp &&
    d % (q - 1n) === dq &&
    (e * dp) % (p - 1n) === 1n &&
    (e * dq) % (q - 1n) === 1n &&
    (qi * q) % p === 1n;
  if (!consistent) throw new KeyCryptoError(INVALID_RSA);
  let key: KeyObject;
  try {
    const b64 = (name: (typeof names)[number]): string => parts[name].toString('base64url');
    key = createPrivateKey({
      key: { kty: 'RSA', n: b64('n'), e: b64('e'), d: b64('d'), p: b64('p'), q: b64('q'), dp: b64('dp'), dq: b64('dq'), qi: b64('qi') },
      format: 'jwk',
    });
  } catch {
    throw new KeyCryptoError(INVALID_RSA);
  }
  return { kind: 'RSA', secret: pkcs8(key), size: bits };
}

/** A coordinate or scalar at the curve's width: shorter values (leading zeros dropped) are padded, longer refused. */
function fixedWidth(value: unknown, width: number): Buffer {
  const bytes = decodeLenient(value);
  if (bytes === undefined || bytes.length === 0 || bytes.length > width) throw new KeyCryptoError(INVALID_JWK);
  return leftPad(bytes, width);
}

function importEc(jwk: Record<string, unknown>): KeyMaterial {
  // node:crypto and OpenSSL call P-256K secp256k1: a JWK exported by them imports too.
  const curve = typeof jwk['crv'] === 'string' && jwk['crv'].toLowerCase() === 'secp256k1' ? 'P-256K' : jwk['crv'];
  if (!isCurveName(curve)) throw new KeyCryptoError(INVALID_JWK);
  const { bytes: width, ecdsa, jwkName } = CURVES[curve];
  const x = fixedWidth(jwk['x'], width);
  const y = fixedWidth(jwk['y'], width);
  const d = fixedWidth(jwk['d'], width);
  // The public point must be the private scalar's: node:crypto would store a mismatched pair as given.
  let derived: Uint8Array;
  try {
    derived = ecdsa.getPublicKey(d, false);
  } catch {
    throw new KeyCryptoError(INVALID_JWK);
  }
  if (!Buffer.from(derived).equals(Buffer.concat([Buffer.of(4), x, y]))) throw new KeyCryptoError(INVALID_JWK);
  let key: KeyObject;
  try {
    key = createPrivateKey({
      key: { kty: 'EC', crv: jwkName, x: x.toString('base64url'), y: y.toString('base64url'), d: d.toString('base64url') },
      format: 'jwk',
    });
  } catch {
    throw new KeyCryptoError(INVALID_JWK);
  }
  return { kind: 'EC', secret: pkcs8(key), curve };
}

function importOct(jwk: Record<string, unknown>): KeyMaterial {
  const k = decodeLenient(jwk['k']);
  if (k === undefined) throw new KeyCryptoError(INVALID_JWK);
  if (!AES_SIZES.includes(k.length * 8)) throw aesSizeError(k.length * 8);
  return { kind: 'oct', secret: k, size: k.length * 8 };
}

/**
 * Key material from an imported JsonWebKey with its private parts: RSA (n, e, d, p, q, dp, dq, qi), EC (crv, x, y, d)
 * (crv P-256, P-256K or its other name secp256k1, P-384, P-521) or oct (k), kty with or without `-HSM`. Byte fields may be base64url, padded base64url or standard base64.
 * @throws KeyCryptoError with Key Vault's messages: `The property "key" must be a valid JsonWebKey object.` for a
 * malformed key, `RSA key is not valid - cannot instantiate crypto service` for RSA parts that are not one key, and a
 * message naming the size or curve when it is not supported.
 */
export function importKeyMaterial(jwk: unknown): KeyMaterial {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new KeyCryptoError(INVALID_JWK);
  const fields = jwk as Record<string, unknown>;
  switch (fields['kty']) {
    case 'RSA':
    case 'RSA-HSM':
      return importRsa(fields);
    case 'EC':
    case 'EC-HSM':
      return importEc(fields);
    case 'oct':
    case 'oct-HSM':
      return importOct(fields);
    default:
      throw new KeyCryptoError(INVALID_JWK);
  }
}

/** The stored private key of RSA or EC material, parsed. */
export function privateKeyOf(m: KeyMaterial): KeyObject {
  if (!(m.secret instanceof Uint8Array)) throw new TypeError('key material has no secret bytes');
  try {
    const key = createPrivateKey({ key: Buffer.from(m.secret), format: 'der', type: 'pkcs8' });
    if (key.asymmetricKeyType !== (m.kind === 'RSA' ? 'rsa' : 'ec')) throw new Error('another key type');
    return key;
  } catch (err) {
    throw new Error(`stored ${m.kind} key material does not parse`, { cause: err });
  }
}

/** The private JWK of a parsed key (node:crypto's export). */
export function privateJwkOf(key: KeyObject): JsonWebKey {
  return key.export({ format: 'jwk' });
}

/** The curve of EC material, checked against the stored key. */
export function curveOf(m: KeyMaterial, jwk: JsonWebKey): CurveName {
  const curve = curveFromJwkName(jwk.crv);
  if (curve === undefined || (m.curve !== undefined && m.curve !== curve)) throw new Error(`stored EC key material is not on ${String(m.curve)}`);
  return curve;
}

/**
 * The public half of key material as JWK members, base64url without padding: RSA `{n, e}`, EC `{crv, x, y}` (x and y
 * at the curve's full width, crv `P-256K` for secp256k1), oct `{}` (never `k`). kty, kid and key_ops are the caller's.
 */
export function publicJwk(m: KeyMaterial): { n: string; e: string } | { crv: CurveName; x: string; y: string } | Record<string, never> {
  if (m.kind === 'oct') return {};
  const jwk = createPublicKey(privateKeyOf(m)).export({ format: 'jwk' });
  if (m.kind === 'RSA') {
    if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') throw new Error('stored RSA key material has no public part');
    return { n: jwk.n, e: jwk.e };
  }
  const curve = curveOf(m, jwk);
  const width = CURVES[curve].bytes;
  const coordinate = (value: unknown): string => fixedWidth(value, width).toString('base64url');
  return { crv: curve, x: coordinate(jwk.x), y: coordinate(jwk.y) };
}
