import type { FastifyInstance } from 'fastify';
import type { Subscription } from '../store/types.js';
import type { ManagementContext } from './context.js';
import { apiVersionHook } from './api-version.js';
import { authenticate, authorizeSubscription, callerOf } from './authenticate.js';
import { params, route } from './common.js';

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

/** `GET /subscriptions` (the caller's tenant's) and `GET /subscriptions/{subscriptionId}`. */
export function subscriptionRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook];

  route(app, {
    method: 'GET',
    url: '/subscriptions',
    onRequest,
    handler: async (request) => {
      const caller = callerOf(request);
      const subscriptions = await ctx.store.subscriptions.listByTenant(caller.tenantId);
      return { value: subscriptions.map(armSubscriptionView) };
    },
  });

  route(app, {
    method: 'GET',
    url: '/subscriptions/:subscriptionId',
    onRequest,
    handler: async (request) => armSubscriptionView(await authorizeSubscription(ctx, callerOf(request), params(request)['subscriptionId'] ?? '')),
  });
}
