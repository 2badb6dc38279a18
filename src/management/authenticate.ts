/**
 * Bearer authentication for the management API. ARM-shaped paths (and `/openmsi/...`) take tokens for
 * ARM's audiences, `/v1.0/...` (Graph-shaped) takes Graph tokens. The caller must be a directory admin of
 * the tenant that owns what it addresses.
 */
import type { FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import { ApiError } from '../shared/api-error.js';
import { isGuid } from '../shared/ids.js';
import { TokenVerificationError, type VerifiedToken } from '../shared/token-verifier.js';
import type { ServicePrincipal, Subscription } from '../store/types.js';
import type { ManagementContext } from './context.js';
import { DirectoryErrors } from '../directory/errors.js';

/** Audiences the management API accepts: ARM's two resource URIs (a trailing-slash difference is tolerated). */
export const ARM_AUDIENCES = ['https://management.azure.com/', 'https://management.core.windows.net/'] as const;
/** Audience of the directory (Graph-shaped) part of the management API. */
export const GRAPH_AUDIENCES = ['https://graph.microsoft.com'] as const;

/** An `onRequest` hook: it runs before the body is read, and rejects to refuse the request. */
export type RequestHook = (request: FastifyRequest) => Promise<void>;

export type ApiFamily = 'arm' | 'graph';

/** An authenticated, authorised caller. */
export interface Caller {
  principal: ServicePrincipal;
  /** The token's tenant (`tid`), which is the principal's tenant. */
  tenantId: string;
  token: VerifiedToken;
  family: ApiFamily;
}

/** Each audience with and without its trailing slash: ARM and Graph accept both spellings. */
function bothSpellings(audiences: readonly string[]): readonly string[] {
  return [...new Set(audiences.flatMap((a) => [a, a.endsWith('/') ? a.slice(0, -1) : `${a}/`]))];
}

const ACCEPTED_AUDIENCES: Record<ApiFamily, readonly string[]> = {
  arm: bothSpellings(ARM_AUDIENCES),
  graph: bothSpellings(GRAPH_AUDIENCES),
};

const callers = new WeakMap<FastifyRequest, Caller>();

/** The caller that {@link authenticate} admitted for this request. */
export function callerOf(request: FastifyRequest): Caller {
  const caller = callers.get(request);
  if (caller === undefined) throw new Error('management route registered without the authenticate hook');
  return caller;
}

/** Requests refused because their (valid, known) principal is not a directory admin. */
const denied = new WeakMap<FastifyRequest, ServicePrincipal>();

/** The principal refused by the authorisation check, for the audit trail. */
export function deniedPrincipalOf(request: FastifyRequest): ServicePrincipal | undefined {
  return denied.get(request);
}

function bearerChallenge(origin: string, tenant: string): Record<string, string> {
  return { 'www-authenticate': `Bearer authorization_uri="${origin}/${tenant}", error="invalid_token"` };
}

/** The tenant to name in a challenge: the addressed subscription's, else the token's, else the only tenant. */
async function challengeTenant(ctx: ManagementContext, request: FastifyRequest, token: string | undefined): Promise<string> {
  const subscriptionId = (request.params as Record<string, string | undefined> | undefined)?.['subscriptionId'];
  if (subscriptionId !== undefined && isGuid(subscriptionId)) {
    const subscription = await ctx.store.subscriptions.get(subscriptionId);
    if (subscription !== undefined) return subscription.tenantId;
  }
  if (token !== undefined) {
    try {
      const tid = decodeJwt(token).tid;
      if (typeof tid === 'string' && isGuid(tid) && (await ctx.store.tenants.get(tid)) !== undefined) return tid;
    } catch {
      // not a JWT: fall through
    }
  }
  const tenants = await ctx.store.tenants.list();
  return tenants.length === 1 && tenants[0] !== undefined ? tenants[0].id : 'common';
}

async function unauthenticated(
  ctx: ManagementContext,
  request: FastifyRequest,
  token: string | undefined,
  code: string,
  message: string,
): Promise<ApiError> {
  const tenant = await challengeTenant(ctx, request, token);
  return new ApiError(401, code, message, { headers: bearerChallenge(ctx.authority.origin, tenant) });
}

function verificationFailure(family: ApiFamily, err: TokenVerificationError, audiences: readonly string[]): { code: string; message: string } {
  if (family === 'graph') {
    const messages: Partial<Record<TokenVerificationError['code'], string>> = {
      expired: 'Lifetime validation failed, the token is expired.',
      bad_audience: `Invalid audience. The token must be issued for ${audiences.join(' or ')}.`,
    };
    return { code: 'InvalidAuthenticationToken', message: messages[err.code] ?? 'Access token validation failure. Invalid audience or signature.' };
  }
  switch (err.code) {
    case 'expired':
      return { code: 'ExpiredAuthenticationToken', message: 'The access token has expired. Get a new token and retry.' };
    case 'bad_audience':
      return {
        code: 'InvalidAuthenticationTokenAudience',
        message: `The access token has been obtained for the wrong audience or resource. It should exactly match one of the allowed audiences: ${audiences.join(', ')}.`,
      };
    default:
      return { code: 'InvalidAuthenticationToken', message: `The access token is invalid (${err.code.replace(/_/g, ' ')}).` };
  }
}

/**
 * An `onRequest` hook (it runs before the body is read) that admits only directory admins holding a valid
 * token for `family`'s audiences: 401 with a Bearer challenge otherwise, 403 for a valid non-admin caller.
 */
export function authenticate(ctx: ManagementContext, family: ApiFamily): RequestHook {
  const audiences = ACCEPTED_AUDIENCES[family];
  return async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization;
    if (header === undefined || header.trim() === '') {
      throw family === 'graph'
        ? await unauthenticated(ctx, request, undefined, 'InvalidAuthenticationToken', 'Access token is empty.')
        : await unauthenticated(ctx, request, undefined, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.");
    }
    const match = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]+)[ \t]*$/i.exec(header);
    const token = match?.[1];
    if (token === undefined) {
      throw family === 'graph'
        ? await unauthenticated(ctx, request, undefined, 'InvalidAuthenticationToken', 'CompactToken parsing failed: the Authorization header is not a Bearer token.')
        : await unauthenticated(ctx, request, undefined, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is not in the 'Bearer <token>' format.");
    }
    let verified: VerifiedToken;
    try {
      verified = await ctx.verifyAccessToken(token, audiences);
    } catch (err) {
      if (!(err instanceof TokenVerificationError)) throw err;
      const failure = verificationFailure(family, err, audiences);
      throw await unauthenticated(ctx, request, token, failure.code, failure.message);
    }
    const { oid, tid } = verified.claims;
    const principal = typeof oid === 'string' ? await ctx.store.servicePrincipals.getByObjectId(oid) : undefined;
    if (principal?.tenantId !== tid) {
      throw await unauthenticated(
        ctx,
        request,
        token,
        'InvalidAuthenticationToken',
        `The principal '${String(oid)}' named by the access token does not exist in tenant '${String(tid)}'.`,
      );
    }
    if (!principal.isDirectoryAdmin) {
      denied.set(request, principal);
      throw forbidden(family, principal, request);
    }
    callers.set(request, { principal, tenantId: tid, token: verified, family });
  };
}

