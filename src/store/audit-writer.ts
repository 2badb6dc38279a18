import { AsyncResource } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { AuditEvent, AuditStore } from './types.js';

export type AuditInput = Omit<AuditEvent, 'id' | 'at'> & { at?: number };

/**
 * Writes audit events with group commit: callers await `record()`, which resolves only once their event
 * is durably stored, but concurrent events share one transaction. That keeps "acknowledged means
 * audited" while the token endpoint does one fsync per batch instead of one per request.
 */
export class AuditWriter {
  readonly #store: AuditStore;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #maxBatch: number;
  #pending: { event: AuditEvent; resolve: () => void; reject: (err: unknown) => void }[] = [];
  #flushing: Promise<void> | undefined;
  #failed = 0;
  /**
   * Starts a drain in the async context the writer was created in, not the caller's: a batch holds other
   * requests' events, so it must never run inside (and fail with) one caller's store transaction.
   */
  readonly #startDrain: () => Promise<void>;

  constructor(options: { store: AuditStore; clock: Clock; logger: Logger; maxBatch?: number }) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#maxBatch = options.maxBatch ?? 512;
    this.#startDrain = AsyncResource.bind(() => this.#drain());
  }

  /** Records one event; resolves when it is committed. */
  record(input: AuditInput): Promise<void> {
    const event: AuditEvent = { ...input, id: randomUUID(), at: input.at ?? this.#clock.now() };
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ event, resolve, reject });
      this.#flushing ??= this.#startDrain();
    });
  }

  /** Events recorded and not yet committed (metrics: the audit backlog). */
  get backlog(): number {
    return this.#pending.length;
  }

  /** Events whose write failed since start: their callers were told, and they are not in the store (metrics: drops). */
  get failedEvents(): number {
    return this.#failed;
  }

  /** Waits for everything recorded so far to be committed. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #drain(): Promise<void> {
    // Let every request that is already running add its event before the first write.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending.splice(0, this.#maxBatch);
        try {
          await this.#store.append(batch.map((p) => p.event));
          for (const p of batch) p.resolve();
        } catch (err) {
          this.#failed += batch.length;
          this.#logger.error({ err: { message: (err as Error).message }, events: batch.length }, 'audit write failed');
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }
}
