import type { Kysely, Selectable } from 'kysely';
import type { Database, FederationLinkTable } from './schema.js';
import { HOST_CHANNEL, hostChangeKey, type FederationLink, type FederationLinkStore } from './types.js';
import { chunks, rowCount } from './kysely-helpers.js';
import type { NotificationHooks } from './rbac-version-store.js';
import { announcing } from './notify.js';

function toLink(row: Selectable<FederationLinkTable>): FederationLink {
  return {
    ownerId: row.owner_id,
    tenantId: row.tenant_id,
    clientId: row.client_id,
    authorityHost: row.authority_host,
    issuer: row.issuer,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/**
 * Upstream links of identities (outbound federation), one row per identity object id (lower-case). Puts and
 * deletes publish the identity on {@link HOST_CHANNEL} (the hosts it is assigned to serve another upstream).
 */
export function createFederationLinkStore(db: Kysely<Database>, hooks?: NotificationHooks): FederationLinkStore {
  const owner = (ownerId: string) => ownerId.toLowerCase();
  return {
    async put(link) {
      return announcing(
        db,
        hooks,
        HOST_CHANNEL,
        async (trx) => {
          const values = {
            tenant_id: link.tenantId,
            client_id: link.clientId,
            authority_host: link.authorityHost,
            issuer: link.issuer,
            updated_at: link.updatedAt,
          };
          const existing = await trx.selectFrom('federation_links').select('owner_id').where('owner_id', '=', owner(link.ownerId)).executeTakeFirst();
          if (existing !== undefined) {
            await trx.updateTable('federation_links').set(values).where('owner_id', '=', owner(link.ownerId)).execute();
            return 'updated';
          }
          await trx
            .insertInto('federation_links')
            .values({ owner_id: owner(link.ownerId), ...values, created_at: link.createdAt })
            .execute();
          return 'created';
        },
        () => hostChangeKey.identity(link.ownerId),
      );
    },

    async get(ownerId) {
      const row = await db.selectFrom('federation_links').selectAll().where('owner_id', '=', owner(ownerId)).executeTakeFirst();
      return row === undefined ? undefined : toLink(row);
    },

    async getMany(ownerIds) {
      const out: FederationLink[] = [];
      // Bounded IN lists: both backends limit bound parameters.
      for (const slice of chunks([...new Set(ownerIds.map(owner))], 500)) {
        const rows = await db.selectFrom('federation_links').selectAll().where('owner_id', 'in', slice).execute();
        out.push(...rows.map(toLink));
      }
      return out;
    },

    async delete(ownerId) {
      return announcing(
        db,
        hooks,
        HOST_CHANNEL,
        async (trx) => rowCount((await trx.deleteFrom('federation_links').where('owner_id', '=', owner(ownerId)).executeTakeFirst()).numDeletedRows) > 0,
        (deleted) => (deleted ? hostChangeKey.identity(ownerId) : undefined),
      );
    },
  };
}
