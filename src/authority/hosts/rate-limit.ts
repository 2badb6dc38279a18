import type { Clock } from '../../shared/clock.js';

export interface FailureRateLimiterOptions {
  clock: Clock;
  /** Failures tolerated per key within the window; the next request is refused until the oldest ages out. */
  failures: number;
  windowMs: number;
  /** Keys remembered at most; the least recently failing are forgotten first (default 10 000). */
  maxKeys?: number;
}

/**
 * Counts failures per key (a remote address) in a sliding window, in this process's memory: enough to slow
 * guessing at one replica (join tokens carry 256 random bits, so this guards against noise and misuse more
 * than against guessing). Time comes from the injected clock.
 */
export class FailureRateLimiter {
  readonly #clock: Clock;
  readonly #failures: number;
  readonly #windowMs: number;
  readonly #maxKeys: number;
  /** Failure times per key, oldest first; the map is in order of each key's latest failure. */
  readonly #byKey = new Map<string, number[]>();

  constructor(options: FailureRateLimiterOptions) {
    if (!Number.isInteger(options.failures) || options.failures < 1) throw new TypeError('FailureRateLimiter needs a positive failure count');
    if (!(options.windowMs > 0)) throw new TypeError('FailureRateLimiter needs a positive window');
    this.#clock = options.clock;
    this.#failures = options.failures;
    this.#windowMs = options.windowMs;
    this.#maxKeys = options.maxKeys ?? 10_000;
  }

  /** Whole seconds until `key` may try again (at least 1), or 0 when it may now. */
  retryAfterSeconds(key: string): number {
    const now = this.#clock.now();
    const times = this.#recent(key, now);
    if (times.length < this.#failures) return 0;
    const oldest = times[times.length - this.#failures] ?? now;
    return Math.max(1, Math.ceil((oldest + this.#windowMs - now) / 1000));
  }

  recordFailure(key: string): void {
    const now = this.#clock.now();
    const times = this.#recent(key, now);
    times.push(now);
    // Keep no more than the limit needs, and move the key to the end (most recent).
    this.#byKey.delete(key);
    this.#byKey.set(key, times.slice(-this.#failures));
    while (this.#byKey.size > this.#maxKeys) {
      const first = this.#byKey.keys().next();
      if (first.done === true) break;
      this.#byKey.delete(first.value);
    }
  }

  #recent(key: string, now: number): number[] {
    const times = (this.#byKey.get(key) ?? []).filter((t) => t > now - this.#windowMs);
    if (times.length === 0) this.#byKey.delete(key);
    return times;
  }
}
