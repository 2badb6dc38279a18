import type { AuthorityContext } from '../context.js';
import type { Tenant } from '../../store/types.js';
import { TokenErrors } from '../errors.js';

/** Path segments Entra accepts in place of a tenant; they are fine for discovery but name no tenant for a grant. */
export const MULTI_TENANT_SEGMENTS = new Set(['common', 'organizations', 'consumers']);

/**
 * The tenant name MSAL treats as AD FS: for it, MSAL (JS, Go) skips instance discovery at
 * login.microsoftonline.com and reads `/adfs/.well-known/openid-configuration` from the authority host
 * itself, so `DefaultAzureCredential` works offline from environment variables alone. We serve it as an
 * alias of the installation's default tenant.
 */
export const ADFS_SEGMENT = 'adfs';

/** Whether a tenant path segment is the `adfs` alias. */
export function isAdfsSegment(segment: string): boolean {
  return segment.toLowerCase() === ADFS_SEGMENT;
}

/**
 * Tenants found so far, per authority. A tenant's id and domain never change and tenants are never deleted,
 * so a hit can be kept; misses are not cached, so a tenant created on another replica is found at once.
 */
const knownTenants = new WeakMap<AuthorityContext, Map<string, Tenant>>();
const MAX_CACHED_SEGMENTS = 10_000;

/** Resolves a tenant path segment (an id, a domain name, or `adfs` for the default tenant). */
export async function resolveTenant(ctx: AuthorityContext, segment: string, options: { forGrant: boolean }): Promise<Tenant> {
  if (MULTI_TENANT_SEGMENTS.has(segment.toLowerCase()) && options.forGrant) throw TokenErrors.tenantRequired(segment);
  if (isAdfsSegment(segment)) segment = ctx.defaultTenantId;
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
