/**
 * What every secrets handler shares: its dependencies, Azure's limits on names and contents (spec §1.2, §1.4)
 * with Key Vault's 400 `BadParameter`, and the request-body readers. Bodies are validated completely before
 * anything is written.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Tags } from '../../store/types.js';
import type { SecretCipher, VaultContext } from '../contracts.js';
import type { SecretCache } from '../secret-cache.js';
import { VaultErrors } from '../errors.js';
import { objectBody, readAttributes, readTags, type AttributesInput } from '../bodies.js';

/** Dependencies of the secrets handlers. */
export interface SecretsDeps {
  ctx: VaultContext;
  cipher: SecretCipher;
  /** Secret reads from memory, dropped on change notices (the hot path's read). */
  secrets: SecretCache;
}

/** Azure's secret-name rule. */
export const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;
/** "25 KB" (spec §1.4, about-secrets): read as 25 KiB of UTF-8, the most a client can count on. */
export const MAX_VALUE_BYTES = 25 * 1024;
export const MAX_CONTENT_TYPE = 255;
export const MAX_TAG_PART = 512;

/** The `{name}` path parameter, checked; 400 `BadParameter` with Key Vault's message otherwise. */
export function secretNameOf(request: FastifyRequest): string {
  const name = (request.params as { name?: string }).name ?? '';
  if (!SECRET_NAME.test(name)) throw VaultErrors.invalidName(name);
  return name;
}

/** The `{version}` path parameter; undefined or '' means the latest. */
export function versionOf(request: FastifyRequest): string | undefined {
  const version = (request.params as { version?: string }).version;
  return version === undefined || version === '' ? undefined : version;
}

/** A new version id: 32 lower-case hex characters, as Key Vault's. */
export const newVersionId = (): string => randomBytes(16).toString('hex');

export type { AttributesInput } from '../bodies.js';

export interface ContentsInput {
  contentType?: string | null;
  tags?: Tags | null;
  attributes: AttributesInput;
}

function readContents(body: Record<string, unknown>): ContentsInput {
  const out: ContentsInput = { attributes: readAttributes(body['attributes']).input };
  if (body['contentType'] !== undefined) {
    const contentType = body['contentType'];
    if (contentType !== null && typeof contentType !== 'string') throw VaultErrors.badParameter('Property contentType must be a string.');
    if (typeof contentType === 'string' && contentType.length > MAX_CONTENT_TYPE) {
      throw VaultErrors.badParameter(`Property contentType is too long: the maximum length is ${String(MAX_CONTENT_TYPE)} characters.`);
    }
    out.contentType = contentType;
  }
  if (body['tags'] !== undefined) out.tags = readTags(body['tags'], 'secret', MAX_TAG_PART);
  return out;
}

/** A SecretSetParameters body: `value` required, within the limits. */
export function readSetBody(request: FastifyRequest): ContentsInput & { value: string } {
  const body = objectBody(request);
  const value = body['value'];
  if (typeof value !== 'string') throw VaultErrors.badParameter('Property value is required and must be a string.');
  if (Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) {
    throw VaultErrors.badParameter(`The secret value is too large: the maximum size is ${String(MAX_VALUE_BYTES)} bytes.`);
  }
  return { value, ...readContents(body) };
}

/** A SecretUpdateParameters body (every field optional). */
export function readUpdateBody(request: FastifyRequest): ContentsInput {
  return readContents(objectBody(request));
}

/** A SecretRestoreParameters body. */
export function readRestoreBody(request: FastifyRequest): string {
  const value = objectBody(request)['value'];
  if (typeof value !== 'string' || value === '') throw VaultErrors.badParameter('Property value is required and must be a backup blob.');
  return value;
}
