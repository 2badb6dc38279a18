/**
 * Plumbing of the `Microsoft.Authorization` routes (role assignments, role definitions, deny assignments),
 * which ARM serves at every scope: `/providers/Microsoft.Authorization/...` (the tenant root),
 * `/subscriptions/{s}/...`, `/subscriptions/{s}/resourceGroups/{rg}/...`, and below any resource id. Routes
 * are registered for the fixed shapes (their static segments win over the generic resource routes) and as a
 * wildcard under resource groups; the scope is parsed from the path here.
 */
import type { FastifyInstance, FastifyRequest, HTTPMethods } from 'fastify';
import { ApiError, ApiErrors } from '../shared/api-error.js';
import { iso } from '../shared/clock.js';
import { canonicalScope, decodePath, splitAuthorizationPath } from './resource-ids.js';
import type { ManagementContext } from './context.js';
import { apiVersionHook } from './api-version.js';
import { authenticate, authorizeSubscription, callerOf, type Caller } from './authenticate.js';
import { route, singleQuery, type RouteHandler } from './common.js';
import { authorizeDeclaredAction } from './authorize.js';

export const AUTHORIZATION_PROVIDER = 'Microsoft.Authorization';

export type AuthorizationResourceType = 'roleAssignments' | 'roleDefinitions' | 'denyAssignments';

/** What a `Microsoft.Authorization` request addresses. */
export interface AuthorizationAddress {
  caller: Caller;
  /** The tenant acted in: the caller's. */
  tenantId: string;
  /** The scope in the path, normalised (`/` for the tenant root). */
  scope: string;
  subscriptionId: string | undefined;
  /** The item's GUID (ARM's `name`), or undefined for a list. */
  name: string | undefined;
}

/**
 * Splits `{scope}/providers/Microsoft.Authorization/{type}[/{name}]` (the last such provider segment), each
 * segment decoded once: the same reading as the authorisation hook's (`authorizationScopeOf`).
 */
function splitPath(path: string, type: AuthorizationResourceType): { scope: string; name: string | undefined } | undefined {
  const split = splitAuthorizationPath(decodePath(path));
  if (split === undefined) return undefined;
  const { scope, rest } = split;
  if (rest[0]?.toLowerCase() !== type.toLowerCase() || rest.length > 2) return undefined;
  return { scope, name: rest[1] };
}

/** Parses and checks the addressed scope (canonical, 400 `InvalidScope` when it does not parse): the caller's tenant, an existing subscription of it. */
export async function authorizationAddress(ctx: ManagementContext, request: FastifyRequest, type: AuthorizationResourceType): Promise<AuthorizationAddress> {
  const caller = callerOf(request);
  const path = request.url.split('?')[0] ?? '/';
  const split = splitPath(path, type);
  if (split === undefined) throw ApiErrors.routeNotFound(request.method, path);
  const parsed = canonicalScope(split.scope);
  if (parsed.subscriptionId !== undefined) await authorizeSubscription(ctx, caller, parsed.subscriptionId);
  return { caller, tenantId: caller.tenantId, scope: parsed.scope, subscriptionId: parsed.subscriptionId, name: split.name };
}

/** `{scope}/providers/Microsoft.Authorization/{type}/{name}` (the root scope contributes nothing). */
export function authorizationId(scope: string, type: AuthorizationResourceType, name: string): string {
  return `${scope === '/' ? '' : scope}/providers/${AUTHORIZATION_PROVIDER}/${type}/${name}`;
}

/** ARM's `roleDefinitionId` form: under the scope's subscription, or at the root for scopes above subscriptions. */
export function armRoleDefinitionId(scope: string, roleGuid: string): string {
  const m = /^\/subscriptions\/([^/]+)/i.exec(scope);
  return authorizationId(m === null ? '/' : `/subscriptions/${m[1] ?? ''}`, 'roleDefinitions', roleGuid);
}

export function isoOrNull(ms: number | undefined): string | null {
  return ms === undefined ? null : iso(ms);
}

/** `$filter` of an ARM list, parsed loosely: `atScope()`, `principalId eq '…'`, `assignedTo('…')`, `roleName eq '…'`, `type eq '…'`, joined with `and`. */
export interface AuthorizationFilter {
  atScope: boolean;
  principalId?: string;
  assignedTo?: string;
  roleName?: string;
  type?: string;
  roleDefinitionId?: string;
}

const invalidFilter = (filter: string) =>
  new ApiError(
    400,
    'InvalidFilterInQueryString',
    `The $filter '${filter.slice(0, 200)}' is not supported. Supported: atScope(), principalId eq '{id}', assignedTo('{id}'), roleDefinitionId eq '{id}', roleName eq '{name}', type eq '{type}', joined with 'and'.`,
  );

