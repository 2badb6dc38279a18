import type { FastifyInstance } from 'fastify';
import { renewHostCredential } from '../../directory/hosts.js';
import { iso } from '../../shared/clock.js';
import { HOST_API_PATHS } from '../../shared/host-protocol.js';
import { authenticateHost } from './authenticate.js';
import { bodyObject, credentialGrant, HOST_API_BODY_LIMIT, type HostApiContext } from './common.js';

/**
 * `POST /openmsi/hosts/renew` `RenewRequest` (host assertion by a current credential) → 201
 * `HostCredentialGrant` for the new key. The credential that signed the request stays valid until its own
 * expiry, so a lost response never locks the host out; re-sending the same new key returns the same grant.
 */
export function renewRoute(app: FastifyInstance, { ctx }: HostApiContext): void {
  app.route({
    method: 'POST',
    url: HOST_API_PATHS.renew,
    bodyLimit: HOST_API_BODY_LIMIT,
    handler: async (request, reply) => {
      const caller = await authenticateHost(ctx, request);
      const body = bodyObject(request);
      const registered = await renewHostCredential(ctx.store, { host: caller.host, publicJwk: body['publicJwk'], clock: ctx.clock });
      await ctx.audit.record({
        tenantId: registered.tenantId,
        actor: caller.host.id,
        action: 'host.credential.renewed',
        target: caller.host.id,
        outcome: 'success',
        detail: {
          keyId: registered.credential.keyId,
          previousKeyId: caller.credential.keyId,
          expiresOn: iso(registered.credential.expiresAt),
          alreadyRegistered: !registered.renewed,
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
