import { sql, type Kysely, type Selectable } from 'kysely';
import type { ClientCredentialTable, Database } from './schema.js';
import { CREDENTIAL_CHANNEL, type ClientCredential, type CredentialStore } from './types.js';
import { atomically, idVariants, rowCount } from './kysely-helpers.js';
import type { NotificationHooks } from './rbac-version-store.js';

function toCredential(row: Selectable<ClientCredentialTable>): ClientCredential {
  return {
    keyId: row.key_id,
    appId: row.app_id,
    type: row.type as ClientCredential['type'],
    displayName: row.display_name,
    hint: row.hint,
    secretHash: row.secret_hash,
    thumbprintSha1: row.thumbprint_sha1,
    thumbprintSha256: row.thumbprint_sha256,
    certificate: row.certificate,
    startAt: row.start_at,
    endAt: row.end_at,
    createdAt: row.created_at,
  };
}

/**
 * Application credentials (secrets, certificates). Every write publishes the application's lower-cased app id
 * on {@link CREDENTIAL_CHANNEL} — in the writing transaction on PostgreSQL (other replicas hear it when, and
 * only if, it commits), to this process's listeners after the commit — so the token endpoint's client cache
 * (src/authority/token/client-directory.ts) drops the application at once on every replica.
 */
export function createCredentialStore(db: Kysely<Database>, hooks?: NotificationHooks): CredentialStore {
  /** Runs `write` (which returns the app ids it changed) atomically with the PostgreSQL notices, then publishes. */
  async function announced<T>(write: (trx: Kysely<Database>) => Promise<{ result: T; appIds: readonly string[] }>): Promise<T> {
    const { result, appIds } = await atomically(db, async (trx) => {
      const out = await write(trx);
      if (hooks?.dialect === 'postgres') {
        for (const appId of new Set(out.appIds.map((id) => id.toLowerCase()))) await sql`select pg_notify(${CREDENTIAL_CHANNEL}, ${appId})`.execute(trx);
      }
      return out;
    });
    for (const appId of new Set(appIds.map((id) => id.toLowerCase()))) hooks?.published(CREDENTIAL_CHANNEL, appId);
    return result;
  }

  return {
    async add(credential) {
      await announced(async (trx) => {
        await trx
          .insertInto('client_credentials')
          .values({
            key_id: credential.keyId,
            app_id: credential.appId,
            type: credential.type,
            display_name: credential.displayName,
            hint: credential.hint,
            secret_hash: credential.secretHash,
            thumbprint_sha1: credential.thumbprintSha1,
            thumbprint_sha256: credential.thumbprintSha256,
            certificate: credential.certificate,
            start_at: credential.startAt,
            end_at: credential.endAt,
            created_at: credential.createdAt,
          })
          .execute();
        return { result: undefined, appIds: [credential.appId] };
      });
    },

    async listByApp(appId) {
      const rows = await db
        .selectFrom('client_credentials')
        .selectAll()
        .where('app_id', 'in', idVariants(appId))
        .orderBy('created_at')
        .orderBy('key_id')
        .execute();
      return rows.map(toCredential);
    },

    async delete(keyId) {
      return announced(async (trx) => {
        const rows = await trx.deleteFrom('client_credentials').where('key_id', 'in', idVariants(keyId)).returning('app_id').execute();
        return { result: rows.length > 0, appIds: rows.map((row) => row.app_id) };
      });
    },

    async deleteByApp(appId) {
      return announced(async (trx) => {
        const result = await trx.deleteFrom('client_credentials').where('app_id', 'in', idVariants(appId)).executeTakeFirst();
        const deleted = rowCount(result.numDeletedRows);
        return { result: deleted, appIds: deleted > 0 ? [appId] : [] };
      });
    },
  };
}
