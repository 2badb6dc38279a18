import type { FastifyInstance } from 'fastify';
import { describeHost, HostErrors } from '../../directory/hosts.js';
import { HOST_API_PATHS, type FederationAssertionGrant } from '../../shared/host-protocol.js';
import { isGuid } from '../../shared/ids.js';
import { signOutboundAssertion } from '../federation/outbound-issuer.js';
import { authenticateHost } from './authenticate.js';
import { bodyObject, type HostApiContext } from './common.js';

/**
 * `POST /openmsi/hosts/federation-assertion` `{objectId}` (host assertion) → 200 `FederationAssertionGrant`: the
 * outbound assertion for an identity assigned to the calling host now (read as `self` answers it: a host gets
 * assertions for its own identities only, 404 `IdentityNotFound` otherwise) that has an upstream link (409
 * `NotFederated`). Audited as `federation.assertion.issued` (issuer, subject, upstream; never the assertion).
 */
export function federationAssertionRoute(app: FastifyInstance, { ctx }: HostApiContext): void {
  app.route({
    method: 'POST',
    url: HOST_API_PATHS.federationAssertion,
    handler: async (request, reply) => {
      const { host, credential, tenantId } = await authenticateHost(ctx, request);
      const subject = { hostResourceId: host.id, tenantId };
      const objectId = bodyObject(request)['objectId'];
      if (typeof objectId !== 'string' || !isGuid(objectId))
        throw HostErrors.invalidRequest("'objectId' must be the identity's object id (a GUID)").about(subject);
      const description = await describeHost(ctx.store, host, credential);
      const identity = description.identities.find((i) => i.objectId.toLowerCase() === objectId.toLowerCase());
      if (identity === undefined) throw HostErrors.identityNotFound().about(subject);
      const link = identity.upstream === undefined ? undefined : await ctx.store.federationLinks.get(identity.objectId);
      if (link === undefined) throw HostErrors.notFederated().about(subject);
      const issuer = link.issuer ?? ctx.outboundIssuer();
      const signed = signOutboundAssertion({ keyRing: ctx.keyRing, clock: ctx.clock, issuer, subject: identity.objectId });
      await ctx.audit.record({
        tenantId,
        actor: host.id,
        action: 'federation.assertion.issued',
        target: identity.objectId,
        outcome: 'success',
        detail: { issuer, subject: identity.objectId, upstreamTenantId: link.tenantId, upstreamClientId: link.clientId, expiresOn: signed.expiresOn },
      });
      const grant: FederationAssertionGrant = { assertion: signed.assertion, issuer, issuedAt: signed.issuedAt, expiresOn: signed.expiresOn };
      return reply.header('cache-control', 'no-store').send(grant);
    },
  });
}
