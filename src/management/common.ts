/**
 * Plumbing shared by the management API's route files: route registration that honours ARM's
 * case-insensitive paths, JSON body checks, audited mutations, and the handlers of ARM's subscription-scoped
 * list/get/PUT/DELETE routes.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { ApiErrors } from '../shared/api-error.js';
import type { Subscription } from '../store/types.js';
import type { ManagementContext } from './context.js';
import { authorizeSubscription, callerOf, type Caller, type RequestHook } from './authenticate.js';
import { errorCodeOf, ManagementErrors, type ApiFamily } from './errors.js';
import { filterReadable, requireAccess, type ActionAtScope } from './authorize.js';
import { pathParam } from './resource-ids.js';

/** Largest JSON body the management API accepts (certificates included). */
export const MANAGEMENT_BODY_LIMIT = 64 * 1024;

export type RouteHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export interface RouteSpec {
  method: HTTPMethods;
  /** In the canonical casing, e.g. `/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName`. */
  url: string;
  onRequest: RequestHook[];
  handler: RouteHandler;
  /**
   * The ARM action the route performs (e.g. `Microsoft.Authorization/roleAssignments/write`), for
   * authorisation; also available to hooks as `request.routeOptions.config.armAction`.
   */
  armAction?: string;
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
  const options = {
    bodyLimit: MANAGEMENT_BODY_LIMIT,
    onRequest: spec.onRequest,
    handler: spec.handler,
    ...(spec.armAction === undefined ? {} : { config: { armAction: spec.armAction } }),
  };
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
    throw ApiErrors.invalidContent('the body must be a JSON object (Content-Type: application/json)');
  }
  return body as Record<string, unknown>;
}

/**
 * The JSON body's `properties` object (a PUT's payload in ARM's shape); the body must be a JSON object
 * ({@link jsonObject}) and `missing()` is thrown when `properties` is absent or not an object.
 */
export function jsonProperties(body: unknown, missing: () => Error): Record<string, unknown> {
  const properties = jsonObject(body)['properties'];
  if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) throw missing();
  return properties as Record<string, unknown>;
}

/** Request path and query parameters, typed loosely: every route validates what it reads. */
export function params(request: FastifyRequest): Record<string, string> {
  return request.params as Record<string, string>;
}

export function query(request: FastifyRequest): Record<string, string | string[] | undefined> {
  return (request.query ?? {}) as Record<string, string | string[] | undefined>;
}

