import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Workload identity federation, outbound: an openmsi identity's link to an upstream Entra (tenant, client id,
 * authority host), one per identity, keyed by the identity's object id. The agent exchanges openmsi's
 * assertion for the upstream's token for identities that have one.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const ts = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('federation_links')
    .addColumn('owner_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('authority_host', 'text', (c) => c.notNull())
    .addColumn('issuer', 'text')
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();
}
