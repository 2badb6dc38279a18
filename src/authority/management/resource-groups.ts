import type { FastifyInstance } from 'fastify';
import { resourceGroupId } from '../../shared/ids.js';
import type { AuthorityContext } from '../context.js';
import {
  armResourceGroupView,
  deleteResourceGroup,
  getResourceGroup,
  listResourceGroups,
  putResourceGroup,
} from '../directory/resources.js';
import { apiVersionHook } from './api-version.js';
import { authenticate, authorizeSubscription, callerOf } from './authenticate.js';
import { audited, jsonObject, params, route } from './common.js';

const GROUP = '/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName';

/** ARM resource groups: `PUT/GET/DELETE /subscriptions/{sub}/resourceGroups/{name}` and the list. */
export function resourceGroupRoutes(app: FastifyInstance, ctx: AuthorityContext): void {
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook];

  route(app, {
    method: 'GET',
    url: '/subscriptions/:subscriptionId/resourceGroups',
    onRequest,
    handler: async (request) => {
      const subscription = await authorizeSubscription(ctx, callerOf(request), params(request)['subscriptionId'] ?? '');
      const groups = await listResourceGroups(ctx.store, subscription.id);
      return { value: groups.map(armResourceGroupView) };
    },
  });

  route(app, {
    method: 'GET',
    url: GROUP,
    onRequest,
    handler: async (request) => {
      const p = params(request);
      const subscription = await authorizeSubscription(ctx, callerOf(request), p['subscriptionId'] ?? '');
      return armResourceGroupView(await getResourceGroup(ctx.store, subscription.id, p['resourceGroupName'] ?? ''));
    },
  });

  route(app, {
    method: 'PUT',
    url: GROUP,
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const p = params(request);
      const subscription = await authorizeSubscription(ctx, caller, p['subscriptionId'] ?? '');
      const name = p['resourceGroupName'] ?? '';
      const { group, created } = await audited(
        ctx,
        { tenantId: subscription.tenantId, actor: caller.principal.objectId, action: 'resourceGroup.write', target: resourceGroupId(subscription.id, name) },
        async () => {
          const body = jsonObject(request.body);
          const result = await putResourceGroup(ctx.store, { subscriptionId: subscription.id, name, location: body['location'], tags: body['tags'], clock: ctx.clock });
          return {
            result,
            action: result.created ? 'resourceGroup.created' : 'resourceGroup.updated',
            target: result.group.id,
            detail: { location: result.group.location },
          };
        },
      );
      return reply.code(created ? 201 : 200).send(armResourceGroupView(group));
    },
  });

  route(app, {
    method: 'DELETE',
    url: GROUP,
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const p = params(request);
      const subscription = await authorizeSubscription(ctx, caller, p['subscriptionId'] ?? '');
      const name = p['resourceGroupName'] ?? '';
      const deleted = await audited(
        ctx,
        { tenantId: subscription.tenantId, actor: caller.principal.objectId, action: 'resourceGroup.deleted', target: resourceGroupId(subscription.id, name) },
        async () => {
          const result = await deleteResourceGroup(ctx.store, { subscriptionId: subscription.id, name, clock: ctx.clock });
          return {
            result,
            ...(result === undefined ? {} : { target: result.group.id }),
            detail:
              result === undefined
                ? { existed: false }
                : { deletedResources: result.deletedResourceIds, deletedPrincipals: result.deletedPrincipalIds, detachedFrom: result.detachedFrom },
          };
        },
      );
      return reply.code(deleted === undefined ? 204 : 200).send();
    },
  });
}
