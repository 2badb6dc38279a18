/**
 * Paging (spec §1.6): `maxresults` 1..25 (default 25), an opaque `$skiptoken` (base64url of a JSON cursor, the
 * last key of the page) accepted in any case, and an absolute `nextLink` that carries api-version,
 * `$skiptoken` and `maxresults` on the authority the client called.
 */
import type { FastifyRequest } from 'fastify';
import { VaultErrors } from './errors.js';

export const MAX_RESULTS = 25;

/** The query parameter named `name` in any case (`$skipToken`, `$SkipToken`, ...). */
function queryParam(request: FastifyRequest, name: string): string | undefined {
  const query = request.query as Record<string, string | string[] | undefined>;
  for (const [key, value] of Object.entries(query)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

/** The page size the request asks for; 400 `BadParameter` unless it is an integer 1..25. */
export function pageSize(request: FastifyRequest): number {
  const raw = queryParam(request, 'maxresults');
  if (raw === undefined || raw === '') return MAX_RESULTS;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_RESULTS) {
    throw VaultErrors.badParameter(`Invalid value for maxresults: ${raw}. It must be an integer between 1 and ${String(MAX_RESULTS)}.`);
  }
  return n;
}

/** The cursor (`after`: the last key served) of `$skiptoken`, or undefined on the first page. */
export function pageCursor(request: FastifyRequest): string | undefined {
  const raw = queryParam(request, '$skiptoken');
  if (raw === undefined || raw === '') return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof parsed.after === 'string') return parsed.after;
  } catch {
    // falls through to the refusal
  }
  throw VaultErrors.badParameter('The $skiptoken is invalid.');
}

/** The absolute next-page link, or null when `hasMore` is false. */
export function nextLink(request: FastifyRequest, path: string, apiVersion: string, size: number, after: string | undefined, hasMore: boolean): string | null {
  if (!hasMore || after === undefined) return null;
  const token = Buffer.from(JSON.stringify({ after }), 'utf8').toString('base64url');
  const params = new URLSearchParams({ 'api-version': apiVersion, $skiptoken: token, maxresults: String(size) });
  return `https://${request.headers.host ?? ''}${path}?${params.toString().replace('%24skiptoken', '$skiptoken')}`;
}
