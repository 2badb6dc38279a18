import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Failed host enrolments, counted per source address in fixed windows (the same shape as `auth_failures`),
 * so every replica sharing the store refuses an address that failed too often at any of them.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const ts = dialect === 'postgres' ? 'bigint' : 'integer';

  await db.schema
    .createTable('enrolment_failures')
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('window_start', ts, (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .addPrimaryKeyConstraint('enrolment_failures_pk', ['key', 'window_start'])
    .execute();
  await db.schema.createIndex('enrolment_failures_by_expiry').on('enrolment_failures').column('expires_at').execute();
}