export function authorizationFilter(request: FastifyRequest): AuthorizationFilter {
  const text = singleQuery(request, '$filter');
  const out: AuthorizationFilter = { atScope: false };
  if (text === undefined || text.trim() === '') return out;
  for (const clause of text.split(/\s+and\s+/i)) {
    const c = clause.trim();
    let m: RegExpExecArray | null;
    if (/^atScope\(\)$/i.test(c)) out.atScope = true;
    else if ((m = /^assignedTo\('([^']*)'\)$/i.exec(c)) !== null) out.assignedTo = m[1] ?? '';
    else if ((m = /^(principalId|roleName|type|roleDefinitionId)\s+eq\s+'((?:[^']|'')*)'$/i.exec(c)) !== null) {
      const value = (m[2] ?? '').replace(/''/g, "'");
      const key = (m[1] ?? '').toLowerCase();
      if (key === 'principalid') out.principalId = value;
      else if (key === 'rolename') out.roleName = value;
      else if (key === 'type') out.type = value;
      else out.roleDefinitionId = value;
    } else throw invalidFilter(text);
  }
  return out;
}

/**
 * Registers `handler` for `{scope}/providers/Microsoft.Authorization/{type}[/:name]` at every scope shape.
 * `armAction` is what rbac-authz checks at the addressed scope.
 */
export function authorizationRoutes(
  app: FastifyInstance,
  ctx: ManagementContext,
  spec: { method: HTTPMethods; type: AuthorizationResourceType; one: boolean; armAction: string; handler: RouteHandler },
): void {
  // rbac-authz: the declared action at the addressed scope.
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook, authorizeDeclaredAction(ctx)];
  const tail = `providers/${AUTHORIZATION_PROVIDER}/${spec.type}${spec.one ? '/:name' : ''}`;
  const urls = [
    `/${tail}`,
    `/subscriptions/:subscriptionId/${tail}`,
    `/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/${tail}`,
    `/providers/Microsoft.Management/managementGroups/:managementGroup/${tail}`,
  ];
  for (const url of urls) route(app, { method: spec.method, url, onRequest, handler: spec.handler, armAction: spec.armAction });
}

/**
 * One wildcard per method for scopes below resource groups (resource ids), shared by the three types: the
 * path says which. Registered once, after the fixed-shape routes.
 */
export function resourceScopeWildcard(
  app: FastifyInstance,
  ctx: ManagementContext,
  handlers: Partial<Record<AuthorizationResourceType, { list?: RouteHandler; get?: RouteHandler; put?: RouteHandler; delete?: RouteHandler }>>,
): void {
  // rbac-authz: the action the path names, at the addressed scope.
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook, authorizeDeclaredAction(ctx, (request) => authorizationArmAction(request.method, request.url))];
  const pick = (request: FastifyRequest, method: 'get' | 'put' | 'delete'): RouteHandler | undefined => {
    const path = request.url.split('?')[0] ?? '/';
    for (const type of Object.keys(handlers) as AuthorizationResourceType[]) {
      const split = splitPath(path, type);
      if (split === undefined) continue;
      const h = handlers[type];
      if (method === 'get') return split.name === undefined ? h?.list : h?.get;
      return split.name === undefined ? undefined : h?.[method];
    }
    return undefined;
  };
  for (const method of ['GET', 'PUT', 'DELETE'] as const) {
    route(app, {
      method,
      url: '/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/providers/*',
      onRequest,
      handler: async (request, reply) => {
        const handler = pick(request, method.toLowerCase() as 'get' | 'put' | 'delete');
        if (handler === undefined) throw ApiErrors.routeNotFound(request.method, request.url.split('?')[0] ?? '');
        return handler(request, reply);
      },
    });
  }
}

/**
 * The ARM action of a `Microsoft.Authorization` request, from its method and path (what the wildcard routes
 * need, since one route serves several types): `Microsoft.Authorization/{type}/read|write|delete`.
 */
export function authorizationArmAction(method: string, path: string): string | undefined {
  const verb = ({ GET: 'read', PUT: 'write', DELETE: 'delete' } as Record<string, string>)[method.toUpperCase()];
  if (verb === undefined) return undefined;
  for (const type of ['roleAssignments', 'roleDefinitions', 'denyAssignments'] as const) {
    if (splitPath(path.split('?')[0] ?? '/', type) !== undefined) return `${AUTHORIZATION_PROVIDER}/${type}/${verb}`;
  }
  return undefined;
}
