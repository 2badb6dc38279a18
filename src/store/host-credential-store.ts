import type { Kysely, Selectable } from 'kysely';
import { armKey } from '../shared/ids.js';
import type { Database, HostCredentialTable } from './schema.js';
import { HOST_CHANNEL, hostChangeKey, type HostCredential, type HostCredentialStore } from './types.js';
import type { NotificationHooks } from './rbac-version-store.js';
import { announcing } from './notify.js';
import { fromJson, rowCount, toJson } from './kysely-helpers.js';

function toHostCredential(row: Selectable<HostCredentialTable>): HostCredential {
  return {
    keyId: row.key_id,
    hostResourceId: row.host_resource_id,
    publicJwk: fromJson<Record<string, unknown>>(row.public_jwk),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

/** Host credentials. Revocations publish on {@link HOST_CHANNEL} (the host's long poll answers at once). */
export function createHostCredentialStore(db: Kysely<Database>, hooks?: NotificationHooks): HostCredentialStore {
  /**
   * Revokes the unrevoked credentials whose `column` is `value` and, when there were any, announces `notice`.
   * Only the first revocation counts: a revoked key keeps its original revocation time.
   */
  const revokeWhere = (column: 'key_id' | 'host_resource_key', value: string, at: number, notice: string): Promise<number> =>
    announcing(
      db,
      hooks,
      HOST_CHANNEL,
      async (trx) =>
        rowCount(
          (await trx.updateTable('host_credentials').set({ revoked_at: at }).where(column, '=', value).where('revoked_at', 'is', null).executeTakeFirst())
            .numUpdatedRows,
        ),
      (revoked) => (revoked > 0 ? notice : undefined),
    );
  return {
    async add(credential) {
      await db
        .insertInto('host_credentials')
        .values({
          key_id: credential.keyId,
          host_resource_key: armKey(credential.hostResourceId),
          host_resource_id: credential.hostResourceId,
          public_jwk: toJson(credential.publicJwk),
          created_at: credential.createdAt,
          expires_at: credential.expiresAt,
          revoked_at: credential.revokedAt,
        })
        .execute();
    },

    async get(keyId) {
      const row = await db.selectFrom('host_credentials').selectAll().where('key_id', '=', keyId).executeTakeFirst();
      return row === undefined ? undefined : toHostCredential(row);
    },

    async listByHost(hostResourceId) {
      const rows = await db
        .selectFrom('host_credentials')
        .selectAll()
        .where('host_resource_key', '=', armKey(hostResourceId))
        .orderBy('created_at')
        .orderBy('key_id')
        .execute();
      return rows.map(toHostCredential);
    },

    async revoke(keyId, at) {
      return (await revokeWhere('key_id', keyId, at, hostChangeKey.credential(keyId))) > 0;
    },

    async revokeByHost(hostResourceId, at) {
      const key = armKey(hostResourceId);
      return revokeWhere('host_resource_key', key, at, hostChangeKey.resource(key));
    },
  };
}
