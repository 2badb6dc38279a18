/**
 * Bearer authentication, as an `onRequest` step (before the body is read, as challenge auth needs: the first
 * request of every client carries no token and an empty body). Verified tokens are cached by the token string
 * until they expire, so the hot path does not re-verify; tokens are never logged or stored elsewhere. What a
 * revocation invalidates leaves the cache at once, on every replica (docs/security.md, "Revocation bounds per
 * cache"): every hit checks the token's signing key against the live key ring (in memory), and a principal's
 * deletion (a notice on PRINCIPAL_CHANNEL) drops its tokens; a token is cached only once its principal was
 * seen to exist.
 */
import type { FastifyRequest } from 'fastify';
import { TokenVerificationError, type VerifiedToken } from '../shared/token-verifier.js';
import { PRINCIPAL_CHANNEL, type Store, type Vault } from '../store/types.js';
import { acceptedAudiences, challengeHeaders } from './challenge.js';
import type { VaultContext } from './contracts.js';
import { VaultErrors } from './errors.js';
import type { VaultCaller } from './state.js';

const MAX_CACHED_TOKENS = 10_000;
const MAX_KNOWN_PRINCIPALS = 100_000;
const BEARER = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]+)[ \t]*$/i;

interface CachedToken {
  token: VerifiedToken;
  expiresAt: number;
  /** The principal's object id, lower-cased (what a deletion notice carries). */
  principal: string;
}

/**
 * Verified tokens, by audience set and token, until `exp` — and only while their signing key is published and
 * their principal exists. Bounded: the oldest entry goes first.
 */
export class TokenCache {
  readonly #store: Store;
  readonly #keyPublished: (kid: string) => boolean;
  #entries = new Map<string, CachedToken>();
  /** Principals (lower-cased object ids) read from the store and not deleted since. */
  readonly #principals = new Set<string>();
  /** Bumped by every deletion notice: what was read before one is never cached after it. */
  #generation = 0;
  readonly #unsubscribe: () => void;

  constructor(ctx: Pick<VaultContext, 'store' | 'signingKeyPublished'>) {
    this.#store = ctx.store;
    this.#keyPublished = (kid) => ctx.signingKeyPublished(kid);
    this.#unsubscribe = ctx.store.notifications.subscribe(PRINCIPAL_CHANNEL, (objectId) => this.forgetPrincipal(objectId));
  }

  /** The generation to hand back to {@link set} and {@link principalExists} for a verification started now. */
  get generation(): number {
    return this.#generation;
  }

  /** A cached token still acceptable now: not expired, its key still published. In memory only. */
  get(key: string, now: number): VerifiedToken | undefined {
    const hit = this.#entries.get(key);
    if (hit === undefined) return undefined;
    if (hit.expiresAt <= now || !this.#keyPublished(hit.token.header.kid)) {
      this.#entries.delete(key);
      return undefined;
    }
    return hit.token;
  }

  /** Caches `token`, unless a principal was deleted since `generation` (its principal may be that one). */
  set(key: string, token: VerifiedToken, generation: number): void {
    if (generation !== this.#generation) return;
    if (this.#entries.size >= MAX_CACHED_TOKENS) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { token, expiresAt: token.claims.exp * 1000, principal: token.claims.oid.toLowerCase() });
  }

  /** Whether the principal exists: from memory once seen, else one store read (once per principal, not per request). */
  async principalExists(objectId: string, generation: number): Promise<boolean> {
    const key = objectId.toLowerCase();
    if (this.#principals.has(key)) return true;
    // A service principal, or an enabled user (disabling one publishes it on the principal channel, as deleting does).
    const exists =
      (await this.#store.servicePrincipals.getByObjectId(objectId)) !== undefined || (await this.#store.users.getByObjectId(objectId))?.accountEnabled === true;
    if (exists && generation === this.#generation) {
      if (this.#principals.size >= MAX_KNOWN_PRINCIPALS) this.#principals.clear();
      this.#principals.add(key);
    }
    return exists;
  }

  /** Drops a deleted principal and every cached token of it. */
  forgetPrincipal(objectId: string): void {
    const key = objectId.toLowerCase();
    this.#generation += 1;
    this.#principals.delete(key);
    for (const [tokenKey, entry] of this.#entries) if (entry.principal === key) this.#entries.delete(tokenKey);
  }

  close(): void {
    this.#unsubscribe();
    this.#entries.clear();
    this.#principals.clear();
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
    const generation = cache.generation;
    try {
      verified = await ctx.verifyAccessToken(token, audiences);
    } catch (err) {
      if (!(err instanceof TokenVerificationError)) throw err;
      const detail = err.code === 'bad_audience' ? ` Expected ${audiences.join(' or ')}.` : '';
      throw VaultErrors.tokenRejected(err.code, challengeHeaders(ctx, request, vault), detail);
    }
    // A token outlives a deleted principal; the principal's deletion ends what the token may do.
    if (!(await cache.principalExists(verified.claims.oid, generation))) {
      throw VaultErrors.principalUnknown(verified.claims.oid, challengeHeaders(ctx, request, vault));
    }
    cache.set(key, verified, generation);
  }
  const { claims } = verified;
  // The vault's tenant only: a token of another tenant of this authority is valid but not for this vault.
  if (claims.tid.toLowerCase() !== vault.tenantId.toLowerCase()) {
    throw VaultErrors.wrongTenant(`${ctx.authorityOrigin()}/${vault.tenantId}/`, claims.iss, challengeHeaders(ctx, request, vault));
  }
  return { objectId: claims.oid, tenantId: claims.tid, appId: claims.appid, issuer: claims.iss };
}
