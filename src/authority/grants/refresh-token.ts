import type { Grant } from './grant.js';
import { TokenErrors } from '../errors.js';
import { requireParam } from '../token/form.js';
import { delegatedScope } from '../token/user-scope.js';
import { publicClientOf } from './password.js';
import { issueUserTokens, refreshTokenHash } from './user-tokens.js';

/**
 * The refresh-token grant (RFC 6749 §6) with rotation: every exchange uses the token up and returns a new
 * one of the same family, for any resource the user may ask for (as Entra's refresh tokens are). A token
 * presented a second time is a replay, by whoever copied it: the whole family is revoked and the refusal
 * audited. Tokens die with the user, a password change, a disabled account or a sign-out (revokeUser).
 */
export const refreshTokenGrant: Grant = {
  grantType: 'refresh_token',
  async handle(ctx, request) {
    const clientId = publicClientOf(request);
    const token = requireParam(request.params, 'refresh_token');
    const scope = delegatedScope(request.params, request.endpoint);
    const record = token.length <= 512 ? await ctx.store.refreshTokens.get(refreshTokenHash(token)) : undefined;
    if (record === undefined) throw TokenErrors.invalidRefreshToken();
    if (record.clientId !== clientId.toLowerCase() || record.tenantId.toLowerCase() !== request.tenant.id.toLowerCase())
      throw TokenErrors.refreshTokenOtherClient();
    const now = ctx.clock.now();
    if (record.revokedAt !== null) throw TokenErrors.refreshTokenRevoked();
    if (now >= record.expiresAt) throw TokenErrors.refreshTokenExpired();
    if (record.usedAt !== null) return replayed(record.familyId, record.userId);

    const user = await ctx.store.users.getByObjectId(record.userId);
    if (user === undefined || user.passwordChangedAt > record.issuedAt) throw TokenErrors.refreshTokenRevoked();
    if (!user.accountEnabled) throw TokenErrors.userDisabled();

    const result = await ctx.store.transaction(async (tx) => {
      // The row decides: of concurrent exchanges of one token (on any replica) exactly one goes on.
      if (!(await tx.refreshTokens.markUsed(record.tokenHash, now))) return undefined;
      return issueUserTokens(ctx, request, { user, clientId, scope, familyId: record.familyId, amr: ['pwd'], tx });
    });
    if (result === undefined) return replayed(record.familyId, record.userId);
    return result;

    async function replayed(familyId: string, userId: string): Promise<never> {
      const revoked = await ctx.store.refreshTokens.revokeFamily(familyId, now);
      await ctx.audit
        .record({
          tenantId: request.tenant.id,
          actor: userId,
          action: 'refreshToken.replayed',
          target: userId,
          outcome: 'failure',
          detail: { family: familyId, revoked, source: request.source, clientId },
        })
        .catch(() => undefined);
      throw TokenErrors.refreshTokenRevoked();
    }
  },
};
