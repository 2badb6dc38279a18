import type { AuthorityContext } from '../context.js';
import type { Tenant } from '../../store/types.js';
import { TokenErrors } from '../errors.js';

/** Path segments Entra accepts in place of a tenant; they are fine for discovery but name no tenant for a grant. */
export const MULTI_TENANT_SEGMENTS = new Set(['common', 'organizations', 'consumers']);

/** Resolves a tenant path segment (an id or a domain name). */
export async function resolveTenant(ctx: AuthorityContext, segment: string, options: { forGrant: boolean }): Promise<Tenant> {
  if (MULTI_TENANT_SEGMENTS.has(segment.toLowerCase()) && options.forGrant) throw TokenErrors.tenantRequired(segment);
  const tenant = segment.length <= 256 ? await ctx.store.tenants.get(segment) : undefined;
  if (tenant === undefined) throw TokenErrors.tenantNotFound(segment.slice(0, 256));
  return tenant;
}