/** One query parameter; a repeated parameter is a 400 in `family`'s words. */
export function singleQuery(request: FastifyRequest, name: string, family: ApiFamily = 'arm'): string | undefined {
  const value = query(request)[name];
  if (Array.isArray(value)) throw ManagementErrors.repeatedQueryParameter(name, family);
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
export async function audited<T>(ctx: ManagementContext, entry: AuditTarget, fn: () => Promise<AuditedOutcome<T>>): Promise<T> {
  let outcome: AuditedOutcome<T>;
  try {
    outcome = await fn();
  } catch (err) {
    const code = errorCodeOf(err);
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

// ---------------------------------------------------------------------------------------------------
// ARM routes under /subscriptions/{subscriptionId}
// ---------------------------------------------------------------------------------------------------

/** What a subscription-scoped ARM route addresses, once the caller is authorised on the subscription. */
export interface ArmScope {
  caller: Caller;
  subscription: Subscription;
  /** The `resourceGroupName` path parameter ('' on a route without one). */
  resourceGroup: string;
  /** The `resourceName` path parameter ('' on a route without one). */
  name: string;
}

/**
 * Reads the route's address and checks the caller may use its subscription (see {@link authorizeSubscription}).
 * Each parameter must be one valid id segment ({@link pathParam}), as for the scope the route was authorised at.
 */
export async function armScope(ctx: ManagementContext, request: FastifyRequest): Promise<ArmScope> {
  const caller = callerOf(request);
  const subscription = await authorizeSubscription(ctx, caller, pathParam(request, 'subscriptionId'));
  return { caller, subscription, resourceGroup: pathParam(request, 'resourceGroupName'), name: pathParam(request, 'resourceName') };
}

/** The audit entry of the caller's mutation in the subscription's tenant. */
function armAuditEntry(scope: ArmScope, action: string, target: string): AuditTarget {
  return { tenantId: scope.subscription.tenantId, actor: scope.caller.principal.objectId, action, target };
}

/**
 * How an ARM list is authorised, as ARM filters lists: each item is shown only if the caller may `read` it
 * (its read action at its id); when none is readable and the caller may not read at the list's own scope
 * either (`listScope`), the list is refused with that action and scope.
 */
export interface ArmListAuthorization<T> {
  read: (item: T) => ActionAtScope;
  listScope: (request: FastifyRequest) => ActionAtScope;
}

/** An ARM list: `{ value }` with the view of each item `list` finds that the caller may read. */
export function armListHandler<T>(
  ctx: ManagementContext,
  list: (scope: ArmScope, request: FastifyRequest) => Promise<readonly T[]>,
  view: (item: T, scope: ArmScope) => unknown,
  authorization: ArmListAuthorization<T>,
): RouteHandler {
  return async (request) => {
    const scope = await armScope(ctx, request);
    const items = await filterReadable(ctx, scope.caller, await list(scope, request), authorization.read);
    if (items.length === 0) await requireAccess(ctx, request, authorization.listScope(request));
    return { value: await Promise.all(items.map((item) => view(item, scope))) };
  };
}

/** An ARM GET of one item: the view of what `get` finds (it throws the 404). */
export function armGetHandler<T>(
  ctx: ManagementContext,
  get: (scope: ArmScope, request: FastifyRequest) => Promise<T>,
  view: (item: T, scope: ArmScope) => unknown,
): RouteHandler {
  return async (request) => {
    const scope = await armScope(ctx, request);
    return view(await get(scope, request), scope);
  };
}

/** What a PUT wrote, and what its audit event records on success. */
export interface ArmWritten<T> {
  item: T;
  created: boolean;
  /** The written item's ARM id (the audit target). */
  id: string;
  /** Never a secret. */
  detail: Record<string, unknown>;
}

export interface ArmPutSpec<T> {
  /** The audited kind: the event is `<kind>.created` or `<kind>.updated`, and `<kind>.write` when the PUT fails. */
  kind: string;
  /** The addressed id, recorded as the target when the PUT fails. */
  target: (scope: ArmScope, request: FastifyRequest) => string;
  /** Validates the request and writes; runs inside the audit. */
  write: (scope: ArmScope, request: FastifyRequest) => Promise<ArmWritten<T>>;
  view: (item: T, scope: ArmScope) => unknown;
}

/** An audited ARM PUT: 201 with the view when it created the item, 200 when it updated it. */
export function armPutHandler<T>(ctx: ManagementContext, spec: ArmPutSpec<T>): RouteHandler {
  return async (request, reply) => {
    const scope = await armScope(ctx, request);
    const { item, created } = await audited(ctx, armAuditEntry(scope, `${spec.kind}.write`, spec.target(scope, request)), async () => {
      const written = await spec.write(scope, request);
      return { result: written, action: `${spec.kind}.${written.created ? 'created' : 'updated'}`, target: written.id, detail: written.detail };
    });
    return reply.code(created ? 201 : 200).send(await spec.view(item, scope));
  };
}

export interface ArmDeleteSpec {
  /** The audited kind: the event is `<kind>.deleted`. */
  kind: string;
  /** The addressed id, recorded as the target unless the deletion names the deleted item's own. */
  target: (scope: ArmScope, request: FastifyRequest) => string;
  /** Deletes; runs inside the audit. Undefined when there was nothing to delete. */
  remove: (scope: ArmScope, request: FastifyRequest) => Promise<{ id: string; detail: Record<string, unknown> } | undefined>;
}

/** An audited ARM DELETE: 200 when it deleted something, 204 when there was nothing (recorded as `existed: false`). */
export function armDeleteHandler(ctx: ManagementContext, spec: ArmDeleteSpec): RouteHandler {
  return async (request, reply) => {
    const scope = await armScope(ctx, request);
    const deleted = await audited(ctx, armAuditEntry(scope, `${spec.kind}.deleted`, spec.target(scope, request)), async () => {
      const removed = await spec.remove(scope, request);
      return removed === undefined ? { result: removed, detail: { existed: false } } : { result: removed, target: removed.id, detail: removed.detail };
    });
    return reply.code(deleted === undefined ? 204 : 200).send();
  };
}
