import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Key Vault: vaults (names unique in the installation, active or soft-deleted, with the access model in
 * `properties`) and their secrets: one row per name (latest version, soft-delete state) and one per version
 * (the sealed value and the attributes). Names are kept as given and as a lower-case key (Key Vault names
 * compare case-insensitively); every read by name and version is a primary-key lookup.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const ts = dialect === 'postgres' ? 'bigint' : 'integer';

  await db.schema
    .createTable('vaults')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull().unique())
    .addColumn('resource_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('subscription_id', 'text', (c) => c.notNull())
    .addColumn('subscription_key', 'text', (c) => c.notNull())
    .addColumn('resource_group', 'text', (c) => c.notNull())
    .addColumn('resource_group_key', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('properties', 'text', (c) => c.notNull())
    .addColumn('deleted_at', ts)
    .addColumn('scheduled_purge_at', ts)
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('vaults_by_group').on('vaults').columns(['subscription_key', 'resource_group_key']).execute();
  await db.schema.createIndex('vaults_by_purge').on('vaults').column('scheduled_purge_at').execute();

  await db.schema
    .createTable('vault_secrets')
    .addColumn('vault_id', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('latest_version', 'text', (c) => c.notNull())
    .addColumn('deleted_at', ts)
    .addColumn('scheduled_purge_at', ts)
    .addPrimaryKeyConstraint('vault_secrets_pk', ['vault_id', 'name_key'])
    .execute();
  await db.schema.createIndex('vault_secrets_by_purge').on('vault_secrets').column('scheduled_purge_at').execute();

  await db.schema
    .createTable('vault_secret_versions')
    .addColumn('vault_id', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('sealed_value', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text')
    .addColumn('tags', 'text')
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('not_before', ts)
    .addColumn('expires', ts)
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .addPrimaryKeyConstraint('vault_secret_versions_pk', ['vault_id', 'name_key', 'version'])
    .execute();
}
