/**
 * Bearer authentication for the management API. ARM-shaped paths (and `/openmsi/...`) take tokens for
 * ARM's audiences, `/v1.0/...` (Graph-shaped) takes Graph tokens: for Microsoft Graph's resource or for one
 * of this server's own origins, which is what az asks for once its cloud names the server as its Graph
 * endpoint (`openmsi dev az-cloud`). The caller must be a principal of the token's tenant; what it may do is
 * RBAC's decision (authorize.ts: each route checks its action at its scope).
 */
import type { FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import { isGuid } from '../shared/ids.js';
import { TokenVerificationError, type VerifiedToken } from '../shared/token-verifier.js';
import type { ServicePrincipal, Subscription } from '../store/types.js';
import type { ManagementContext } from './context.js';
import { DirectoryErrors } from '../directory/errors.js';
import { ManagementErrors, type ApiFamily, type Challenge } from './errors.js';

/** Audiences the management API accepts: ARM's two resource URIs (a trailing-slash difference is tolerated). */
export const ARM_AUDIENCES = ['https://management.azure.com/', 'https://management.core.windows.net/'] as const;
/** Audience of the directory (Graph-shaped) part of the management API, besides the server's own origins. */
export const GRAPH_AUDIENCES = ['https://graph.microsoft.com'] as const;

/** An `onRequest` hook: it runs before the body is read, and rejects to refuse the request. */
export type RequestHook = (request: FastifyRequest) => Promise<void>;

export type { ApiFamily } from './errors.js';

/**
 * Who a caller is: a service principal as stored, or a user (signed in through a public client, whose client
 * id is its `appId` here). Both are principals of RBAC alike, by object id.
 */
export interface CallerPrincipal {
  objectId: string;
  tenantId: string;
  /** The client id: the application's own, or for a user the public client it signed in with. */
  appId: string;
  displayName: string;
  kind: ServicePrincipal['kind'] | 'User';
  isDirectoryAdmin: boolean;
}

/** An authenticated caller (a principal of the token's tenant). */
export interface Caller {
  principal: CallerPrincipal;
  /** The token's tenant (`tid`), which is the principal's tenant. */
  tenantId: string;
  token: VerifiedToken;
  family: ApiFamily;
}

/** Each audience with and without its trailing slash: ARM and Graph accept both spellings. */
function bothSpellings(audiences: readonly string[]): readonly string[] {
  return [...new Set(audiences.flatMap((a) => [a, a.endsWith('/') ? a.slice(0, -1) : `${a}/`]))];
}

const ARM_ACCEPTED = bothSpellings(ARM_AUDIENCES);
/** Graph's accepted audiences, by the advertised-origins array they were derived from (new when the port binds). */
const graphAccepted = new WeakMap<readonly { readonly origin: string }[], readonly string[]>();

/**
 * The audiences `family`'s routes accept. ARM: ARM's resource URIs only. Graph: Microsoft Graph's, and each
 * origin the server is published at (`https://localhost:8443`, as az sends it once its cloud's
 * `microsoftGraphResourceId` is the server's URL). Only the server's configuration decides: never the
 * request's `Host`, nor anything else the request claims. A vault's resource (`https://{vaultDomain}[:port]`)
 * is never one of them, even when the certificate names the vault domain itself: a token for the vault must
 * not open the directory. No other part of openmsi accepts the server's origins, so such a token opens only `/v1.0`.
 */
export function acceptedAudiences(ctx: Pick<ManagementContext, 'authority' | 'vaultDomain'>, family: ApiFamily): readonly string[] {
  if (family === 'arm') return ARM_ACCEPTED;
  const origins = ctx.authority.advertisedOrigins();
  let accepted = graphAccepted.get(origins);
  if (accepted === undefined) {
    const vaultDomain = ctx.vaultDomain.toLowerCase();
    const own = origins
      .map((o) => o.origin)
      .filter((origin) => {
        const host = new URL(origin).hostname;
        return host !== vaultDomain && !host.endsWith(`.${vaultDomain}`);
      });
    accepted = bothSpellings([...GRAPH_AUDIENCES, ...own]);
    graphAccepted.set(origins, accepted);
  }
  return accepted;
}

const callers = new WeakMap<FastifyRequest, Caller>();

/** The caller that {@link authenticate} admitted for this request. */
export function callerOf(request: FastifyRequest): Caller {
  const caller = callers.get(request);
  if (caller === undefined) throw new TypeError('management route registered without the authenticate hook');
  return caller;
}

/** Requests refused because their (valid, known) principal lacks the permission. */
const denied = new WeakMap<FastifyRequest, CallerPrincipal>();

/** Records that RBAC refused this request's principal (the audit trail names it). */
export function markDenied(request: FastifyRequest, principal: CallerPrincipal): void {
  denied.set(request, principal);
}

/** The principal refused by the authorisation check, for the audit trail. */
export function deniedPrincipalOf(request: FastifyRequest): CallerPrincipal | undefined {
  return denied.get(request);
}

function bearerChallenge(origin: string, tenant: string): Challenge {
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

/** The Bearer challenge of a 401 to this request. */
async function challengeFor(ctx: ManagementContext, request: FastifyRequest, token: string | undefined): Promise<Challenge> {
  return bearerChallenge(ctx.authority.origin, await challengeTenant(ctx, request, token));
}

/**
 * An `onRequest` hook (it runs before the body is read) that admits a known principal holding a valid token
 * for `family`'s audiences: 401 with a Bearer challenge otherwise. Authorisation follows (authorize.ts).
 */
export function authenticate(ctx: ManagementContext, family: ApiFamily): RequestHook {
  return async (request: FastifyRequest): Promise<void> => {
    // Per request: the origins follow the port actually bound, which is known only after listen.
    const audiences = acceptedAudiences(ctx, family);
    const header = request.headers.authorization;
    if (header === undefined || header.trim() === '') throw ManagementErrors.authorizationMissing(family, await challengeFor(ctx, request, undefined));
    const match = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]+)[ \t]*$/i.exec(header);
    const token = match?.[1];
    if (token === undefined) throw ManagementErrors.authorizationNotBearer(family, await challengeFor(ctx, request, undefined));
    let verified: VerifiedToken;
    try {
      verified = await ctx.verifyAccessToken(token, audiences);
    } catch (err) {
      if (!(err instanceof TokenVerificationError)) throw err;
      throw ManagementErrors.tokenRejected(family, err.code, audiences, await challengeFor(ctx, request, token));
    }
    const { oid, tid } = verified.claims;
    const principal = typeof oid === 'string' ? await callerPrincipal(ctx, verified) : undefined;
    if (principal?.tenantId !== tid) {
      throw ManagementErrors.principalUnknown(oid, tid, await challengeFor(ctx, request, token));
    }
    callers.set(request, { principal, tenantId: tid, token: verified, family });
  };
}

