import type { FastifyInstance, FastifyRequest } from 'fastify';
import { formatArmResourceId } from '../../shared/ids.js';
import type { AuthorityContext } from '../context.js';
import {
  SUPPORTED_RESOURCE_TYPES,
  USER_ASSIGNED_IDENTITY_TYPE,
  armResourceView,
  canonicalResourceType,
  deleteResource,
  getResource,
  listResources,
  putResource,
} from '../directory/resources.js';
import { DirectoryErrors } from '../directory/errors.js';
import { apiVersionHook } from './api-version.js';
import { authenticate, authorizeSubscription, callerOf } from './authenticate.js';
import { audited, jsonObject, params, route } from './common.js';

const IN_GROUP = '/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/providers/:namespace/:resourceType';
const ONE = `${IN_GROUP}/:resourceName`;

/** The allow-listed type a request addresses (the dedicated identity routes own user-assigned identities). */
function addressedType(request: FastifyRequest, status: 400 | 404): string {
  const p = params(request);
  const requested = `${p['namespace'] ?? ''}/${p['resourceType'] ?? ''}`;
  const type = canonicalResourceType(requested);
  if (type === undefined) throw DirectoryErrors.noRegisteredProvider(requested, [...SUPPORTED_RESOURCE_TYPES, USER_ASSIGNED_IDENTITY_TYPE], status);
  return type;
}

/**
 * Generic ARM resources of the allow-listed types (`Microsoft.Compute/virtualMachines`, ...), each with an
 * optional `identity`: PUT/GET/DELETE one, list by type per group and per subscription, list a group's or
 * subscription's resources.
 */
export function resourceRoutes(app: FastifyInstance, ctx: AuthorityContext): void {
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook];

  const listHandler = (scope: 'subscription' | 'group', byType: boolean) => async (request: FastifyRequest) => {
    const p = params(request);
    const subscription = await authorizeSubscription(ctx, callerOf(request), p['subscriptionId'] ?? '');
    const type = byType ? addressedType(request, 404) : undefined;
    const resources = await listResources(ctx.store, {
      subscriptionId: subscription.id,
      ...(scope === 'group' ? { resourceGroup: p['resourceGroupName'] ?? '' } : {}),
      ...(type === undefined ? {} : { type }),
    });
    return { value: await Promise.all(resources.map((r) => armResourceView(ctx.store, r, subscription.tenantId))) };
  };

  route(app, { method: 'GET', url: '/subscriptions/:subscriptionId/resources', onRequest, handler: listHandler('subscription', false) });
  route(app, {
    method: 'GET',
    url: '/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/resources',
    onRequest,
    handler: listHandler('group', false),
  });
  route(app, { method: 'GET', url: '/subscriptions/:subscriptionId/providers/:namespace/:resourceType', onRequest, handler: listHandler('subscription', true) });
  route(app, { method: 'GET', url: IN_GROUP, onRequest, handler: listHandler('group', true) });

  route(app, {
    method: 'GET',
    url: ONE,
    onRequest,
    handler: async (request) => {
      const p = params(request);
      const subscription = await authorizeSubscription(ctx, callerOf(request), p['subscriptionId'] ?? '');
      const type = addressedType(request, 404);
      const resource = await getResource(ctx.store, {
        subscriptionId: subscription.id,
        resourceGroup: p['resourceGroupName'] ?? '',
        type,
        name: p['resourceName'] ?? '',
      });
      return armResourceView(ctx.store, resource, subscription.tenantId);
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
      const requestedType = `${p['namespace'] ?? ''}/${p['resourceType'] ?? ''}`;
      const target = formatArmResourceId({ subscriptionId: subscription.id, resourceGroup, type: requestedType, name });
      const { resource, created } = await audited(
        ctx,
        { tenantId: subscription.tenantId, actor: caller.principal.objectId, action: 'resource.write', target },
        async () => {
          const type = addressedType(request, 400);
          const body = jsonObject(request.body);
          const result = await putResource(ctx.store, {
            subscriptionId: subscription.id,
            resourceGroup,
            type,
            name,
            location: body['location'],
            tags: body['tags'],
            properties: body['properties'],
            identity: body['identity'],
            clock: ctx.clock,
          });
          return {
            result,
            action: result.created ? 'resource.created' : 'resource.updated',
            target: result.resource.id,
            detail: {
              type: result.resource.type,
              systemAssignedPrincipalId: result.resource.systemPrincipalId,
              systemPrincipalCreated: result.systemPrincipalCreated,
              systemPrincipalDeleted: result.systemPrincipalDeleted,
              userAssignedIdentities: result.resource.userAssignedIdentityIds,
            },
          };
        },
      );
      return reply.code(created ? 201 : 200).send(await armResourceView(ctx.store, resource, subscription.tenantId));
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
      const requestedType = `${p['namespace'] ?? ''}/${p['resourceType'] ?? ''}`;
      const target = formatArmResourceId({ subscriptionId: subscription.id, resourceGroup, type: requestedType, name });
      const deleted = await audited(
        ctx,
        { tenantId: subscription.tenantId, actor: caller.principal.objectId, action: 'resource.deleted', target },
        async () => {
          const type = addressedType(request, 404);
          const result = await deleteResource(ctx.store, { subscriptionId: subscription.id, resourceGroup, type, name, clock: ctx.clock });
          return {
            result,
            ...(result === undefined ? {} : { target: result.resource.id }),
            detail: result === undefined ? { existed: false } : { type, deletedPrincipals: result.deletedPrincipalIds },
          };
        },
      );
      return reply.code(deleted === undefined ? 204 : 200).send();
    },
  });
}
