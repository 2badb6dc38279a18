import type { Kysely, Selectable } from 'kysely';
import { armKey } from '../shared/ids.js';
import type { Database, JoinTokenTable } from './schema.js';
import type { JoinToken, JoinTokenStore } from './types.js';
import { rowCount } from './kysely-helpers.js';

function toJoinToken(row: Selectable<JoinTokenTable>): JoinToken {
  return {
    id: row.id,
    secretHash: row.secret_hash,
    tenantId: row.tenant_id,
    hostResourceId: row.host_resource_id,
    createdBy: row.created_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    usedAt: row.used_at,
  };
}

/**
 * Host join tokens. `consume` is one `UPDATE ... WHERE used_at IS NULL AND expires_at > at`: the row decides,
 * so of concurrent callers (on any number of replicas sharing PostgreSQL) exactly one sees a row updated.
 */
export function createJoinTokenStore(db: Kysely<Database>): JoinTokenStore {
  return {
    async create(token) {
      await db
        .insertInto('join_tokens')
        .values({
          id: token.id,
          secret_hash: token.secretHash,
          tenant_id: token.tenantId,
          host_resource_key: armKey(token.hostResourceId),
          host_resource_id: token.hostResourceId,
          created_by: token.createdBy,
          created_at: token.createdAt,
          expires_at: token.expiresAt,
          used_at: token.usedAt,
        })
        .execute();
    },

    async get(id) {
      const row = await db.selectFrom('join_tokens').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toJoinToken(row);
    },

    async consume(id, at) {
      const result = await db
        .updateTable('join_tokens')
        .set({ used_at: at })
        .where('id', '=', id)
        .where('used_at', 'is', null)
        .where('expires_at', '>', at)
        .executeTakeFirst();
      return rowCount(result.numUpdatedRows) === 1;
    },

    async purgeExpired(before) {
      const result = await db.deleteFrom('join_tokens').where('expires_at', '<', before).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}
