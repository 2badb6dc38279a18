/**
 * Resource ids at the edge of the management API. Every id or scope a request carries, in its path or its body,
 * is parsed here by the one parser (src/rbac/scopes.ts) before anything acts on it, and what authorisation checks
 * and what the directory reads or writes is the canonical form that parser returns, never the raw string. An id
 * that does not parse is refused with a 400 and nothing is checked or written (docs/security.md "Canonical ids").
 *
 * - Path: the HTTP layer percent-decodes each path segment once (as ARM does); a segment that decodes to
 *   something containing `/` stays encoded, so that the parser refuses it (`%`) instead of reading more segments
 *   than the client sent. Route parameters (decoded once by the router) must each be one valid segment.
 * - Body: ids are taken literally (no decoding: a JSON string is not a URL), so `%` is refused there.
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../shared/api-error.js';
import { parseResourceId, parseScope, ScopeError, segmentError, type ParsedScope } from '../rbac/scopes.js';

/** ARM's refusal of a path that is not a valid scope (the path is the scope the action is checked at). */
export function invalidScope(err: ScopeError): ApiError {
  return new ApiError(400, 'InvalidScope', err.message, { cause: err });
}

/**
 * ARM's refusal of an id in a request body that is not a resource id (its `LinkedInvalidPropertyId`, with the
 * reason added): "Property id '…' at path '…' is invalid. Expect fully qualified resource Id that start with
 * '/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'."
 */
export function linkedInvalidPropertyId(id: string, property: string, reason: string): ApiError {
  return new ApiError(
    400,
    'LinkedInvalidPropertyId',
    `Property id '${id.slice(0, 300)}' at path '${property}' is invalid: ${reason}. Expect fully qualified resource Id that start with '/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.`,
  );
}

/**
 * A route parameter that is one segment of a resource id (subscription id, group, namespace, type, name,
 * location), as the router decoded it; '' when the route has none. Anything else is a 400 `InvalidScope`.
 */
export function pathParam(request: FastifyRequest, name: string): string {
  const value = (request.params as Record<string, string | undefined> | undefined)?.[name];
  if (value === undefined) return '';
  const reason = segmentError(value);
  if (reason !== undefined) throw invalidScope(new ScopeError(value, reason));
  return value;
}

/** The request's path (no query), by {@link decodePath}. */
export function decodedPath(request: FastifyRequest): string {
  return decodePath(request.url.split('?')[0] ?? '/');
}

/** Parses a scope (a path's, or a body's), canonical; ARM's 400 `InvalidScope` when it does not parse. */
export function canonicalScope(scope: string): ParsedScope {
  try {
    return parseScope(scope);
  } catch (err) {
    if (err instanceof ScopeError) throw invalidScope(err);
    throw err;
  }
}

/**
 * Parses an id a request body names as the id of a top-level resource of `type` (`property` says where, for
 * the message); canonical. `LinkedInvalidPropertyId` when it is not a string or not such an id.
 */
export function bodyResourceId(id: unknown, property: string, type: string): ParsedScope {
  if (typeof id !== 'string') throw linkedInvalidPropertyId(String(id), property, 'it is not a string');
  try {
    return parseResourceId(id, type);
  } catch (err) {
    if (err instanceof ScopeError) throw linkedInvalidPropertyId(id, property, err.reason);
    throw err;
  }
}

/** Each segment of `path` percent-decoded once; a segment that would decode to `/`, or does not decode, stays as sent. */
export function decodePath(path: string): string {
  return path
    .split('/')
    .map((segment) => {
      try {
        const decoded = decodeURIComponent(segment);
        return decoded.includes('/') ? segment : decoded;
      } catch {
        return segment;
      }
    })
    .join('/');
}

const AUTHORIZATION_MARKER = '/providers/microsoft.authorization/';

/**
 * `{scope}/providers/Microsoft.Authorization/{rest}` of a request path (decoded by {@link decodePath}): the
 * scope before the last such provider segment (`/` when the path starts there) and the segments after it.
 * The one reading of these paths, shared by the authorisation hook and the handlers.
 */
export function splitAuthorizationPath(decoded: string): { scope: string; rest: string[] } | undefined {
  const at = decoded.toLowerCase().lastIndexOf(AUTHORIZATION_MARKER);
  if (at === -1) return undefined;
  const rest = decoded
    .slice(at + AUTHORIZATION_MARKER.length)
    .replace(/\/$/, '')
    .split('/');
  return { scope: at === 0 ? '/' : decoded.slice(0, at), rest };
}
