import type { FastifyInstance } from 'fastify';
import { enrolHost } from '../../directory/hosts.js';
import { iso } from '../../shared/clock.js';
import { HOST_API_PATHS } from '../../shared/host-protocol.js';
import { HostApiErrors } from './errors.js';
import { bodyObject, credentialGrant, HOST_API_BODY_LIMIT, type HostApiContext } from './common.js';

/**
 * `POST /openmsi/hosts/enrol` `EnrolRequest` → 201 `HostCredentialGrant`. No bearer: the single-use
 * join token authenticates. An address with too many recent failures (at any replica) gets
 * `429 TooManyRequests` with `Retry-After` before its body is read (failures are counted by the plugin's error handler).
 */
export function enrolRoute(app: FastifyInstance, { ctx, enrolmentFailures }: HostApiContext): void {
  app.route({
    method: 'POST',
    url: HOST_API_PATHS.enrol,
    bodyLimit: HOST_API_BODY_LIMIT,
    onRequest: async (request) => {
      const retryAfter = await enrolmentFailures.retryAfterSeconds(request.ip);
      if (retryAfter > 0) throw HostApiErrors.tooManyRequests(retryAfter);
    },
    handler: async (request, reply) => {
      const body = bodyObject(request);
      const registered = await enrolHost(ctx.store, { joinToken: body['joinToken'], publicJwk: body['publicJwk'], clock: ctx.clock });
      const { credential, host } = registered;
      await ctx.audit.record({
        tenantId: registered.tenantId,
        actor: host.id,
        action: 'host.enrolled',
        target: host.id,
        outcome: 'success',
        detail: {
          keyId: credential.keyId,
          kty: credential.publicJwk['kty'],
          expiresOn: iso(credential.expiresAt),
          joinTokenId: registered.joinTokenId,
          source: request.ip,
        },
      });
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send(credentialGrant(ctx, request, registered));
    },
  });
}
