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
  /** The `Host` the request came to (documents, and so ID tokens' issuers, follow the name the client used). */
  host?: string | undefined;
}

export interface GrantResult {
  issued: IssuedToken;
  /** The audience, exactly as requested. */
  resource: string;
  /** Who the token is for: a service principal, or for a user token the user's object id with the client's id. */
  principal: Pick<ServicePrincipal, 'objectId' | 'appId'>;
  /** Fields the response carries besides the access token (a user's refresh token, ID token, `scope`, `client_info`). */
  response?: Readonly<Record<string, string>>;
  /** Audit detail specific to the grant (never secrets). */
  detail: Record<string, unknown>;
}

/** A grant type: the token route dispatches on `grantType` (node-oidc-provider's `grants/` pattern). */
export interface Grant {
  readonly grantType: string;
  handle(ctx: AuthorityContext, request: TokenRequest): Promise<GrantResult>;
}