/**
 * The principal a verified token names: a service principal by `oid`, or, for a user token (`idtyp=user`), an
 * enabled user by `oid`. Undefined when there is none (deleted, or disabled since the token was issued).
 */
export async function callerPrincipal(ctx: Pick<ManagementContext, 'store'>, token: VerifiedToken): Promise<CallerPrincipal | undefined> {
  const { oid, idtyp, appid } = token.claims;
  if (idtyp !== 'user') return ctx.store.servicePrincipals.getByObjectId(oid);
  const user = await ctx.store.users.getByObjectId(oid);
  if (user === undefined || !user.accountEnabled) return undefined;
  return {
    objectId: user.objectId,
    tenantId: user.tenantId,
    appId: typeof appid === 'string' ? appid : '',
    displayName: user.displayName,
    kind: 'User',
    isDirectoryAdmin: false,
  };
}

/**
 * The addressed subscription, checked against the caller's tenant: 404 when it does not exist, and ARM's
 * 401 `InvalidAuthenticationTokenTenant` when it belongs to another tenant.
 */
export async function authorizeSubscription(ctx: ManagementContext, caller: Caller, subscriptionId: string): Promise<Subscription> {
  const subscription = isGuid(subscriptionId) ? await ctx.store.subscriptions.get(subscriptionId) : undefined;
  if (subscription === undefined) throw DirectoryErrors.subscriptionNotFound(subscriptionId);
  if (subscription.tenantId.toLowerCase() !== caller.tenantId.toLowerCase()) {
    const { authority } = ctx;
    throw ManagementErrors.wrongTenant(
      authority.v1Issuer(caller.tenantId),
      authority.v1Issuer(subscription.tenantId),
      `${authority.origin}/${subscription.tenantId}`,
      bearerChallenge(authority.origin, subscription.tenantId),
    );
  }
  return subscription;
}
