/**
 * Vault records by name, in memory, so the hot path never reads the vault from the store. Every change notice
 * on {@link VAULT_CHANNEL} (the vault's own process at once, other replicas through PostgreSQL's LISTEN) drops
 * the whole cache: changes are rare and a notice's payload is an id, not the name a miss was cached under.
 * A TTL bounds staleness should a notice be lost.
 */
import type { Clock } from '../shared/clock.js';
import { VAULT_CHANNEL, type Store, type Vault } from '../store/types.js';

const TTL_MS = 60_000;
/** Unknown names are cached briefly: a vault created a moment later must be found without a notice. */
const MISS_TTL_MS = 1_000;
const MAX_ENTRIES = 10_000;

interface Entry {
  vault: Vault | undefined;
  until: number;
}

/** Active vaults by name, cached. */
export class VaultCache {
  readonly #store: Store;
  readonly #clock: Clock;
  #entries = new Map<string, Entry>();
  readonly #unsubscribe: () => void;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
    this.#unsubscribe = store.notifications.subscribe(VAULT_CHANNEL, () => this.invalidate());
  }

  /** The active vault named `name` (case-insensitive), or undefined. */
  async get(name: string): Promise<Vault | undefined> {
    const key = name.toLowerCase();
    const now = this.#clock.now();
    const hit = this.#entries.get(key);
    if (hit !== undefined && hit.until > now) return hit.vault;
    const stored = await this.#store.vaults.getByName(key);
    const vault = stored !== undefined && stored.deletedAt === null ? stored : undefined;
    if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
    this.#entries.set(key, { vault, until: now + (vault === undefined ? MISS_TTL_MS : TTL_MS) });
    return vault;
  }

  invalidate(): void {
    this.#entries = new Map();
  }

  close(): void {
    this.#unsubscribe();
  }
}
