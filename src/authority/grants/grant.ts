import type { AuthorityContext } from '../context.js';
import type { IssuedToken } from '../token-issuer.js';
import type { ServicePrincipal, Tenant } from '../../store/types.js';
import type { FormParams } from '../token/form.js';

/** One token request, after tenant resolution and form parsing. */
export interface TokenRequest {
  tenant: Tenant;
  /** The tenant path segment as sent (id or domain). */
  tenantSegment: string;
  endpoint: 'v1' | 'v2';
  params: FormParams;
  basic: { clientId: string; clientSecret: string } | undefined;
  /** The caller's address (failed authentications are throttled by it). */
  source: string;
}

export interface GrantResult {
  issued: IssuedToken;
  /** The audience, exactly as requested. */
  resource: string;
  principal: ServicePrincipal;
  /** Audit detail specific to the grant (never secrets). */
  detail: Record<string, unknown>;
}

/** A grant type: the token route dispatches on `grantType` (node-oidc-provider's `grants/` pattern). */
export interface Grant {
  readonly grantType: string;
  handle(ctx: AuthorityContext, request: TokenRequest): Promise<GrantResult>;
}
