import type { FastifyInstance, FastifyRequest } from 'fastify';
import { formatArmResourceId } from '../shared/ids.js';
import type { Repositories, Resource, Tags } from '../store/types.js';
import type { ManagementContext } from './context.js';
import {
  SUPPORTED_RESOURCE_TYPES,
  USER_ASSIGNED_IDENTITY_TYPE,
  canonicalResourceType,
  deleteResource,
  getResource,
  isUami,
  listResources,
  putResource,
  userAssignedIdentityProperties,
} from '../directory/resources.js';
import { DirectoryErrors } from '../directory/errors.js';
import { apiVersionHook } from './api-version.js';
import { authenticate } from './authenticate.js';
import { authorize, requireAccess, resourceGroupScope, resourceScope, subscriptionScope } from './authorize.js';
import { armUserAssignedIdentityView } from './user-assigned-identities.js';
import { armDeleteHandler, armGetHandler, armListHandler, armPutHandler, jsonObject, route, type ArmScope } from './common.js';
import { bodyResourceId, pathParam } from './resource-ids.js';

const IN_GROUP = '/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/providers/:namespace/:resourceType';
const ONE = `${IN_GROUP}/:resourceName`;

export interface ArmIdentity {
  type: 'SystemAssigned' | 'UserAssigned' | 'SystemAssigned, UserAssigned';
  principalId?: string;
  tenantId?: string;
  userAssignedIdentities?: Record<string, { principalId: string; clientId: string }>;
}

/** A generic resource as ARM shows it. */
export interface ArmResource {
  id: string;
  name: string;
  type: string;
  location: string;
  tags: Tags;
  identity?: ArmIdentity;
  properties: Record<string, unknown>;
}

/** A generic resource as ARM shows it, with its `identity` resolved to principal and client ids. */
export async function armResourceView(repos: Repositories, resource: Resource, tenantId: string): Promise<ArmResource> {
  if (isUami(resource)) {
    const view = armUserAssignedIdentityView(resource);
    return { ...view, properties: { ...view.properties } };
  }
  const view: ArmResource = {
    id: resource.id,
    name: resource.name,
    type: resource.type,
    location: resource.location,
    tags: resource.tags,
    properties: { ...resource.properties, provisioningState: 'Succeeded' },
  };
  const system = resource.systemPrincipalId !== null;
  const user = resource.userAssignedIdentityIds.length > 0;
  if (!system && !user) return view;
  const identity: ArmIdentity = { type: system && user ? 'SystemAssigned, UserAssigned' : system ? 'SystemAssigned' : 'UserAssigned' };
  if (resource.systemPrincipalId !== null) {
    identity.principalId = resource.systemPrincipalId;
    identity.tenantId = tenantId;
  }
  if (user) {
    const entries: Record<string, { principalId: string; clientId: string }> = {};
    for (const id of resource.userAssignedIdentityIds) {
      const uami = await repos.resources.get(id);
      const { principalId, clientId } = userAssignedIdentityProperties(uami);
      entries[uami?.id ?? id] = { principalId, clientId };
    }
    identity.userAssignedIdentities = entries;
  }
  return { ...view, identity };
}

/** The `Namespace/type` of the path, as requested (each one valid id segment). */
function requestedType(request: FastifyRequest): string {
  return `${pathParam(request, 'namespace')}/${pathParam(request, 'resourceType')}`;
}

/**
 * The allow-listed type a request addresses (the dedicated identity routes own user-assigned identities):
 * for a PUT, an unknown type cannot be created; otherwise it cannot be found.
 */
function addressedType(request: FastifyRequest, purpose: 'create' | 'address'): string {
  const requested = requestedType(request);
  const type = canonicalResourceType(requested);
  if (type === undefined) {
    const supported = [...SUPPORTED_RESOURCE_TYPES, USER_ASSIGNED_IDENTITY_TYPE];
    throw purpose === 'create' ? DirectoryErrors.noRegisteredProvider(requested, supported) : DirectoryErrors.resourceTypeNotFound(requested, supported);
  }
  return type;
}

/** The addressed resource's id, as requested. */
function addressedResource(scope: ArmScope, request: FastifyRequest): string {
  return formatArmResourceId({ subscriptionId: scope.subscription.id, resourceGroup: scope.resourceGroup, type: requestedType(request), name: scope.name });
}

/** The action Azure checks on each user-assigned identity a resource is given. */
export const ASSIGN_IDENTITY_ACTION = 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action';

/**
 * The request's `identity` with every key of `userAssignedIdentities` parsed by the one resource-id parser and
 * replaced by its canonical id (400 `LinkedInvalidPropertyId` for a key that is not the id of a
 * `Microsoft.ManagedIdentity/userAssignedIdentities` resource, 400 `InvalidIdentity` for two keys naming one
 * identity), and the canonical ids it attaches (every key whose value is not null). Other malformed `identity`
 * values are passed on unchanged for the directory's validation.
 */
