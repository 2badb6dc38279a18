/**
 * The 401 challenge (spec §2): `Bearer authorization="{authority}/{tenant}", resource="https://{vaultDomain}[:port]"`.
 * The resource is the vault domain, the vault host's parent, with the request's port when it is not 443: JS
 * compares hostnames, Python and Go compare host:port, and both require `vault host` to end with `.` + resource.
 * No spaces inside values (the JS parser splits on them).
 */
import type { FastifyRequest } from 'fastify';
import type { Vault } from '../store/types.js';
import { AZURE_KEY_VAULT_RESOURCE, type VaultContext } from './contracts.js';

/** The port of the request's Host header, or undefined when it names none. */
export function requestPort(request: FastifyRequest): number | undefined {
  const match = /:(\d+)$/.exec(request.headers.host ?? '');
  return match === null ? undefined : Number(match[1]);
}

/** The challenge resource for this request. */
export function challengeResource(ctx: VaultContext, request: FastifyRequest): string {
  const port = requestPort(request);
  return port === undefined || port === 443 ? `https://${ctx.vaultDomain}` : `https://${ctx.vaultDomain}:${String(port)}`;
}

/** Audiences a token for this request may carry: the vault domain with and without the port, and Key Vault's. */
export function acceptedAudiences(ctx: VaultContext, request: FastifyRequest): string[] {
  const withPort = challengeResource(ctx, request);
  const bare = `https://${ctx.vaultDomain}`;
  return withPort === bare ? [bare, AZURE_KEY_VAULT_RESOURCE] : [withPort, bare, AZURE_KEY_VAULT_RESOURCE];
}

/** The `WWW-Authenticate` header of a 401 from this vault. */
export function challengeHeaders(ctx: VaultContext, request: FastifyRequest, vault: Vault): Record<string, string> {
  return { 'www-authenticate': `Bearer authorization="${ctx.authorityOrigin()}/${vault.tenantId}", resource="${challengeResource(ctx, request)}"` };
}
