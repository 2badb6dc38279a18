import type { FastifyInstance } from 'fastify';
import { formatArmResourceId } from '../shared/ids.js';
import type { Repositories, Resource, ServicePrincipal, Tags } from '../store/types.js';
import type { ManagementContext } from './context.js';
import {
  USER_ASSIGNED_IDENTITY_TYPE,
  deleteUserAssignedIdentity,
  getUserAssignedIdentity,
  listUserAssignedIdentities,
  putUserAssignedIdentity,
  userAssignedIdentityProperties,
  type UserAssignedIdentityProperties,
} from '../directory/resources.js';
import { DirectoryErrors } from '../directory/errors.js';
import { apiVersionHook } from './api-version.js';
import { authenticate } from './authenticate.js';
import { authorize, resourceGroupScope, resourceScope, subscriptionScope } from './authorize.js';
import { armDeleteHandler, armGetHandler, armListHandler, armPutHandler, jsonObject, route, type ArmScope } from './common.js';

const PROVIDER = 'providers/Microsoft.ManagedIdentity/userAssignedIdentities';
const IN_GROUP = `/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/${PROVIDER}`;
const ONE = `${IN_GROUP}/:resourceName`;

/** A user-assigned identity as ARM shows it. */
export interface ArmUserAssignedIdentity {
  id: string;
  name: string;
  type: typeof USER_ASSIGNED_IDENTITY_TYPE;
  location: string;
  tags: Tags;
  properties: UserAssignedIdentityProperties;
}

export function armUserAssignedIdentityView(resource: Resource): ArmUserAssignedIdentity {
  return {
    id: resource.id,
    name: resource.name,
    type: USER_ASSIGNED_IDENTITY_TYPE,
    location: resource.location,
    tags: resource.tags,
    properties: userAssignedIdentityProperties(resource),
  };
}

/** The addressed identity's id, as requested. */
const addressedIdentity = (scope: ArmScope) =>
  formatArmResourceId({ subscriptionId: scope.subscription.id, resourceGroup: scope.resourceGroup, type: USER_ASSIGNED_IDENTITY_TYPE, name: scope.name });

/**
 * The user-assigned identity a route under it addresses, with its service principal (what federated credentials
 * and outbound federation links hang off); ARM's 404 `ResourceNotFound` when either does not exist.
 */
export async function addressedIdentityWithPrincipal(repos: Repositories, scope: ArmScope): Promise<{ id: string; name: string; principal: ServicePrincipal }> {
  const resource = await getUserAssignedIdentity(repos, { subscriptionId: scope.subscription.id, resourceGroup: scope.resourceGroup, name: scope.name });
  const principal = await repos.servicePrincipals.getByManagedIdentityResource(resource.id, 'UserAssigned');
  if (principal === undefined) throw DirectoryErrors.resourceNotFound(USER_ASSIGNED_IDENTITY_TYPE, scope.name, scope.resourceGroup);
  return { id: resource.id, name: resource.name, principal };
}

/** `Microsoft.ManagedIdentity/userAssignedIdentities`: PUT/GET/DELETE one, list per group and per subscription. */
export function userAssignedIdentityRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook];
  const ACTIONS = USER_ASSIGNED_IDENTITY_TYPE;
  const as = (verb: 'read' | 'write' | 'delete') => [
    ...onRequest,
    authorize(ctx, (request) => ({ action: `${ACTIONS}/${verb}`, scope: resourceScope(request, USER_ASSIGNED_IDENTITY_TYPE) })),
  ];

  const listHandler = (scope: 'subscription' | 'group') =>
    armListHandler(
      ctx,
      (s) =>
        listUserAssignedIdentities(ctx.store, {
          subscriptionId: s.subscription.id,
          ...(scope === 'group' ? { resourceGroup: s.resourceGroup } : {}),
        }),
      armUserAssignedIdentityView,
      {
        read: (resource) => ({ action: `${ACTIONS}/read`, scope: resource.id }),
        listScope: (request) => ({ action: `${ACTIONS}/read`, scope: scope === 'group' ? resourceGroupScope(request) : subscriptionScope(request) }),
      },
    );

  route(app, { method: 'GET', url: `/subscriptions/:subscriptionId/${PROVIDER}`, onRequest, handler: listHandler('subscription') });
  route(app, { method: 'GET', url: IN_GROUP, onRequest, handler: listHandler('group') });

  route(app, {
    method: 'GET',
    url: ONE,
    onRequest: as('read'),
    handler: armGetHandler(
      ctx,
      (scope) => getUserAssignedIdentity(ctx.store, { subscriptionId: scope.subscription.id, resourceGroup: scope.resourceGroup, name: scope.name }),
      armUserAssignedIdentityView,
    ),
  });

  route(app, {
    method: 'PUT',
    url: ONE,
    onRequest: as('write'),
    handler: armPutHandler(ctx, {
      kind: 'identity',
      target: addressedIdentity,
      write: async (scope, request) => {
        const body = jsonObject(request.body);
        const { resource, principal, created } = await putUserAssignedIdentity(ctx.store, {
          subscriptionId: scope.subscription.id,
          resourceGroup: scope.resourceGroup,
          name: scope.name,
          location: body['location'],
          tags: body['tags'],
          clock: ctx.clock,
        });
        return { item: resource, created, id: resource.id, detail: { type: 'UserAssigned', principalId: principal.objectId, clientId: principal.appId } };
      },
      view: armUserAssignedIdentityView,
    }),
  });

  route(app, {
    method: 'DELETE',
    url: ONE,
    onRequest: as('delete'),
    handler: armDeleteHandler(ctx, {
      kind: 'identity',
      target: addressedIdentity,
      remove: async (scope) => {
        const result = await deleteUserAssignedIdentity(ctx.store, {
          subscriptionId: scope.subscription.id,
          resourceGroup: scope.resourceGroup,
          name: scope.name,
          clock: ctx.clock,
        });
        if (result === undefined) return undefined;
        return { id: result.resource.id, detail: { deletedPrincipals: result.deletedPrincipalIds, detachedFrom: result.detachedFrom } };
      },
    }),
  });
}
