/**
 * Key Vault's `api-version` rule (spec §1.1, §6.1): required; every version from 2016-10-01 to the newest the
 * spec lists is accepted, and a well-formed version newer than every known one is never refused (the secrets
 * surface is stable, and refusing would break the next SDK release). Anything else is 400 `BadParameter`.
 */
import type { FastifyRequest } from 'fastify';
import { VaultErrors } from './errors.js';

/** The versions the spec lists (and the classic previews that shipped before them). */
export const KNOWN_API_VERSIONS: ReadonlySet<string> = new Set([
  '2016-10-01',
  '7.0',
  '7.0-preview',
  '7.1',
  '7.1-preview',
  '7.2',
  '7.2-preview',
  '7.3',
  '7.3-preview',
  '7.4',
  '7.4-preview.1',
  '7.5',
  '7.5-preview.1',
  '7.6',
  '7.6-preview.1',
  '7.6-preview.2',
  '2025-06-01-preview',
  '2025-07-01',
  '2026-01-01-preview',
  '2026-03-01-preview',
  '2026-04-01',
  '2026-05-01-preview',
  '2026-07-01-preview',
]);

/** The newest stable version, named in the refusal as Key Vault names its latest. */
export const LATEST_API_VERSION = '2026-04-01';
const NEWEST_DATE = '2026-07-01';
const NEWEST_CLASSIC = [7, 6] as const;

const DATED = /^(\d{4})-(\d{2})-(\d{2})(-preview)?$/;
const CLASSIC = /^(\d{1,3})\.(\d{1,3})(-preview(\.\d{1,3})?)?$/;

function isNewerWellFormed(version: string): boolean {
  const dated = DATED.exec(version);
  if (dated !== null) {
    const month = Number(dated[2]);
    const day = Number(dated[3]);
    return month >= 1 && month <= 12 && day >= 1 && day <= 31 && `${dated[1]!}-${dated[2]!}-${dated[3]!}` > NEWEST_DATE;
  }
  const classic = CLASSIC.exec(version);
  if (classic === null) return false;
  const major = Number(classic[1]);
  const minor = Number(classic[2]);
  return major > NEWEST_CLASSIC[0] || (major === NEWEST_CLASSIC[0] && minor > NEWEST_CLASSIC[1]);
}

/** True when the data plane serves `version`. */
export function isAcceptedApiVersion(version: string): boolean {
  return KNOWN_API_VERSIONS.has(version) || isNewerWellFormed(version);
}

/** Versions before 7.1 have no `recoverableDays` attribute. */
export function hasRecoverableDays(version: string): boolean {
  return version !== '2016-10-01' && version !== '7.0' && version !== '7.0-preview';
}

/** Versions before 7.3 have no `exportable` key attribute (keys spec §1.1). */
export function hasExportable(version: string): boolean {
  return !/^(2016-10-01|7\.[0-2](-preview.*)?)$/.test(version);
}

/**
 * The request's api-version; throws 400 `BadParameter` when it is missing or not served. Read from the parsed
 * query, so `api%2Dversion` counts; a repeated parameter takes the first.
 */
export function requireApiVersion(request: FastifyRequest): string {
  const raw = (request.query as Record<string, string | string[] | undefined>)['api-version'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined || value === '') throw VaultErrors.apiVersionMissing();
  if (!isAcceptedApiVersion(value)) throw VaultErrors.apiVersionUnknown(value, LATEST_API_VERSION);
  return value;
}
