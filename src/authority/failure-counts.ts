/**
 * Failure counts in fixed windows, kept in this process's memory and shared through a
 * {@link FailureCounterStore} with every replica: the core of the token endpoint's client-authentication
 * throttle (token/throttle.ts) and of the enrolment rate limit (hosts/rate-limit.ts).
 */
import { isIPv6 } from 'node:net';
import type { Clock } from '../shared/clock.js';
import type { FailureCounterStore } from '../store/types.js';

/** At most `failures` failures per key in each fixed window of `windowMs`. */
export interface ThrottleLimit {
  failures: number;
  windowMs: number;
}

/** A key to count, with the limit that applies to it. */
export type CountedKey = readonly [key: string, limit: ThrottleLimit];

export interface SharedFailureCountsOptions {
  store: FailureCounterStore;
  clock: Clock;
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

/** Checks that a limit is usable: a positive failure count and a window of at least a second. */
export function checkThrottleLimit(limit: ThrottleLimit): void {
  if (!Number.isInteger(limit.failures) || limit.failures < 1) throw new TypeError('a throttle limit needs a positive failure count');
  if (!Number.isInteger(limit.windowMs) || limit.windowMs < 1000) throw new TypeError('a throttle window is at least a second');
}

/**
 * Per-key failure counts shared across replicas.
 *
 * - {@link refresh} reads the shared count of a key (a read-through cache, never a write): a key with no
 *   failure known in the window at most once per `syncMs` (so a success costs at most one read per key and
 *   second), a key with failures on every attempt. A lock another replica set is so seen here within `syncMs`,
 *   and at once for a key this replica has seen fail. {@link waitMs} is then a synchronous look at the counts.
 * - A failure ({@link failed}) counts at once in memory (so concurrent guesses on this replica are cut off at
 *   the limit exactly: callers check and act without an `await` between) and then in the shared store, whose
 *   count tells this replica about failures the others saw.
 * - Once a key reaches its limit in a window, it stays locked until the window ends.
 */
export class SharedFailureCounts {
  readonly #store: FailureCounterStore;
  readonly #clock: Clock;
  readonly #maxLocalKeys: number;
  readonly #syncMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #local = new Map<string, LocalCount>();

  constructor(options: SharedFailureCountsOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#maxLocalKeys = options.maxLocalKeys ?? 10_000;
    this.#syncMs = options.syncMs ?? 1000;
    this.#onError = options.onError ?? (() => undefined);
  }

  /**
   * Brings this process's counts for `keys` up to date with the store, reading only keys not read within
   * `syncMs` and not already locked. Never throws: a store outage leaves the local counts.
   */
  async refresh(keys: readonly CountedKey[]): Promise<void> {
    const now = this.#clock.now();
    const reads: Array<Promise<void>> = [];
    for (const [key, limit] of keys) {
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

  /** Milliseconds until every locked key among `keys` is free again (0: none is locked). No I/O. */
  waitMs(keys: readonly CountedKey[]): number {
    const now = this.#clock.now();
    let wait = 0;
    for (const [key, limit] of keys) {
      const count = this.#current(key, limit, now);
      if (count !== undefined && count.failures >= limit.failures) wait = Math.max(wait, count.windowStart + limit.windowMs - now);
    }
    return wait;
  }

  /**
   * Counts one failure for each of `keys`: in memory before the first `await` (call it as soon as the failure
   * is known), then in the store. Never throws: a store outage leaves the local count.
   */
  async failed(keys: readonly CountedKey[]): Promise<void> {
    const now = this.#clock.now();
    const writes: Array<Promise<void>> = [];
    for (const [key, limit] of keys) {
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
