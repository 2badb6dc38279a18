import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import { atomically, rowCount } from './kysely-helpers.js';
import type { NotificationHooks } from './rbac-version-store.js';
import { KEY_CHANNEL, secretChangeKey, type KeyStore } from './types.js';
import { createVaultObjectStore } from './vault-object-store.js';

/** Keys of vaults (`vault_keys`, `vault_key_versions`), announced on {@link KEY_CHANNEL}, with their rotation policies. */
export function createKeyStore(db: Kysely<Database>, hooks?: NotificationHooks): KeyStore {
  const objects = createVaultObjectStore(db, { entries: 'vault_keys', versions: 'vault_key_versions', channel: KEY_CHANNEL }, hooks);
  return {
    ...objects,

    async getRotationPolicy(vaultId, name) {
      const row = await db
        .selectFrom('vault_keys')
        .select('rotation_policy')
        .where('vault_id', '=', vaultId)
        .where('name_key', '=', name.toLowerCase())
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      return row === undefined ? undefined : { policy: row.rotation_policy };
    },

    async setRotationPolicy(vaultId, name, policy) {
      const key = secretChangeKey(vaultId, name);
      const done = await atomically(db, async (trx) => {
        const result = await trx
          .updateTable('vault_keys')
          .set({ rotation_policy: policy })
          .where('vault_id', '=', vaultId)
          .where('name_key', '=', name.toLowerCase())
          .where('deleted_at', 'is', null)
          .executeTakeFirst();
        const updated = rowCount(result.numUpdatedRows) > 0;
        if (updated && hooks?.dialect === 'postgres') await sql`select pg_notify(${KEY_CHANNEL}, ${key})`.execute(trx);
        return updated;
      });
      if (done) hooks?.published(KEY_CHANNEL, key);
      return done;
    },

    async listRotationPolicies() {
      const rows = await db
        .selectFrom('vault_keys')
        .select(['vault_id', 'name', 'latest_version', 'rotation_policy'])
        .where('deleted_at', 'is', null)
        .where('rotation_policy', 'is not', null)
        .execute();
      return rows.map((r) => ({ vaultId: r.vault_id, name: r.name, latestVersion: r.latest_version, policy: r.rotation_policy ?? '' }));
    },
  };
}
