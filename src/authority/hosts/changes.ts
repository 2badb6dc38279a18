/**
 * Wakes the host API's long polls (`GET self?since=&wait=`) when something a host's description depends on
 * changes: the store's {@link HOST_CHANNEL} notices (resources, identity links, credential revocations) and
 * {@link PRINCIPAL_CHANNEL} (identity deletions), from this process at once and, on PostgreSQL, from every
 * replica through LISTEN. A waiter names the keys it depends on; only notices for those wake it.
 */
import { HOST_CHANNEL, hostChangeKey, PRINCIPAL_CHANNEL, type StoreNotifications } from '../../store/types.js';

export class HostChanges {
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #unsubscribe: Array<() => void>;
  /** Counts every notice: a reader that saw it change while it read the store reads again. */
  #sequence = 0;
  #closed = false;

  constructor(notifications: StoreNotifications) {
    this.#unsubscribe = [
      notifications.subscribe(HOST_CHANNEL, (key) => this.#notice(key)),
      notifications.subscribe(PRINCIPAL_CHANNEL, (objectId) => this.#notice(hostChangeKey.identity(objectId))),
    ];
  }

  /** True once {@link close}d: long polls answer at once instead of waiting. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The number of notices heard so far. */
  get sequence(): number {
    return this.#sequence;
  }

  /** Waiting long polls (metrics, tests). */
  get waiting(): number {
    let n = 0;
    for (const set of this.#waiters.values()) n += set.size;
    return n;
  }

  /**
   * Resolves true on the first notice for one of `keys`, or when a notice of any key arrived after `since`
   * (a {@link sequence} taken before the caller read the store); false after `timeoutMs` or on `signal`.
   */
  wait(keys: readonly string[], since: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#sequence !== since) return Promise.resolve(true);
    if (this.#closed || timeoutMs <= 0 || signal?.aborted === true) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const done = (changed: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        for (const key of keys) {
          const set = this.#waiters.get(key);
          set?.delete(wake);
          if (set?.size === 0) this.#waiters.delete(key);
        }
        resolve(changed);
      };
      const wake = () => done(true);
      const aborted = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      signal?.addEventListener('abort', aborted, { once: true });
      for (const key of keys) {
        let set = this.#waiters.get(key);
        if (set === undefined) this.#waiters.set(key, (set = new Set()));
        set.add(wake);
      }
    });
  }

  /** Stops listening and ends every wait (a server shutting down answers its long polls now, not in 30 s). */
  close(): void {
    this.#closed = true;
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    for (const set of [...this.#waiters.values()]) for (const wake of [...set]) wake();
  }

  #notice(key: string): void {
    this.#sequence++;
    for (const wake of [...(this.#waiters.get(key) ?? [])]) wake();
  }
}
