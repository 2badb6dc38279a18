import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { AuthFailureStore } from './types.js';
import { rowCount } from './kysely-helpers.js';

/**
 * Failure counters of the token endpoint's throttle. `increment` is one
 * `INSERT ... ON CONFLICT (key, window_start) DO UPDATE SET failures = failures + 1 RETURNING failures`: the
 * row decides, so concurrent failures on any number of replicas each add exactly one.
 */
export function createAuthFailureStore(db: Kysely<Database>): AuthFailureStore {
  return {
    async increment(key, windowStart, expiresAt) {
      const row = await db
        .insertInto('auth_failures')
        .values({ key, window_start: windowStart, failures: 1, expires_at: expiresAt })
        .onConflict((oc) =>
          // The window decides the expiry, so the first writer's stands.
          oc.columns(['key', 'window_start']).doUpdateSet((eb) => ({ failures: eb('auth_failures.failures', '+', 1) })),
        )
        .returning('failures')
        .executeTakeFirstOrThrow();
      return Number(row.failures);
    },

    async count(key, windowStart) {
      const row = await db.selectFrom('auth_failures').select('failures').where('key', '=', key).where('window_start', '=', windowStart).executeTakeFirst();
      return row === undefined ? 0 : Number(row.failures);
    },

    async purgeExpired(now) {
      const result = await db.deleteFrom('auth_failures').where('expires_at', '<', now).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}
