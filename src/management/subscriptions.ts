import type { FastifyInstance } from 'fastify';
import type { Subscription } from '../store/types.js';
import type { ManagementContext } from './context.js';
import { apiVersionHook } from './api-version.js';
import { authenticate, authorizeSubscription, callerOf } from './authenticate.js';
import { route } from './common.js';
import { pathParam } from './resource-ids.js';
import { authorize, filterReadable, subscriptionScope } from './authorize.js';

const SUBSCRIPTION_READ = 'Microsoft.Resources/subscriptions/read';

/** A subscription as ARM shows it. */
export interface ArmSubscription {
  id: string;
  subscriptionId: string;
  tenantId: string;
  displayName: string;
  state: Subscription['state'];
}

export function armSubscriptionView(subscription: Subscription): ArmSubscription {
  return {
    id: `/subscriptions/${subscription.id}`,
    subscriptionId: subscription.id,
    tenantId: subscription.tenantId,
    displayName: subscription.displayName,
    state: subscription.state,
  };
}

/** `GET /tenants` (the caller's own, as ARM lists a principal's home tenant), `GET /subscriptions` (the caller's tenant's) and `GET /subscriptions/{subscriptionId}`. */
export function subscriptionRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook];

  // What `az login` as a user asks first (SubscriptionFinder.find_using_common_tenant): the caller's tenants.
  route(app, {
    method: 'GET',
    url: '/tenants',
    onRequest,
    handler: async (request) => {
      const tenant = await ctx.store.tenants.get(callerOf(request).tenantId);
      if (tenant === undefined) return { value: [] };
      return {
        value: [
          {
            id: `/tenants/${tenant.id}`,
            tenantId: tenant.id,
            countryCode: null,
            displayName: tenant.displayName,
            domains: [tenant.defaultDomain],
            tenantCategory: 'Home',
            defaultDomain: tenant.defaultDomain,
            tenantType: 'AAD',
          },
        ],
      };
    },
  });

  route(app, {
    method: 'GET',
    url: '/subscriptions',
    onRequest,
    handler: async (request) => {
      const caller = callerOf(request);
      // As ARM: the subscriptions the caller may read (an empty list, not a refusal, when none).
      const subscriptions = await filterReadable(ctx, caller, await ctx.store.subscriptions.listByTenant(caller.tenantId), (s) => ({
        action: SUBSCRIPTION_READ,
        scope: `/subscriptions/${s.id}`,
      }));
      return { value: subscriptions.map(armSubscriptionView) };
    },
  });

  route(app, {
    method: 'GET',
    url: '/subscriptions/:subscriptionId',
    onRequest: [...onRequest, authorize(ctx, (request) => ({ action: SUBSCRIPTION_READ, scope: subscriptionScope(request) }))],
    handler: async (request) => armSubscriptionView(await authorizeSubscription(ctx, callerOf(request), pathParam(request, 'subscriptionId'))),
  });
}
