/**
 * What every token surface shares: the IMDS-shaped error family, query parsing (duplicate names refused),
 * selector extraction (every spelling; more than one refused), session checks, and {@link serveToken}, the
 * path from a resolved request to a §8.4 success body (cache hit: synchronous).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HostIdentity, AgentSurface } from '../../shared/host-protocol.js';
import type { OAuthErrorCode } from '../../shared/oauth-error.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { armKey } from '../../shared/ids.js';
import type { AgentAuditEvent, AgentAuditSink, AgentSession, CallerResolver, SessionLookup } from '../contracts.js';
import { SELECTOR_PARAMETERS, type HostIdentities, type IdentitySelector } from '../identities.js';
import { successBody, type CacheEntry, type TokenCache } from '../token-cache.js';
import type { RateLimiter } from '../rate-limit.js';
import { UpstreamError } from '../upstream.js';
import type { AgentMetricsSink } from '../metrics.js';
import { displayResource, isResourceSyntax, MAX_RESOURCE_LENGTH } from '../../shared/resource.js';

/** The `error` values the agent answers with (the OAuth / IMDS family, plus `not_found`/`method_not_allowed` for routing). */
export type AgentErrorCode = OAuthErrorCode | 'not_found' | 'method_not_allowed' | 'too_many_requests' | 'forbidden';

/** A refusal: status, IMDS-shaped body `{error, error_description}`, extra headers, and the audit reason. */
export class AgentError extends Error {
  override readonly name = 'AgentError';
  readonly status: number;
  readonly error: AgentErrorCode;
  readonly headers: Readonly<Record<string, string>>;
  /** The audit record's `reason` (a stable code). */
  readonly reason: string;
  constructor(status: number, error: AgentErrorCode, description: string, reason: string, headers: Record<string, string> = {}) {
    super(description);
    this.status = status;
    this.error = error;
    this.reason = reason;
    this.headers = headers;
  }

  get body(): string {
    return JSON.stringify({ error: this.error, error_description: this.message });
  }
}

/** Every refusal the agent answers; docs/agent.md lists them with their status and body. */
export const AgentErrors = {
  metadataHeader: () => new AgentError(400, 'invalid_request', 'Required metadata header not specified', 'metadata_header_missing'),
  forwarded: () => new AgentError(400, 'invalid_request', 'Requests with X-Forwarded-For, Forwarded or another proxy header are not accepted', 'forwarded'),
  foreignHost: () => new AgentError(400, 'invalid_request', 'The Host header names an address this agent does not serve', 'foreign_host'),
  nonLoopback: () => new AgentError(403, 'forbidden', 'Only callers on this host (loopback) are served', 'non_loopback_peer'),
  duplicateParameter: (name: string) => new AgentError(400, 'invalid_request', `Duplicate query parameter '${name}'`, 'duplicate_parameter'),
  multipleSelectors: () =>
    new AgentError(400, 'invalid_request', 'Only one of client_id, object_id (principal_id) or msi_res_id (mi_res_id) may be given', 'multiple_selectors'),
  missingParameter: (name: string) => new AgentError(400, 'invalid_request', `Required query variable '${name}' is missing`, 'missing_parameter'),
  /**
   * IMDS relays Entra's refusal of a resource as `400 invalid_resource` with an AADSTS description
   * (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#error-handling);
   * the wording is the authority's (AADSTS500011), the resource shown bounded and with control characters escaped.
   */
  invalidResource: (resource: string) =>
    new AgentError(
      400,
      'invalid_resource',
      `AADSTS500011: The resource principal named ${displayResource(resource)} was not found in the tenant. A resource is an absolute https:// or api:// URI, or an application id, of at most ${String(MAX_RESOURCE_LENGTH)} characters without whitespace or control characters.`,
      'invalid_resource',
    ),
  apiVersion: (version: string) => new AgentError(400, 'invalid_request', `The api-version '${version}' is not supported by this endpoint`, 'api_version'),
  identityNotFound: () => new AgentError(400, 'invalid_request', 'Identity not found', 'identity_not_found'),
  identityHeader: (name: string) => new AgentError(401, 'unauthorized_client', `The ${name} header is missing or does not match`, 'identity_header'),
  rateLimited: (retryAfter: number) =>
    new AgentError(429, 'too_many_requests', 'Too many token requests for this identity; retry after the Retry-After delay', 'rate_limited', {
      'retry-after': String(retryAfter),
    }),
  unavailable: (retryAfter: number) =>
    new AgentError(503, 'temporarily_unavailable', 'The identity authority did not answer; retry the request later', 'authority_unavailable', {
      'retry-after': String(retryAfter),
    }),
  hostNotRecognised: () =>
    new AgentError(
      403,
      'unauthorized_client',
      'The authority no longer recognises this host (credential revoked or host deleted); the agent serves no tokens until the host is enrolled again',
      'host_not_recognised',
    ),
  upstreamRefused: () => new AgentError(500, 'server_error', 'The identity authority refused the request; see the agent log', 'authority_refused'),
  /**
   * Outbound federation: the upstream Entra refused the exchange. Its OAuth error and description (an AADSTS
   * message, never the assertion) are relayed, as IMDS relays Entra's; 400 (401 when the upstream said 401).
   */
  federationRefused: (err: UpstreamError) =>
    new AgentError(
      err.status === 401 ? 401 : 400,
      (err.oauthError ?? 'invalid_request') as OAuthErrorCode,
      `The upstream authority refused the token exchange for this identity's linked client: ${err.description ?? 'no description'}`,
      'federation_refused',
    ),
  notFound: () => new AgentError(404, 'not_found', 'No such endpoint', 'not_found'),
  methodNotAllowed: (allow: string) => new AgentError(405, 'method_not_allowed', 'Method not allowed', 'method_not_allowed', { allow }),
  surfaceDisabled: () => new AgentError(404, 'not_found', 'This endpoint is turned off on this host', 'surface_disabled'),
  bodyTooLarge: () => new AgentError(413, 'invalid_request', 'The request body is too large', 'body_too_large'),
  format: (format: string) => new AgentError(400, 'invalid_request', `The format '${format}' is not supported; use format=json`, 'format'),
  internal: () => new AgentError(500, 'server_error', 'An unexpected error occurred; see the agent log', 'internal'),
  arcChallengeFailed: () => new AgentError(401, 'unauthorized_client', 'The Authorization header does not hold a current challenge', 'arc_challenge'),
} as const;

