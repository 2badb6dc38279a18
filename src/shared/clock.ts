/**
 * Time as a dependency. Every piece of time-driven logic (token expiry, key rotation, replay windows,
 * cache refresh) reads the time through a {@link Clock} so tests can drive it with {@link FakeClock}; the one
 * exception is the remote JWKS cache, which is jose's and reads `Date.now()`.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The real wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** Whole seconds since the epoch, as JWT `iat`/`nbf`/`exp` claims use. */
export function epochSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}

/** A clock that only moves when told to. */
export class FakeClock implements Clock {
  #now: number;

  constructor(start: number | Date = Date.UTC(2026, 0, 1)) {
    this.#now = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.#now;
  }

  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new TypeError('FakeClock.advance() takes a non-negative number of milliseconds');
    this.#now += ms;
  }

  set(ms: number): void {
    this.#now = ms;
  }
}

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** Epoch milliseconds as an ISO-8601 UTC timestamp. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
