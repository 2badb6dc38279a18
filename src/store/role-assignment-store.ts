import type { Kysely, Selectable } from 'kysely';
import type { PrincipalType } from '../rbac/contracts.js';
import type { Database, RoleAssignmentTable } from './schema.js';
import type { RoleAssignmentStore, StoredRoleAssignment } from './types.js';
import { chunks, idVariants, rowCount } from './kysely-helpers.js';

function toAssignment(row: Selectable<RoleAssignmentTable>): StoredRoleAssignment {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    scope: row.scope,
    roleDefinitionId: row.role_definition_id,
    principalId: row.principal_id,
    principalType: row.principal_type as PrincipalType,
    description: row.description,
    createdAt: row.created_at,
    createdBy: row.created_by,
    updatedAt: row.updated_at,
    updatedBy: row.updated_by,
  };
}

/** The lower-case subscription id of a scope, or null above subscriptions. */
export function subscriptionKeyOf(scope: string): string | null {
  const m = /^\/subscriptions\/([^/]+)/i.exec(scope);
  return m?.[1]?.toLowerCase() ?? null;
}

/**
 * Role assignments. Ids, tenant, role definition and principal ids (GUIDs) are stored lower-case; the scope is
 * kept as given with a lower-case key. Never stores a condition: conditions are refused before this.
 */
export function createRoleAssignmentStore(db: Kysely<Database>): RoleAssignmentStore {
  return {
    async create(a) {
      const result = await db
        .insertInto('role_assignments')
        .values({
          id: a.id.toLowerCase(),
          tenant_id: a.tenantId.toLowerCase(),
          scope: a.scope,
          scope_key: a.scope.toLowerCase(),
          subscription_key: subscriptionKeyOf(a.scope),
          role_definition_id: a.roleDefinitionId.toLowerCase(),
          principal_id: a.principalId.toLowerCase(),
          principal_type: a.principalType,
          description: a.description,
          created_at: a.createdAt,
          created_by: a.createdBy,
          updated_at: a.updatedAt,
          updated_by: a.updatedBy,
        })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      return rowCount(result.numInsertedOrUpdatedRows) > 0;
    },

    async get(tenantId, id) {
      const row = await db
        .selectFrom('role_assignments')
        .selectAll()
        .where('tenant_id', '=', tenantId.toLowerCase())
        .where('id', 'in', idVariants(id))
        .executeTakeFirst();
      return row === undefined ? undefined : toAssignment(row);
    },

    async find(tenantId, scope, roleDefinitionId, principalId) {
      const row = await db
        .selectFrom('role_assignments')
        .selectAll()
        .where('tenant_id', '=', tenantId.toLowerCase())
        .where('scope_key', '=', scope.toLowerCase())
        .where('role_definition_id', '=', roleDefinitionId.toLowerCase())
        .where('principal_id', '=', principalId.toLowerCase())
        .executeTakeFirst();
      return row === undefined ? undefined : toAssignment(row);
    },

    async list(filter) {
      const principalIds = filter.principalIds?.map((p) => p.toLowerCase());
      if (principalIds?.length === 0) return [];
      const out: StoredRoleAssignment[] = [];
      for (const slice of principalIds === undefined ? [undefined] : chunks(principalIds, 500)) {
        let query = db.selectFrom('role_assignments').selectAll().where('tenant_id', '=', filter.tenantId.toLowerCase());
        if (slice !== undefined) query = query.where('principal_id', 'in', slice);
        if (filter.scope !== undefined) query = query.where('scope_key', '=', filter.scope.toLowerCase());
        if (filter.roleDefinitionId !== undefined) query = query.where('role_definition_id', '=', filter.roleDefinitionId.toLowerCase());
        const rows = await query.orderBy('created_at').orderBy('id').execute();
        out.push(...rows.map(toAssignment));
      }
      return out;
    },

    async countInSubscription(tenantId, subscriptionId) {
      const row = await db
        .selectFrom('role_assignments')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('tenant_id', '=', tenantId.toLowerCase())
        .where('subscription_key', '=', subscriptionId.toLowerCase())
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    async countByRoleDefinition(tenantId, roleDefinitionId) {
      const row = await db
        .selectFrom('role_assignments')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('tenant_id', '=', tenantId.toLowerCase())
        .where('role_definition_id', '=', roleDefinitionId.toLowerCase())
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    async updateDescription(tenantId, id, description, at, by) {
      const result = await db
        .updateTable('role_assignments')
        .set({ description, updated_at: at, updated_by: by })
        .where('tenant_id', '=', tenantId.toLowerCase())
        .where('id', 'in', idVariants(id))
        .executeTakeFirst();
      return rowCount(result.numUpdatedRows) > 0;
    },

    async delete(tenantId, id) {
      const result = await db
        .deleteFrom('role_assignments')
        .where('tenant_id', '=', tenantId.toLowerCase())
        .where('id', 'in', idVariants(id))
        .executeTakeFirst();
      return rowCount(result.numDeletedRows) > 0;
    },

    async deleteByPrincipal(principalId) {
      const result = await db.deleteFrom('role_assignments').where('principal_id', '=', principalId.toLowerCase()).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}