const JSON_TYPE = 'application/json; charset=utf-8';

/** Writes a JSON body. No CORS header is ever set. */
export function sendJson(res: ServerResponse, status: number, body: string, headers?: Readonly<Record<string, string>>): void {
  const head: Record<string, string | number> = { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' };
  if (headers !== undefined) for (const name in headers) head[name] = headers[name] as string;
  res.writeHead(status, head).end(body);
}

export function sendError(res: ServerResponse, err: AgentError): void {
  sendJson(res, err.status, err.body, err.headers);
}

/** Parameters with lower-case names; a name given twice (in any case) is refused, as IMDS does. */
export function parseParams(query: string): Map<string, string> {
  const params = new Map<string, string>();
  if (query === '') return params;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    let name: string;
    let value: string;
    try {
      name = decode(rawName).toLowerCase();
      value = decode(rawValue);
    } catch {
      throw new AgentError(400, 'invalid_request', 'The query string is not valid percent-encoding', 'bad_query');
    }
    if (params.has(name)) throw AgentErrors.duplicateParameter(name);
    params.set(name, value);
  }
  return params;
}

function decode(raw: string): string {
  if (!raw.includes('%') && !raw.includes('+')) return raw;
  return decodeURIComponent(raw.replace(/\+/g, ' '));
}

/**
 * The request's `resource`: missing → 400 `invalid_request`; not a resource by the authority's own rule
 * (src/shared/resource.ts: too long, a control character, not an https/api URI or an application id) →
 * 400 `invalid_resource`. Checked before any identity, cache or authority call, so a bad resource is never
 * a 5xx (clients retry those) and never reaches a token's `aud`.
 */
export function requireResource(params: ReadonlyMap<string, string>): string {
  const resource = params.get('resource');
  if (resource === undefined || resource === '') throw AgentErrors.missingParameter('resource');
  if (!isResourceSyntax(resource)) throw AgentErrors.invalidResource(resource);
  return resource;
}

/** The selector a request names: none → system-assigned; more than one spelling/kind → refused. */
export function selectorOf(params: ReadonlyMap<string, string>): IdentitySelector {
  let selector: IdentitySelector = { kind: 'system' };
  let count = 0;
  for (const [name, value] of params) {
    const kind = SELECTOR_PARAMETERS[name];
    if (kind === undefined || value === '') continue;
    count++;
    selector = { kind, value };
  }
  if (count > 1) throw AgentErrors.multipleSelectors();
  return selector;
}

/** A header's single value (a repeated header is joined by node with ", ", which then fails exact checks). */
export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

export { digestOf, secretMatches } from '../secret-digest.js';

/** Whether a session's selectors (name, client id, object id, resource id, `[system]`) name this identity. */
export function sessionAllows(session: AgentSession, identity: HostIdentity): boolean {
  return session.identities.some((selector) => selectorNames(selector, identity));
}

