import type { AuthorityContext } from '../context.js';
import type { Tenant } from '../../store/types.js';
import { TokenErrors } from '../errors.js';

/** Path segments Entra accepts in place of a tenant; they are fine for discovery but name no tenant for a grant. */
export const MULTI_TENANT_SEGMENTS = new Set(['common', 'organizations', 'consumers']);

/**
 * Tenants found so far, per authority. A tenant's id and domain never change and tenants are never deleted,
 * so a hit can be kept; misses are not cached, so a tenant created on another replica is found at once.
 */
const knownTenants = new WeakMap<AuthorityContext, Map<string, Tenant>>();
const MAX_CACHED_SEGMENTS = 10_000;

/** Resolves a tenant path segment (an id or a domain name). */
export async function resolveTenant(ctx: AuthorityContext, segment: string, options: { forGrant: boolean }): Promise<Tenant> {
  if (MULTI_TENANT_SEGMENTS.has(segment.toLowerCase()) && options.forGrant) throw TokenErrors.tenantRequired(segment);
  let cache = knownTenants.get(ctx);
  if (cache === undefined) knownTenants.set(ctx, (cache = new Map<string, Tenant>()));
  const key = segment.toLowerCase();
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const tenant = segment.length <= 256 ? await ctx.store.tenants.get(segment) : undefined;
  if (tenant === undefined) throw TokenErrors.tenantNotFound(segment.slice(0, 256));
  if (cache.size < MAX_CACHED_SEGMENTS) cache.set(key, tenant);
  return tenant;
}
