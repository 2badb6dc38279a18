import type { Kysely, Selectable } from 'kysely';
import type { AuthorizationCodeTable, Database, DeviceCodeTable } from './schema.js';
import type { AuthorizationCodeRecord, AuthorizationCodeStore, DeviceCodeRecord, DeviceCodeStatus, DeviceCodeStore } from './types.js';
import { rowCount } from './kysely-helpers.js';

function toCode(row: Selectable<AuthorizationCodeTable>): AuthorizationCodeRecord {
  return {
    codeHash: row.code_hash,
    tenantId: row.tenant_id,
    clientId: row.client_id,
    redirectUri: row.redirect_uri,
    codeChallenge: row.code_challenge,
    codeChallengeMethod: row.code_challenge_method === 'plain' ? 'plain' : 'S256',
    userId: row.user_id,
    nonce: row.nonce,
    familyId: row.family_id,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    usedAt: row.used_at === null ? null : Number(row.used_at),
  };
}

/**
 * Authorization codes by hash. `markUsed` is one conditional `UPDATE ... WHERE used_at IS NULL`: the row
 * decides, so of two replicas redeeming the same code at once exactly one wins.
 */
export function createAuthorizationCodeStore(db: Kysely<Database>): AuthorizationCodeStore {
  return {
    async create(code) {
      await db
        .insertInto('authorization_codes')
        .values({
          code_hash: code.codeHash,
          tenant_id: code.tenantId,
          client_id: code.clientId,
          redirect_uri: code.redirectUri,
          code_challenge: code.codeChallenge,
          code_challenge_method: code.codeChallengeMethod,
          user_id: code.userId,
          nonce: code.nonce,
          family_id: code.familyId,
          created_at: code.createdAt,
          expires_at: code.expiresAt,
          used_at: code.usedAt,
        })
        .execute();
    },
    async get(codeHash) {
      const row = await db.selectFrom('authorization_codes').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
      return row === undefined ? undefined : toCode(row);
    },
    async markUsed(codeHash, now) {
      const result = await db
        .updateTable('authorization_codes')
        .set({ used_at: now })
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return rowCount(result.numUpdatedRows) === 1;
    },
    async purgeExpired(now) {
      const result = await db.deleteFrom('authorization_codes').where('expires_at', '<', now).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}

const STATUSES: ReadonlySet<string> = new Set<DeviceCodeStatus>(['pending', 'approved', 'declined', 'redeemed']);

function toDevice(row: Selectable<DeviceCodeTable>): DeviceCodeRecord {
  if (!STATUSES.has(row.status)) throw new Error(`device code with unknown status ${row.status}`);
  return {
    deviceCodeHash: row.device_code_hash,
    userCode: row.user_code,
    tenantId: row.tenant_id,
    clientId: row.client_id,
    scope: row.scope,
    source: row.source,
    status: row.status as DeviceCodeStatus,
    userId: row.user_id,
    intervalSeconds: Number(row.interval_seconds),
    lastPollAt: row.last_poll_at === null ? null : Number(row.last_poll_at),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
  };
}

/** Device codes by hash and by user code; every state change is one conditional `UPDATE`, decided by the row. */
export function createDeviceCodeStore(db: Kysely<Database>): DeviceCodeStore {
  return {
    async create(record) {
      await db
        .insertInto('device_codes')
        .values({
          device_code_hash: record.deviceCodeHash,
          user_code: record.userCode,
          tenant_id: record.tenantId,
          client_id: record.clientId,
          scope: record.scope,
          source: record.source,
          status: record.status,
          user_id: record.userId,
          interval_seconds: record.intervalSeconds,
          last_poll_at: record.lastPollAt,
          created_at: record.createdAt,
          expires_at: record.expiresAt,
        })
        .execute();
    },
    async getByDeviceCode(deviceCodeHash) {
      const row = await db.selectFrom('device_codes').selectAll().where('device_code_hash', '=', deviceCodeHash).executeTakeFirst();
      return row === undefined ? undefined : toDevice(row);
    },
    async getByUserCode(userCode) {
      const row = await db.selectFrom('device_codes').selectAll().where('user_code', '=', userCode).executeTakeFirst();
      return row === undefined ? undefined : toDevice(row);
    },
    async decide(userCode, decision, now) {
      const result = await db
        .updateTable('device_codes')
        .set({ status: decision.status, user_id: decision.status === 'approved' ? decision.userId : null })
        .where('user_code', '=', userCode)
        .where('status', '=', 'pending')
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return rowCount(result.numUpdatedRows) === 1;
    },
    async recordPoll(deviceCodeHash, now) {
      const row = await db
        .selectFrom('device_codes')
        .select(['interval_seconds', 'last_poll_at'])
        .where('device_code_hash', '=', deviceCodeHash)
        .executeTakeFirst();
      if (row === undefined) return false;
      const previous = row.last_poll_at === null ? null : Number(row.last_poll_at);
      if (previous !== null && now - previous < Number(row.interval_seconds) * 1000) return false;
      // Conditional on the poll time read: of two polls racing on two replicas, one records and one slows down.
      let update = db.updateTable('device_codes').set({ last_poll_at: now }).where('device_code_hash', '=', deviceCodeHash);
      update = previous === null ? update.where('last_poll_at', 'is', null) : update.where('last_poll_at', '=', previous);
      return rowCount((await update.executeTakeFirst()).numUpdatedRows) === 1;
    },
    async redeem(deviceCodeHash) {
      const result = await db
        .updateTable('device_codes')
        .set({ status: 'redeemed' })
        .where('device_code_hash', '=', deviceCodeHash)
        .where('status', '=', 'approved')
        .executeTakeFirst();
      return rowCount(result.numUpdatedRows) === 1;
    },
    async countFromSource(source, since) {
      const row = await db
        .selectFrom('device_codes')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('n'))
        .where('source', '=', source)
        .where('created_at', '>=', since)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async purgeExpired(now) {
      const result = await db.deleteFrom('device_codes').where('expires_at', '<', now).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}
