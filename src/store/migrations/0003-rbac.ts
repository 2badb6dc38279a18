import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * RBAC objects: custom role definitions, role assignments, deny assignments, groups and their members, and a
 * per-tenant version counter that every RBAC-relevant write bumps in its own transaction. Scopes are kept as
 * given and as a lower-cased key (ARM scopes compare case-insensitively).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const ts = dialect === 'postgres' ? 'bigint' : 'integer';
  const counter = dialect === 'postgres' ? 'bigint' : 'integer';

  await db.schema
    .createTable('role_definitions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('role_name', 'text', (c) => c.notNull())
    .addColumn('role_name_key', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('permissions', 'text', (c) => c.notNull())
    .addColumn('assignable_scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addUniqueConstraint('role_definitions_name_unique', ['tenant_id', 'role_name_key'])
    .execute();

  await db.schema
    .createTable('role_assignments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('scope_key', 'text', (c) => c.notNull())
    /** Lower-case subscription id of the scope, or null for scopes above subscriptions (the 4,000 limit counts per subscription). */
    .addColumn('subscription_key', 'text')
    .addColumn('role_definition_id', 'text', (c) => c.notNull())
    .addColumn('principal_id', 'text', (c) => c.notNull())
    .addColumn('principal_type', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addUniqueConstraint('role_assignments_unique', ['tenant_id', 'scope_key', 'role_definition_id', 'principal_id'])
    .execute();
  await db.schema.createIndex('role_assignments_by_principal').on('role_assignments').column('principal_id').execute();
  await db.schema.createIndex('role_assignments_by_role').on('role_assignments').columns(['tenant_id', 'role_definition_id']).execute();
  await db.schema.createIndex('role_assignments_by_subscription').on('role_assignments').columns(['tenant_id', 'subscription_key']).execute();

  await db.schema
    .createTable('deny_assignments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('scope_key', 'text', (c) => c.notNull())
    .addColumn('permissions', 'text', (c) => c.notNull())
    .addColumn('principals', 'text', (c) => c.notNull())
    .addColumn('exclude_principals', 'text', (c) => c.notNull())
    .addColumn('do_not_apply_to_child_scopes', 'integer', (c) => c.notNull())
    .addColumn('is_system_protected', 'integer', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addUniqueConstraint('deny_assignments_name_unique', ['tenant_id', 'scope_key', 'name_key'])
    .execute();

  await db.schema
    .createTable('groups')
    .addColumn('object_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('mail_nickname', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('groups_by_tenant').on('groups').column('tenant_id').execute();

  await db.schema
    .createTable('group_members')
    .addColumn('group_id', 'text', (c) => c.notNull().references('groups.object_id').onDelete('cascade'))
    .addColumn('member_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'member_id'])
    .execute();
  await db.schema.createIndex('group_members_by_member').on('group_members').column('member_id').execute();
  await db.schema.createIndex('group_members_by_tenant').on('group_members').column('tenant_id').execute();

  await db.schema
    .createTable('rbac_versions')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey())
    .addColumn('version', counter, (c) => c.notNull())
    .execute();
}
