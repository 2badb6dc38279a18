import type { FastifyInstance } from 'fastify';
import { formatArmResourceId } from '../../shared/ids.js';
import type { AuthorityContext } from '../context.js';
import {
  USER_ASSIGNED_IDENTITY_TYPE,
  armUserAssignedIdentityView,
  deleteUserAssignedIdentity,
  getUserAssignedIdentity,
  listUserAssignedIdentities,
  putUserAssignedIdentity,
} from '../directory/resources.js';
import { apiVersionHook } from './api-version.js';
import { authenticate, authorizeSubscription, callerOf } from './authenticate.js';
import { audited, jsonObject, params, route } from './common.js';

const PROVIDER = 'providers/Microsoft.ManagedIdentity/userAssignedIdentities';
const IN_GROUP = `/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/${PROVIDER}`;
const ONE = `${IN_GROUP}/:resourceName`;

/** `Microsoft.ManagedIdentity/userAssignedIdentities`: PUT/GET/DELETE one, list per group and per subscription. */
export function userAssignedIdentityRoutes(app: FastifyInstance, ctx: AuthorityContext): void {
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook];

  route(app, {
    method: 'GET',
    url: `/subscriptions/:subscriptionId/${PROVIDER}`,
    onRequest,
    handler: async (request) => {
      const subscription = await authorizeSubscription(ctx, callerOf(request), params(request)['subscriptionId'] ?? '');
      const identities = await listUserAssignedIdentities(ctx.store, { subscriptionId: subscription.id });
      return { value: identities.map(armUserAssignedIdentityView) };
    },
  });

  route(app, {
    method: 'GET',
    url: IN_GROUP,
    onRequest,
    handler: async (request) => {
      const p = params(request);
      const subscription = await authorizeSubscription(ctx, callerOf(request), p['subscriptionId'] ?? '');
      const identities = await listUserAssignedIdentities(ctx.store, { subscriptionId: subscription.id, resourceGroup: p['resourceGroupName'] ?? '' });
      return { value: identities.map(armUserAssignedIdentityView) };
    },
  });

  route(app, {
    method: 'GET',
    url: ONE,
    onRequest,
    handler: async (request) => {
      const p = params(request);
      const subscription = await authorizeSubscription(ctx, callerOf(request), p['subscriptionId'] ?? '');
      const identity = await getUserAssignedIdentity(ctx.store, {
        subscriptionId: subscription.id,
        resourceGroup: p['resourceGroupName'] ?? '',
        name: p['resourceName'] ?? '',
      });
      return armUserAssignedIdentityView(identity);
    },
  });

  route(app, {
    method: 'PUT',
    url: ONE,
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const p = params(request);
      const subscription = await authorizeSubscription(ctx, caller, p['subscriptionId'] ?? '');
      const resourceGroup = p['resourceGroupName'] ?? '';
      const name = p['resourceName'] ?? '';
      const target = formatArmResourceId({ subscriptionId: subscription.id, resourceGroup, type: USER_ASSIGNED_IDENTITY_TYPE, name });
      const { resource, created } = await audited(
        ctx,
        { tenantId: subscription.tenantId, actor: caller.principal.objectId, action: 'identity.write', target },
        async () => {
          const body = jsonObject(request.body);
          const result = await putUserAssignedIdentity(ctx.store, {
            subscriptionId: subscription.id,
            resourceGroup,
            name,
            location: body['location'],
            tags: body['tags'],
            clock: ctx.clock,
          });
          return {
            result,
            action: result.created ? 'identity.created' : 'identity.updated',
            target: result.resource.id,
            detail: { type: 'UserAssigned', principalId: result.principal.objectId, clientId: result.principal.appId },
          };
        },
      );
      return reply.code(created ? 201 : 200).send(armUserAssignedIdentityView(resource));
    },
  });

  route(app, {
    method: 'DELETE',
    url: ONE,
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const p = params(request);
      const subscription = await authorizeSubscription(ctx, caller, p['subscriptionId'] ?? '');
      const resourceGroup = p['resourceGroupName'] ?? '';
      const name = p['resourceName'] ?? '';
      const target = formatArmResourceId({ subscriptionId: subscription.id, resourceGroup, type: USER_ASSIGNED_IDENTITY_TYPE, name });
      const deleted = await audited(
        ctx,
        { tenantId: subscription.tenantId, actor: caller.principal.objectId, action: 'identity.deleted', target },
        async () => {
          const result = await deleteUserAssignedIdentity(ctx.store, { subscriptionId: subscription.id, resourceGroup, name, clock: ctx.clock });
          return {
            result,
            ...(result === undefined ? {} : { target: result.resource.id }),
            detail:
              result === undefined
                ? { existed: false }
                : { deletedPrincipals: result.deletedPrincipalIds, detachedFrom: result.detachedFrom },
          };
        },
      );
      return reply.code(deleted === undefined ? 204 : 200).send();
    },
  });
}
