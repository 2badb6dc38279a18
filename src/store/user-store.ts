import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { Database, UserTable } from './schema.js';
import { PRINCIPAL_CHANNEL, type User, type UserStore } from './types.js';
import { atomically, idVariants, rowCount } from './kysely-helpers.js';
import type { NotificationHooks } from './rbac-version-store.js';

function toUser(row: Selectable<UserTable>): User {
  return {
    objectId: row.object_id,
    tenantId: row.tenant_id,
    userPrincipalName: row.user_principal_name,
    displayName: row.display_name,
    mail: row.mail,
    accountEnabled: row.account_enabled !== 0,
    passwordHash: row.password_hash,
    forceChangePasswordNextSignIn: row.force_change_password !== 0,
    passwordChangedAt: Number(row.password_changed_at),
    createdAt: Number(row.created_at),
  };
}

/**
 * Users. A deletion, or disabling an account, publishes the object id on {@link PRINCIPAL_CHANNEL} (in the
 * transaction on PostgreSQL, after commit in this process), as a service principal's deletion does, so
 * verified-token caches drop the user's tokens at once.
 */
export function createUserStore(db: Kysely<Database>, hooks?: NotificationHooks): UserStore {
  const publishing = async (objectId: string, change: (trx: Kysely<Database>) => Promise<boolean>): Promise<boolean> => {
    const key = objectId.toLowerCase();
    const changed = await atomically(db, async (trx) => {
      const done = await change(trx);
      if (done && hooks?.dialect === 'postgres') await sql`select pg_notify(${PRINCIPAL_CHANNEL}, ${key})`.execute(trx);
      return done;
    });
    if (changed) hooks?.published(PRINCIPAL_CHANNEL, key);
    return changed;
  };

  return {
    async create(user) {
      await db
        .insertInto('users')
        .values({
          object_id: user.objectId,
          tenant_id: user.tenantId,
          user_principal_name: user.userPrincipalName,
          upn_key: user.userPrincipalName.toLowerCase(),
          display_name: user.displayName,
          mail: user.mail,
          account_enabled: user.accountEnabled ? 1 : 0,
          password_hash: user.passwordHash,
          force_change_password: user.forceChangePasswordNextSignIn ? 1 : 0,
          password_changed_at: user.passwordChangedAt,
          created_at: user.createdAt,
        })
        .execute();
    },

    async getByObjectId(objectId) {
      const row = await db.selectFrom('users').selectAll().where('object_id', 'in', idVariants(objectId)).executeTakeFirst();
      return row === undefined ? undefined : toUser(row);
    },

    async getByUserPrincipalName(upn) {
      const row = await db.selectFrom('users').selectAll().where('upn_key', '=', upn.toLowerCase()).executeTakeFirst();
      return row === undefined ? undefined : toUser(row);
    },

    async list(tenantId) {
      const rows = await db.selectFrom('users').selectAll().where('tenant_id', 'in', idVariants(tenantId)).orderBy('created_at').orderBy('object_id').execute();
      return rows.map(toUser);
    },

    async update(objectId, changes) {
      let updated: User | undefined;
      const set: Updateable<UserTable> = {};
      if (changes.displayName !== undefined) set.display_name = changes.displayName;
      if (changes.mail !== undefined) set.mail = changes.mail;
      if (changes.accountEnabled !== undefined) set.account_enabled = changes.accountEnabled ? 1 : 0;
      if (changes.passwordHash !== undefined) set.password_hash = changes.passwordHash;
      if (changes.forceChangePasswordNextSignIn !== undefined) set.force_change_password = changes.forceChangePasswordNextSignIn ? 1 : 0;
      if (changes.passwordChangedAt !== undefined) set.password_changed_at = changes.passwordChangedAt;
      await publishing(objectId, async (trx) => {
        const before = await trx.selectFrom('users').selectAll().where('object_id', 'in', idVariants(objectId)).executeTakeFirst();
        if (before === undefined) return false;
        if (Object.keys(set).length > 0) await trx.updateTable('users').set(set).where('object_id', '=', before.object_id).execute();
        const after = await trx.selectFrom('users').selectAll().where('object_id', '=', before.object_id).executeTakeFirstOrThrow();
        updated = toUser(after);
        // Only disabling tells the caches: the account's tokens stop opening anything.
        return before.account_enabled !== 0 && after.account_enabled === 0;
      });
      return updated;
    },

    delete(objectId) {
      return publishing(objectId, async (trx) => {
        const result = await trx.deleteFrom('users').where('object_id', 'in', idVariants(objectId)).executeTakeFirst();
        return rowCount(result.numDeletedRows) > 0;
      });
    },
  };
}
