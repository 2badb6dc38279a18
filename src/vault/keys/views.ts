/**
 * The keys wire shapes (spec §1.4): KeyBundle, KeyItem, DeletedKeyBundle/Item, KeyOperationResult. `kid` is
 * built from the authority the client called: versioned in bundles, `/versions` and results, the base id in
 * `/keys` and `/deletedkeys` lists. The JWK carries public parts only, and always a non-empty `key_ops`.
 */
import type { FastifyRequest } from 'fastify';
import type { SecretEntry, SecretVersion, Tags, Vault } from '../../store/types.js';
import { hasExportable } from '../api-version.js';
import { attributesView, deletedView, originOf, type SecretAttributesView } from '../views.js';
import { publicJwk } from './crypto/index.js';
import type { KeyPayload } from './common.js';

export function keyId(request: FastifyRequest, name: string, version?: string): string {
  return `${originOf(request)}/keys/${name}${version === undefined ? '' : `/${version}`}`;
}

export interface KeyAttributesView extends SecretAttributesView {
  exportable?: boolean;
}

export interface KeyItemView {
  kid: string;
  attributes: KeyAttributesView;
  tags?: Tags;
}

export interface KeyBundleView {
  key: Record<string, unknown>;
  attributes: KeyAttributesView;
  tags?: Tags;
}

function keyAttributes(v: SecretVersion, vault: Vault, apiVersion: string): KeyAttributesView {
  const out: KeyAttributesView = attributesView(v, vault, apiVersion);
  if (hasExportable(apiVersion)) out.exportable = false;
  return out;
}

/** A KeyItem; `versioned` for list-versions, the base id for lists. */
export function keyItemView(request: FastifyRequest, name: string, v: SecretVersion, vault: Vault, apiVersion: string, versioned: boolean): KeyItemView {
  const out: KeyItemView = { kid: keyId(request, name, versioned ? v.version : undefined), attributes: keyAttributes(v, vault, apiVersion) };
  if (v.tags !== null) out.tags = v.tags;
  return out;
}

/** A KeyBundle: the public JWK (versioned kid, kty, key_ops, n/e or crv/x/y), attributes and tags. */
export function keyBundleView(request: FastifyRequest, name: string, v: SecretVersion, payload: KeyPayload, vault: Vault, apiVersion: string): KeyBundleView {
  const out: KeyBundleView = {
    key: { kid: keyId(request, name, v.version), kty: payload.kty, key_ops: [...payload.keyOps], ...publicJwk(payload.material) },
    attributes: keyAttributes(v, vault, apiVersion),
  };
  if (v.tags !== null) out.tags = v.tags;
  return out;
}

/** The fields a deleted key adds: its recovery id and dates. */
export function deletedKeyView(request: FastifyRequest, entry: SecretEntry): { recoveryId: string; deletedDate: number; scheduledPurgeDate: number } {
  return { ...deletedView(request, entry), recoveryId: `${originOf(request)}/deletedkeys/${entry.name}` };
}
