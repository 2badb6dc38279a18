import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { ReplayStore } from './types.js';
import { rowCount } from './kysely-helpers.js';

/**
 * Assertion replay protection. `remember` is a single `INSERT ... ON CONFLICT (key) DO NOTHING`: the primary
 * key decides, so of any number of concurrent callers (on any number of replicas) exactly one wins.
 *
 * An entry that has expired but not yet been purged still counts as seen: the store has no clock of its own
 * (time is injected elsewhere), and refusing a reused `jti` a little longer is the safe direction. Callers run
 * `purgeExpired` periodically.
 */
export function createReplayStore(db: Kysely<Database>): ReplayStore {
  return {
    async remember(key, expiresAt) {
      const result = await db
        .insertInto('assertion_replay')
        .values({ key, expires_at: expiresAt })
        .onConflict((oc) => oc.column('key').doNothing())
        .executeTakeFirst();
      return rowCount(result.numInsertedOrUpdatedRows) > 0;
    },

    async purgeExpired(now) {
      const result = await db.deleteFrom('assertion_replay').where('expires_at', '<', now).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}
