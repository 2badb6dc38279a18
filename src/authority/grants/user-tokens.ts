/**
 * What a user's sign-in (or a refresh) yields: an access token naming the user, an ID token for the client,
 * and a new refresh token in the sign-in's rotation family (stored as a hash only).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AuthorityContext } from '../context.js';
import type { Repositories, User } from '../../store/types.js';
import { newGuid } from '../../shared/ids.js';
import { isAdfsSegment } from '../routes/tenant.js';
import type { DelegatedScope } from '../token/user-scope.js';
import type { GrantResult, TokenRequest } from './grant.js';

/** Entra's refresh tokens live 90 days (https://learn.microsoft.com/entra/identity-platform/refresh-tokens). */
export const REFRESH_TOKEN_LIFETIME_MS = 90 * 24 * 3600 * 1000;

/** The store key of a refresh token: SHA-256 of its 256 random bits (nothing slower is needed at that entropy). */
export function refreshTokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

/** The issuer of the discovery document this request's client read: MSAL compares the ID token's `iss` with it exactly. */
function idTokenIssuer(ctx: AuthorityContext, request: TokenRequest): string {
  if (isAdfsSegment(request.tenantSegment)) return ctx.urls.forHost(request.host).v1Issuer(request.tenantSegment.toLowerCase());
  if (request.endpoint === 'v1') return ctx.urls.v1Issuer(request.tenant.id);
  return ctx.urls.forHost(request.host).v2Issuer(request.tenant.id);
}

/**
 * Issues the user's tokens for `clientId` and stores the new refresh token (in `tx`, the grant's transaction,
 * when given). `familyId` continues a rotation family; a sign-in starts a new one.
 */
export async function issueUserTokens(
  ctx: AuthorityContext,
  request: TokenRequest,
  input: {
    user: User;
    clientId: string;
    scope: DelegatedScope;
    familyId?: string;
    amr: readonly string[];
    tx?: Repositories;
    /** The authorize request's OIDC nonce, for the ID token. */
    nonce?: string | undefined;
  },
): Promise<GrantResult> {
  const { user, clientId, scope } = input;
  const issued = ctx.tokens.issue({
    tenantId: user.tenantId,
    principal: { objectId: user.objectId, appId: clientId },
    user: { objectId: user.objectId, userPrincipalName: user.userPrincipalName, displayName: user.displayName, scp: scope.scp, amr: input.amr },
    resource: scope.resource,
    authMethod: 'public',
  });
  const response: Record<string, string> = { scope: scope.granted };
  const familyId = input.familyId ?? newGuid();
  if (scope.offlineAccess) {
    const refreshToken = randomBytes(32).toString('base64url');
    const now = ctx.clock.now();
    await (input.tx ?? ctx.store).refreshTokens.create({
      tokenHash: refreshTokenHash(refreshToken),
      familyId,
      userId: user.objectId,
      tenantId: user.tenantId,
      clientId: clientId.toLowerCase(),
      scope: scope.granted,
      issuedAt: now,
      expiresAt: now + REFRESH_TOKEN_LIFETIME_MS,
      usedAt: null,
      revokedAt: null,
    });
    response['refresh_token'] = refreshToken;
  }
  if (scope.openid) {
    response['id_token'] = ctx.tokens.idToken({
      tenantId: user.tenantId,
      clientId,
      issuer: idTokenIssuer(ctx, request),
      user,
      version: request.endpoint === 'v1' ? '1.0' : '2.0',
      nonce: input.nonce,
    });
  }
  // MSAL asks for `client_info=1` and keys its cache by it (uid.utid), as Entra answers.
  if (request.params['client_info'] === '1') {
    response['client_info'] = Buffer.from(JSON.stringify({ uid: user.objectId, utid: user.tenantId }), 'utf8').toString('base64url');
  }
  return {
    issued,
    resource: scope.resource,
    principal: { objectId: user.objectId, appId: clientId },
    response,
    detail: { userPrincipalName: user.userPrincipalName, scp: scope.scp, refreshTokenFamily: scope.offlineAccess ? familyId : undefined },
  };
}
