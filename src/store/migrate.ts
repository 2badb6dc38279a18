import { inspect } from 'node:util';
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Dialect } from './dialect.js';
import * as m0001 from './migrations/0001-initial.js';
import * as m0002 from './migrations/0002-hosts.js';
import * as m0003 from './migrations/0003-rbac.js';
import * as m0004 from './migrations/0004-vaults.js';
import * as m0005 from './migrations/0005-auth-failures.js';
import * as m0006 from './migrations/0006-vault-keys.js';
import * as m0007 from './migrations/0007-federated-credentials.js';
import * as m0008 from './migrations/0008-federation-links.js';
import * as m0009 from './migrations/0009-enrolment-limits.js';
import * as m0010 from './migrations/0010-users.js';
import * as m0011 from './migrations/0011-sign-in-codes.js';

interface VersionedMigration {
  up(db: Kysely<unknown>, dialect: Dialect): Promise<void>;
}

/** Every schema version, in order. Append, never edit: a released migration is history. */
const MIGRATIONS: ReadonlyArray<readonly [string, VersionedMigration]> = [
  ['0001-initial', m0001],
  ['0002-hosts', m0002],
  ['0003-rbac', m0003],
  ['0004-vaults', m0004],
  ['0005-auth-failures', m0005],
  ['0006-vault-keys', m0006],
  ['0007-federated-credentials', m0007],
  ['0008-federation-links', m0008],
  ['0009-enrolment-limits', m0009],
  ['0010-users', m0010],
  ['0011-sign-in-codes', m0011],
];

/** The newest schema migration this release knows: a store is current when it is the newest one applied. */
export const LATEST_MIGRATION: string = MIGRATIONS[MIGRATIONS.length - 1]?.[0] ?? '';

/** Migration bookkeeping table (kysely's Migrator keeps one row per applied migration there). */
export const MIGRATION_TABLE = 'openmsi_migrations';

class CodeMigrationProvider implements MigrationProvider {
  readonly #dialect: Dialect;
  constructor(dialect: Dialect) {
    this.#dialect = dialect;
  }
  getMigrations(): Promise<Record<string, Migration>> {
    const out: Record<string, Migration> = {};
    for (const [name, migration] of MIGRATIONS) {
      out[name] = { up: (db) => migration.up(db, this.#dialect) };
    }
    return Promise.resolve(out);
  }
}

/** Brings a database up to the newest schema. Safe to run from several replicas at once (kysely takes a lock). */
export async function migrateToLatest(db: Kysely<unknown>, dialect: Dialect): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new CodeMigrationProvider(dialect),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: 'openmsi_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    throw new Error(`database migration failed: ${error instanceof Error ? error.message : inspect(error)}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * The newest applied migration's name (names sort in order), or `undefined` when none is applied. One indexed
 * read: readiness probes use it as their reachability query too.
 */
export async function appliedMigration(db: Kysely<unknown>): Promise<string | undefined> {
  const { rows } = await sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)} order by name desc limit 1`.execute(db);
  return rows[0]?.name;
}
