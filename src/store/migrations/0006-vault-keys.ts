import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Key Vault keys, shaped as secrets are (0004): one row per name (latest version, soft-delete state, and the
 * key's rotation policy as JSON) and one per version (the sealed key: type, operations and private material,
 * and the attributes). The version table keeps secrets' columns, `content_type` included (always null for a
 * key), so one versioned-object store serves both kinds.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const ts = dialect === 'postgres' ? 'bigint' : 'integer';

  await db.schema
    .createTable('vault_keys')
    .addColumn('vault_id', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('latest_version', 'text', (c) => c.notNull())
    .addColumn('deleted_at', ts)
    .addColumn('scheduled_purge_at', ts)
    .addColumn('rotation_policy', 'text')
    .addPrimaryKeyConstraint('vault_keys_pk', ['vault_id', 'name_key'])
    .execute();
  await db.schema.createIndex('vault_keys_by_purge').on('vault_keys').column('scheduled_purge_at').execute();

  await db.schema
    .createTable('vault_key_versions')
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
    .addPrimaryKeyConstraint('vault_key_versions_pk', ['vault_id', 'name_key', 'version'])
    .execute();
}
