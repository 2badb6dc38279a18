/* eslint-disable @typescript-eslint/require-await -- an in-memory double of an async contract */
/**
 * In-memory VaultStore and SecretStore (a test double with the store contract's semantics), for the data
 * plane's tests while the SQL store is elsewhere; `harness.ts` swaps in the real one when it exists.
 */
import type { SecretEntry, SecretStore, SecretVersion, Store, StoreNotifications, Vault, VaultStore } from '../../src/store/types.js';
import { VAULT_CHANNEL } from '../../src/store/types.js';

interface Row {
  vaultId: string;
  name: string;
  deletedAt: number | null;
  scheduledPurgeAt: number | null;
  versions: SecretVersion[];
}

export class MemoryVaultStores {
  readonly #vaults = new Map<string, Vault>();
  readonly #rows = new Map<string, Row>();
  readonly #listeners = new Map<string, Set<(p: string) => void>>();
  /** How many times a read method ran (hot-path assertions). */
  readonly reads = { vaultGetByName: 0 };

  #publish(channel: string, payload: string): void {
    for (const l of this.#listeners.get(channel) ?? []) l(payload);
  }

  notifications(inner: StoreNotifications): StoreNotifications {
    return {
      subscribe: (channel, listener) => {
        if (channel !== VAULT_CHANNEL) return inner.subscribe(channel, listener);
        const set = this.#listeners.get(channel) ?? new Set();
        set.add(listener);
        this.#listeners.set(channel, set);
        return () => set.delete(listener);
      },
      ready: () => inner.ready(),
    };
  }

  readonly vaults: VaultStore = {
    put: async (vault) => {
      const existing = [...this.#vaults.values()].find((v) => v.name.toLowerCase() === vault.name.toLowerCase());
      if (existing !== undefined && existing.id !== vault.id) return 'conflict';
      this.#vaults.set(vault.id, structuredClone(vault));
      this.#publish(VAULT_CHANNEL, vault.id);
      return existing === undefined ? 'created' : 'updated';
    },
    getByName: async (name) => {
      this.reads.vaultGetByName++;
      const v = [...this.#vaults.values()].find((x) => x.name.toLowerCase() === name.toLowerCase());
      return v === undefined ? undefined : structuredClone(v);
    },
    get: async (id) => structuredClone(this.#vaults.get(id)),
    list: async () => [],
    softDelete: async () => false,
    recover: async () => false,
    purge: async () => false,
    listPurgeDue: async () => [],
  };

  #key(vaultId: string, name: string): string {
    return `${vaultId}|${name.toLowerCase()}`;
  }

  #entry(row: Row): SecretEntry {
    return { vaultId: row.vaultId, name: row.name, deletedAt: row.deletedAt, scheduledPurgeAt: row.scheduledPurgeAt, latest: structuredClone(row.versions.at(-1)!) };
  }

  /** Every stored version (to assert nothing was written). */
  get versionCount(): number {
    return [...this.#rows.values()].reduce((n, r) => n + r.versions.length, 0);
  }

  readonly secrets: SecretStore = {
    addVersion: async (version) => {
      const key = this.#key(version.vaultId, version.name);
      const row = this.#rows.get(key);
      if (row?.deletedAt != null) return 'deleted';
      if (row === undefined) this.#rows.set(key, { vaultId: version.vaultId, name: version.name, deletedAt: null, scheduledPurgeAt: null, versions: [structuredClone(version)] });
      else row.versions.push({ ...structuredClone(version), name: row.name });
      return 'added';
    },
    get: async (vaultId, name, version) => {
      const row = this.#rows.get(this.#key(vaultId, name));
      if (row === undefined || row.deletedAt !== null) return undefined;
      const v = version === undefined ? row.versions.at(-1) : row.versions.find((x) => x.version === version);
      return v === undefined ? undefined : { entry: this.#entry(row), version: structuredClone(v) };
    },
    update: async (vaultId, name, version, patch) => {
      const row = this.#rows.get(this.#key(vaultId, name));
      const v = row?.deletedAt === null ? row.versions.find((x) => x.version === version) : undefined;
      if (v === undefined) return undefined;
      const { updatedAt, ...rest } = patch;
      Object.assign(v, rest, { updatedAt });
      return structuredClone(v);
    },
    list: async (vaultId, { deleted, afterName, limit }) =>
      [...this.#rows.values()]
        .filter((r) => r.vaultId === vaultId && (r.deletedAt !== null) === deleted && (afterName === undefined || r.name.toLowerCase() > afterName))
        .sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1))
        .slice(0, limit)
        .map((r) => this.#entry(r)),
    listVersions: async (vaultId, name, { afterVersion, limit }) => {
      const row = this.#rows.get(this.#key(vaultId, name));
      if (row === undefined || row.deletedAt !== null) return [];
      return row.versions.filter((v) => afterVersion === undefined || v.version > afterVersion).sort((a, b) => (a.version < b.version ? -1 : 1)).slice(0, limit).map((v) => structuredClone(v));
    },
    allVersions: async (vaultId, name) => {
      const row = this.#rows.get(this.#key(vaultId, name));
      return row === undefined || row.deletedAt !== null ? [] : structuredClone(row.versions);
    },
    softDelete: async (vaultId, name, deletedAt, scheduledPurgeAt) => {
      const row = this.#rows.get(this.#key(vaultId, name));
      if (row === undefined || row.deletedAt !== null) return undefined;
      Object.assign(row, { deletedAt, scheduledPurgeAt });
      return this.#entry(row);
    },
    getDeleted: async (vaultId, name) => {
      const row = this.#rows.get(this.#key(vaultId, name));
      return row?.deletedAt == null ? undefined : this.#entry(row);
    },
    recover: async (vaultId, name) => {
      const row = this.#rows.get(this.#key(vaultId, name));
      if (row?.deletedAt == null) return undefined;
      Object.assign(row, { deletedAt: null, scheduledPurgeAt: null });
      return this.#entry(row);
    },
    purge: async (vaultId, name) => {
      const key = this.#key(vaultId, name);
      if (this.#rows.get(key)?.deletedAt == null) return false;
      return this.#rows.delete(key);
    },
    restore: async (versions) => {
      const first = versions[0]!;
      const key = this.#key(first.vaultId, first.name);
      if (this.#rows.has(key)) return 'exists';
      this.#rows.set(key, { vaultId: first.vaultId, name: first.name, deletedAt: null, scheduledPurgeAt: null, versions: structuredClone([...versions]) });
      return 'restored';
    },
    purgeDue: async () => 0,
  };

  /** `store` with these two aggregates (and the vault channel) in place of its own. */
  wrap(store: Store): Store {
    return Object.create(store, {
      vaults: { value: this.vaults },
      secrets: { value: this.secrets },
      notifications: { value: this.notifications(store.notifications) },
    }) as Store;
  }
}
