/**
 * Authorisation of the management API by RBAC: every route declares the ARM action it performs and the scope
 * it acts on, and the caller's {@link Authorizer} decides (cached; invalidated by every RBAC change). A refusal
 * is ARM's `403 AuthorizationFailed`, worded as Azure words it (Graph's `Authorization_RequestDenied` on
 * `/v1.0`). Token verification is {@link authenticate}'s job and runs first.
 *
 * Actions (docs/rbac.md "Authorisation of the management API" lists them all):
 * - ARM resources: their operation names (`Microsoft.Resources/subscriptions/resourceGroups/write`,
 *   `Microsoft.ManagedIdentity/userAssignedIdentities/read`, `{namespace}/{type}/delete`, ...) at the
 *   addressed resource's ARM id; lists are filtered to what the caller may read.
 * - Graph (`/v1.0/servicePrincipals`): not ARM RBAC in Azure (Entra roles). Here reads need
 *   `Microsoft.Authorization/servicePrincipals/read` and changes `Microsoft.Authorization/servicePrincipals/write`
 *   at `/`: readers at the root may read, Owner and User Access Administrator at the root may change.
 * - openmsi's own endpoints: see {@link OPENMSI_ACTIONS}.
 */
import type { FastifyRequest } from 'fastify';
import type { AuthorizationDecision } from '../rbac/contracts.js';
import { ApiError } from '../shared/api-error.js';
import { permissionsGrant } from '../rbac/evaluate.js';
import { canonicalScope, decodedPath, pathParam, splitAuthorizationPath } from './resource-ids.js';
import { authorizeSubscription, callerOf, markDenied, type Caller, type RequestHook } from './authenticate.js';
import type { ManagementContext } from './context.js';
import type { ApiFamily } from './errors.js';

/** An action checked at a scope. */
export interface ActionAtScope {
  action: string;
  /** An ARM scope: `/`, `/subscriptions/{s}`, `/subscriptions/{s}/resourceGroups/{g}`, or a resource id. */
  scope: string;
}

/** The tenant root. */
export const ROOT_SCOPE = '/';

/** The actions of openmsi's own endpoints and of the Graph-shaped directory, all checked at `/`. */
export const OPENMSI_ACTIONS = {
  /** `GET /v1.0/servicePrincipals...`: any `*\/read` at the root (Reader and above). */
  graphRead: 'Microsoft.Authorization/servicePrincipals/read',
  /** Creating, changing, deleting service principals and their credentials: Owner or User Access Administrator at `/` (Contributor's notActions exclude it). */
  graphWrite: 'Microsoft.Authorization/servicePrincipals/write',
  /** `GET /v1.0/groups...` and the read-only POSTs (`checkMemberGroups`, `getMemberGroups`...). */
  graphGroupsRead: 'Microsoft.Authorization/groups/read',
  /** Creating and deleting groups, adding and removing members: Owner or User Access Administrator at `/`. */
  graphGroupsWrite: 'Microsoft.Authorization/groups/write',
  /** `GET /openmsi/keys` (metadata only). */
  keysRead: 'Microsoft.Authorization/signingKeys/read',
  /** `POST /openmsi/keys/rotate`: owner-level (Contributor's `Microsoft.Authorization/*\/Write` notAction excludes it). */
  keysWrite: 'Microsoft.Authorization/signingKeys/write',
  /** `POST /openmsi/backup`: a copy of the whole store, owner-level (Contributor's `Microsoft.Authorization/*\/Write` notAction excludes it). */
  backupWrite: 'Microsoft.Authorization/backups/write',
  /** `GET /openmsi/federationIssuers`: where external issuers' keys come from (Reader and above at `/`). */
  federationIssuersRead: 'Microsoft.Authorization/federationIssuers/read',
  /** `PUT|DELETE /openmsi/federationIssuers`: trusting an issuer's keys, owner-level (Contributor's `Microsoft.Authorization/*\/Write` notAction excludes it). */
  federationIssuersWrite: 'Microsoft.Authorization/federationIssuers/write',
  /** `GET /openmsi/audit`: ARM's activity-log read (Reader and above at `/`). */
  auditRead: 'Microsoft.Insights/eventtypes/values/read',
  /** `GET /openmsi/rbac/state|version` (the remote source of the openmsi/rbac library). */
  rbacStateRead: 'Microsoft.Authorization/roleAssignments/read',
} as const;

