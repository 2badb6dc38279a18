/**
 * Workload tokens per (identity object id, resource as requested). In memory only.
 *
 * - Hot path ({@link TokenCache.peek}): one Map lookup and an expiry check; no disk, no network, no promise.
 * - Each entry is refreshed in the background from its half-life on (jittered ±10 %), one authority call
 *   in flight per key ({@link TokenCache.obtain} shares a miss with concurrent callers too).
 * - Authority failures: unexpired tokens keep being served; background refreshes back off exponentially
 *   (base..max, jittered) and a periodic sweep retries them without traffic, so the cache recovers alone.
 *   A miss while the authority is failing throws the {@link UpstreamError} (the surface answers a retryable 503).
 * - Bounded: beyond `maxEntries` the oldest entry is evicted.
 */
import type { HostIdentity } from '../shared/host-protocol.js';
import type { Logger } from '../shared/logger.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { UpstreamError, type IssuedToken } from './upstream.js';

export interface CacheEntry {
  readonly key: string;
  readonly objectId: string;
  readonly clientId: string;
  readonly resource: string;
  token: IssuedToken;
  /** Epoch ms from which a background refresh is due. */
  refreshAt: number;
  /** Epoch ms before which no retry is attempted after a failure. */
  retryAt: number;
  failures: number;
  refreshing: Promise<CacheEntry> | undefined;
  /** The JSON success body split around `expires_in`/`ext_expires_in` (they change every second). */
  bodyParts: [string, string, string];
}

export interface TokenCacheOptions {
  /** Gets a fresh token for an identity (normally the managed-identity grant). */
  fetch: (identity: HostIdentity, resource: string) => Promise<IssuedToken>;
  logger: Logger;
  clock?: Clock;
  random?: () => number;
  maxEntries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** How often the background sweep looks for due refreshes (default 1 s). */
  sweepMs?: number;
  /** A token is no longer served when it has less than this many ms left (default 5 s). */
  minRemainingMs?: number;
}

