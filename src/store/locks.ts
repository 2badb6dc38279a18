import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import type { Dialect } from './dialect.js';
import type { Database } from './schema.js';
import type { LockOutcome, StoreLocks } from './types.js';

/** The first key of openmsi's two-key advisory locks (`pg_try_advisory_lock(int, int)`): "omsi" in ASCII. */
const ADVISORY_LOCK_NAMESPACE = 0x6f6d7369;
const RETRY_MS = 50;

/**
 * {@link StoreLocks} over `db`. This process's holders are excluded by name first (a PostgreSQL session lock
 * is re-entrant on one connection, and two pooled connections of one process must exclude each other too);
 * on PostgreSQL the advisory lock then excludes every other replica.
 */
export function createStoreLocks(db: Kysely<Database>, dialect: Dialect): StoreLocks {
  const held = new Set<string>();

  async function attempt<T>(name: string, fn: () => Promise<T>): Promise<LockOutcome<T> | undefined> {
    if (held.has(name)) return undefined;
    held.add(name);
    try {
      if (dialect !== 'postgres') return { acquired: true, value: await fn() };
      return await db.connection().execute(async (conn) => {
        const { rows } = await sql<{ ok: boolean }>`select pg_try_advisory_lock(${ADVISORY_LOCK_NAMESPACE}, hashtext(${name})) as ok`.execute(conn);
        if (rows[0]?.ok !== true) return undefined;
        try {
          return { acquired: true as const, value: await fn() };
        } finally {
          await sql`select pg_advisory_unlock(${ADVISORY_LOCK_NAMESPACE}, hashtext(${name}))`.execute(conn);
        }
      });
    } finally {
      held.delete(name);
    }
  }

  return {
    async exclusive(name, fn, options = {}) {
      const deadline = Date.now() + (options.waitMs ?? 0);
      for (;;) {
        const outcome = await attempt(name, fn);
        if (outcome !== undefined) return outcome;
        if (Date.now() + RETRY_MS > deadline) return { acquired: false };
        await sleep(RETRY_MS);
      }
    },
  };
}