/** The session selectors that name none of `identities` (as {@link sessionAllows} matches them). */
export function unknownSessionSelectors(selectors: readonly string[], identities: readonly HostIdentity[]): string[] {
  return selectors.filter((selector) => !identities.some((identity) => selectorNames(selector, identity)));
}

/** A host's identities as `openmsi run --identity` can name them: `[system]` and each user-assigned identity's name, with their ids. */
export function describeSessionIdentities(identities: readonly HostIdentity[]): string {
  if (identities.length === 0) return 'none (assign one with `openmsi vm identity assign`)';
  return identities
    .map((identity) =>
      identity.type === 'SystemAssigned'
        ? `[system] (system-assigned, object id ${identity.objectId})`
        : `${identity.resourceId.split('/').pop() ?? identity.resourceId} (user-assigned, client id ${identity.clientId})`,
    )
    .join(', ');
}

function selectorNames(selector: string, identity: HostIdentity): boolean {
  const s = selector.trim().toLowerCase();
  if (s === '[system]' || s === 'system') return identity.type === 'SystemAssigned';
  if (s === identity.clientId.toLowerCase() || s === identity.objectId.toLowerCase()) return true;
  if (identity.type !== 'UserAssigned') return false;
  if (armKey(s) === armKey(identity.resourceId)) return true;
  return s === (identity.resourceId.split('/').pop() ?? '').toLowerCase();
}

/** Everything a surface needs from the agent. */
export interface SurfaceContext {
  clock: Clock;
  logger: Logger;
  identities: HostIdentities;
  cache: TokenCache;
  limiter: RateLimiter;
  audit: AgentAuditSink;
  callers: CallerResolver;
  sessions: SessionLookup;
  /** sha256 of the machine-wide header secret (`IDENTITY_HEADER` / `MSI_SECRET`). */
  machineSecretDigest: Buffer;
  /** Machine-wide surfaces: IMDS / Cloud Shell / Arc (`--no-imds` turns them off), App Service secret (`--no-app-service`). */
  imds: boolean;
  appService: boolean;
  retryAfterSeconds: number;
  /** True once the authority said it does not recognise this host: every token request is refused. */
  hostRefused(): boolean;
  /** Called when a token fetch says the host is no longer recognised. */
  onHostNotRecognised(err: UpstreamError): void;
  /** Token counts for Prometheus (`--metrics-port`); absent, nothing is counted. */
  metrics?: AgentMetricsSink;
}

/** A token request after its surface parsed and authenticated it. */
export interface TokenRequest {
  surface: AgentSurface;
  selector: IdentitySelector;
  resource: string;
  session?: AgentSession;
  /** Azure Arc: echo the user-assigned identity's ids in the body. */
  echo?: boolean;
}

/** Audits one outcome (never a token, never a secret). */
export function audit(ctx: SurfaceContext, req: IncomingMessage, event: Omit<AgentAuditEvent, 'caller'>): void {
  try {
    ctx.audit.record({ ...event, caller: ctx.callers.callerOf(req.socket) });
  } catch (err) {
    ctx.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'the audit sink threw; the request was answered anyway');
  }
}

/** Answers a refusal and audits it (anything but an {@link AgentError} is logged and answered as a 500). */
export function refuse(
  ctx: SurfaceContext,
  req: IncomingMessage,
  res: ServerResponse,
  surface: AgentSurface,
  thrown: unknown,
  extra: Partial<AgentAuditEvent> = {},
): void {
  let err: AgentError;
  if (thrown instanceof AgentError) err = thrown;
  else {
    ctx.logger.error({ err: thrown instanceof Error ? thrown.message : String(thrown) }, 'unexpected failure answering a request');
    err = AgentErrors.internal();
  }
  if (res.headersSent) return;
  sendError(res, err);
  audit(ctx, req, { decision: 'refused', surface, status: err.status, reason: err.reason, ...extra });
}

/** Serves a token request: identity, session scope, rate limit, cache (synchronous on a hit), audit. */
export function serveToken(ctx: SurfaceContext, req: IncomingMessage, res: ServerResponse, request: TokenRequest): void | Promise<void> {
  const base = { surface: request.surface, audience: request.resource, ...(request.session === undefined ? {} : { session: request.session.id }) };
  if (ctx.hostRefused()) return refuse(ctx, req, res, request.surface, AgentErrors.hostNotRecognised(), base);
  const identity = sessionIdentity(ctx, request) ?? ctx.identities.resolve(request.selector);
  if (identity !== undefined) {
    const entry = ctx.cache.peek(identity, request.resource);
    if (entry !== undefined && admitted(ctx, req, res, request, identity, base)) {
      answer(ctx, req, res, request, identity, entry, 'cache', base);
      return;
    }
    if (entry !== undefined) return;
  }
  return serveSlow(ctx, req, res, request, identity, base);
}

