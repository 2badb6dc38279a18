/**
 * A throwaway in-memory SQLite store (`openStore(':memory:')`: the real repositories and transactions, no file,
 * no server; about 25 ms to open), for unit tests of the directory and the management handlers.
 */
import { openStore } from '../../src/store/index.js';
import type { ResourceGroup, Store } from '../../src/store/types.js';

/** The store, with each tenant, its subscription, and a resource group `rg` (westeurope) in that subscription. */
export async function seededMemoryStore(tenants: ReadonlyArray<readonly [tenantId: string, subscriptionId: string]>): Promise<Store> {
  const store = await openStore(':memory:');
  for (const [tenantId, subscriptionId] of tenants) {
    await store.tenants.create({ id: tenantId, displayName: tenantId, defaultDomain: `${tenantId}.test`, createdAt: 0 });
    await store.subscriptions.create({ id: subscriptionId, tenantId, displayName: 'sub', state: 'Enabled', createdAt: 0 });
    const group: ResourceGroup = {
      id: `/subscriptions/${subscriptionId}/resourceGroups/rg`,
      subscriptionId,
      name: 'rg',
      location: 'westeurope',
      tags: {},
      createdAt: 0,
      updatedAt: 0,
    };
    await store.resourceGroups.put(group);
  }
  return store;
}
