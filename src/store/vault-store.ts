import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, VaultTable } from './schema.js';
import { VAULT_CHANNEL, type Vault, type VaultProperties, type VaultStore } from './types.js';
import { atomically, fromJson, rowCount, toJson } from './kysely-helpers.js';
import type { NotificationHooks } from './rbac-version-store.js';

function toVault(row: Selectable<VaultTable>): Vault {
  return {
    id: row.id,
    resourceId: row.resource_id,
    name: row.name,
    tenantId: row.tenant_id,
    subscriptionId: row.subscription_id,
    resourceGroup: row.resource_group,
    location: row.location,
    tags: fromJson(row.tags),
    properties: fromJson<VaultProperties>(row.properties),
    deletedAt: row.deleted_at,
    scheduledPurgeAt: row.scheduled_purge_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Vaults. Names are unique in the installation (they are DNS labels), active or soft-deleted, and compare
 * case-insensitively. Every change publishes the vault id on {@link VAULT_CHANNEL} — in the writing
 * transaction on PostgreSQL (so other replicas hear it when, and only if, it commits), and to this process's
 * listeners after the commit — so data-plane caches of the vault (its access model) are dropped at once.
 */
export function createVaultStore(db: Kysely<Database>, hooks: NotificationHooks | undefined): VaultStore {
  async function changed(trx: Kysely<Database>, id: string): Promise<void> {
    if (hooks?.dialect === 'postgres') await sql`select pg_notify(${VAULT_CHANNEL}, ${id})`.execute(trx);
  }
  function published(id: string): void {
    hooks?.published(VAULT_CHANNEL, id);
  }

  /** Moves a vault between active and soft-deleted: only from the state named, and announced when it moved. */
  async function setDeletion(
    id: string,
    values: { deleted_at: number | null; scheduled_purge_at: number | null; updated_at: number },
    from: 'active' | 'deleted',
  ): Promise<boolean> {
    const done = await atomically(db, async (trx) => {
      const result = await trx
        .updateTable('vaults')
        .set(values)
        .where('id', '=', id)
        .where('deleted_at', from === 'active' ? 'is' : 'is not', null)
        .executeTakeFirst();
      const updated = rowCount(result.numUpdatedRows) > 0;
      if (updated) await changed(trx, id);
      return updated;
    });
    if (done) published(id);
    return done;
  }

  return {
    async put(vault) {
      const outcome = await atomically(db, async (trx) => {
        const existing = await trx.selectFrom('vaults').select('id').where('name_key', '=', vault.name.toLowerCase()).executeTakeFirst();
        if (existing !== undefined && existing.id !== vault.id) return 'conflict' as const;
        const row = {
          id: vault.id,
          name: vault.name,
          name_key: vault.name.toLowerCase(),
          resource_id: vault.resourceId,
          tenant_id: vault.tenantId,
          subscription_id: vault.subscriptionId,
          subscription_key: vault.subscriptionId.toLowerCase(),
          resource_group: vault.resourceGroup,
          resource_group_key: vault.resourceGroup.toLowerCase(),
          location: vault.location,
          tags: toJson(vault.tags),
          properties: toJson(vault.properties),
          deleted_at: vault.deletedAt,
          scheduled_purge_at: vault.scheduledPurgeAt,
          created_at: vault.createdAt,
          updated_at: vault.updatedAt,
        };
        if (existing === undefined) await trx.insertInto('vaults').values(row).execute();
        else {
          const { id: _id, created_at: _created, ...rest } = row;
          await trx.updateTable('vaults').set(rest).where('id', '=', vault.id).execute();
        }
        await changed(trx, vault.id);
        return existing === undefined ? ('created' as const) : ('updated' as const);
      });
      if (outcome !== 'conflict') published(vault.id);
      return outcome;
    },

    async getByName(name) {
      const row = await db.selectFrom('vaults').selectAll().where('name_key', '=', name.toLowerCase()).executeTakeFirst();
      return row === undefined ? undefined : toVault(row);
    },

    async get(id) {
      const row = await db.selectFrom('vaults').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toVault(row);
    },

    async list(filter) {
      let query = db.selectFrom('vaults').selectAll().where('subscription_key', '=', filter.subscriptionId.toLowerCase());
      if (filter.resourceGroup !== undefined) query = query.where('resource_group_key', '=', filter.resourceGroup.toLowerCase());
      query = filter.deleted === true ? query.where('deleted_at', 'is not', null) : query.where('deleted_at', 'is', null);
      const rows = await query.orderBy('name_key').execute();
      return rows.map(toVault);
    },

    softDelete(id, deletedAt, scheduledPurgeAt) {
      return setDeletion(id, { deleted_at: deletedAt, scheduled_purge_at: scheduledPurgeAt, updated_at: deletedAt }, 'active');
    },

    recover(id, updatedAt) {
      return setDeletion(id, { deleted_at: null, scheduled_purge_at: null, updated_at: updatedAt }, 'deleted');
    },

    async purge(id) {
      const done = await atomically(db, async (trx) => {
        await trx.deleteFrom('vault_secret_versions').where('vault_id', '=', id).execute();
        await trx.deleteFrom('vault_secrets').where('vault_id', '=', id).execute();
        await trx.deleteFrom('vault_key_versions').where('vault_id', '=', id).execute();
        await trx.deleteFrom('vault_keys').where('vault_id', '=', id).execute();
        const result = await trx.deleteFrom('vaults').where('id', '=', id).executeTakeFirst();
        const deleted = rowCount(result.numDeletedRows) > 0;
        if (deleted) await changed(trx, id);
        return deleted;
      });
      if (done) published(id);
      return done;
    },

    async listPurgeDue(now) {
      const rows = await db.selectFrom('vaults').selectAll().where('scheduled_purge_at', '<=', now).where('deleted_at', 'is not', null).execute();
      return rows.map(toVault);
    },
  };
}
