/**
 * Plumbing shared by the management API's route files: route registration that honours ARM's
 * case-insensitive paths, JSON body checks, and audited mutations.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { ApiError } from '../../shared/api-error.js';
import type { AuthorityContext } from '../context.js';

/** Largest JSON body the management API accepts (certificates included). */
export const MANAGEMENT_BODY_LIMIT = 64 * 1024;

/** An `onRequest` hook: it runs before the body is read, and rejects to refuse the request. */
export type RequestHook = (request: FastifyRequest) => Promise<void>;

export type RouteHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export interface RouteSpec {
  method: HTTPMethods;
  /** In the canonical casing, e.g. `/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName`. */
  url: string;
  onRequest: RequestHook[];
  handler: RouteHandler;
}

/** Lower-cases the static segments of a route pattern (parameter names keep their casing). */
function lowerStatic(url: string): string {
  return url
    .split('/')
    .map((segment) => (segment.startsWith(':') ? segment : segment.toLowerCase()))
    .join('/');
}

/**
 * Registers a route whose path matches case-insensitively, as ARM's and Graph's do. The authority's router is
 * configured case-insensitive; if it is not, the lower-case spelling (what az sends for `resourcegroups`)
 * is registered as well as the canonical one.
 */
export function route(app: FastifyInstance, spec: RouteSpec): void {
  const options = { bodyLimit: MANAGEMENT_BODY_LIMIT, onRequest: spec.onRequest, handler: spec.handler };
  app.route({ method: spec.method, url: spec.url, ...options });
  const lower = lowerStatic(spec.url);
  if (lower !== spec.url && !app.hasRoute({ method: spec.method, url: lower })) {
    app.route({ method: spec.method, url: lower, ...options });
  }
}

/** The request body as a JSON object, or 400 `InvalidRequestContent`. */
export function jsonObject(body: unknown, options: { optional?: boolean } = {}): Record<string, unknown> {
  if ((body === undefined || body === null) && options.optional === true) return {};
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(400, 'InvalidRequestContent', 'The request content was invalid: the body must be a JSON object (Content-Type: application/json).');
  }
  return body as Record<string, unknown>;
}

/** Request path and query parameters, typed loosely: every route validates what it reads. */
export function params(request: FastifyRequest): Record<string, string> {
  return request.params as Record<string, string>;
}

export function query(request: FastifyRequest): Record<string, string | string[] | undefined> {
  return (request.query ?? {}) as Record<string, string | string[] | undefined>;
}

/** One query parameter; a repeated parameter is a 400. */
export function singleQuery(request: FastifyRequest, name: string, code = 'InvalidQueryParameter'): string | undefined {
  const value = query(request)[name];
  if (Array.isArray(value)) throw new ApiError(400, code, `The query parameter '${name}' may be given only once.`);
  return value;
}

export interface AuditTarget {
  tenantId: string | null;
  actor: string;
  action: string;
  target: string;
}

export interface AuditedOutcome<T> {
  result: T;
  /** Overrides the action recorded (e.g. `...created` vs `...updated`, known only afterwards). */
  action?: string;
  target?: string;
  /** Never a secret. */
  detail?: Record<string, unknown>;
}

/**
 * Runs a mutation and records its audit event: success with `detail`, or failure with the error code. The
 * response is sent only once the event is committed ("acknowledged means audited").
 */
export async function audited<T>(ctx: AuthorityContext, entry: AuditTarget, fn: () => Promise<AuditedOutcome<T>>): Promise<T> {
  let outcome: AuditedOutcome<T>;
  try {
    outcome = await fn();
  } catch (err) {
    const code = err instanceof ApiError ? err.code : 'InternalServerError';
    await ctx.audit
      .record({ tenantId: entry.tenantId, actor: entry.actor, action: entry.action, target: entry.target, outcome: 'failure', detail: { code } })
      .catch(() => undefined);
    throw err;
  }
  await ctx.audit.record({
    tenantId: entry.tenantId,
    actor: entry.actor,
    action: outcome.action ?? entry.action,
    target: outcome.target ?? entry.target,
    outcome: 'success',
    detail: outcome.detail ?? {},
  });
  return outcome.result;
}
