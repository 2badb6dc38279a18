import { sql, type Kysely } from 'kysely';
import type { Dialect } from './dialect.js';
import type { Database } from './schema.js';
import { RBAC_CHANNEL, type RbacVersionStore } from './types.js';
import { atomically } from './kysely-helpers.js';

export interface NotificationHooks {
  dialect: Dialect;
  /** Called once the notice is certain: at once outside a transaction, or queued until the transaction commits. */
  published(channel: string, payload: string): void;
}

/** The per-tenant RBAC version counter; each bump also publishes a change notice (see {@link RbacVersionStore.bump}). */
export function createRbacVersionStore(db: Kysely<Database>, hooks: NotificationHooks | undefined): RbacVersionStore {
  return {
    async get(tenantId) {
      const row = await db.selectFrom('rbac_versions').select('version').where('tenant_id', '=', tenantId.toLowerCase()).executeTakeFirst();
      return row === undefined ? 0 : Number(row.version);
    },

    async bump(tenantId) {
      const key = tenantId.toLowerCase();
      const version = await atomically(db, async (trx) => {
        const row = await trx
          .insertInto('rbac_versions')
          .values({ tenant_id: key, version: 1 })
          .onConflict((oc) => oc.column('tenant_id').doUpdateSet({ version: sql<number>`rbac_versions.version + 1` }))
          .returning('version')
          .executeTakeFirstOrThrow();
        // In the writing transaction: PostgreSQL delivers it to every LISTENer when (and only if) it commits.
        if (hooks?.dialect === 'postgres') await sql`select pg_notify(${RBAC_CHANNEL}, ${key})`.execute(trx);
        return Number(row.version);
      });
      hooks?.published(RBAC_CHANNEL, key);
      return version;
    },
  };
}
