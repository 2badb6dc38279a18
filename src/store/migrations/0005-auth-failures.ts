import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Failed client authentications at the token endpoint, counted per key (client, host credential, source
 * address) in fixed windows, so every replica sharing the store throttles the same guesses.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const ts = dialect === 'postgres' ? 'bigint' : 'integer';

  await db.schema
    .createTable('auth_failures')
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('window_start', ts, (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .addPrimaryKeyConstraint('auth_failures_pk', ['key', 'window_start'])
    .execute();
  await db.schema.createIndex('auth_failures_by_expiry').on('auth_failures').column('expires_at').execute();
}
