import { AsyncResource } from 'node:async_hooks';
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { ReplayStore } from './types.js';
import { rowCount } from './kysely-helpers.js';

/** Most entries one group-committed insert carries (two bound values each, far below SQLite's limit). */
const MAX_BATCH = 500;

/**
 * Assertion replay protection. A key is recorded by `INSERT ... ON CONFLICT (key) DO NOTHING`: the primary key
 * decides, so of any number of concurrent callers (on any number of replicas) exactly one wins.
 *
 * With `groupCommit` (the store's pool-level repository; never inside a transaction), the `remember` calls of
 * one turn of the event loop share one statement — `INSERT ... VALUES (…), (…) ON CONFLICT (key) DO NOTHING
 * RETURNING key` — as the audit writer shares one commit: on SQLite that is one fsync per batch instead of one
 * per assertion (the managed-identity grant's largest cost, bench/README.md). Every caller still awaits the
 * commit that recorded (or refused) its key, so an accepted assertion is durable before its token is issued.
 * Exactly once still holds: a key named twice in a batch is inserted once and only its first caller is told
 * true; across batches and replicas the primary key decides as before, and `RETURNING` names exactly the rows
 * this statement inserted. A failed statement fails every caller of the batch (none is told "first use").
 *
 * An entry that has expired but not yet been purged still counts as seen: the store has no clock of its own
 * (time is injected elsewhere), and refusing a reused `jti` a little longer is the safe direction. Callers run
 * `purgeExpired` periodically.
 */
export function createReplayStore(db: Kysely<Database>, options: { groupCommit?: boolean } = {}): ReplayStore {
  const remember = async (key: string, expiresAt: number): Promise<boolean> => {
    const result = await db
      .insertInto('assertion_replay')
      .values({ key, expires_at: expiresAt })
      .onConflict((oc) => oc.column('key').doNothing())
      .executeTakeFirst();
    return rowCount(result.numInsertedOrUpdatedRows) > 0;
  };
  return {
    remember: options.groupCommit === true ? groupCommitted(db) : remember,

    async purgeExpired(now) {
      const result = await db.deleteFrom('assertion_replay').where('expires_at', '<', now).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}

interface PendingEntry {
  key: string;
  expiresAt: number;
  resolve: (firstUse: boolean) => void;
  reject: (err: unknown) => void;
}

/** `remember` with group commit: see {@link createReplayStore}. */
function groupCommitted(db: Kysely<Database>): ReplayStore['remember'] {
  let pending: PendingEntry[] = [];
  let draining: Promise<void> | undefined;

  const insertNew = async (batch: readonly PendingEntry[]): Promise<Set<string>> => {
    // One row per distinct key (the first caller's expiry): a key twice in one VALUES list is never relied on.
    const rows = new Map<string, number>();
    for (const entry of batch) if (!rows.has(entry.key)) rows.set(entry.key, entry.expiresAt);
    const inserted = await db
      .insertInto('assertion_replay')
      .values([...rows].map(([key, expiresAt]) => ({ key, expires_at: expiresAt })))
      .onConflict((oc) => oc.column('key').doNothing())
      .returning('key')
      .execute();
    return new Set(inserted.map((row) => row.key));
  };

  // Runs in the context the store was opened in, not a caller's: a batch holds other requests' keys.
  const drain = AsyncResource.bind(async (): Promise<void> => {
    // Let every request already running add its key before the write.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (pending.length > 0) {
        const batch = pending.slice(0, MAX_BATCH);
        pending = pending.slice(MAX_BATCH);
        try {
          const inserted = await insertNew(batch);
          for (const entry of batch) {
            // Only the first caller of a newly inserted key is told so; a second caller in the batch is a replay.
            entry.resolve(inserted.delete(entry.key));
          }
        } catch (err) {
          for (const entry of batch) entry.reject(err);
        }
      }
    } finally {
      draining = undefined;
    }
  });

  return (key, expiresAt) =>
    new Promise<boolean>((resolve, reject) => {
      pending.push({ key, expiresAt, resolve, reject });
      draining ??= drain();
    });
}
