import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { NotificationHooks } from './rbac-version-store.js';
import { atomically } from './kysely-helpers.js';

/**
 * Runs `write` atomically and, when `payload(result)` names something, publishes it on `channel`: in the
 * writing transaction on PostgreSQL (every replica hears it when, and only if, it commits), and to this
 * process's listeners after the commit. Without hooks nothing is published.
 */
export async function announcing<T>(
  db: Kysely<Database>,
  hooks: NotificationHooks | undefined,
  channel: string,
  write: (trx: Kysely<Database>) => Promise<T>,
  payload: (result: T) => string | undefined,
): Promise<T> {
  const result = await atomically(db, async (trx) => {
    const out = await write(trx);
    const notice = payload(out);
    if (notice !== undefined && hooks?.dialect === 'postgres') await sql`select pg_notify(${channel}, ${notice})`.execute(trx);
    return out;
  });
  const notice = payload(result);
  if (notice !== undefined) hooks?.published(channel, notice);
  return result;
}
