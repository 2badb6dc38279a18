import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect, type Logger as KyselyLogger } from 'kysely';
import { preparePrivateSqlite, securePrivateSqlite } from '../shared/private-files.js';
import type { Database } from './schema.js';

/** Thrown when another process already holds the embedded store. */
export class StoreLockedError extends Error {
  override readonly name = 'StoreLockedError';
}

/**
 * Opens the embedded SQLite store at `path`.
 *
 * - WAL journal with `synchronous=FULL`: every commit is fsynced before it is acknowledged, so an
 *   acknowledged write survives `kill -9` and power loss.
 * - `locking_mode=EXCLUSIVE`, taken at open: the OS file lock is held for the life of the process and
 *   released by the kernel if the process dies, so a second process gets a clear error instead of sharing
 *   the file, and a crashed process never leaves a stale lock behind.
 */
export function openSqlite(
  path: string,
  options: { log?: KyselyLogger } = {},
): { db: Kysely<Database>; listen?: undefined; pool?: undefined; snapshot(destination: string): Promise<void>; close(): Promise<void> } {
  // 0600 file (and -wal/-shm, which take its mode) in a 0700 folder, whatever the umask, wherever the store is.
  if (path !== ':memory:') preparePrivateSqlite(path);
  let sqlite: SqliteDatabase.Database;
  try {
    sqlite = new SqliteDatabase(path, { timeout: 0 });
  } catch (err) {
    throw unusableFile(path, err);
  }
  try {
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('locking_mode = EXCLUSIVE');
    // The exclusive lock is taken lazily; take it now so a second opener fails here, not mid-request.
    sqlite.exec('BEGIN EXCLUSIVE; COMMIT;');
    if (path !== ':memory:') securePrivateSqlite(path);
  } catch (err) {
    sqlite.close();
    if (err instanceof Error && /SQLITE_BUSY|database is locked/i.test(`${(err as { code?: string }).code ?? ''} ${err.message}`)) {
      throw new StoreLockedError(`the data store ${path} is in use by another openmsi process (stop it, or point this command at the running authority)`, {
        cause: err,
      });
    }
    throw unusableFile(path, err);
  }
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: withStatementCache(sqlite) }),
    ...(options.log === undefined ? {} : { log: options.log }),
  });
  return {
    db,
    async snapshot(destination) {
      // SQLite's online backup, from this connection (the only one: it holds the exclusive lock). It copies in
      // steps between which the server keeps serving; a write this connection makes meanwhile is applied to the
      // copy too, so the copy is the store as of the moment the last step finished.
      await sqlite.backup(destination);
    },
    async close() {
      await db.destroy();
    },
  };
}

/**
 * SQLite's own words ("file is not a database") name no file: say which, and what to do. Errors that are not
 * about the file pass through unchanged.
 */
function unusableFile(path: string, err: unknown): unknown {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (code !== 'SQLITE_NOTADB' && code !== 'SQLITE_CORRUPT' && code !== 'SQLITE_CANTOPEN' && code !== 'SQLITE_READONLY' && code !== 'SQLITE_PERM') return err;
  const reason = (err as Error).message;
  const fix =
    code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_PERM'
      ? 'check that it is a file (or does not exist yet) and that this user may read and write it and its directory'
      : 'stop every openmsi process using it and restore it from a backup; without one, move the data dir aside and run `openmsi init` again (a new directory: tenant, identities and credentials change)';
  return new Error(`the SQLite store ${path} cannot be used (${reason}): ${fix}`, { cause: err });
}

/** Distinct SQL texts kept prepared; the query layer generates a bounded set, this is only a backstop. */
const MAX_CACHED_STATEMENTS = 2000;

/**
 * kysely prepares every query afresh; preparing costs more than running a point query, so reuse prepared
 * statements by SQL text. Safe because kysely's SQLite driver runs one query at a time per connection.
 */
function withStatementCache(sqlite: SqliteDatabase.Database): { close(): void; prepare(sql: string): SqliteDatabase.Statement } {
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => {
      statements.clear();
      sqlite.close();
    },
    prepare(sql: string) {
      let statement = statements.get(sql);
      if (statement === undefined) {
        statement = sqlite.prepare(sql);
        if (statements.size < MAX_CACHED_STATEMENTS) statements.set(sql, statement);
      }
      return statement;
    },
  };
}
