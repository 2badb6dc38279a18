import type { Kysely, Selectable } from 'kysely';
import type { Permission } from '../rbac/contracts.js';
import type { Database, RoleDefinitionTable } from './schema.js';
import type { CustomRoleDefinition, RoleDefinitionStore } from './types.js';
import { fromJson, idVariants, rowCount, toJson } from './kysely-helpers.js';

function toDefinition(row: Selectable<RoleDefinitionTable>): CustomRoleDefinition {
  return {
    id: row.id,
    roleName: row.role_name,
    roleType: 'CustomRole',
    description: row.description,
    permissions: fromJson<Permission[]>(row.permissions),
    assignableScopes: fromJson<string[]>(row.assignable_scopes),
    tenantId: row.tenant_id,
    createdAt: row.created_at,
    createdBy: row.created_by,
    updatedAt: row.updated_at,
    updatedBy: row.updated_by,
  };
}

/** Custom role definitions. Ids (GUIDs) and tenant ids are stored lower-case; names are unique per tenant, case-insensitively. */
export function createRoleDefinitionStore(db: Kysely<Database>): RoleDefinitionStore {
  return {
    async create(d) {
      const result = await db
        .insertInto('role_definitions')
        .values({
          id: d.id.toLowerCase(),
          tenant_id: d.tenantId.toLowerCase(),
          role_name: d.roleName,
          role_name_key: d.roleName.toLowerCase(),
          description: d.description,
          permissions: toJson(d.permissions),
          assignable_scopes: toJson(d.assignableScopes),
          created_at: d.createdAt,
          created_by: d.createdBy,
          updated_at: d.updatedAt,
          updated_by: d.updatedBy,
        })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      return rowCount(result.numInsertedOrUpdatedRows) > 0;
    },

    async update(d) {
      const tenantId = d.tenantId.toLowerCase();
      const clash = await db
        .selectFrom('role_definitions')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('role_name_key', '=', d.roleName.toLowerCase())
        .where('id', '<>', d.id.toLowerCase())
        .executeTakeFirst();
      if (clash !== undefined) return false;
      const result = await db
        .updateTable('role_definitions')
        .set({
          role_name: d.roleName,
          role_name_key: d.roleName.toLowerCase(),
          description: d.description,
          permissions: toJson(d.permissions),
          assignable_scopes: toJson(d.assignableScopes),
          updated_at: d.updatedAt,
          updated_by: d.updatedBy,
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', d.id.toLowerCase())
        .executeTakeFirst();
      return rowCount(result.numUpdatedRows) > 0;
    },

    async get(tenantId, id) {
      const row = await db
        .selectFrom('role_definitions')
        .selectAll()
        .where('tenant_id', '=', tenantId.toLowerCase())
        .where('id', 'in', idVariants(id))
        .executeTakeFirst();
      return row === undefined ? undefined : toDefinition(row);
    },

    async getByName(tenantId, roleName) {
      const row = await db
        .selectFrom('role_definitions')
        .selectAll()
        .where('tenant_id', '=', tenantId.toLowerCase())
        .where('role_name_key', '=', roleName.toLowerCase())
        .executeTakeFirst();
      return row === undefined ? undefined : toDefinition(row);
    },

    async list(tenantId) {
      const rows = await db
        .selectFrom('role_definitions')
        .selectAll()
        .where('tenant_id', '=', tenantId.toLowerCase())
        .orderBy('role_name_key')
        .orderBy('id')
        .execute();
      return rows.map(toDefinition);
    },

    async count(tenantId) {
      const row = await db
        .selectFrom('role_definitions')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('tenant_id', '=', tenantId.toLowerCase())
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    async delete(tenantId, id) {
      const result = await db
        .deleteFrom('role_definitions')
        .where('tenant_id', '=', tenantId.toLowerCase())
        .where('id', 'in', idVariants(id))
        .executeTakeFirst();
      return rowCount(result.numDeletedRows) > 0;
    },
  };
}