export class TokenCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly #misses = new Map<string, Promise<CacheEntry>>();
  readonly #options: TokenCacheOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #minRemainingMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** Epoch ms before which a miss does not call the authority (set by a failure; exponential backoff). */
  #missRetryAt = 0;
  #missFailures = 0;
  #lastMissError: UpstreamError | undefined;
  #generation = 0;

  constructor(options: TokenCacheOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#minRemainingMs = options.minRemainingMs ?? 5000;
  }

  get size(): number {
    return this.#entries.size;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.sweep(), this.#options.sweepMs ?? 1000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  static keyOf(objectId: string, resource: string): string {
    return `${objectId.toLowerCase()}\n${resource}`;
  }

  /** The unexpired cached entry, or undefined. Starts a background refresh when one is due. */
  peek(identity: HostIdentity, resource: string): CacheEntry | undefined {
    const entry = this.#entries.get(TokenCache.keyOf(identity.objectId, resource));
    if (entry === undefined) return undefined;
    const now = this.#clock.now();
    if (entry.token.expiresOn * 1000 - now < this.#minRemainingMs) return undefined;
    if (now >= entry.refreshAt && now >= entry.retryAt && entry.refreshing === undefined) this.#refresh(entry, identity);
    return entry;
  }

  /** A cached entry, or one fetched now (one fetch per key however many callers wait). */
  async obtain(identity: HostIdentity, resource: string): Promise<{ entry: CacheEntry; source: 'cache' | 'authority' | 'upstream' }> {
    const hit = this.peek(identity, resource);
    if (hit !== undefined) return { entry: hit, source: 'cache' };
    const key = TokenCache.keyOf(identity.objectId, resource);
    // A linked identity's misses go to its upstream Entra (outbound federation), not to the authority.
    const fetched = identity.upstream === undefined ? 'authority' : 'upstream';
    const pending = this.#misses.get(key);
    if (pending !== undefined) return { entry: await pending, source: fetched };
    if (this.#clock.now() < this.#missRetryAt && this.#lastMissError !== undefined) throw this.#lastMissError;
    const generation = this.#generation;
    const flight = this.#options
      .fetch(identity, resource)
      .then((token) => {
        this.#missFailures = 0;
        this.#missRetryAt = 0;
        this.#lastMissError = undefined;
        return generation === this.#generation ? this.#store(key, identity, resource, token) : this.#detached(key, identity, resource, token);
      })
      .catch((err: unknown) => {
        if (err instanceof UpstreamError && err.kind === 'unavailable') {
          this.#missFailures++;
          this.#missRetryAt = this.#clock.now() + this.#backoff(this.#missFailures);
          this.#lastMissError = err;
        }
        throw err;
      })
      .finally(() => this.#misses.delete(key));
    this.#misses.set(key, flight);
    return { entry: await flight, source: fetched };
  }

  /** Drops every token of these identities (object ids) at once. */
  dropIdentities(objectIds: readonly string[]): void {
    const drop = new Set(objectIds.map((oid) => oid.toLowerCase()));
    for (const [key, entry] of this.#entries) if (drop.has(entry.objectId)) this.#entries.delete(key);
  }

  /** Drops everything (the host is no longer recognised); fetches in flight do not repopulate the cache. */
  clear(): void {
    this.#generation++;
    this.#entries.clear();
  }

  /** Starts every refresh that is due (background; also called by the periodic timer). */
  sweep(identityOf?: (objectId: string) => HostIdentity | undefined): void {
    const now = this.#clock.now();
    for (const [key, entry] of this.#entries) {
      if (entry.token.expiresOn * 1000 <= now) {
        this.#entries.delete(key);
        continue;
      }
      if (now < entry.refreshAt || now < entry.retryAt || entry.refreshing !== undefined) continue;
      const identity = identityOf?.(entry.objectId) ?? this.#identities.get(entry.objectId);
      if (identity !== undefined) this.#refresh(entry, identity);
    }
  }

  /** The identity each cached object id was fetched for (the sweep needs it to call the grant). */
  readonly #identities = new Map<string, HostIdentity>();

  #refresh(entry: CacheEntry, identity: HostIdentity): void {
    const generation = this.#generation;
    entry.refreshing = this.#options
      .fetch(identity, entry.resource)
      .then((token) => {
        if (generation !== this.#generation || this.#entries.get(entry.key) !== entry) return entry;
        entry.failures = 0;
        entry.retryAt = 0;
        this.#fill(entry, token);
        return entry;
      })
      .catch((err: unknown) => {
        entry.failures++;
        entry.retryAt = this.#clock.now() + this.#backoff(entry.failures);
        const kind = err instanceof UpstreamError ? err.kind : 'unavailable';
        if (kind === 'identity-not-found') this.#entries.delete(entry.key);
        this.#options.logger.warn(
          { identity: entry.objectId, resource: entry.resource, failures: entry.failures, kind, err: err instanceof Error ? err.message : String(err) },
          'background token refresh failed; the cached token is served until it expires',
        );
        return entry;
      })
      .finally(() => {
        entry.refreshing = undefined;
      });
  }

  #backoff(failures: number): number {
    const { retryBaseMs, retryMaxMs } = this.#options;
    const raw = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(failures - 1, 30));
    return Math.round(raw * (0.5 + this.#random() * 0.5));
  }

  #store(key: string, identity: HostIdentity, resource: string, token: IssuedToken): CacheEntry {
    const objectId = identity.objectId.toLowerCase();
    this.#identities.set(objectId, identity);
    const existing = this.#entries.get(key);
    if (existing !== undefined) {
      this.#fill(existing, token);
      return existing;
    }
    const entry = this.#detached(key, identity, resource, token);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#options.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    return entry;
  }

  #detached(key: string, identity: HostIdentity, resource: string, token: IssuedToken): CacheEntry {
    const entry: CacheEntry = {
      key,
      objectId: identity.objectId.toLowerCase(),
      clientId: identity.clientId,
      resource,
      token,
      refreshAt: 0,
      retryAt: 0,
      failures: 0,
      refreshing: undefined,
      bodyParts: ['', '', ''],
    };
    this.#fill(entry, token);
    return entry;
  }

  #fill(entry: CacheEntry, token: IssuedToken): void {
    entry.token = token;
    const lifetimeMs = Math.max(0, token.expiresOn - token.receivedAt) * 1000;
    // Half-life, jittered by ±10 % of the lifetime, so that entries fetched together do not refresh together.
    entry.refreshAt = token.receivedAt * 1000 + lifetimeMs * (0.4 + this.#random() * 0.2);
    entry.bodyParts = successBodyParts(token, entry.resource, entry.clientId);
  }
}

/**
 * The §8.4 success body around the two per-second values:
 * `{"access_token":…,"refresh_token":"","expires_in":"<n>","expires_on":…,"ext_expires_in":"<n>","not_before":…,"resource":…,"token_type":"Bearer","client_id":…}`.
 */
export function successBodyParts(token: IssuedToken, resource: string, clientId: string): [string, string, string] {
  return [
    `{"access_token":${JSON.stringify(token.accessToken)},"refresh_token":"","expires_in":"`,
    `","expires_on":"${String(token.expiresOn)}","ext_expires_in":"`,
    `","not_before":"${String(token.notBefore)}","resource":${JSON.stringify(resource)},"token_type":"Bearer","client_id":${JSON.stringify(clientId)}}`,
  ];
}

/** The success body for `entry` at `nowMs` (`expires_in` = exp − now, never negative). */
export function successBody(entry: CacheEntry, nowMs: number, extra?: Record<string, string>): string {
  const expiresIn = String(Math.max(0, entry.token.expiresOn - Math.floor(nowMs / 1000)));
  const [a, b, c] = entry.bodyParts;
  const body = a + expiresIn + b + expiresIn + c;
  if (extra === undefined) return body;
  let tail = '';
  for (const [name, value] of Object.entries(extra)) tail += `,${JSON.stringify(name)}:${JSON.stringify(value)}`;
  return body.slice(0, -1) + tail + '}';
}
