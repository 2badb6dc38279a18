import type { Kysely, Selectable } from 'kysely';
import type { Database, RefreshTokenTable } from './schema.js';
import type { RefreshTokenRecord, RefreshTokenStore } from './types.js';
import { idVariants, rowCount } from './kysely-helpers.js';

function toRecord(row: Selectable<RefreshTokenTable>): RefreshTokenRecord {
  return {
    tokenHash: row.token_hash,
    familyId: row.family_id,
    userId: row.user_id,
    tenantId: row.tenant_id,
    clientId: row.client_id,
    scope: row.scope,
    issuedAt: Number(row.issued_at),
    expiresAt: Number(row.expires_at),
    usedAt: row.used_at === null ? null : Number(row.used_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}

/**
 * Refresh tokens by hash. `markUsed` is one conditional `UPDATE ... WHERE used_at IS NULL AND revoked_at IS
 * NULL`: the row decides, so of two replicas exchanging the same token at once exactly one wins.
 */
export function createRefreshTokenStore(db: Kysely<Database>): RefreshTokenStore {
  return {
    async create(token) {
      await db
        .insertInto('refresh_tokens')
        .values({
          token_hash: token.tokenHash,
          family_id: token.familyId,
          user_id: token.userId,
          tenant_id: token.tenantId,
          client_id: token.clientId,
          scope: token.scope,
          issued_at: token.issuedAt,
          expires_at: token.expiresAt,
          used_at: token.usedAt,
          revoked_at: token.revokedAt,
        })
        .execute();
    },

    async get(tokenHash) {
      const row = await db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
      return row === undefined ? undefined : toRecord(row);
    },

    async markUsed(tokenHash, now) {
      const result = await db
        .updateTable('refresh_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return rowCount(result.numUpdatedRows) === 1;
    },

    async revokeFamily(familyId, now) {
      const result = await db
        .updateTable('refresh_tokens')
        .set({ revoked_at: now })
        .where('family_id', '=', familyId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return rowCount(result.numUpdatedRows);
    },

    async revokeUser(userId, now) {
      const result = await db
        .updateTable('refresh_tokens')
        .set({ revoked_at: now })
        .where('user_id', 'in', idVariants(userId))
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return rowCount(result.numUpdatedRows);
    },

    async purgeExpired(now) {
      const result = await db.deleteFrom('refresh_tokens').where('expires_at', '<', now).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}
