import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Workload identity federation, inbound: the federated identity credentials of user-assigned identities and
 * applications (one row each, keyed by the owning principal's object id and the lower-cased name), and the
 * per-issuer settings that say where an issuer's keys come from (discovery, a JWKS URL or a static JWKS).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const ts = dialect === 'postgres' ? 'bigint' : 'integer';

  await db.schema
    .createTable('federated_credentials')
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('subject', 'text')
    .addColumn('claims_matching_expression', 'text')
    .addColumn('audiences', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .addPrimaryKeyConstraint('federated_credentials_pk', ['owner_id', 'name_key'])
    .execute();
  await db.schema.createIndex('federated_credentials_by_id').on('federated_credentials').column('id').unique().execute();
  await db.schema.createIndex('federated_credentials_by_issuer').on('federated_credentials').columns(['owner_id', 'issuer']).execute();

  await db.schema
    .createTable('federation_issuers')
    .addColumn('issuer', 'text', (c) => c.primaryKey())
    .addColumn('jwks', 'text')
    .addColumn('jwks_uri', 'text')
    .addColumn('ca', 'text')
    .addColumn('algorithms', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();
}
