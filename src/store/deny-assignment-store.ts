import type { Kysely, Selectable } from 'kysely';
import type { DenyAssignment, Permission } from '../rbac/contracts.js';
import type { Database, DenyAssignmentTable } from './schema.js';
import type { DenyAssignmentStore, StoredDenyAssignment } from './types.js';
import { fromJson, idVariants, rowCount, toJson } from './kysely-helpers.js';

function toDeny(row: Selectable<DenyAssignmentTable>): StoredDenyAssignment {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    denyAssignmentName: row.name,
    description: row.description,
    scope: row.scope,
    permissions: fromJson<Permission[]>(row.permissions),
    principals: fromJson<DenyAssignment['principals']>(row.principals),
    excludePrincipals: fromJson<DenyAssignment['excludePrincipals']>(row.exclude_principals),
    doNotApplyToChildScopes: row.do_not_apply_to_child_scopes !== 0,
    isSystemProtected: row.is_system_protected !== 0,
    createdAt: row.created_at,
    createdBy: row.created_by,
  };
}

/** Deny assignments (openmsi lets an administrator create them; Azure does not). */
export function createDenyAssignmentStore(db: Kysely<Database>): DenyAssignmentStore {
  return {
    async create(d) {
      const result = await db
        .insertInto('deny_assignments')
        .values({
          id: d.id.toLowerCase(),
          tenant_id: d.tenantId.toLowerCase(),
          name: d.denyAssignmentName,
          name_key: d.denyAssignmentName.toLowerCase(),
          description: d.description,
          scope: d.scope,
          scope_key: d.scope.toLowerCase(),
          permissions: toJson(d.permissions),
          principals: toJson(d.principals),
          exclude_principals: toJson(d.excludePrincipals),
          do_not_apply_to_child_scopes: d.doNotApplyToChildScopes ? 1 : 0,
          is_system_protected: d.isSystemProtected ? 1 : 0,
          created_at: d.createdAt,
          created_by: d.createdBy,
        })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      return rowCount(result.numInsertedOrUpdatedRows) > 0;
    },

    async get(tenantId, id) {
      const row = await db
        .selectFrom('deny_assignments')
        .selectAll()
        .where('tenant_id', '=', tenantId.toLowerCase())
        .where('id', 'in', idVariants(id))
        .executeTakeFirst();
      return row === undefined ? undefined : toDeny(row);
    },

    async list(tenantId) {
      const rows = await db
        .selectFrom('deny_assignments')
        .selectAll()
        .where('tenant_id', '=', tenantId.toLowerCase())
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toDeny);
    },

    async delete(tenantId, id) {
      const result = await db
        .deleteFrom('deny_assignments')
        .where('tenant_id', '=', tenantId.toLowerCase())
        .where('id', 'in', idVariants(id))
        .executeTakeFirst();
      return rowCount(result.numDeletedRows) > 0;
    },
  };
}
