/**
 * Per-identity token buckets: `perSecond` sustained, `burst` at once. {@link RateLimiter.take} answers 0
 * when the request may go ahead, otherwise the whole seconds to wait (the `Retry-After` of the 429).
 */
import { systemClock, type Clock } from '../shared/clock.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly perSecond: number;
  readonly burst: number;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: { perSecond: number; burst: number; clock?: Clock }) {
    if (!(options.perSecond > 0) || !(options.burst >= 1)) throw new RangeError('a rate limit needs perSecond > 0 and burst >= 1');
    this.perSecond = options.perSecond;
    this.burst = options.burst;
    this.#clock = options.clock ?? systemClock;
  }

  /** Takes one token for `key`: 0 when allowed, else the seconds (≥ 1) until one is available. */
  take(key: string): number {
    const now = this.#clock.now();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.burst, at: now };
      this.#buckets.set(key, bucket);
      if (this.#buckets.size > 100_000) this.#buckets.delete(this.#buckets.keys().next().value ?? key);
    } else if (now > bucket.at) {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perSecond));
  }
}
