import { type Kysely, type Selectable, type Updateable } from 'kysely';
import type { Database, SigningKeyTable } from './schema.js';
import { SIGNING_KEY_CHANNEL, type SigningKeyRecord, type SigningKeyState, type SigningKeyStore } from './types.js';
import { fromJson, rowCount, toJson } from './kysely-helpers.js';
import { announcing as announce } from './notify.js';
import type { NotificationHooks } from './rbac-version-store.js';

function toKey(row: Selectable<SigningKeyTable>): SigningKeyRecord {
  return {
    kid: row.kid,
    state: row.state as SigningKeyState,
    alg: row.alg as SigningKeyRecord['alg'],
    privateKeyEnc: row.private_key_enc,
    publicJwk: fromJson<Record<string, unknown>>(row.public_jwk),
    createdAt: row.created_at,
    activatedAt: row.activated_at,
    retiredAt: row.retired_at,
    publishUntil: row.publish_until,
    revokedAt: row.revoked_at,
  };
}

/**
 * Signing keys. Every write that changes a row publishes on {@link SIGNING_KEY_CHANNEL} — in the writing
 * transaction on PostgreSQL (other replicas hear it when, and only if, it commits), to this process's
 * listeners after the commit — so every key ring reloads at once (a revoked key stops verifying everywhere).
 */
export function createSigningKeyStore(db: Kysely<Database>, hooks?: NotificationHooks): SigningKeyStore {
  /** Runs `write` atomically; when it reports a change, announces `payload` on the signing-key channel. */
  const announcing = <T>(payload: string, write: (trx: Kysely<Database>) => Promise<T>, changed: (result: T) => boolean): Promise<T> =>
    announce(db, hooks, SIGNING_KEY_CHANNEL, write, (result) => (changed(result) ? payload : undefined));

  return {
    async list() {
      const rows = await db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('kid').execute();
      return rows.map(toKey);
    },

    async insert(key) {
      await announcing(
        key.kid,
        (trx) =>
          trx
            .insertInto('signing_keys')
            .values({
              kid: key.kid,
              state: key.state,
              alg: key.alg,
              private_key_enc: key.privateKeyEnc,
              public_jwk: toJson(key.publicJwk),
              created_at: key.createdAt,
              activated_at: key.activatedAt,
              retired_at: key.retiredAt,
              publish_until: key.publishUntil,
              revoked_at: key.revokedAt,
            })
            .execute(),
        () => true,
      );
    },

    async transition(kid, expectedState, changes) {
      const set: Updateable<SigningKeyTable> = {};
      if (changes.state !== undefined) set.state = changes.state;
      if (changes.activatedAt !== undefined) set.activated_at = changes.activatedAt;
      if (changes.retiredAt !== undefined) set.retired_at = changes.retiredAt;
      if (changes.publishUntil !== undefined) set.publish_until = changes.publishUntil;
      if (changes.revokedAt !== undefined) set.revoked_at = changes.revokedAt;
      if (Object.keys(set).length === 0) {
        // Nothing to write: report whether the precondition still holds.
        const row = await db.selectFrom('signing_keys').select('kid').where('kid', '=', kid).where('state', '=', expectedState).executeTakeFirst();
        return row !== undefined;
      }
      // Compare-and-set in one statement: of several replicas racing, exactly one sees a changed row.
      return announcing(
        kid,
        async (trx) => {
          const result = await trx.updateTable('signing_keys').set(set).where('kid', '=', kid).where('state', '=', expectedState).executeTakeFirst();
          return rowCount(result.numUpdatedRows) > 0;
        },
        (updated) => updated,
      );
    },

    async purge(before) {
      return announcing(
        '',
        async (trx) => {
          const result = await trx
            .deleteFrom('signing_keys')
            .where((eb) =>
              eb.or([
                eb.and([eb('state', '=', 'revoked'), eb('revoked_at', '<', before)]),
                eb.and([eb('state', '=', 'retired'), eb('publish_until', '<', before)]),
              ]),
            )
            .executeTakeFirst();
          return rowCount(result.numDeletedRows);
        },
        (purged) => purged > 0,
      );
    },
  };
}
