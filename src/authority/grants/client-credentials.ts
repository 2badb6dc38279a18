import type { Grant } from './grant.js';
import { authenticateClient } from '../token/client-auth.js';
import { requestedResource } from '../token/resource.js';

/** OAuth 2.0 client credentials (RFC 6749 §4.4) for application service principals. */
export const clientCredentialsGrant: Grant = {
  grantType: 'client_credentials',
  async handle(ctx, request) {
    // Validate the cheap, credential-free parameters first so a malformed request never costs a lookup.
    const resource = requestedResource(request.params, request.endpoint);
    const client = await authenticateClient(ctx, request);
    const issued = ctx.tokens.issue({
      tenantId: request.tenant.id,
      principal: client.principal,
      resource,
      authMethod: client.method,
      // A user-assigned identity's token names its resource, however it was obtained.
      ...(client.principal.managedIdentity === null ? {} : { managedIdentityResourceId: client.principal.managedIdentity.resourceId }),
    });
    const federated =
      client.federated === undefined
        ? {}
        : { federatedIssuer: client.federated.issuer, federatedSubject: client.federated.subject, federatedCredentialName: client.federated.credentialName };
    return {
      issued,
      resource,
      principal: client.principal,
      detail: { credentialType: client.method, credentialId: client.credentialId, ...federated },
    };
  },
};
