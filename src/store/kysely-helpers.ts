/**
 * Small helpers shared by the per-aggregate store implementations. Nothing here is dialect-specific: every
 * query the stores build runs unchanged on SQLite and PostgreSQL.
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/** Row counts come back as bigint from kysely (and as numbers from some drivers); callers want a number. */
export function rowCount(value: bigint | number | undefined): number {
  return value === undefined ? 0 : Number(value);
}

/** Structured values are stored as JSON text on both backends. */
export function toJson(value: unknown): string {
  return JSON.stringify(value);
}

export function fromJson<T>(text: string): T {
  return JSON.parse(text) as T;
}

/**
 * Runs `fn` atomically: directly when `db` already is a transaction (the caller's, which then commits or
 * rolls back everything together), otherwise in a new one.
 */
export async function atomically<T>(db: Kysely<Database>, fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db);
  return db.transaction().execute(fn);
}

/**
 * GUID-shaped ids (tenant, subscription, object and client ids) compare case-insensitively in Azure. They are
 * stored as given (normally lower-case), so a lookup tries the value as given and lower-cased; `IN (a, b)`
 * still uses the primary-key index, unlike `lower(col) = ?`.
 */
export function idVariants(id: string): string[] {
  const lower = id.toLowerCase();
  return lower === id ? [id] : [id, lower];
}

/** Splits `items` into slices of at most `size`, to stay below the bound-parameter limits of both backends. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
