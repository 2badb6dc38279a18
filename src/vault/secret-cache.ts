/**
 * Secret (and key) reads from memory: the store's answer to "this secret, latest or a named version" is kept, with its
 * value once a read has opened it, until a change notice for that secret arrives on SECRET_CHANNEL — at once
 * in this process, through PostgreSQL's LISTEN from other replicas — so the hot read path does no database
 * work. A TTL bounds staleness should a notice be lost, and a generation per secret keeps a read that raced a
 * write from caching what the write replaced.
 */
import type { Clock } from '../shared/clock.js';
import { KEY_CHANNEL, SECRET_CHANNEL, secretChangeKey, type SecretEntry, type SecretVersion, type Store } from '../store/types.js';

const TTL_MS = 30_000;
const MAX_SECRETS = 20_000;

/** A read; `value` is filled in by the first caller that opens the sealed value, and kept with the read. */
export type CachedRead<T = string> = { entry: SecretEntry; version: SecretVersion; value?: T };

interface SecretSlot<T> {
  generation: number;
  /** By version id, and '' for the latest. */
  reads: Map<string, { found: CachedRead<T>; until: number }>;
}

/**
 * The cache of one kind of vault object: secrets (`T` the opened value) or keys (`T` the opened, prepared
 * key), each on its own change channel.
 */
export class VaultObjectCache<T> {
  readonly #objects: 'secrets' | 'keys';
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #slots = new Map<string, SecretSlot<T>>();
  readonly #unsubscribe: () => void;
  /** Bumped on every notice, so a read started before any invalidation is never cached after it. */
  #generation = 0;

  constructor(store: Store, clock: Clock, objects: 'secrets' | 'keys') {
    this.#objects = objects;
    this.#store = store;
    this.#clock = clock;
    this.#unsubscribe = store.notifications.subscribe(objects === 'secrets' ? SECRET_CHANNEL : KEY_CHANNEL, (key) => this.invalidate(key));
  }

  /** As `store.secrets.get` (or `store.keys.get`), from memory when this object has not changed since it was read. */
  async get(vaultId: string, name: string, version?: string): Promise<CachedRead<T> | undefined> {
    const key = secretChangeKey(vaultId, name);
    const versionKey = version?.toLowerCase() ?? '';
    const now = this.#clock.now();
    const hit = this.#slots.get(key)?.reads.get(versionKey);
    if (hit !== undefined && hit.until > now) return hit.found;
    const generation = this.#generation;
    const found: CachedRead<T> | undefined = await this.#store[this.#objects].get(vaultId, name, version);
    // Only answers that exist are kept (a miss is cheap to ask again and may be about to change), and only when
    // no change notice arrived while the store was read.
    if (found !== undefined && generation === this.#generation) {
      if (this.#slots.size >= MAX_SECRETS) this.#slots.clear();
      let slot = this.#slots.get(key);
      if (slot === undefined) this.#slots.set(key, (slot = { generation, reads: new Map() }));
      slot.reads.set(versionKey, { found, until: now + TTL_MS });
    }
    return found;
  }

  /** Drops one secret (`{vaultId}/{name}`), or everything. */
  invalidate(key?: string): void {
    this.#generation += 1;
    if (key === undefined) this.#slots.clear();
    else this.#slots.delete(key);
  }

  close(): void {
    this.#unsubscribe();
    this.#slots.clear();
  }
}

/** Secret reads from memory, with their opened values. */
export class SecretCache extends VaultObjectCache<string> {
  constructor(store: Store, clock: Clock) {
    super(store, clock, 'secrets');
  }
}
