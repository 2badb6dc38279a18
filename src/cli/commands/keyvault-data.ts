/** Helpers shared by the vault data-plane commands (`keyvault secret ...`, `keyvault key ...`). */
import type { Command } from 'commander';
import { withClient } from '../api-client.js';
import { VaultClient } from '../vault-client.js';

/** az's three-state flags: `--flag` alone means true. */
export function parseBool(name: string): (value: string | undefined) => boolean {
  return (value) => {
    if (value === undefined || /^(true|yes|1)$/i.test(value)) return true;
    if (/^(false|no|0)$/i.test(value)) return false;
    throw new Error(`${name} takes true or false (got '${value}')`);
  };
}

/** az's `--not-before`/`--expires`: an ISO-8601 time (UTC unless it says otherwise) → epoch seconds. */
export function parseDate(name: string): (value: string) => number {
  return (value) => {
    const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(value);
    const ms = Date.parse(hasZone || !value.includes('T') ? value : `${value}Z`);
    if (!Number.isFinite(ms)) throw new Error(`${name} must be an ISO-8601 date and time such as 2030-01-31T00:00:00Z (got '${value}')`);
    return Math.floor(ms / 1000);
  };
}

/** Epoch seconds as az prints datetimes (Python's isoformat, UTC). */
export function azDate(seconds: number | undefined | null): string | null {
  if (seconds === undefined || seconds === null) return null;
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

/** Runs `fn` with a data-plane client signed in as the data dir's admin. */
export async function withVault<T>(cmd: Command, fn: (vault: VaultClient) => Promise<T>): Promise<T> {
  return withClient(cmd, async (client) => {
    const vault = new VaultClient(client);
    try {
      return await fn(vault);
    } finally {
      vault.close();
    }
  });
}

/** Every item of a paged list, following absolute `nextLink`s on the same vault. */
export async function listAll<T>(vault: VaultClient, vaultName: string, path: string, maxResults: number | undefined): Promise<T[]> {
  const items: T[] = [];
  let next: { path: string; query: Record<string, string> } | undefined = {
    path,
    query: maxResults === undefined ? {} : { maxresults: String(Math.min(maxResults, 25)) },
  };
  while (next !== undefined) {
    const page: { value?: T[]; nextLink?: string | null } =
      (await vault.request<{ value?: T[]; nextLink?: string | null }>('GET', vaultName, next.path, { query: next.query })).body ?? {};
    items.push(...(page.value ?? []));
    if (maxResults !== undefined && items.length >= maxResults) return items.slice(0, maxResults);
    if (typeof page.nextLink !== 'string' || page.nextLink === '') break;
    const link = new URL(page.nextLink);
    const query = Object.fromEntries([...link.searchParams.entries()].filter(([k]) => k.toLowerCase() !== 'api-version'));
    next = { path: link.pathname, query };
  }
  return items;
}
