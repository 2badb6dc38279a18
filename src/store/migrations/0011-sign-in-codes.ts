import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Interactive sign-in: authorization codes (a hash of each, bound to client, redirect URI and PKCE challenge,
 * single use) and device codes (a hash of the device code; the user code the person types; its decision).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const ts = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('authorization_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('code_challenge', 'text', (c) => c.notNull())
    .addColumn('code_challenge_method', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text')
    /** The refresh-token family the code's tokens start: a replayed code revokes it (RFC 6749 §4.1.2). */
    .addColumn('family_id', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .addColumn('used_at', ts)
    .execute();
  await db.schema.createIndex('authorization_codes_by_expiry').on('authorization_codes').column('expires_at').execute();

  await db.schema
    .createTable('device_codes')
    .addColumn('device_code_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_code', 'text', (c) => c.notNull().unique())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    /** pending, approved, declined or redeemed. */
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('interval_seconds', 'integer', (c) => c.notNull())
    .addColumn('last_poll_at', ts)
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('device_codes_by_source').on('device_codes').columns(['source', 'created_at']).execute();
  await db.schema.createIndex('device_codes_by_expiry').on('device_codes').column('expires_at').execute();
}
