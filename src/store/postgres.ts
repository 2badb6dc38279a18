import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Database } from './schema.js';

const INT8_OID = 20;

/**
 * Opens a PostgreSQL store from a `postgres://` URL. Epoch-millisecond `bigint` columns come back as
 * numbers (they fit well inside 2^53), so rows look the same as on SQLite.
 */
export function openPostgres(url: string, options: { maxConnections?: number } = {}): { db: Kysely<Database>; close(): Promise<void> } {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
        oid === INT8_OID ? (value: string) => Number(value) : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle pooled connection that dies (server restart, network blip) emits 'error' on the pool; unhandled,
  // that would crash the process. The pool already drops the broken client, and the next query reports any
  // real outage, so there is nothing more to do here.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    async close() {
      await db.destroy();
    },
  };
}
