import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Host enrolment: single-use join tokens (only a hash of each secret is kept). Audit rows are already unique
 * by id (0001), which agent audit ingestion relies on to ignore records it has stored before.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const ts = dialect === 'postgres' ? 'bigint' : 'integer';

  await db.schema
    .createTable('join_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('host_resource_key', 'text', (c) => c.notNull())
    .addColumn('host_resource_id', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .addColumn('used_at', ts)
    .execute();
  await db.schema.createIndex('join_tokens_by_host').on('join_tokens').column('host_resource_key').execute();
  await db.schema.createIndex('join_tokens_by_expiry').on('join_tokens').column('expires_at').execute();
}
