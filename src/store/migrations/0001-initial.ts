import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/** The first schema. Types are chosen to mean the same on SQLite and PostgreSQL. */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const ts = dialect === 'postgres' ? 'bigint' : 'integer';

  await db.schema
    .createTable('tenants')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('default_domain', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('subscriptions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('resource_groups')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('subscription_id', 'text', (c) => c.notNull().references('subscriptions.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('resource_groups_by_subscription').on('resource_groups').column('subscription_id').execute();

  await db.schema
    .createTable('resources')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('subscription_id', 'text', (c) => c.notNull())
    .addColumn('resource_group_key', 'text', (c) => c.notNull().references('resource_groups.key'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('properties', 'text', (c) => c.notNull())
    .addColumn('system_principal_id', 'text')
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('resources_by_group').on('resources').column('resource_group_key').execute();

  await db.schema
    .createTable('resource_user_identities')
    .addColumn('resource_key', 'text', (c) => c.notNull().references('resources.key').onDelete('cascade'))
    .addColumn('identity_key', 'text', (c) => c.notNull().references('resources.key').onDelete('cascade'))
    .addColumn('created_at', ts, (c) => c.notNull())
    .addPrimaryKeyConstraint('resource_user_identities_pk', ['resource_key', 'identity_key'])
    .execute();
  await db.schema.createIndex('resource_user_identities_by_identity').on('resource_user_identities').column('identity_key').execute();

  await db.schema
    .createTable('service_principals')
    .addColumn('object_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('app_id', 'text', (c) => c.notNull().unique())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('mi_resource_key', 'text')
    .addColumn('mi_resource_id', 'text')
    .addColumn('mi_type', 'text')
    .addColumn('is_directory_admin', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('service_principals_by_mi_resource').on('service_principals').column('mi_resource_key').execute();
  await db.schema.createIndex('service_principals_by_tenant').on('service_principals').column('tenant_id').execute();

  await db.schema
    .createTable('client_credentials')
    .addColumn('key_id', 'text', (c) => c.primaryKey())
    .addColumn('app_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('hint', 'text')
    .addColumn('secret_hash', 'text')
    .addColumn('thumbprint_sha1', 'text')
    .addColumn('thumbprint_sha256', 'text')
    .addColumn('certificate', 'text')
    .addColumn('start_at', ts, (c) => c.notNull())
    .addColumn('end_at', ts, (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('client_credentials_by_app').on('client_credentials').column('app_id').execute();

  await db.schema
    .createTable('signing_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('private_key_enc', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('activated_at', ts)
    .addColumn('retired_at', ts)
    .addColumn('publish_until', ts)
    .addColumn('revoked_at', ts)
    .execute();

  await db.schema
    .createTable('assertion_replay')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('assertion_replay_by_expiry').on('assertion_replay').column('expires_at').execute();

  await db.schema
    .createTable('audit_events')
    .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('at', ts, (c) => c.notNull())
    .addColumn('tenant_id', 'text')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_events_by_time').on('audit_events').column('at').execute();

  await db.schema
    .createTable('host_credentials')
    .addColumn('key_id', 'text', (c) => c.primaryKey())
    .addColumn('host_resource_key', 'text', (c) => c.notNull())
    .addColumn('host_resource_id', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .addColumn('revoked_at', ts)
    .execute();
  await db.schema.createIndex('host_credentials_by_host').on('host_credentials').column('host_resource_key').execute();
}
