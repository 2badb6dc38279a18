import type { Clock } from '../../shared/clock.js';
import type { AuthFailureStore } from '../../store/types.js';
import { TokenErrors } from '../errors.js';
import { checkThrottleLimit, SharedFailureCounts, sourceKey, type CountedKey, type ThrottleLimit } from '../failure-counts.js';

export { sourceKey, type ThrottleLimit } from '../failure-counts.js';

export interface ClientAuthThrottlePolicy {
  /** Per client: an application by client id, or a host by its credential's key id. */
  perClient: ThrottleLimit;
  /** Per source address (an IPv6 address counts by its /64). */
  perSource: ThrottleLimit;
}

/**
 * Entra's smart lockout locks after 10 failed sign-ins for a minute by default
 * (https://learn.microsoft.com/entra/identity/authentication/howto-password-smart-lockout), and answers a
 * throttled `client_credentials` request with 429 and `Retry-After`
 * (https://learn.microsoft.com/entra/msal/dotnet/advanced/client-and-server-throttling). One source may run
 * many applications, so it gets more room than one client.
 */
export const DEFAULT_CLIENT_AUTH_THROTTLE: ClientAuthThrottlePolicy = {
  perClient: { failures: 10, windowMs: 60_000 },
  perSource: { failures: 100, windowMs: 60_000 },
};

/** Who is authenticating: the source address, and the client once the request names a known one. */
export interface ThrottleSubject {
  source: string;
  /** `app:{client id}` or `host:{credential key id}`; only for a client the directory knows. */
  client?: string | undefined;
}

export interface ClientAuthThrottleOptions {
  store: AuthFailureStore;
  clock: Clock;
  policy?: ClientAuthThrottlePolicy;
  /** Keys remembered in this process at most; the least recently failing are forgotten first (default 10 000). */
  maxLocalKeys?: number;
  /** How long a shared count read from the store is trusted before it is read again (default 1 s). */
  syncMs?: number;
  /** A store read or write that failed (the failure is still counted locally). */
  onError?: (err: unknown) => void;
}

/**
 * Throttles failed client authentication at the token endpoint, per client and per source, across replicas
 * (the counting is {@link SharedFailureCounts}'): {@link refresh} reads the shared counts of the subject's
 * keys, {@link check} is then a synchronous look at them, {@link failed} counts one failure at once in memory
 * and then in the store. Once a key reaches its limit in a window, every further attempt for it, right or
 * wrong, is refused with 429 until the window ends (`Retry-After`).
 */
export class ClientAuthThrottle {
  readonly #policy: ClientAuthThrottlePolicy;
  readonly #counts: SharedFailureCounts;

  constructor(options: ClientAuthThrottleOptions) {
    this.#policy = options.policy ?? DEFAULT_CLIENT_AUTH_THROTTLE;
    checkThrottleLimit(this.#policy.perClient);
    checkThrottleLimit(this.#policy.perSource);
    this.#counts = new SharedFailureCounts({
      store: options.store,
      clock: options.clock,
      ...(options.maxLocalKeys === undefined ? {} : { maxLocalKeys: options.maxLocalKeys }),
      ...(options.syncMs === undefined ? {} : { syncMs: options.syncMs }),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
    });
  }

  /** Brings this process's counts for the subject's keys up to date with the store. Never throws. */
  refresh(subject: ThrottleSubject): Promise<void> {
    return this.#counts.refresh(this.#keys(subject));
  }

  /** Throws 429 (`AADSTS50053`, with `Retry-After`) when this process knows the source or the client is locked. No I/O. */
  check(subject: ThrottleSubject): void {
    const wait = this.#counts.waitMs(this.#keys(subject));
    if (wait > 0) throw TokenErrors.throttled(Math.max(1, Math.ceil(wait / 1000)));
  }

  /**
   * Counts one failed authentication: in memory before the first `await` (call it as soon as the failure is
   * known), then in the store. Never throws: a store outage leaves the local count.
   */
  failed(subject: ThrottleSubject): Promise<void> {
    return this.#counts.failed(this.#keys(subject));
  }

  #keys(subject: ThrottleSubject): CountedKey[] {
    const keys: CountedKey[] = [[`source:${sourceKey(subject.source)}`, this.#policy.perSource]];
    if (subject.client !== undefined) keys.push([subject.client, this.#policy.perClient]);
    return keys;
  }
}
