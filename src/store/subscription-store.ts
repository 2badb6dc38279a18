import type { Kysely, Selectable } from 'kysely';
import type { Database, SubscriptionTable } from './schema.js';
import type { Subscription, SubscriptionStore } from './types.js';
import { idVariants } from './kysely-helpers.js';

function toSubscription(row: Selectable<SubscriptionTable>): Subscription {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    displayName: row.display_name,
    state: row.state as Subscription['state'],
    createdAt: row.created_at,
  };
}

export function createSubscriptionStore(db: Kysely<Database>): SubscriptionStore {
  return {
    async create(subscription) {
      await db
        .insertInto('subscriptions')
        .values({
          id: subscription.id,
          tenant_id: subscription.tenantId,
          display_name: subscription.displayName,
          state: subscription.state,
          created_at: subscription.createdAt,
        })
        .execute();
    },

    async get(id) {
      const row = await db.selectFrom('subscriptions').selectAll().where('id', 'in', idVariants(id)).executeTakeFirst();
      return row === undefined ? undefined : toSubscription(row);
    },

    async listByTenant(tenantId) {
      const rows = await db
        .selectFrom('subscriptions')
        .selectAll()
        .where('tenant_id', 'in', idVariants(tenantId))
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toSubscription);
    },
  };
}
