/**
 * Bearer authentication, as an `onRequest` step (before the body is read, as challenge auth needs: the first
 * request of every client carries no token and an empty body). Verified tokens are cached by the token string
 * until they expire, so the hot path does not re-verify; tokens are never logged or stored elsewhere.
 */
import type { FastifyRequest } from 'fastify';
import { TokenVerificationError, type VerifiedToken } from '../shared/token-verifier.js';
import type { Vault } from '../store/types.js';
import { acceptedAudiences, challengeHeaders } from './challenge.js';
import type { VaultContext } from './contracts.js';
import { VaultErrors } from './errors.js';
import type { VaultCaller } from './state.js';

const MAX_CACHED_TOKENS = 10_000;
const BEARER = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]+)[ \t]*$/i;

/** Verified tokens, by audience set and token, until `exp`. Bounded: the oldest entry goes first. */
export class TokenCache {
  #entries = new Map<string, { token: VerifiedToken; expiresAt: number }>();

  get(key: string, now: number): VerifiedToken | undefined {
    const hit = this.#entries.get(key);
    if (hit === undefined) return undefined;
    if (hit.expiresAt <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return hit.token;
  }

  set(key: string, token: VerifiedToken): void {
    if (this.#entries.size >= MAX_CACHED_TOKENS) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { token, expiresAt: token.claims.exp * 1000 });
  }
}

/**
 * The token of a `Bearer` header. The common exact form is sliced without a regular expression over the
 * kilobyte-long token (what follows is checked by the verifier, or matched in the token cache); the rest
 * goes through the pattern.
 */
function bearerToken(header: string): string | undefined {
  if (header.startsWith('Bearer ') && header.length > 7 && !header.includes(' ', 7)) return header.slice(7);
  return BEARER.exec(header)?.[1];
}

/** The caller of `request` to `vault`; 401 with the challenge when there is no acceptable token. */
export async function authenticate(ctx: VaultContext, cache: TokenCache, request: FastifyRequest, vault: Vault): Promise<VaultCaller> {
  const header = request.headers.authorization;
  const token = header === undefined ? undefined : bearerToken(header);
  if (token === undefined) throw VaultErrors.missingToken(challengeHeaders(ctx, request, vault));
  const audiences = acceptedAudiences(ctx, request);
  const key = `${audiences.join(' ')}\n${token}`;
  let verified = cache.get(key, ctx.clock.now());
  if (verified === undefined) {
    try {
      verified = await ctx.verifyAccessToken(token, audiences);
    } catch (err) {
      if (!(err instanceof TokenVerificationError)) throw err;
      const detail = err.code === 'bad_audience' ? ` Expected ${audiences.join(' or ')}.` : '';
      throw VaultErrors.tokenRejected(err.code, challengeHeaders(ctx, request, vault), detail);
    }
    cache.set(key, verified);
  }
  const { claims } = verified;
  // The vault's tenant only: a token of another tenant of this authority is valid but not for this vault.
  if (claims.tid.toLowerCase() !== vault.tenantId.toLowerCase()) {
    throw VaultErrors.wrongTenant(`${ctx.authorityOrigin()}/${vault.tenantId}/`, claims.iss, challengeHeaders(ctx, request, vault));
  }
  return { objectId: claims.oid, tenantId: claims.tid, appId: claims.appid, issuer: claims.iss };
}
