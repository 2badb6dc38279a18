import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, FederatedCredentialTable, FederationIssuerTable } from './schema.js';
import type { NotificationHooks } from './rbac-version-store.js';
import type { FederatedCredential, FederatedCredentialStore, FederationIssuer, FederationIssuerStore } from './types.js';
import { atomically, fromJson, rowCount, toJson } from './kysely-helpers.js';

function toCredential(row: Selectable<FederatedCredentialTable>): FederatedCredential {
  return {
    id: row.id,
    ownerId: row.owner_id,
    name: row.name,
    issuer: row.issuer,
    subject: row.subject,
    claimsMatchingExpression: row.claims_matching_expression === null ? null : fromJson(row.claims_matching_expression),
    audiences: fromJson<string[]>(row.audiences),
    description: row.description,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/**
 * The first key of the two-key advisory locks on federated-credential owners (`pg_advisory_xact_lock(int4, int4)`),
 * so they never collide with single-key advisory locks; the second is `hashtext(owner id)` (a collision only
 * serializes two owners' writes).
 */
const OWNER_LOCK_CLASS = 0x46494300; // 'FIC\0'

export function createFederatedCredentialStore(db: Kysely<Database>, hooks?: NotificationHooks): FederatedCredentialStore {
  const owner = (ownerId: string) => ownerId.toLowerCase();
  return {
    async lockOwner(ownerId) {
      if (hooks?.dialect === 'postgres' && db.isTransaction) {
        await sql`select pg_advisory_xact_lock(${OWNER_LOCK_CLASS}::int4, hashtext(${owner(ownerId)}))`.execute(db);
      }
    },

    async put(credential) {
      return atomically(db, async (trx) => {
        const key = { owner_id: owner(credential.ownerId), name_key: credential.name.toLowerCase() };
        const existing = await trx
          .selectFrom('federated_credentials')
          .select(['id', 'created_at'])
          .where('owner_id', '=', key.owner_id)
          .where('name_key', '=', key.name_key)
          .executeTakeFirst();
        const values = {
          name: credential.name,
          issuer: credential.issuer,
          subject: credential.subject,
          claims_matching_expression: credential.claimsMatchingExpression === null ? null : toJson(credential.claimsMatchingExpression),
          audiences: toJson(credential.audiences),
          description: credential.description,
          updated_at: credential.updatedAt,
        };
        if (existing !== undefined) {
          await trx.updateTable('federated_credentials').set(values).where('owner_id', '=', key.owner_id).where('name_key', '=', key.name_key).execute();
          return 'updated';
        }
        await trx
          .insertInto('federated_credentials')
          .values({ ...key, ...values, id: credential.id, created_at: credential.createdAt })
          .execute();
        return 'created';
      });
    },

    async get(ownerId, name) {
      const row = await db
        .selectFrom('federated_credentials')
        .selectAll()
        .where('owner_id', '=', owner(ownerId))
        .where('name_key', '=', name.toLowerCase())
        .executeTakeFirst();
      return row === undefined ? undefined : toCredential(row);
    },

    async getById(ownerId, id) {
      const row = await db
        .selectFrom('federated_credentials')
        .selectAll()
        .where('owner_id', '=', owner(ownerId))
        .where('id', '=', id.toLowerCase())
        .executeTakeFirst();
      return row === undefined ? undefined : toCredential(row);
    },

    async list(ownerId) {
      const rows = await db.selectFrom('federated_credentials').selectAll().where('owner_id', '=', owner(ownerId)).orderBy('name_key').execute();
      return rows.map(toCredential);
    },

    async listByIssuer(ownerId, issuer) {
      const rows = await db
        .selectFrom('federated_credentials')
        .selectAll()
        .where('owner_id', '=', owner(ownerId))
        .where('issuer', '=', issuer)
        .orderBy('name_key')
        .execute();
      return rows.map(toCredential);
    },

    async delete(ownerId, name) {
      const result = await db
        .deleteFrom('federated_credentials')
        .where('owner_id', '=', owner(ownerId))
        .where('name_key', '=', name.toLowerCase())
        .executeTakeFirst();
      return rowCount(result.numDeletedRows) > 0;
    },

    async deleteByOwner(ownerId) {
      const result = await db.deleteFrom('federated_credentials').where('owner_id', '=', owner(ownerId)).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}

function toIssuer(row: Selectable<FederationIssuerTable>): FederationIssuer {
  return {
    issuer: row.issuer,
    jwks: row.jwks === null ? null : fromJson(row.jwks),
    jwksUri: row.jwks_uri,
    ca: row.ca,
    algorithms: fromJson<string[]>(row.algorithms),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export function createFederationIssuerStore(db: Kysely<Database>): FederationIssuerStore {
  return {
    async put(issuer) {
      return atomically(db, async (trx) => {
        const values = {
          jwks: issuer.jwks === null ? null : toJson(issuer.jwks),
          jwks_uri: issuer.jwksUri,
          ca: issuer.ca,
          algorithms: toJson(issuer.algorithms),
          updated_at: issuer.updatedAt,
        };
        const existing = await trx.selectFrom('federation_issuers').select('issuer').where('issuer', '=', issuer.issuer).executeTakeFirst();
        if (existing !== undefined) {
          await trx.updateTable('federation_issuers').set(values).where('issuer', '=', issuer.issuer).execute();
          return 'updated';
        }
        await trx
          .insertInto('federation_issuers')
          .values({ issuer: issuer.issuer, ...values, created_at: issuer.createdAt })
          .execute();
        return 'created';
      });
    },

    async get(issuer) {
      const row = await db.selectFrom('federation_issuers').selectAll().where('issuer', '=', issuer).executeTakeFirst();
      return row === undefined ? undefined : toIssuer(row);
    },

    async list() {
      const rows = await db.selectFrom('federation_issuers').selectAll().orderBy('issuer').execute();
      return rows.map(toIssuer);
    },

    async delete(issuer) {
      const result = await db.deleteFrom('federation_issuers').where('issuer', '=', issuer).executeTakeFirst();
      return rowCount(result.numDeletedRows) > 0;
    },
  };
}
