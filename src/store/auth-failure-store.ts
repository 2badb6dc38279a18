import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { FailureCounterStore } from './types.js';
import { rowCount } from './kysely-helpers.js';

/** The tables that count failures per key and window (same shape): the token endpoint's and enrolment's. */
export type FailureCounterTable = 'auth_failures' | 'enrolment_failures';

/**
 * Failure counters in fixed windows, shared by every replica: the token endpoint's throttle
 * (`auth_failures`) and the enrolment rate limit (`enrolment_failures`). `increment` is one
 * `INSERT ... ON CONFLICT (key, window_start) DO UPDATE SET failures = failures + 1 RETURNING failures`: the
 * row decides, so concurrent failures on any number of replicas each add exactly one.
 */
export function createFailureCounterStore(db: Kysely<Database>, table: FailureCounterTable): FailureCounterStore {
  // One implementation for both tables: kysely's types cannot follow a table name chosen at run time, and the
  // two tables have the same columns, so the queries are typed against `auth_failures`.
  const counters = table as 'auth_failures';
  return {
    async increment(key, windowStart, expiresAt) {
      const row = await db
        .insertInto(counters)
        .values({ key, window_start: windowStart, failures: 1, expires_at: expiresAt })
        .onConflict((oc) =>
          // The window decides the expiry, so the first writer's stands.
          oc.columns(['key', 'window_start']).doUpdateSet((eb) => ({ failures: eb(`${counters}.failures`, '+', 1) })),
        )
        .returning('failures')
        .executeTakeFirstOrThrow();
      return Number(row.failures);
    },

    async count(key, windowStart) {
      const row = await db.selectFrom(counters).select('failures').where('key', '=', key).where('window_start', '=', windowStart).executeTakeFirst();
      return row === undefined ? 0 : Number(row.failures);
    },

    async purgeExpired(now) {
      const result = await db.deleteFrom(counters).where('expires_at', '<', now).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}