function forbidden(family: ApiFamily, principal: ServicePrincipal, request: FastifyRequest): ApiError {
  if (family === 'graph') return new ApiError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
  const scope = request.url.split('?')[0] ?? '/';
  return new ApiError(
    403,
    'AuthorizationFailed',
    `The client '${principal.appId}' with object id '${principal.objectId}' does not have authorization to perform action '${request.method} ${scope}' over scope '${scope}' or the scope is invalid. Only directory administrators may use the management API.`,
  );
}

/**
 * The addressed subscription, checked against the caller's tenant: 404 when it does not exist, and ARM's
 * 401 `InvalidAuthenticationTokenTenant` when it belongs to another tenant.
 */
export async function authorizeSubscription(ctx: ManagementContext, caller: Caller, subscriptionId: string): Promise<Subscription> {
  const subscription = isGuid(subscriptionId) ? await ctx.store.subscriptions.get(subscriptionId) : undefined;
  if (subscription === undefined) throw DirectoryErrors.subscriptionNotFound(subscriptionId);
  if (subscription.tenantId.toLowerCase() !== caller.tenantId.toLowerCase()) {
    throw new ApiError(
      401,
      'InvalidAuthenticationTokenTenant',
      `The access token is from the wrong issuer '${ctx.authority.v1Issuer(caller.tenantId)}'. It must match the tenant '${ctx.authority.v1Issuer(subscription.tenantId)}' associated with this subscription. Please use the authority (URL) '${ctx.authority.origin}/${subscription.tenantId}' to get the token.`,
      { headers: bearerChallenge(ctx.authority.origin, subscription.tenantId) },
    );
  }
  return subscription;
}
