import type { Clock } from '../../shared/clock.js';
import type { EnrolmentFailureStore } from '../../store/types.js';
import { checkThrottleLimit, SharedFailureCounts, sourceKey, type CountedKey, type ThrottleLimit } from '../failure-counts.js';

export interface EnrolmentThrottleOptions {
  store: EnrolmentFailureStore;
  clock: Clock;
  /** Failures tolerated per source address in each fixed window. */
  limit: ThrottleLimit;
  /** A store read or write that failed (the failure is still counted in this process). */
  onError?: (err: unknown) => void;
}

/**
 * Failed enrolments per source address (an IPv6 address by its /64), counted in fixed windows in the store,
 * so an address that failed too often at any replica is refused at every one: at once at the replica that saw
 * the failures, within a second (the shared count's read-through cache) at the others. Join tokens carry
 * 256 random bits, so this guards against noise and misuse more than against guessing. The counting is the
 * token endpoint throttle's ({@link SharedFailureCounts}); time comes from the injected clock.
 */
export class EnrolmentThrottle {
  readonly #limit: ThrottleLimit;
  readonly #counts: SharedFailureCounts;

  constructor(options: EnrolmentThrottleOptions) {
    checkThrottleLimit(options.limit);
    this.#limit = options.limit;
    this.#counts = new SharedFailureCounts({
      store: options.store,
      clock: options.clock,
      ...(options.onError === undefined ? {} : { onError: options.onError }),
    });
  }

  /** Whole seconds until `address` may try again (at least 1), or 0 when it may now. Reads the shared count; never throws. */
  async retryAfterSeconds(address: string): Promise<number> {
    const keys = this.#keys(address);
    await this.#counts.refresh(keys);
    const wait = this.#counts.waitMs(keys);
    return wait > 0 ? Math.max(1, Math.ceil(wait / 1000)) : 0;
  }

  /** Counts one failed enrolment from `address`: in this process at once, then in the store. Never throws. */
  recordFailure(address: string): Promise<void> {
    return this.#counts.failed(this.#keys(address));
  }

  #keys(address: string): CountedKey[] {
    return [[`source:${sourceKey(address)}`, this.#limit]];
  }
}