/** Azure's refusal, word for word. */
export function authorizationFailed(appId: string, objectId: string, action: string, scope: string): ApiError {
  return new ApiError(
    403,
    'AuthorizationFailed',
    `The client '${appId}' with object id '${objectId}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
  );
}

/** Graph's refusal. */
export function graphRequestDenied(): ApiError {
  return new ApiError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
}

/**
 * The break-glass (docs/rbac.md "Deny assignments"): a deny assignment never stops the bootstrap admin (the
 * directory admin `openmsi init` made, `isDirectoryAdmin`) from finding and deleting deny assignments, so a
 * deny that shuts everyone else out can always be removed. Its role assignments still have to grant the
 * action: only the deny half of the decision is skipped, and only for these actions.
 */
export const DENY_BREAK_GLASS_ACTIONS: ReadonlySet<string> = new Set(
  ['Microsoft.Authorization/denyAssignments/read', 'Microsoft.Authorization/denyAssignments/delete'].map((a) => a.toLowerCase()),
);

/**
 * The authoriser's decision for the caller at the canonical form of the scope (the one parser's); a malformed
 * scope is ARM's 400 `InvalidScope` (nothing is checked or written).
 */
export async function decide(ctx: ManagementContext, caller: Caller, check: ActionAtScope): Promise<AuthorizationDecision> {
  const scope = canonicalScope(check.scope).scope;
  const decision = await ctx.authorizer.check({
    tenantId: caller.tenantId,
    principalId: caller.principal.objectId,
    action: check.action,
    isDataAction: false,
    scope,
  });
  if (decision.reason === 'denied' && caller.principal.isDirectoryAdmin && DENY_BREAK_GLASS_ACTIONS.has(check.action.toLowerCase())) {
    const granted = permissionsGrant(await ctx.authorizer.permissionsAt(caller.tenantId, caller.principal.objectId, scope), check.action, false);
    if (granted) return { allowed: true, reason: 'granted' };
  }
  return decision;
}

/** True when the caller may perform the action at the scope. */
export async function allowed(ctx: ManagementContext, caller: Caller, check: ActionAtScope): Promise<boolean> {
  return (await decide(ctx, caller, check)).allowed;
}

/** Throws the family's 403 unless the caller may perform the action at the scope (recording the refusal for the audit trail). */
export async function requireAccess(ctx: ManagementContext, request: FastifyRequest, check: ActionAtScope, family: ApiFamily = 'arm'): Promise<Caller> {
  const caller = callerOf(request);
  const decision = await decide(ctx, caller, check);
  if (!decision.allowed) {
    markDenied(request, caller.principal);
    throw family === 'graph' ? graphRequestDenied() : authorizationFailed(caller.principal.appId, caller.principal.objectId, check.action, check.scope);
  }
  return caller;
}

/** The items the caller may read, in order. */
export async function filterReadable<T>(ctx: ManagementContext, caller: Caller, items: readonly T[], readOf: (item: T) => ActionAtScope): Promise<T[]> {
  const out: T[] = [];
  for (const item of items) if (await allowed(ctx, caller, readOf(item))) out.push(item);
  return out;
}

/**
 * An `onRequest` hook (after {@link authenticate}) that checks the action `resolve` names for the request. On
 * a route with a `subscriptionId`, the subscription is checked first (404 when missing, ARM's 401
 * `InvalidAuthenticationTokenTenant` when another tenant's), as ARM does before authorising.
 */
export function authorize(ctx: ManagementContext, resolve: (request: FastifyRequest) => ActionAtScope, family: ApiFamily = 'arm'): RequestHook {
  return async (request) => {
    const subscriptionId = pathParam(request, 'subscriptionId');
    if (subscriptionId !== '') await authorizeSubscription(ctx, callerOf(request), subscriptionId);
    await requireAccess(ctx, request, resolve(request), family);
  };
}

// The scopes of ARM routes, from their parameters: each must be one valid id segment (400 `InvalidScope`
// otherwise, see {@link pathParam}), so that the scope checked names exactly what the handler then addresses.

/** `/subscriptions/{s}` of the request. */
export function subscriptionScope(request: FastifyRequest): string {
  return `/subscriptions/${pathParam(request, 'subscriptionId')}`;
}

/** `/subscriptions/{s}/resourceGroups/{g}` of the request. */
export function resourceGroupScope(request: FastifyRequest): string {
  return `${subscriptionScope(request)}/resourceGroups/${pathParam(request, 'resourceGroupName')}`;
}

/** The id of a resource `type` (`Namespace/type`) named by the request's `resourceName`, in its group. */
export function resourceScope(request: FastifyRequest, type: string): string {
  return `${resourceGroupScope(request)}/providers/${type}/${pathParam(request, 'resourceName')}`;
}

/** A constant action at `/`. */
export function atRoot(action: string): (request: FastifyRequest) => ActionAtScope {
  return () => ({ action, scope: ROOT_SCOPE });
}

/**
 * The scope a `Microsoft.Authorization` route addresses, canonical: the request path before the last
 * `/providers/Microsoft.Authorization/` (case-insensitive), `/` when it starts there. The handlers read the
 * same split ({@link splitAuthorizationPath}), so the scope checked is the scope acted on.
 */
export function authorizationScopeOf(request: FastifyRequest): string {
  const path = decodedPath(request);
  return canonicalScope(splitAuthorizationPath(path)?.scope ?? path).scope;
}

/**
 * An `onRequest` hook for routes that declare their ARM action (`armAction`, in the route's config, or by
 * `actionOf`): checks it at {@link authorizationScopeOf}. Used by the roleAssignments, roleDefinitions and
 * denyAssignments routes at every scope.
 */
export function authorizeDeclaredAction(ctx: ManagementContext, actionOf?: (request: FastifyRequest) => string | undefined): RequestHook {
  return async (request) => {
    const declared = (request.routeOptions.config as { armAction?: unknown } | undefined)?.armAction;
    const action = actionOf?.(request) ?? (typeof declared === 'string' ? declared : undefined);
    // A route with no action (an unknown path under the wildcard) is the handler's 404/400 to answer.
    if (action === undefined) return;
    const scope = canonicalScope(authorizationScopeOf(request));
    if (scope.subscriptionId !== undefined) await authorizeSubscription(ctx, callerOf(request), scope.subscriptionId);
    await requireAccess(ctx, request, { action, scope: scope.scope });
  };
}

/** Graph's POSTs that only read (`checkMemberGroups`, `getMemberObjects`, ...). */
const GRAPH_READING_POST = /\/(checkMemberGroups|checkMemberObjects|getMemberGroups|getMemberObjects)$/i;

/**
 * The Graph-shaped directory's authorisation (Graph is Entra roles in Azure, not ARM RBAC): reads need
 * `Microsoft.Authorization/{servicePrincipals|groups}/read` at `/`, changes `.../write` at `/`.
 */
export function authorizeGraph(ctx: ManagementContext, objects: 'servicePrincipals' | 'groups'): RequestHook {
  const [read, write] =
    objects === 'groups' ? [OPENMSI_ACTIONS.graphGroupsRead, OPENMSI_ACTIONS.graphGroupsWrite] : [OPENMSI_ACTIONS.graphRead, OPENMSI_ACTIONS.graphWrite];
  return authorize(
    ctx,
    (request) => {
      const reading = request.method === 'GET' || (request.method === 'POST' && GRAPH_READING_POST.test(request.url.split('?')[0] ?? ''));
      return { action: reading ? read : write, scope: ROOT_SCOPE };
    },
    'graph',
  );
}
