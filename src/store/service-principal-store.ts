import { sql, type Kysely, type Selectable } from 'kysely';
import { armKey } from '../shared/ids.js';
import type { Database, ServicePrincipalTable } from './schema.js';
import { PRINCIPAL_CHANNEL, type ManagedIdentityType, type ServicePrincipal, type ServicePrincipalStore } from './types.js';
import { atomically, idVariants, rowCount } from './kysely-helpers.js';
import type { NotificationHooks } from './rbac-version-store.js';

function toPrincipal(row: Selectable<ServicePrincipalTable>): ServicePrincipal {
  return {
    objectId: row.object_id,
    tenantId: row.tenant_id,
    appId: row.app_id,
    displayName: row.display_name,
    kind: row.kind as ServicePrincipal['kind'],
    managedIdentity: row.mi_type !== null && row.mi_resource_id !== null ? { type: row.mi_type as ManagedIdentityType, resourceId: row.mi_resource_id } : null,
    isDirectoryAdmin: row.is_directory_admin !== 0,
    createdAt: row.created_at,
  };
}

/**
 * Service principals. A deletion publishes the object id on {@link PRINCIPAL_CHANNEL} — in the deleting
 * transaction on PostgreSQL (other replicas hear it when, and only if, it commits), to this process's
 * listeners after the commit — so verified-token caches drop the principal's tokens at once.
 */
export function createServicePrincipalStore(db: Kysely<Database>, hooks?: NotificationHooks): ServicePrincipalStore {
  return {
    async create(principal) {
      await db
        .insertInto('service_principals')
        .values({
          object_id: principal.objectId,
          tenant_id: principal.tenantId,
          app_id: principal.appId,
          display_name: principal.displayName,
          kind: principal.kind,
          mi_resource_key: principal.managedIdentity === null ? null : armKey(principal.managedIdentity.resourceId),
          mi_resource_id: principal.managedIdentity?.resourceId ?? null,
          mi_type: principal.managedIdentity?.type ?? null,
          is_directory_admin: principal.isDirectoryAdmin ? 1 : 0,
          created_at: principal.createdAt,
        })
        .execute();
    },

    async getByObjectId(objectId) {
      const row = await db.selectFrom('service_principals').selectAll().where('object_id', 'in', idVariants(objectId)).executeTakeFirst();
      return row === undefined ? undefined : toPrincipal(row);
    },

    async getByAppId(appId) {
      const row = await db.selectFrom('service_principals').selectAll().where('app_id', 'in', idVariants(appId)).executeTakeFirst();
      return row === undefined ? undefined : toPrincipal(row);
    },

    async getByManagedIdentityResource(resourceId, type) {
      const row = await db
        .selectFrom('service_principals')
        .selectAll()
        .where('mi_resource_key', '=', armKey(resourceId))
        .where('mi_type', '=', type)
        .orderBy('created_at')
        .executeTakeFirst();
      return row === undefined ? undefined : toPrincipal(row);
    },

    async list(filter) {
      let query = db.selectFrom('service_principals').selectAll().where('tenant_id', 'in', idVariants(filter.tenantId));
      if (filter.kind !== undefined) query = query.where('kind', '=', filter.kind);
      if (filter.displayName !== undefined) {
        // Entra matches display names case-insensitively; lower() on both sides keeps each backend self-consistent.
        const displayName = filter.displayName;
        query = query.where((eb) => eb(eb.fn<string>('lower', ['display_name']), '=', eb.fn<string>('lower', [eb.val(displayName)])));
      }
      const rows = await query.orderBy('created_at').orderBy('object_id').execute();
      return rows.map(toPrincipal);
    },

    async delete(objectId) {
      const key = objectId.toLowerCase();
      const deleted = await atomically(db, async (trx) => {
        const result = await trx.deleteFrom('service_principals').where('object_id', 'in', idVariants(objectId)).executeTakeFirst();
        const gone = rowCount(result.numDeletedRows) > 0;
        if (gone && hooks?.dialect === 'postgres') await sql`select pg_notify(${PRINCIPAL_CHANNEL}, ${key})`.execute(trx);
        return gone;
      });
      if (deleted) hooks?.published(PRINCIPAL_CHANNEL, key);
      return deleted;
    },
  };
}
