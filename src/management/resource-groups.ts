import type { FastifyInstance } from 'fastify';
import { resourceGroupId } from '../shared/ids.js';
import type { ResourceGroup, Tags } from '../store/types.js';
import type { ManagementContext } from './context.js';
import { RESOURCE_GROUP_TYPE, deleteResourceGroup, getResourceGroup, listResourceGroups, putResourceGroup } from '../directory/resources.js';
import { apiVersionHook } from './api-version.js';
import { authenticate } from './authenticate.js';
import { authorize, resourceGroupScope, subscriptionScope } from './authorize.js';
import { armDeleteHandler, armGetHandler, armListHandler, armPutHandler, jsonObject, route, type ArmScope } from './common.js';

const GROUP = '/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName';
/** ARM's operations on resource groups: `.../read`, `.../write`, `.../delete`. */
const GROUP_ACTIONS = 'Microsoft.Resources/subscriptions/resourceGroups';

/** A resource group as ARM shows it. */
export interface ArmResourceGroup {
  id: string;
  name: string;
  type: typeof RESOURCE_GROUP_TYPE;
  location: string;
  tags: Tags;
  properties: { provisioningState: 'Succeeded' };
}

export function armResourceGroupView(group: ResourceGroup): ArmResourceGroup {
  return {
    id: group.id,
    name: group.name,
    type: RESOURCE_GROUP_TYPE,
    location: group.location,
    tags: group.tags,
    properties: { provisioningState: 'Succeeded' },
  };
}

/** The addressed group's id, as requested. */
const addressedGroup = (scope: ArmScope) => resourceGroupId(scope.subscription.id, scope.resourceGroup);

/** ARM resource groups: `PUT/GET/DELETE /subscriptions/{sub}/resourceGroups/{name}` and the list. */
export function resourceGroupRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook];
  const as = (verb: 'read' | 'write' | 'delete') => [
    ...onRequest,
    authorize(ctx, (request) => ({ action: `${GROUP_ACTIONS}/${verb}`, scope: resourceGroupScope(request) })),
  ];

  route(app, {
    method: 'GET',
    url: '/subscriptions/:subscriptionId/resourceGroups',
    onRequest,
    handler: armListHandler(ctx, (scope) => listResourceGroups(ctx.store, scope.subscription.id), armResourceGroupView, {
      read: (group) => ({ action: `${GROUP_ACTIONS}/read`, scope: group.id }),
      listScope: (request) => ({ action: `${GROUP_ACTIONS}/read`, scope: subscriptionScope(request) }),
    }),
  });

  route(app, {
    method: 'GET',
    url: GROUP,
    onRequest: as('read'),
    handler: armGetHandler(ctx, (scope) => getResourceGroup(ctx.store, scope.subscription.id, scope.resourceGroup), armResourceGroupView),
  });

  route(app, {
    method: 'PUT',
    url: GROUP,
    onRequest: as('write'),
    handler: armPutHandler(ctx, {
      kind: 'resourceGroup',
      target: addressedGroup,
      write: async (scope, request) => {
        const body = jsonObject(request.body);
        const { group, created } = await putResourceGroup(ctx.store, {
          subscriptionId: scope.subscription.id,
          name: scope.resourceGroup,
          location: body['location'],
          tags: body['tags'],
          clock: ctx.clock,
        });
        return { item: group, created, id: group.id, detail: { location: group.location } };
      },
      view: armResourceGroupView,
    }),
  });

  route(app, {
    method: 'DELETE',
    url: GROUP,
    onRequest: as('delete'),
    handler: armDeleteHandler(ctx, {
      kind: 'resourceGroup',
      target: addressedGroup,
      remove: async (scope) => {
        const result = await deleteResourceGroup(ctx.store, { subscriptionId: scope.subscription.id, name: scope.resourceGroup, clock: ctx.clock });
        if (result === undefined) return undefined;
        return {
          id: result.group.id,
          detail: {
            deletedResources: result.deletedResourceIds,
            deletedPrincipals: result.deletedPrincipalIds,
            detachedFrom: result.detachedFrom,
            softDeletedVaults: result.softDeletedVaultIds,
          },
        };
      },
    }),
  });
}
