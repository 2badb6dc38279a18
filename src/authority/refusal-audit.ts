/**
 * Bounded auditing of token-endpoint refusals. A flood of refused requests must not grow the audit store
 * without bound, whoever sends it:
 *
 * - Refusals that name no known caller (an unknown tenant, a malformed body, an unknown client id) are
 *   counted, not written: one `token.denied` row per (source address, reason) per interval, with the count.
 * - Refusals of a known caller (a wrong secret, a replayed assertion, a throttled client) are kept per
 *   (tenant, caller, source, reason): the first of an interval is written at once, as its own row (so one
 *   failure is visible immediately), and the rest of the interval are counted in one row at its end
 *   (`writeFirst`).
 *
 * Each interval holds at most `maxKeys` distinct keys; refusals beyond that are counted in one overflow row
 * (source `*`). So 1,000 wrong secrets for one client write two rows, not 1,000.
 *
 * Intervals follow the injected clock. A background timer flushes an interval once it has ended, the next
 * counted refusal flushes it too, and `close()` flushes what is left.
 */
import type { AuditInput } from '../store/audit-writer.js';
import type { Clock } from '../shared/clock.js';
import { BackgroundInterval } from '../shared/interval.js';

export interface RefusalAuditOptions {
  /** Where rows go: resolves once a row is committed (the {@link AuditWriter}'s `record`). */
  record: (event: AuditInput) => Promise<void>;
  clock: Clock;
  /** Length of an interval, ms (default one minute). */
  intervalMs?: number;
  /** Distinct (source, reason) pairs per interval before the rest goes into the overflow row (default 1000). */
  maxKeys?: number;
  /** Called when a flush fails; rows of that interval are lost, never retried forever. */
  onError?: (err: unknown) => void;
  /** The action of the rows written (default `token.denied`). */
  action?: string;
  /** Write the first refusal of each key in an interval at once, as its own row (default false). */
  writeFirst?: boolean;
}

export interface Refusal {
  /** The remote address. */
  source: string;
  /** A short, bounded reason, such as `invalid_request/90002`. */
  reason: string;
  /** A known caller's tenant and id (bounded), when the refusal names one; part of the key. */
  tenantId?: string | null;
  actor?: string;
  /** The row written for the first refusal of a key (with `writeFirst`): its target and detail. */
  target?: string;
  detail?: Record<string, unknown>;
}

interface Bucket {
  source: string;
  reason: string;
  tenantId: string | null;
  actor: string;
  /** Refusals not yet written. */
  count: number;
  firstAt: number;
  lastAt: number;
}

export const OVERFLOW_SOURCE = '*';
export const DEFAULT_REFUSAL_INTERVAL_MS = 60_000;
export const DEFAULT_REFUSAL_MAX_KEYS = 1000;

export class RefusalAudit {
  readonly #record: (event: AuditInput) => Promise<void>;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #onError: (err: unknown) => void;
  readonly #action: string;
  readonly #writeFirst: boolean;
  readonly #timer = new BackgroundInterval();
  #windowStart: number | undefined;
  #buckets = new Map<string, Bucket>();
  #overflow: Bucket | undefined;
  #inFlight = new Set<Promise<void>>();

  constructor(options: RefusalAuditOptions) {
    this.#record = options.record;
    this.#clock = options.clock;
    this.#intervalMs = options.intervalMs ?? DEFAULT_REFUSAL_INTERVAL_MS;
    this.#maxKeys = options.maxKeys ?? DEFAULT_REFUSAL_MAX_KEYS;
    this.#onError = options.onError ?? (() => undefined);
    this.#action = options.action ?? 'token.denied';
    this.#writeFirst = options.writeFirst ?? false;
    if (!Number.isFinite(this.#intervalMs) || this.#intervalMs < 1) throw new TypeError('RefusalAudit needs a positive interval');
    if (!Number.isInteger(this.#maxKeys) || this.#maxKeys < 1) throw new TypeError('RefusalAudit needs a positive key cap');
  }

  /** Starts the background flush (an unref'd timer; the clock decides whether an interval has ended). */
  start(checkEveryMs = Math.min(this.#intervalMs, 10_000)): void {
    this.#timer.start(checkEveryMs, () => this.flushEnded(), this.#onError);
  }

  /** Counts one refusal in the current interval (with `writeFirst`, writes the first of its key at once). */
  count(refusal: Refusal): void {
    const now = this.#clock.now();
    this.#rollOver(now);
    this.#windowStart ??= this.#windowOf(now);
    const tenantId = refusal.tenantId ?? null;
    const actor = refusal.actor ?? 'anonymous';
    const key = `${refusal.source}\0${refusal.reason}\0${tenantId ?? ''}\0${actor}`;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxKeys) {
        this.#overflow ??= { source: OVERFLOW_SOURCE, reason: 'overflow', tenantId: null, actor: 'anonymous', count: 0, firstAt: now, lastAt: now };
        this.#overflow.count++;
        this.#overflow.lastAt = now;
        return;
      }
      bucket = { source: refusal.source, reason: refusal.reason, tenantId, actor, count: 0, firstAt: now, lastAt: now };
      this.#buckets.set(key, bucket);
      if (this.#writeFirst) {
        this.#write({
          at: now,
          tenantId,
          actor,
          action: this.#action,
          target: refusal.target ?? refusal.source,
          outcome: 'failure',
          detail: { ...refusal.detail, source: refusal.source, reason: refusal.reason },
        });
        return;
      }
    }
    if (bucket.count === 0) bucket.firstAt = now;
    bucket.count++;
    bucket.lastAt = now;
  }

  /** Writes the current interval if it has ended by the clock; resolves once written. */
  async flushEnded(): Promise<void> {
    this.#rollOver(this.#clock.now());
    await this.#settle();
  }

  /** Writes everything counted so far, ended or not, and waits for it (on close). */
  async flush(): Promise<void> {
    this.#emit();
    await this.#settle();
  }

  /** Stops the timer and flushes. */
  async close(): Promise<void> {
    this.#timer.stop();
    await this.flush();
  }

  #windowOf(now: number): number {
    return Math.floor(now / this.#intervalMs) * this.#intervalMs;
  }

  #rollOver(now: number): void {
    if (this.#windowStart !== undefined && this.#windowOf(now) !== this.#windowStart) this.#emit();
  }

  #emit(): void {
    const windowStart = this.#windowStart;
    if (windowStart === undefined) return;
    const buckets = [...this.#buckets.values()];
    if (this.#overflow !== undefined) buckets.push(this.#overflow);
    this.#buckets = new Map();
    this.#overflow = undefined;
    this.#windowStart = undefined;
    const windowEnd = windowStart + this.#intervalMs;
    for (const b of buckets) {
      if (b.count === 0) continue;
      this.#write({
        at: b.lastAt,
        tenantId: b.tenantId,
        actor: b.actor,
        action: this.#action,
        target: b.source,
        outcome: 'failure',
        detail: { aggregated: true, source: b.source, reason: b.reason, count: b.count, firstAt: b.firstAt, lastAt: b.lastAt, windowStart, windowEnd },
      });
    }
  }

  #write(event: AuditInput): void {
    const written = this.#record(event).catch(this.#onError);
    this.#inFlight.add(written);
    void written.finally(() => this.#inFlight.delete(written));
  }

  async #settle(): Promise<void> {
    await Promise.all([...this.#inFlight]);
  }
}
