/**
 * Telling store locations apart and naming them in logs, without loading a database driver (the CLI's
 * `init` needs these; opening a store is open.ts).
 */
import { resolve } from 'node:path';

/** True when `location` names a PostgreSQL server rather than a SQLite file. */
export function isPostgresLocation(location: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(location);
}

/** `location` fit for a log line: a PostgreSQL URL without its password, or the absolute SQLite path. */
export function describeStoreLocation(location: string): string {
  if (!isPostgresLocation(location)) {
    return location === ':memory:' ? 'sqlite::memory:' : `sqlite:${resolve(location)}`;
  }
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    // Never echo something we could not parse: it may hold a password in an unexpected place.
    return `${location.slice(0, location.indexOf(':'))}://(unparseable URL)`;
  }
  url.password = '';
  for (const param of [...url.searchParams.keys()]) {
    if (/pass/i.test(param)) url.searchParams.delete(param);
  }
  return url.toString();
}
