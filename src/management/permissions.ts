/**
 * `GET {scope}/providers/Microsoft.Authorization/permissions`: the caller's effective permissions at a scope,
 * as ARM answers it (`{ value: [ { actions, notActions, dataActions, notDataActions } ] }`, one entry per
 * permission block that applies there). Any authenticated caller may ask about itself, as in Azure.
 * Scopes: `/`, a subscription, a resource group, a resource (`.../providers/{ns}/{type}/{name}`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { apiVersionHook } from './api-version.js';
import { authenticate, authorizeSubscription, callerOf } from './authenticate.js';
import { resourceGroupScope, subscriptionScope } from './authorize.js';
import { canonicalScope, pathParam } from './resource-ids.js';
import { route } from './common.js';
import type { ManagementContext } from './context.js';

const PERMISSIONS = 'providers/Microsoft.Authorization/permissions';

export function permissionRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook];

  const handler = (scopeOf: (request: FastifyRequest) => string) => async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const subscriptionId = pathParam(request, 'subscriptionId');
    if (subscriptionId !== '') await authorizeSubscription(ctx, caller, subscriptionId);
    const permissions = await ctx.authorizer.permissionsAt(caller.tenantId, caller.principal.objectId, canonicalScope(scopeOf(request)).scope);
    return {
      value: permissions.map((p) => ({ actions: p.actions, notActions: p.notActions, dataActions: p.dataActions, notDataActions: p.notDataActions })),
    };
  };

  route(app, { method: 'GET', url: `/${PERMISSIONS}`, onRequest, handler: handler(() => '/') });
  route(app, { method: 'GET', url: `/subscriptions/:subscriptionId/${PERMISSIONS}`, onRequest, handler: handler(subscriptionScope) });
  route(app, {
    method: 'GET',
    url: `/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/${PERMISSIONS}`,
    onRequest,
    handler: handler(resourceGroupScope),
  });
  route(app, {
    method: 'GET',
    url: `/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/providers/:namespace/:resourceType/:resourceName/${PERMISSIONS}`,
    onRequest,
    handler: handler(
      (request) =>
        `${resourceGroupScope(request)}/providers/${pathParam(request, 'namespace')}/${pathParam(request, 'resourceType')}/${pathParam(request, 'resourceName')}`,
    ),
  });
}
