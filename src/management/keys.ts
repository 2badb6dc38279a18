import type { FastifyInstance } from 'fastify';
import type { ManagementContext } from './context.js';
import { iso } from '../shared/clock.js';
import { ApiErrors } from '../shared/api-error.js';
import { authenticate, callerOf } from './authenticate.js';
import { audited, jsonObject, route } from './common.js';
import { atRoot, authorize, OPENMSI_ACTIONS } from './authorize.js';

const at = (ms: number | null) => (ms === null ? null : iso(ms));

/**
 * Signing keys: `GET /openmsi/keys` (metadata only, never private material) and
 * `POST /openmsi/keys/rotate` with `{ revokePrevious?: boolean }`.
 */
export function keyRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'arm')];

  route(app, {
    method: 'GET',
    url: '/openmsi/keys',
    onRequest: [...onRequest, authorize(ctx, atRoot(OPENMSI_ACTIONS.keysRead))],
    handler: async () => {
      const published = ctx.signingKeys.publishedKids();
      const records = await ctx.store.signingKeys.list();
      const value = records
        .sort((a, b) => b.createdAt - a.createdAt)
        .map((r) => ({
          kid: r.kid,
          state: r.state,
          alg: r.alg,
          published: published.has(r.kid),
          createdAt: iso(r.createdAt),
          activatedAt: at(r.activatedAt),
          retiredAt: at(r.retiredAt),
          publishUntil: at(r.publishUntil),
          revokedAt: at(r.revokedAt),
        }));
      return { value };
    },
  });

  route(app, {
    method: 'POST',
    url: '/openmsi/keys/rotate',
    onRequest: [...onRequest, authorize(ctx, atRoot(OPENMSI_ACTIONS.keysWrite))],
    handler: async (request) => {
      const caller = callerOf(request);
      return audited(
        ctx,
        { tenantId: caller.tenantId, actor: caller.principal.objectId, action: 'keys.rotation.requested', target: 'signing-keys' },
        async () => {
          const body = jsonObject(request.body, { optional: true });
          const revokePrevious = body['revokePrevious'] ?? false;
          if (typeof revokePrevious !== 'boolean') throw ApiErrors.invalidContent("'revokePrevious' must be true or false");
          const result = await ctx.signingKeys.rotateNow({ revokePrevious });
          return { result, target: result.current, detail: { ...result } };
        },
      );
    },
  });
}