export function canonicalIdentity(identity: unknown): { identity: unknown; attached: string[] } {
  if (typeof identity !== 'object' || identity === null || Array.isArray(identity)) return { identity, attached: [] };
  const requested = (identity as Record<string, unknown>)['userAssignedIdentities'];
  if (typeof requested !== 'object' || requested === null || Array.isArray(requested)) return { identity, attached: [] };
  const canonical: Record<string, unknown> = {};
  const keys = new Set<string>();
  const attached: string[] = [];
  for (const [id, value] of Object.entries(requested)) {
    const parsed = bodyResourceId(id, 'identity.userAssignedIdentities', USER_ASSIGNED_IDENTITY_TYPE);
    if (keys.has(parsed.key)) throw DirectoryErrors.invalidIdentity(`'userAssignedIdentities' names the identity '${parsed.scope}' more than once`);
    keys.add(parsed.key);
    canonical[parsed.scope] = value;
    // A null value detaches (ARM's PATCH spelling); every other value attaches.
    if (value !== null) attached.push(parsed.scope);
  }
  return { identity: { ...(identity as Record<string, unknown>), userAssignedIdentities: canonical }, attached };
}

/**
 * Attaching a user-assigned identity lets the resource's code act as it, so, as in Azure, the caller needs
 * `…/userAssignedIdentities/assign/action` on every identity the body attaches (Managed Identity Operator or
 * Contributor on the identity, Owner, ...), beside the write on the resource itself: checked at each canonical
 * id, the very id the directory then resolves (no id is skipped, whatever its spelling).
 */
async function requireAssignRights(ctx: ManagementContext, request: FastifyRequest, attached: readonly string[]): Promise<void> {
  for (const id of attached) await requireAccess(ctx, request, { action: ASSIGN_IDENTITY_ACTION, scope: id });
}

/**
 * Generic ARM resources of the allow-listed types (`Microsoft.Compute/virtualMachines`, ...), each with an
 * optional `identity`: PUT/GET/DELETE one, list by type per group and per subscription (the lists of every type are
 * resource-list.ts).
 */
export function resourceRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook];
  // `{namespace}/{type}/{verb}` as requested (the evaluation is case-insensitive).
  const as = (verb: 'read' | 'write' | 'delete') => [
    ...onRequest,
    authorize(ctx, (request) => ({ action: `${requestedType(request)}/${verb}`, scope: resourceScope(request, requestedType(request)) })),
  ];
  const view = (resource: Resource, scope: ArmScope) => armResourceView(ctx.store, resource, scope.subscription.tenantId);

  // A list of one type; the generic lists (every type, vaults included) are resource-list.ts.
  const listHandler = (scope: 'subscription' | 'group') =>
    armListHandler(
      ctx,
      (s, request) =>
        listResources(ctx.store, {
          subscriptionId: s.subscription.id,
          ...(scope === 'group' ? { resourceGroup: s.resourceGroup } : {}),
          type: addressedType(request, 'address'),
        }),
      view,
      {
        read: (resource) => ({ action: `${resource.type}/read`, scope: resource.id }),
        listScope: (request) => ({
          action: `${requestedType(request)}/read`,
          scope: scope === 'group' ? resourceGroupScope(request) : subscriptionScope(request),
        }),
      },
    );

  route(app, { method: 'GET', url: '/subscriptions/:subscriptionId/providers/:namespace/:resourceType', onRequest, handler: listHandler('subscription') });
  route(app, { method: 'GET', url: IN_GROUP, onRequest, handler: listHandler('group') });

  route(app, {
    method: 'GET',
    url: ONE,
    onRequest: as('read'),
    handler: armGetHandler(
      ctx,
      (scope, request) =>
        getResource(ctx.store, {
          subscriptionId: scope.subscription.id,
          resourceGroup: scope.resourceGroup,
          type: addressedType(request, 'address'),
          name: scope.name,
        }),
      view,
    ),
  });

  route(app, {
    method: 'PUT',
    url: ONE,
    onRequest: as('write'),
    handler: armPutHandler(ctx, {
      kind: 'resource',
      target: addressedResource,
      write: async (scope, request) => {
        const type = addressedType(request, 'create');
        const body = jsonObject(request.body);
        const identity = canonicalIdentity(body['identity']);
        await requireAssignRights(ctx, request, identity.attached);
        const result = await putResource(ctx.store, {
          subscriptionId: scope.subscription.id,
          resourceGroup: scope.resourceGroup,
          type,
          name: scope.name,
          location: body['location'],
          tags: body['tags'],
          properties: body['properties'],
          identity: identity.identity,
          clock: ctx.clock,
        });
        return {
          item: result.resource,
          created: result.created,
          id: result.resource.id,
          detail: {
            type: result.resource.type,
            systemAssignedPrincipalId: result.resource.systemPrincipalId,
            systemPrincipalCreated: result.systemPrincipalCreated,
            systemPrincipalDeleted: result.systemPrincipalDeleted,
            userAssignedIdentities: result.resource.userAssignedIdentityIds,
          },
        };
      },
      view,
    }),
  });

  route(app, {
    method: 'DELETE',
    url: ONE,
    onRequest: as('delete'),
    handler: armDeleteHandler(ctx, {
      kind: 'resource',
      target: addressedResource,
      remove: async (scope, request) => {
        const type = addressedType(request, 'address');
        const result = await deleteResource(ctx.store, {
          subscriptionId: scope.subscription.id,
          resourceGroup: scope.resourceGroup,
          type,
          name: scope.name,
          clock: ctx.clock,
        });
        if (result === undefined) return undefined;
        return { id: result.resource.id, detail: { type, deletedPrincipals: result.deletedPrincipalIds } };
      },
    }),
  });
}
