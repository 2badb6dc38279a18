import type { Kysely, Selectable } from 'kysely';
import { armKey, resourceGroupId } from '../shared/ids.js';
import type { Database, ResourceGroupTable } from './schema.js';
import type { ResourceGroup, ResourceGroupStore, Tags } from './types.js';
import { fromJson, idVariants, rowCount, toJson } from './kysely-helpers.js';

function toResourceGroup(row: Selectable<ResourceGroupTable>): ResourceGroup {
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    name: row.name,
    location: row.location,
    tags: fromJson<Tags>(row.tags),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function groupKey(subscriptionId: string, name: string): string {
  return armKey(resourceGroupId(subscriptionId, name));
}

export function createResourceGroupStore(db: Kysely<Database>): ResourceGroupStore {
  return {
    async put(group) {
      const key = groupKey(group.subscriptionId, group.name);
      if (armKey(group.id) !== key) {
        throw new TypeError(`resource group id ${group.id} does not match subscription ${group.subscriptionId} and name ${group.name}`);
      }
      // Insert-if-absent, else update: both single statements, so two replicas racing to create the same
      // group never fail on the primary key. The loop covers a delete landing between the two.
      for (let attempt = 0; attempt < 3; attempt++) {
        const inserted = await db
          .insertInto('resource_groups')
          .values({
            key,
            id: group.id,
            subscription_id: group.subscriptionId,
            name: group.name,
            location: group.location,
            tags: toJson(group.tags),
            created_at: group.createdAt,
            updated_at: group.updatedAt,
          })
          .onConflict((oc) => oc.column('key').doNothing())
          .executeTakeFirst();
        if (rowCount(inserted.numInsertedOrUpdatedRows) > 0) return 'created';
        // ARM keeps the name (and so the id) in the casing the group was created with, and its createdAt.
        const updated = await db
          .updateTable('resource_groups')
          .set({ location: group.location, tags: toJson(group.tags), updated_at: group.updatedAt })
          .where('key', '=', key)
          .executeTakeFirst();
        if (rowCount(updated.numUpdatedRows) > 0) return 'updated';
      }
      throw new Error(`resource group ${group.id} kept changing while it was being written`);
    },

    async get(subscriptionId, name) {
      const row = await db.selectFrom('resource_groups').selectAll().where('key', '=', groupKey(subscriptionId, name)).executeTakeFirst();
      return row === undefined ? undefined : toResourceGroup(row);
    },

    async list(subscriptionId) {
      const rows = await db.selectFrom('resource_groups').selectAll().where('subscription_id', 'in', idVariants(subscriptionId)).orderBy('key').execute();
      return rows.map(toResourceGroup);
    },

    async delete(subscriptionId, name) {
      const result = await db.deleteFrom('resource_groups').where('key', '=', groupKey(subscriptionId, name)).executeTakeFirst();
      return rowCount(result.numDeletedRows) > 0;
    },
  };
}