type AuditBase = { surface: AgentSurface; audience: string; session?: string };

/** Session scope and rate limit; answers the refusal itself and returns false when refused. */
function admitted(ctx: SurfaceContext, req: IncomingMessage, res: ServerResponse, request: TokenRequest, identity: HostIdentity, base: AuditBase): boolean {
  if (request.session !== undefined && !sessionAllows(request.session, identity)) {
    refuse(ctx, req, res, request.surface, AgentErrors.identityNotFound(), { ...base, identity: identity.objectId });
    return false;
  }
  const wait = ctx.limiter.take(identity.objectId);
  if (wait > 0) {
    refuse(ctx, req, res, request.surface, AgentErrors.rateLimited(wait), { ...base, identity: identity.objectId });
    return false;
  }
  return true;
}

async function serveSlow(
  ctx: SurfaceContext,
  req: IncomingMessage,
  res: ServerResponse,
  request: TokenRequest,
  known: HostIdentity | undefined,
  base: AuditBase,
): Promise<void> {
  let identity = known;
  try {
    if (identity === undefined) {
      await ctx.identities.resolveFresh(request.selector);
      identity = sessionIdentity(ctx, request) ?? ctx.identities.resolve(request.selector);
    }
    if (ctx.hostRefused()) return refuse(ctx, req, res, request.surface, AgentErrors.hostNotRecognised(), base);
    if (identity === undefined) return refuse(ctx, req, res, request.surface, AgentErrors.identityNotFound(), base);
    if (!admitted(ctx, req, res, request, identity, base)) return;
    const { entry, source } = await ctx.cache.obtain(identity, request.resource);
    if (ctx.hostRefused()) return refuse(ctx, req, res, request.surface, AgentErrors.hostNotRecognised(), base);
    answer(ctx, req, res, request, identity, entry, source, base);
  } catch (err) {
    const extra = identity === undefined ? base : { ...base, identity: identity.objectId };
    if (err instanceof UpstreamError) {
      ctx.metrics?.upstreamError(err.kind);
      switch (err.kind) {
        case 'unavailable':
          return refuse(ctx, req, res, request.surface, AgentErrors.unavailable(ctx.retryAfterSeconds), extra);
        case 'invalid-resource':
          return refuse(ctx, req, res, request.surface, AgentErrors.invalidResource(request.resource), extra);
        case 'identity-not-found':
          ctx.identities.refresh().catch(() => undefined);
          return refuse(ctx, req, res, request.surface, AgentErrors.identityNotFound(), extra);
        case 'host-not-recognised':
          ctx.onHostNotRecognised(err);
          return refuse(ctx, req, res, request.surface, AgentErrors.hostNotRecognised(), extra);
        case 'refused':
          ctx.logger.error({ err: err.message, status: err.status }, 'the authority refused a token request');
          return refuse(ctx, req, res, request.surface, AgentErrors.upstreamRefused(), extra);
        case 'federation-refused':
          ctx.logger.warn({ err: err.message, status: err.status }, 'the upstream Entra refused the exchange of an outbound assertion');
          return refuse(ctx, req, res, request.surface, AgentErrors.federationRefused(err), extra);
      }
    }
    ctx.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'token request failed');
    return refuse(ctx, req, res, request.surface, AgentErrors.upstreamRefused(), extra);
  }
}

function answer(
  ctx: SurfaceContext,
  req: IncomingMessage,
  res: ServerResponse,
  request: TokenRequest,
  identity: HostIdentity,
  entry: CacheEntry,
  source: 'cache' | 'authority' | 'upstream',
  base: AuditBase,
): void {
  const echo = request.echo === true && identity.type === 'UserAssigned' ? { object_id: identity.objectId, msi_res_id: identity.resourceId } : undefined;
  sendJson(res, 200, successBody(entry, ctx.clock.now(), echo));
  ctx.metrics?.served(request.surface, source);
  audit(ctx, req, { decision: 'served', source, identity: identity.objectId, status: 200, ...base });
}

/** With a session and no selector, the session's only identity (or its system identity) is meant. */
function sessionIdentity(ctx: SurfaceContext, request: TokenRequest): HostIdentity | undefined {
  const session = request.session;
  if (session === undefined || request.selector.kind !== 'system') return undefined;
  const all = ctx.identities.host?.identities ?? [];
  const granted = all.filter((identity) => sessionAllows(session, identity));
  if (granted.length === 1) return granted[0];
  return granted.find((identity) => identity.type === 'SystemAssigned');
}
