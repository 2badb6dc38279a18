import type { Kysely, Selectable } from 'kysely';
import { armKey, resourceGroupId } from '../shared/ids.js';
import type { Database, ResourceTable } from './schema.js';
import { HOST_CHANNEL, hostChangeKey, type Resource, type ResourceStore, type Tags } from './types.js';
import type { NotificationHooks } from './rbac-version-store.js';
import { announcing } from './notify.js';
import { chunks, fromJson, idVariants, rowCount, toJson } from './kysely-helpers.js';

/** The subscription and resource group named by any ARM id under a resource group (nested resources included). */
const SCOPE = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)(?:\/|$)/i;

function scopeOf(id: string): { subscriptionId: string; resourceGroup: string } | undefined {
  const m = SCOPE.exec(id);
  return m?.[1] !== undefined && m[2] !== undefined ? { subscriptionId: m[1], resourceGroup: m[2] } : undefined;
}

function toResource(row: Selectable<ResourceTable>, userAssignedIdentityIds: string[]): Resource {
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    // The row keeps only the lower-case group key; the id carries the group name in its real casing.
    resourceGroup: scopeOf(row.id)?.resourceGroup ?? row.resource_group_key.slice(row.resource_group_key.lastIndexOf('/') + 1),
    type: row.type,
    name: row.name,
    location: row.location,
    tags: fromJson<Tags>(row.tags),
    properties: fromJson<Record<string, unknown>>(row.properties),
    systemPrincipalId: row.system_principal_id,
    userAssignedIdentityIds,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Bound-parameter budget per `IN (...)` list: far below SQLite's and PostgreSQL's limits. */
const IN_LIST_MAX = 500;

/** The attached user-assigned identity ids (in their canonical casing) of each resource key. */
async function attachedIdentities(db: Kysely<Database>, resourceKeys: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const slice of chunks(resourceKeys, IN_LIST_MAX)) {
    const rows = await db
      .selectFrom('resource_user_identities as rui')
      .innerJoin('resources as identity', 'identity.key', 'rui.identity_key')
      .select(['rui.resource_key as resourceKey', 'identity.id as identityId'])
      .where('rui.resource_key', 'in', slice)
      .orderBy('rui.resource_key')
      .orderBy('rui.identity_key')
      .execute();
    for (const row of rows) {
      const list = out.get(row.resourceKey);
      if (list === undefined) out.set(row.resourceKey, [row.identityId]);
      else list.push(row.identityId);
    }
  }
  return out;
}

/** Resources and their attached identities. Puts and deletes publish the resource on {@link HOST_CHANNEL}. */
export function createResourceStore(db: Kysely<Database>, hooks?: NotificationHooks): ResourceStore {
  const changed = (key: string) => hostChangeKey.resource(key);
  return {
    async put(resource) {
      const key = armKey(resource.id);
      const scope = scopeOf(resource.id) ?? { subscriptionId: resource.subscriptionId, resourceGroup: resource.resourceGroup };
      const columns = {
        id: resource.id,
        subscription_id: scope.subscriptionId,
        resource_group_key: armKey(resourceGroupId(scope.subscriptionId, scope.resourceGroup)),
        type: resource.type,
        name: resource.name,
        location: resource.location,
        tags: toJson(resource.tags),
        properties: toJson(resource.properties),
        system_principal_id: resource.systemPrincipalId,
        updated_at: resource.updatedAt,
      };
      const wanted = [...new Set(resource.userAssignedIdentityIds.map(armKey))];

      return announcing(
        db,
        hooks,
        HOST_CHANNEL,
        async (trx) => {
          let outcome: 'created' | 'updated' | undefined;
          for (let attempt = 0; attempt < 3 && outcome === undefined; attempt++) {
            const inserted = await trx
              .insertInto('resources')
              .values({ key, ...columns, created_at: resource.createdAt })
              .onConflict((oc) => oc.column('key').doNothing())
              .executeTakeFirst();
            if (rowCount(inserted.numInsertedOrUpdatedRows) > 0) {
              outcome = 'created';
              break;
            }
            // Replace everything but the creation time.
            const updated = await trx.updateTable('resources').set(columns).where('key', '=', key).executeTakeFirst();
            if (rowCount(updated.numUpdatedRows) > 0) outcome = 'updated';
          }
          if (outcome === undefined) throw new Error(`resource ${resource.id} kept changing while it was being written`);

          // Replace the set of attached identities, keeping the attachment time of those that stay.
          const current = await trx.selectFrom('resource_user_identities').select('identity_key').where('resource_key', '=', key).execute();
          const currentKeys = new Set(current.map((r) => r.identity_key));
          const wantedKeys = new Set(wanted);
          const gone = [...currentKeys].filter((k) => !wantedKeys.has(k));
          const added = wanted.filter((k) => !currentKeys.has(k));
          for (const slice of chunks(gone, IN_LIST_MAX)) {
            await trx.deleteFrom('resource_user_identities').where('resource_key', '=', key).where('identity_key', 'in', slice).execute();
          }
          for (const slice of chunks(added, IN_LIST_MAX)) {
            await trx
              .insertInto('resource_user_identities')
              .values(slice.map((identityKey) => ({ resource_key: key, identity_key: identityKey, created_at: resource.updatedAt })))
              .onConflict((oc) => oc.columns(['resource_key', 'identity_key']).doNothing())
              .execute();
          }
          return outcome;
        },
        () => changed(key),
      );
    },

    async get(id) {
      const key = armKey(id);
      const row = await db.selectFrom('resources').selectAll().where('key', '=', key).executeTakeFirst();
      if (row === undefined) return undefined;
      const identities = await attachedIdentities(db, [key]);
      return toResource(row, identities.get(key) ?? []);
    },

    async list(filter) {
      let query = db.selectFrom('resources').selectAll().where('subscription_id', 'in', idVariants(filter.subscriptionId));
      if (filter.resourceGroup !== undefined) {
        query = query.where('resource_group_key', '=', armKey(resourceGroupId(filter.subscriptionId, filter.resourceGroup)));
      }
      if (filter.type !== undefined) {
        const type = filter.type.toLowerCase();
        query = query.where((eb) => eb(eb.fn<string>('lower', ['type']), '=', type));
      }
      const rows = await query.orderBy('key').execute();
      const identities = await attachedIdentities(
        db,
        rows.map((r) => r.key),
      );
      return rows.map((row) => toResource(row, identities.get(row.key) ?? []));
    },

    async listAttachedTo(identityId) {
      const rows = await db
        .selectFrom('resource_user_identities as rui')
        .innerJoin('resources as r', 'r.key', 'rui.resource_key')
        .select('r.id')
        .where('rui.identity_key', '=', armKey(identityId))
        .orderBy('r.key')
        .execute();
      return rows.map((r) => r.id);
    },

    async delete(id) {
      const key = armKey(id);
      return announcing(
        db,
        hooks,
        HOST_CHANNEL,
        async (trx) => {
          // The foreign keys cascade too; deleting explicitly keeps this correct even without them.
          await trx
            .deleteFrom('resource_user_identities')
            .where((eb) => eb.or([eb('resource_key', '=', key), eb('identity_key', '=', key)]))
            .execute();
          const result = await trx.deleteFrom('resources').where('key', '=', key).executeTakeFirst();
          return rowCount(result.numDeletedRows) > 0;
        },
        (deleted) => (deleted ? changed(key) : undefined),
      );
    },
  };
}
