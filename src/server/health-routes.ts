import type { FastifyInstance } from 'fastify';
import type { Readiness } from './readiness.js';

/** Paths of the probes; static, so no tenant (`/:tenant/...`) route can take them. */
export const HEALTH_PATHS = { live: '/healthz', ready: '/readyz' } as const;

const NO_STORE = { 'cache-control': 'no-store' };

/**
 * `GET /healthz` (live: the process answers; touches nothing) and `GET /readyz` (200 ready / 503 not, with the
 * report of each check). Unauthenticated, as load balancers probe them, and read-only: they sit beside the
 * token, management and host plugins, whose auth hooks are encapsulated in those plugins and do not run here.
 */
export function healthRoutes(app: FastifyInstance, opts: { readiness: Readiness }): Promise<void> {
  app.get(HEALTH_PATHS.live, async (_request, reply) => reply.code(200).headers(NO_STORE).send({ status: 'ok' }));
  app.get(HEALTH_PATHS.ready, async (_request, reply) => {
    const report = await opts.readiness.report();
    return reply
      .code(report.status === 'ready' ? 200 : 503)
      .headers(NO_STORE)
      .send(report);
  });
  return Promise.resolve();
}
