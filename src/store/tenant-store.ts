import type { Kysely, Selectable } from 'kysely';
import type { Database, TenantTable } from './schema.js';
import type { Tenant, TenantStore } from './types.js';
import { idVariants } from './kysely-helpers.js';

function toTenant(row: Selectable<TenantTable>): Tenant {
  return { id: row.id, displayName: row.display_name, defaultDomain: row.default_domain, createdAt: row.created_at };
}

export function createTenantStore(db: Kysely<Database>): TenantStore {
  return {
    async create(tenant) {
      await db
        .insertInto('tenants')
        .values({
          id: tenant.id,
          display_name: tenant.displayName,
          // Domains compare case-insensitively; store the lower-case form the type promises.
          default_domain: tenant.defaultDomain.toLowerCase(),
          created_at: tenant.createdAt,
        })
        .execute();
    },

    async get(idOrDomain) {
      const rows = await db
        .selectFrom('tenants')
        .selectAll()
        .where((eb) => eb.or([eb('id', 'in', idVariants(idOrDomain)), eb('default_domain', '=', idOrDomain.toLowerCase())]))
        .execute();
      // An id match wins over a domain match (they could only collide through odd input).
      const lower = idOrDomain.toLowerCase();
      const row = rows.find((r) => r.id.toLowerCase() === lower) ?? rows[0];
      return row === undefined ? undefined : toTenant(row);
    },

    async list() {
      const rows = await db.selectFrom('tenants').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map(toTenant);
    },
  };
}
