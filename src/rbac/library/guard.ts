/**
 * `createRbacGuard`: verify the bearer token with the shared verifier (`openmsi/verifier`) and check an action
 * or data action at a scope, in one call. Framework-neutral; middleware for fastify and `node:http` wraps it
 * (middleware.ts).
 */
import {
  createTokenVerifier,
  TokenVerificationError,
  type AccessTokenClaims,
  type TokenVerifier,
  type TokenVerifierOptions,
} from '../../shared/token-verifier.js';
import type { AuthorizationDecision, Authorizer } from '../contracts.js';
import { authorizationFailedMessage, RbacGuardError } from './errors.js';

/** What a request wants to do. */
export interface RbacRequirement {
  /** e.g. `Contoso.Orders/orders/read` or, with `isDataAction`, `Contoso.Orders/orders/approve/action`. */
  action: string;
  /** True for a data action (`dataActions` of roles grant it; `*` in `actions` never does). */
  isDataAction?: boolean;
  /** The ARM scope acted on: `/`, `/subscriptions/{s}`, `.../resourceGroups/{g}`, or a resource id. */
  scope: string;
}

export interface RbacGuardResult {
  /** The verified token's claims (`oid`, `tid`, `appid`, ...). */
  principal: AccessTokenClaims;
  decision: AuthorizationDecision;
}

export interface RbacGuardOptions {
  /** The shared verifier, already configured; or `verifierOptions` to build one. */
  verifier?: TokenVerifier;
  verifierOptions?: TokenVerifierOptions;
  /** Decides; build one with `createAuthorizer({ source })` over the remote or store source. */
  authorizer: Authorizer;
  /** Named in the 401's `WWW-Authenticate: Bearer authorization_uri="..."` (the authority's tenant URL). */
  authorizationUri?: string;
}

export interface RbacGuard {
  /**
   * Verifies `authorizationHeader` (`Bearer <token>`) and checks the requirement for its principal.
   * @throws RbacGuardError 401 for token problems, 403 `AuthorizationFailed` for a refusal.
   */
  authorize(authorizationHeader: string | undefined, requirement: RbacRequirement): Promise<RbacGuardResult>;
}

const BEARER = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]+)[ \t]*$/i;

export function createRbacGuard(options: RbacGuardOptions): RbacGuard {
  const verifier = options.verifier ?? (options.verifierOptions === undefined ? undefined : createTokenVerifier(options.verifierOptions));
  if (verifier === undefined) throw new TypeError('createRbacGuard needs `verifier` or `verifierOptions`');
  const { authorizer } = options;
  const challenge = (error?: string): Record<string, string> => {
    const parts = [
      options.authorizationUri === undefined ? undefined : `authorization_uri="${options.authorizationUri}"`,
      error === undefined ? undefined : `error="${error}"`,
    ].filter((p): p is string => p !== undefined);
    return { 'www-authenticate': parts.length === 0 ? 'Bearer' : `Bearer ${parts.join(', ')}` };
  };

  return {
    async authorize(authorizationHeader, requirement) {
      if (authorizationHeader === undefined || authorizationHeader.trim() === '') {
        throw new RbacGuardError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.", challenge());
      }
      const token = BEARER.exec(authorizationHeader)?.[1];
      if (token === undefined) {
        throw new RbacGuardError(
          401,
          'AuthenticationFailed',
          "Authentication failed. The 'Authorization' header is not in the 'Bearer <token>' format.",
          challenge(),
        );
      }
      let claims: AccessTokenClaims;
      try {
        claims = (await verifier.verify(token)).claims;
      } catch (err) {
        if (!(err instanceof TokenVerificationError)) throw err;
        const headers = challenge('invalid_token');
        if (err.code === 'expired')
          throw new RbacGuardError(401, 'ExpiredAuthenticationToken', 'The access token has expired. Get a new token and retry.', headers);
        if (err.code === 'bad_audience')
          throw new RbacGuardError(
            401,
            'InvalidAuthenticationTokenAudience',
            'The access token has been obtained for the wrong audience or resource.',
            headers,
          );
        throw new RbacGuardError(401, 'InvalidAuthenticationToken', `The access token is invalid (${err.code.replace(/_/g, ' ')}).`, headers);
      }
      if (typeof claims.oid !== 'string' || typeof claims.tid !== 'string') {
        throw new RbacGuardError(401, 'InvalidAuthenticationToken', 'The access token is invalid (missing claim).', challenge('invalid_token'));
      }
      const decision = await authorizer.check({
        tenantId: claims.tid,
        principalId: claims.oid,
        action: requirement.action,
        isDataAction: requirement.isDataAction === true,
        scope: requirement.scope,
      });
      if (!decision.allowed) {
        const appId = typeof claims.appid === 'string' ? claims.appid : typeof claims['azp'] === 'string' ? claims['azp'] : claims.oid;
        throw new RbacGuardError(403, 'AuthorizationFailed', authorizationFailedMessage(appId, claims.oid, requirement.action, requirement.scope));
      }
      return { principal: claims, decision };
    },
  };
}
