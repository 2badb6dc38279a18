/**
 * Request-body readers every object kind shares (secrets spec §1.4, keys spec §1.2): a JSON object, tags within
 * the kind's limits, and the `attributes` a client may set (`enabled`, `nbf`, `exp`). Each refusal is Key
 * Vault's 400 `BadParameter`, before anything is written.
 */
import type { FastifyRequest } from 'fastify';
import type { Tags } from '../store/types.js';
import { VaultErrors } from './errors.js';

/** At most this many tags on a secret or a key. */
export const MAX_TAGS = 15;

/** The request body as an object; 400 for anything else. */
export function objectBody(request: FastifyRequest): Record<string, unknown> {
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw VaultErrors.badParameter('The request body must be a JSON object.');
  return body as Record<string, unknown>;
}

/** `tags` (null clears them): string values, at most {@link MAX_TAGS}, names and values at most `maxPart` characters. */
export function readTags(tags: unknown, noun: 'secret' | 'key', maxPart: number): Tags | null {
  if (tags === null) return null;
  if (typeof tags !== 'object' || Array.isArray(tags)) throw VaultErrors.badParameter('Property tags must be an object of strings.');
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > MAX_TAGS) throw VaultErrors.badParameter(`Too many tags: a ${noun} may have at most ${String(MAX_TAGS)} tags.`);
  for (const [key, value] of entries) {
    if (typeof value !== 'string') throw VaultErrors.badParameter(`Tag ${key} must have a string value.`);
    if (key.length > maxPart || value.length > maxPart) throw VaultErrors.badParameter(`Tag names and values may have at most ${String(maxPart)} characters.`);
  }
  return tags as Tags;
}

export interface AttributesInput {
  enabled?: boolean;
  notBefore?: number | null;
  expires?: number | null;
}

function unixTime(value: unknown, field: string): number | null {
  if (value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
    throw VaultErrors.badParameter(`Property attributes.${field} must be a unix time in seconds.`);
  return value;
}

/** The settable attributes of an `attributes` object (absent or null: none), and the object itself for kind-specific fields. */
export function readAttributes(attributes: unknown): { input: AttributesInput; raw: Record<string, unknown> } {
  const input: AttributesInput = {};
  if (attributes === undefined || attributes === null) return { input, raw: {} };
  if (typeof attributes !== 'object' || Array.isArray(attributes)) throw VaultErrors.badParameter('Property attributes must be an object.');
  const a = attributes as Record<string, unknown>;
  if (a['enabled'] !== undefined && a['enabled'] !== null) {
    if (typeof a['enabled'] !== 'boolean') throw VaultErrors.badParameter('Property attributes.enabled must be a boolean.');
    input.enabled = a['enabled'];
  }
  if (a['nbf'] !== undefined) input.notBefore = unixTime(a['nbf'], 'nbf');
  if (a['exp'] !== undefined) input.expires = unixTime(a['exp'], 'exp');
  return { input, raw: a };
}
