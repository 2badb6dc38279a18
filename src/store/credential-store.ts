import type { Kysely, Selectable } from 'kysely';
import type { ClientCredentialTable, Database } from './schema.js';
import type { ClientCredential, CredentialStore } from './types.js';
import { idVariants, rowCount } from './kysely-helpers.js';

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

export function createCredentialStore(db: Kysely<Database>): CredentialStore {
  return {
    async add(credential) {
      await db
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
      const result = await db.deleteFrom('client_credentials').where('key_id', 'in', idVariants(keyId)).executeTakeFirst();
      return rowCount(result.numDeletedRows) > 0;
    },

    async deleteByApp(appId) {
      const result = await db.deleteFrom('client_credentials').where('app_id', 'in', idVariants(appId)).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}
