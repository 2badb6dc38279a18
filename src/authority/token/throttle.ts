import { isIPv6 } from 'node:net';
import type { Clock } from '../../shared/clock.js';
import type { AuthFailureStore } from '../../store/types.js';
import { TokenErrors } from '../errors.js';

/** At most `failures` failed authentications per key in each fixed window of `windowMs`. */
export interface ThrottleLimit {
  failures: number;
  windowMs: number;
}

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

interface LocalCount {
  windowStart: number;
  /** The highest count known for the window: this process's own failures, or the shared count the store returned. */
  failures: number;
  /** When the store's count was last read or returned (-Infinity: never). */
  syncedAt: number;
}

/**
 * Throttles failed client authentication at the token endpoint, per client and per source, across replicas.
 *
 * - {@link refresh} reads the shared count of a key (a read-through cache, never a write): a key with no
 *   failure known in the window at most once per `syncMs` (so a success costs at most one read per key and
 *   second), a key with failures on every attempt. A lock another replica set is so seen here within `syncMs`,
 *   and at once for a key this replica has seen fail. {@link check} is then a synchronous look at the counts.
 * - A failure ({@link failed}) counts at once in memory (so concurrent guesses on this replica are cut off at
 *   the limit exactly: callers check and verify without an `await` between) and then in the shared store,
 *   whose count tells this replica about failures the others saw.
 * - Once a key reaches its limit in a window, every further attempt for it, right or wrong, is refused with
 *   429 until the window ends (`Retry-After`).
 */
export class ClientAuthThrottle {
  readonly #store: AuthFailureStore;
  readonly #clock: Clock;
  readonly #policy: ClientAuthThrottlePolicy;
  readonly #maxLocalKeys: number;
  readonly #syncMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #local = new Map<string, LocalCount>();

  constructor(options: ClientAuthThrottleOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#policy = options.policy ?? DEFAULT_CLIENT_AUTH_THROTTLE;
    this.#maxLocalKeys = options.maxLocalKeys ?? 10_000;
    this.#syncMs = options.syncMs ?? 1000;
    this.#onError = options.onError ?? (() => undefined);
    for (const limit of [this.#policy.perClient, this.#policy.perSource]) {
      if (!Number.isInteger(limit.failures) || limit.failures < 1) throw new TypeError('a throttle limit needs a positive failure count');
      if (!Number.isInteger(limit.windowMs) || limit.windowMs < 1000) throw new TypeError('a throttle window is at least a second');
    }
  }

  /**
   * Brings this process's counts for the subject's keys up to date with the store, reading only keys not read
   * within `syncMs` and not already locked. Never throws: a store outage leaves the local counts.
   */
  async refresh(subject: ThrottleSubject): Promise<void> {
    const now = this.#clock.now();
    const reads: Array<Promise<void>> = [];
    for (const [key, limit] of this.#keys(subject)) {
      const windowStart = windowOf(now, limit);
      const known = this.#current(key, limit, now);
      // A key without failures in the window is trusted for `syncMs`; one with failures is read on every attempt.
      if (known !== undefined && (known.failures >= limit.failures || (known.failures === 0 && now - known.syncedAt < this.#syncMs))) continue;
      reads.push(
        this.#store.count(key, windowStart).then(
          (shared) => {
            const count = this.#current(key, limit, this.#clock.now()) ?? { windowStart, failures: 0, syncedAt: -Infinity };
            if (count.windowStart !== windowStart) return;
            count.failures = Math.max(count.failures, shared);
            count.syncedAt = now;
            this.#remember(key, count);
          },
          (err: unknown) => this.#onError(err),
        ),
      );
    }
    await Promise.all(reads);
  }

  /** Throws 429 (`AADSTS50053`, with `Retry-After`) when this process knows the source or the client is locked. No I/O. */
  check(subject: ThrottleSubject): void {
    const now = this.#clock.now();
    let wait = 0;
    for (const [key, limit] of this.#keys(subject)) {
      const count = this.#current(key, limit, now);
      if (count !== undefined && count.failures >= limit.failures) wait = Math.max(wait, count.windowStart + limit.windowMs - now);
    }
    if (wait > 0) throw TokenErrors.throttled(Math.max(1, Math.ceil(wait / 1000)));
  }

  /**
   * Counts one failed authentication: in memory before the first `await` (call it as soon as the failure is
   * known), then in the store. Never throws: a store outage leaves the local count.
   */
  async failed(subject: ThrottleSubject): Promise<void> {
    const now = this.#clock.now();
    const writes: Array<Promise<void>> = [];
    for (const [key, limit] of this.#keys(subject)) {
      const windowStart = windowOf(now, limit);
      const count = this.#current(key, limit, now) ?? { windowStart, failures: 0, syncedAt: -Infinity };
      count.failures += 1;
      this.#remember(key, count);
      writes.push(
        this.#store.increment(key, windowStart, windowStart + limit.windowMs).then(
          (shared) => {
            if (count.failures < shared) count.failures = shared;
            count.syncedAt = now;
            // Put back a count evicted meanwhile, if it is still this window's.
            if (!this.#local.has(key) && windowOf(this.#clock.now(), limit) === windowStart) this.#remember(key, count);
          },
          (err: unknown) => this.#onError(err),
        ),
      );
    }
    await Promise.all(writes);
  }

  #keys(subject: ThrottleSubject): Array<[string, ThrottleLimit]> {
    const keys: Array<[string, ThrottleLimit]> = [[`source:${sourceKey(subject.source)}`, this.#policy.perSource]];
    if (subject.client !== undefined) keys.push([subject.client, this.#policy.perClient]);
    return keys;
  }

  /** The key's count in the current window, dropping one from an earlier window. */
  #current(key: string, limit: ThrottleLimit, now: number): LocalCount | undefined {
    const count = this.#local.get(key);
    if (count === undefined) return undefined;
    if (count.windowStart + limit.windowMs > now) return count;
    this.#local.delete(key);
    return undefined;
  }

  #remember(key: string, count: LocalCount): void {
    this.#local.delete(key);
    this.#local.set(key, count);
    while (this.#local.size > this.#maxLocalKeys) {
      const oldest = this.#local.keys().next();
      if (oldest.done === true) break;
      this.#local.delete(oldest.value);
    }
  }
}

function windowOf(now: number, limit: ThrottleLimit): number {
  return Math.floor(now / limit.windowMs) * limit.windowMs;
}

/**
 * The address a source is counted by: IPv4 as is (also when IPv4-mapped), IPv6 by its /64, since one host
 * commonly holds a whole /64 and could otherwise step through fresh addresses.
 */
export function sourceKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!isIPv6(address)) return address;
  // Drop a zone (`%eth0`), and write a trailing dotted quad as its two groups.
  const plain = address
    .toLowerCase()
    .replace(/%.*$/, '')
    .replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
      [
        [a, b],
        [c, d],
      ]
        .map(([x, y]) => ((Number(x) << 8) | Number(y)).toString(16))
        .join(':'),
    );
  const [head = '', tail = ''] = plain.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  const groups = plain.includes('::') ? [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups] : headGroups;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
