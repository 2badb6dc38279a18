import { createHash, timingSafeEqual } from 'node:crypto';
import type { Grant } from './grant.js';
import { requireParam } from '../token/form.js';
import { delegatedScope } from '../token/user-scope.js';
import { publicClientOf } from './password.js';
import { issueUserTokens } from './user-tokens.js';
import { SignInErrors } from '../sign-in/errors.js';
import { codeHash } from '../sign-in/codes.js';

/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The authorization-code grant with PKCE (RFC 6749 §4.1.3, RFC 7636 §4.6), what MSAL redeems after the
 * sign-in page. The code is single use (the row decides, across replicas), short-lived, and redeemable only by
 * the client it was issued to, with the same redirect URI and the verifier of its challenge. A second
 * redemption is a replay: the tokens the first one issued are revoked (their refresh-token family), as RFC
 * 6749 §4.1.2 advises.
 */
export const authorizationCodeGrant: Grant = {
  grantType: 'authorization_code',
  async handle(ctx, request) {
    const clientId = publicClientOf(request);
    const code = requireParam(request.params, 'code');
    const redirectUri = requireParam(request.params, 'redirect_uri');
    const scope = delegatedScope(request.params, request.endpoint);
    const record = code.length <= 256 ? await ctx.store.authorizationCodes.get(codeHash(code)) : undefined;
    if (record === undefined) throw SignInErrors.invalidCode();
    const now = ctx.clock.now();
    if (record.usedAt !== null) {
      await ctx.store.refreshTokens.revokeFamily(record.familyId, now);
      await ctx.audit
        .record({
          tenantId: record.tenantId,
          actor: record.userId,
          action: 'authorizationCode.replayed',
          target: record.userId,
          outcome: 'failure',
          detail: { aadsts: 54005, family: record.familyId, source: request.source, clientId },
        })
        .catch(() => undefined);
      throw SignInErrors.codeRedeemed();
    }
    if (now >= record.expiresAt) throw SignInErrors.codeExpired();
    if (record.clientId !== clientId.toLowerCase() || record.tenantId.toLowerCase() !== request.tenant.id.toLowerCase() || record.redirectUri !== redirectUri)
      throw SignInErrors.codeOtherClient();
    const verifier = request.params['code_verifier'];
    if (verifier === undefined || !VERIFIER.test(verifier)) throw SignInErrors.badVerifier();
    const derived = record.codeChallengeMethod === 'S256' ? createHash('sha256').update(verifier, 'ascii').digest('base64url') : verifier;
    if (!sameString(derived, record.codeChallenge)) throw SignInErrors.badVerifier();

    const user = await ctx.store.users.getByObjectId(record.userId);
    if (user === undefined || !user.accountEnabled || user.passwordChangedAt > record.createdAt) throw SignInErrors.invalidCode();
    const result = await ctx.store.transaction(async (tx) => {
      if (!(await tx.authorizationCodes.markUsed(record.codeHash, now))) return undefined;
      return issueUserTokens(ctx, request, { user, clientId, scope, familyId: record.familyId, amr: ['pwd'], nonce: record.nonce ?? undefined, tx });
    });
    if (result === undefined) throw SignInErrors.codeRedeemed();
    return result;
  },
};
