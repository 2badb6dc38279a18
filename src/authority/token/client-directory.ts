/**
 * The token endpoint's cache of clients: an application's (or a user-assigned identity's) service principal and
 * its credentials, by app id, so a grant reads no store on its hot path.
 *
 * Revocation stays instant: a principal's deletion (`openmsi_principals`) and every credential write
 * (`openmsi_credentials`: a secret or certificate added or deleted) drop the entry in this process as the write
 * commits, and on every other replica as PostgreSQL delivers the notice; an entry is also re-read once it is
 * older than `maxAgeMs` (1 s), the bound should a notice be lost (the `LISTEN` connection dropped). Only found
 * clients are cached (an unknown app id is read each time), and a read that overlapped an invalidation is not
 * cached, so a notice can never be undone by a slower read.
 */
import type { Clock } from '../../shared/clock.js';
import {
  CREDENTIAL_CHANNEL,
  PRINCIPAL_CHANNEL,
  type ClientCredential,
  type CredentialStore,
  type ServicePrincipal,
  type ServicePrincipalStore,
  type StoreNotifications,
} from '../../store/types.js';

/** A client as the token endpoint authenticates it. */
export interface ClientRecord {
  principal: ServicePrincipal;
  /** The application's secrets and certificates (none for a managed identity). */
  credentials: readonly ClientCredential[];
}

/** What the cache reads and listens to (the store). */
export interface ClientDirectorySource {
  servicePrincipals: Pick<ServicePrincipalStore, 'getByAppId'>;
  credentials: Pick<CredentialStore, 'listByApp'>;
  notifications: Pick<StoreNotifications, 'subscribe'>;
}

export interface ClientDirectoryOptions {
  store: ClientDirectorySource;
  clock: Clock;
  /** An entry older than this is read again (the bound should a change notice be lost). Default 1 s. */
  maxAgeMs?: number;
  /** Most clients kept; the oldest entry makes room. Default 10,000. */
  maxEntries?: number;
}

interface Entry {
  record: ClientRecord;
  /** When the read that produced it started. */
  readAt: number;
}

export class ClientDirectory {
  readonly #store: ClientDirectorySource;
  readonly #clock: Clock;
  readonly #maxAgeMs: number;
  readonly #maxEntries: number;
  /** By lower-cased app id; Map order is insertion order, so the first key is the oldest. */
  readonly #entries = new Map<string, Entry>();
  /** Lower-cased object id → lower-cased app id, for principal deletion notices. */
  readonly #appIdOf = new Map<string, string>();
  /** Bumped by every invalidation: a read that started before one is not cached. */
  #generation = 0;
  readonly #unsubscribe: Array<() => void>;

  constructor(options: ClientDirectoryOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#maxAgeMs = options.maxAgeMs ?? 1000;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#unsubscribe = [
      this.#store.notifications.subscribe(PRINCIPAL_CHANNEL, (objectId) => this.forgetPrincipal(objectId)),
      this.#store.notifications.subscribe(CREDENTIAL_CHANNEL, (appId) => this.forgetApp(appId)),
    ];
  }

  /** The client with this app id (any casing), or undefined when there is none. */
  async get(appId: string): Promise<ClientRecord | undefined> {
    const key = appId.toLowerCase();
    const now = this.#clock.now();
    const cached = this.#entries.get(key);
    if (cached !== undefined && now - cached.readAt < this.#maxAgeMs && now >= cached.readAt) return cached.record;
    const generation = this.#generation;
    const principal = await this.#store.servicePrincipals.getByAppId(appId);
    if (principal === undefined) return undefined;
    const credentials = principal.kind === 'Application' ? await this.#store.credentials.listByApp(appId) : [];
    const record: ClientRecord = { principal, credentials };
    if (generation === this.#generation) this.#remember(key, principal.objectId.toLowerCase(), { record, readAt: now });
    return record;
  }

  /** Drops the application (a credential notice's payload: its app id). */
  forgetApp(appId: string): void {
    this.#generation++;
    const key = appId.toLowerCase();
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#appIdOf.delete(entry.record.principal.objectId.toLowerCase());
  }

  /** Drops the principal (a principal notice's payload: its object id). */
  forgetPrincipal(objectId: string): void {
    this.#generation++;
    const appId = this.#appIdOf.get(objectId.toLowerCase());
    if (appId !== undefined) this.forgetApp(appId);
  }

  /** Clients cached now (tests, metrics). */
  get size(): number {
    return this.#entries.size;
  }

  close(): void {
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#entries.clear();
    this.#appIdOf.clear();
  }

  #remember(key: string, objectKey: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    this.#appIdOf.set(objectKey, key);
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.forgetApp(oldest);
    }
  }
}
