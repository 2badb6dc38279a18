/**
 * What every keys handler shares (keys spec §1.2, §1.4, §1.5): dependencies, Azure's limits on names, tags and
 * `key_ops`, the request-body readers (validated whole before anything is written), base64url fields, and the
 * sealed form of a key version. Bodies that do not parse are Key Vault's 400 `BadParameter`.
 */
import type { FastifyRequest } from 'fastify';
import type { SecretVersion, Tags, Vault } from '../../store/types.js';
import { newVersionId } from '../secrets/common.js';
import { VaultErrors } from '../errors.js';
import { objectBody, readAttributes, readTags, type AttributesInput } from '../bodies.js';
import type { VaultObjectCache } from '../secret-cache.js';
import type { SecretCipher, VaultContext } from '../contracts.js';
import { KeyCryptoError, type KeyKind, type KeyMaterial, type PreparedKey } from './crypto/index.js';

/** The `kty` values Key Vault names; `-HSM` is a protection label only here (one crypto path). */
export const KEY_TYPES = ['RSA', 'RSA-HSM', 'EC', 'EC-HSM', 'oct', 'oct-HSM'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** The key operations Key Vault names, in its spelling. */
export const KEY_OPS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey', 'import'] as const;
export type KeyOp = (typeof KEY_OPS)[number];

/** What each kind supports (spec §1.5): a `key_ops` outside it is refused. */
const SUPPORTED_OPS: Record<KeyKind, readonly KeyOp[]> = {
  RSA: ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey', 'import'],
  EC: ['sign', 'verify'],
  oct: ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey'],
};

/** The service defaults; never empty, since JS's CryptographyClient refuses every operation a present `key_ops` lacks (§0.2). */
export const DEFAULT_KEY_OPS: Record<KeyKind, readonly KeyOp[]> = {
  RSA: ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'],
  EC: ['sign', 'verify'],
  oct: ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey'],
};

export const kindOf = (kty: KeyType): KeyKind => (kty.startsWith('RSA') ? 'RSA' : kty.startsWith('EC') ? 'EC' : 'oct');

/** A key version's sealed content: its type label, its operations and its private material. */
export interface KeyPayload {
  kty: KeyType;
  keyOps: KeyOp[];
  material: KeyMaterial;
}

/** An opened key version, cached with its read: the payload and the key parsed for use. */
export interface OpenedKey {
  payload: KeyPayload;
  prepared: PreparedKey;
}

/** Dependencies of the keys handlers. */
export interface KeysDeps {
  ctx: VaultContext;
  cipher: SecretCipher;
  /** Key reads from memory, opened and prepared once, dropped on change notices (the crypto hot path's read). */
  keys: VaultObjectCache<OpenedKey>;
}

/** Azure's key-name rule (the secret-name rule). */
export const KEY_NAME = /^[0-9a-zA-Z-]{1,127}$/;
/** Keys allow 256 characters per tag name and value (secrets 512) [KD1]. */
export const MAX_TAG_PART = 256;
/** (ours) The most a crypto operation takes in `value`: far above any RSA block or wrapped key. */
export const MAX_OPERATION_BYTES = 64 * 1024;

/** The `{name}` path parameter, checked. */
export function keyNameOf(request: FastifyRequest): string {
  const name = (request.params as { name?: string }).name ?? '';
  if (!KEY_NAME.test(name)) throw VaultErrors.invalidName(name);
  return name;
}

/** The place a key version is sealed under: `keys/` keeps it apart from any secret's (secret names have no `/`). */
export const keyPlace = (vaultId: string, name: string, version: string) => ({ vaultId, nameKey: `keys/${name.toLowerCase()}`, version });

export function sealKey(cipher: SecretCipher, vaultId: string, name: string, version: string, payload: KeyPayload): string {
  return cipher.seal({ ...keyPlace(vaultId, name, version), value: serializePayload(payload) });
}

/** Opens one version's sealed content (delete, recover, restore and backup answer with or carry it). */
export function openPayload(cipher: SecretCipher, vaultId: string, name: string, version: { version: string; sealedValue: string }): KeyPayload {
  return parsePayload(cipher.open(version.sealedValue, keyPlace(vaultId, name, version.version)));
}

export function serializePayload(payload: KeyPayload): string {
  const { material } = payload;
  return JSON.stringify({
    kty: payload.kty,
    keyOps: payload.keyOps,
    material: { kind: material.kind, secret: Buffer.from(material.secret).toString('base64url'), size: material.size, curve: material.curve },
  });
}

export function parsePayload(text: string): KeyPayload {
  const raw = JSON.parse(text) as { kty: KeyType; keyOps: KeyOp[]; material: { kind: KeyKind; secret: string; size?: number; curve?: KeyMaterial['curve'] } };
  const material: KeyMaterial = { kind: raw.material.kind, secret: Buffer.from(raw.material.secret, 'base64url') };
  if (raw.material.size !== undefined) material.size = raw.material.size;
  if (raw.material.curve !== undefined) material.curve = raw.material.curve;
  return { kty: raw.kty, keyOps: raw.keyOps, material };
}

/** A request body that may be absent (rotate, backup: clients send none or `{}`). */
export function optionalBody(request: FastifyRequest): Record<string, unknown> {
  return request.body === undefined || request.body === null ? {} : objectBody(request);
}

/** Bytes of a base64url field; padded and standard base64 are accepted too (spec §1.2). */
export function bytesOf(value: unknown, field: string, required: boolean): Buffer | undefined {
  if (value === undefined || value === null) {
    if (required) throw VaultErrors.badParameter(`Property ${field} is required.`);
    return undefined;
  }
  if (typeof value !== 'string' || !/^[A-Za-z0-9_\-+/]*={0,2}$/.test(value)) throw VaultErrors.badParameter(`Property ${field} must be a base64url string.`);
  return Buffer.from(value.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'), 'base64url');
}

export const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

export interface KeyContentsInput {
  tags?: Tags | null;
  keyOps?: KeyOp[];
  attributes: AttributesInput;
}

/** `key_ops` as given, in Key Vault's spelling (matched case-insensitively), checked against the kind when known. */
export function readKeyOps(value: unknown, kind: KeyKind | undefined): KeyOp[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw VaultErrors.badParameter('Property key_ops must be a list of key operations.');
  const ops: KeyOp[] = [];
  const unknown: string[] = [];
  for (const given of value as string[]) {
    const op = KEY_OPS.find((o) => o.toLowerCase() === given.toLowerCase());
    if (op === undefined || (kind !== undefined && !SUPPORTED_OPS[kind].includes(op))) unknown.push(given);
    else if (!ops.includes(op)) ops.push(op);
  }
  if (unknown.length > 0) {
    const supported = kind === undefined ? KEY_OPS : SUPPORTED_OPS[kind];
    throw VaultErrors.badParameter(
      `Unsupported key operation(s): ${unknown.map((o) => `"${o}"`).join(', ')}. Supported values are ${supported.map((o) => `"${o}"`).join(', ')}.`,
    );
  }
  return ops;
}

function readContents(body: Record<string, unknown>, kind: KeyKind | undefined): KeyContentsInput {
  const { input, raw } = readAttributes(body['attributes']);
  const out: KeyContentsInput = { attributes: input };
  if (body['tags'] !== undefined) out.tags = readTags(body['tags'], 'key', MAX_TAG_PART);
  const keyOps = readKeyOps(body['key_ops'], kind);
  if (keyOps !== undefined) out.keyOps = keyOps;
  // Exportable keys exist for secure key release, which needs an attestation service (spec §1.9).
  if (raw['exportable'] === true) throw VaultErrors.releaseNotSupported();
  if (body['release_policy'] !== undefined && body['release_policy'] !== null) throw VaultErrors.releaseNotSupported();
  return out;
}

/** A KeyCreateParameters body. */
export function readCreateBody(request: FastifyRequest): KeyContentsInput & { kty: KeyType; size?: number; curve?: string; publicExponent?: number } {
  const body = objectBody(request);
  const kty = KEY_TYPES.find((t) => t === body['kty']);
  if (kty === undefined) throw VaultErrors.badParameter(`Property kty is required and must be one of ${KEY_TYPES.join(', ')}.`);
  const out: ReturnType<typeof readCreateBody> = { kty, ...readContents(body, kindOf(kty)) };
  const size = body['key_size'];
  if (size !== undefined && size !== null) {
    if (typeof size !== 'number' || !Number.isInteger(size)) throw VaultErrors.badParameter('Property key_size must be an integer.');
    out.size = size;
  }
  const crv = body['crv'];
  if (crv !== undefined && crv !== null) {
    if (typeof crv !== 'string') throw VaultErrors.badParameter('Property crv must be a string.');
    out.curve = crv;
  }
  const exponent = body['public_exponent'];
  if (exponent !== undefined && exponent !== null) {
    if (typeof exponent !== 'number' || !Number.isInteger(exponent)) throw VaultErrors.badParameter('Property public_exponent must be an integer.');
    out.publicExponent = exponent;
  }
  return out;
}

/** A KeyImportParameters body: the JWK (with its private parts), `Hsm`, tags and attributes. */
export function readImportBody(request: FastifyRequest): KeyContentsInput & { jwk: Record<string, unknown>; hsm: boolean } {
  const body = objectBody(request);
  const jwk = body['key'];
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw VaultErrors.badParameter('The property "key" must be a valid JsonWebKey object.');
  const hsm = body['Hsm'] ?? body['hsm'];
  if (hsm !== undefined && hsm !== null && typeof hsm !== 'boolean') throw VaultErrors.badParameter('Property Hsm must be a boolean.');
  const contents = readContents(body, undefined);
  return { jwk: jwk as Record<string, unknown>, hsm: hsm === true, ...contents };
}

/** A KeyUpdateParameters body (every field optional); `key_ops` checked against the key's kind. */
export function readUpdateBody(request: FastifyRequest, kind: KeyKind): KeyContentsInput {
  const contents = readContents(objectBody(request), kind);
  if (contents.keyOps?.length === 0) throw VaultErrors.badParameter('Property key_ops must name at least one operation.');
  return contents;
}

/** KeyOperationsParameters (encrypt, decrypt, wrapKey, unwrapKey). */
export function readOperationBody(request: FastifyRequest): { alg: string; value: Buffer; iv?: Buffer; aad?: Buffer; tag?: Buffer } {
  const body = objectBody(request);
  const alg = body['alg'];
  if (typeof alg !== 'string' || alg === '') throw VaultErrors.badParameter('Property alg is required and must be a string.');
  const value = bytesOf(body['value'], 'value', true)!;
  if (value.length > MAX_OPERATION_BYTES) throw VaultErrors.badParameter(`Property value is too large: at most ${String(MAX_OPERATION_BYTES)} bytes.`);
  const out: ReturnType<typeof readOperationBody> = { alg, value };
  for (const field of ['iv', 'aad', 'tag'] as const) {
    const bytes = bytesOf(body[field], field, false);
    if (bytes !== undefined) out[field] = bytes;
  }
  return out;
}

/** KeySignParameters: the algorithm and the digest (never the data: the service does not hash). */
export function readSignBody(request: FastifyRequest): { alg: string; digest: Buffer } {
  const body = objectBody(request);
  const alg = body['alg'];
  if (typeof alg !== 'string' || alg === '') throw VaultErrors.badParameter('Property alg is required and must be a string.');
  return { alg, digest: bytesOf(body['value'], 'value', true)! };
}

/** KeyVerifyParameters: algorithm, digest and signature. */
export function readVerifyBody(request: FastifyRequest): { alg: string; digest: Buffer; signature: Buffer } {
  const body = objectBody(request);
  const alg = body['alg'];
  if (typeof alg !== 'string' || alg === '') throw VaultErrors.badParameter('Property alg is required and must be a string.');
  return { alg, digest: bytesOf(body['digest'], 'digest', true)!, signature: bytesOf(body['value'], 'value', true)! };
}

/** Adds a new version holding `payload`, with the body's tags and attributes (create, import); 409 while the name is soft-deleted. */
export async function addKeyVersion(
  { ctx, cipher }: Pick<KeysDeps, 'ctx' | 'cipher'>,
  vault: Vault,
  name: string,
  payload: KeyPayload,
  contents: KeyContentsInput,
): Promise<SecretVersion> {
  const version = newVersionId();
  const now = ctx.clock.now();
  const record: SecretVersion = {
    vaultId: vault.id,
    name,
    version,
    sealedValue: sealKey(cipher, vault.id, name, version, payload),
    contentType: null,
    tags: contents.tags ?? null,
    enabled: contents.attributes.enabled ?? true,
    notBefore: contents.attributes.notBefore ?? null,
    expires: contents.attributes.expires ?? null,
    createdAt: now,
    updatedAt: now,
  };
  if ((await ctx.store.keys.addVersion(record)) === 'deleted') throw VaultErrors.keyDeletedButRecoverable(name);
  return record;
}

/** Runs a crypto call, turning the caller's mistakes (KeyCryptoError) into 400 `BadParameter`. */
export function cryptoCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw asVaultError(err);
  }
}

/** A KeyCryptoError (the caller's mistake) as Key Vault's 400 `BadParameter`; any other error as it is. */
export function asVaultError(err: unknown): unknown {
  return err instanceof KeyCryptoError ? VaultErrors.badParameter(err.message) : err;
}
