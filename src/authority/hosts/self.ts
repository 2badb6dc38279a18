import type { FastifyInstance } from 'fastify';
import { describeHost } from '../../directory/hosts.js';
import { HOST_API_PATHS } from '../../shared/host-protocol.js';
import { authenticateHost } from './authenticate.js';
import type { HostApiContext } from './common.js';

/** `GET /openmsi/hosts/self` (host assertion) → 200 `HostDescription`: the host and its identities, read now. */
export function selfRoute(app: FastifyInstance, { ctx }: HostApiContext): void {
  app.route({
    method: 'GET',
    url: HOST_API_PATHS.self,
    handler: async (request, reply) => {
      const { host, credential } = await authenticateHost(ctx, request);
      return reply.header('cache-control', 'no-store').send(await describeHost(ctx.store, host, credential));
    },
  });
}
