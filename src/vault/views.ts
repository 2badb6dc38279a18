/**
 * The wire shapes (spec §1.4): SecretBundle, SecretItem, DeletedSecretBundle/Item. Ids are built from the
 * authority the client called (`https://{host}/secrets/{name}[/{version}]`, no path prefix: SDKs parse them).
 * Times are Unix seconds; `recoverableDays` appears from 7.1 on.
 */
import type { FastifyRequest } from 'fastify';
import type { SecretEntry, SecretVersion, Tags, Vault } from '../store/types.js';
import { hasRecoverableDays } from './api-version.js';

export interface SecretAttributesView {
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
  recoverableDays?: number;
  recoveryLevel: string;
}

export interface SecretItemView {
  id: string;
  attributes: SecretAttributesView;
  tags?: Tags;
  contentType?: string;
}

export interface SecretBundleView extends SecretItemView {
  value?: string;
}

export interface DeletedView {
  recoveryId: string;
  deletedDate: number;
  scheduledPurgeDate: number;
}

const seconds = (ms: number): number => Math.floor(ms / 1000);

/** Key Vault's recovery level for a vault's soft-delete settings (90 days is the default; fewer is "Customized"). */
export function recoveryLevel(vault: Vault): string {
  const customized = vault.properties.softDeleteRetentionInDays < 90 ? 'CustomizedRecoverable' : 'Recoverable';
  return vault.properties.enablePurgeProtection === true ? customized : `${customized}+Purgeable`;
}

/** The origin of ids: the authority the client called. */
export function originOf(request: FastifyRequest): string {
  return `https://${request.headers.host ?? ''}`;
}

export function secretId(request: FastifyRequest, name: string, version?: string): string {
  return `${originOf(request)}/secrets/${name}${version === undefined ? '' : `/${version}`}`;
}

export function attributesView(v: SecretVersion, vault: Vault, apiVersion: string): SecretAttributesView {
  const out: SecretAttributesView = { enabled: v.enabled, created: seconds(v.createdAt), updated: seconds(v.updatedAt), recoveryLevel: recoveryLevel(vault) };
  if (v.notBefore !== null) out.nbf = v.notBefore;
  if (v.expires !== null) out.exp = v.expires;
  if (hasRecoverableDays(apiVersion)) out.recoverableDays = vault.properties.softDeleteRetentionInDays;
  return out;
}

/** A SecretItem; `versioned` for list-versions (and bundles), the base id for list. */
export function itemView(request: FastifyRequest, name: string, v: SecretVersion, vault: Vault, apiVersion: string, versioned: boolean): SecretItemView {
  const out: SecretItemView = { id: secretId(request, name, versioned ? v.version : undefined), attributes: attributesView(v, vault, apiVersion) };
  if (v.tags !== null) out.tags = v.tags;
  if (v.contentType !== null) out.contentType = v.contentType;
  return out;
}

/** A SecretBundle (versioned id), with `value` only when given. */
export function bundleView(request: FastifyRequest, name: string, v: SecretVersion, vault: Vault, apiVersion: string, value?: string): SecretBundleView {
  const item = itemView(request, name, v, vault, apiVersion, true);
  return value === undefined ? item : { value, ...item };
}

export function deletedView(request: FastifyRequest, entry: SecretEntry): DeletedView {
  return {
    recoveryId: `${originOf(request)}/deletedsecrets/${entry.name}`,
    deletedDate: seconds(entry.deletedAt ?? 0),
    scheduledPurgeDate: seconds(entry.scheduledPurgeAt ?? 0),
  };
}
