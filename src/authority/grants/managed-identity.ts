import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Grant, TokenRequest } from './grant.js';
import type { AuthorityContext } from '../context.js';
import type { HostCredential, Resource, ServicePrincipal } from '../../store/types.js';
import { armKey } from '../../shared/ids.js';
import { TokenErrors } from '../errors.js';
import { requireParam } from '../token/form.js';
import { requestedResource } from '../token/resource.js';
import { assertionAudiences, requireOneAuthMethod } from '../token/client-auth.js';
import type { ThrottleSubject } from '../token/throttle.js';
import { OAuthError } from '../../shared/oauth-error.js';
import { verifyAssertion } from '../token/assertion.js';
import { authenticatedHost } from '../../directory/hosts.js';

/**
 * The agent's grant. An agent authenticates as its *host* (a resource such as a
 * `Microsoft.HybridCompute/machines` or `Microsoft.Compute/virtualMachines`) with an assertion signed by
 * the host credential it registered, and asks for a token for one of the identities assigned to that
 * host: its system-assigned identity (no selector) or an attached user-assigned identity
 * (`mi_client_id`, `mi_object_id` or `mi_res_id`). Every request re-reads the directory, so removing
 * an identity from a host, or deleting either, stops issuance at once.
 *
 * Parameters: `grant_type=urn:openmsi:params:oauth:grant-type:managed-identity`, `client_assertion_type`
 * (jwt-bearer), `client_assertion` (header `kid` = host credential key id; `iss` = `sub` = the host's ARM
 * id; `aud` = this token endpoint; `jti`; `exp`), and `resource` (v1) or `scope` (v2).
 */
export const MANAGED_IDENTITY_GRANT_TYPE = 'urn:openmsi:params:oauth:grant-type:managed-identity';

/** Hosts register their own keys; the agent makes ES256 keys, and RSA keys are accepted too. */
export const HOST_ASSERTION_ALGORITHMS: readonly string[] = ['ES256', 'RS256', 'PS256'];
const SELECTORS = ['mi_client_id', 'mi_object_id', 'mi_res_id'] as const;

export const managedIdentityGrant: Grant = {
  grantType: MANAGED_IDENTITY_GRANT_TYPE,
  async handle(ctx, request) {
    const resource = requestedResource(request.params, request.endpoint);
    const selector = identitySelector(request);
    const host = await authenticateHost(ctx, request);
    const principal = await selectIdentity(ctx, host, selector);
    if (principal?.tenantId !== request.tenant.id || principal.managedIdentity === null) throw TokenErrors.identityNotFound();
    const issued = ctx.tokens.issue({
      tenantId: request.tenant.id,
      principal,
      resource,
      authMethod: 'managed-identity',
      managedIdentityResourceId: principal.managedIdentity.resourceId,
      callerResourceId: host.id,
    });
    return {
      issued,
      resource,
      principal,
      detail: { host: host.id, identityType: principal.managedIdentity.type, identityResourceId: principal.managedIdentity.resourceId },
    };
  },
};

type Selector = { kind: 'system' } | { kind: (typeof SELECTORS)[number]; value: string };

function identitySelector(request: TokenRequest): Selector {
  const given = SELECTORS.filter((name) => request.params[name] !== undefined);
  if (given.length > 1) throw TokenErrors.malformedBody(`only one of ${SELECTORS.join(', ')} may be given`);
  const name = given[0];
  if (name === undefined) return { kind: 'system' };
  return { kind: name, value: requireParam(request.params, name) };
}

/**
 * Verifies the host's assertion. Failures are throttled like an application's: against the source always,
 * and against the host credential once the assertion names a registered one.
 */
async function authenticateHost(ctx: AuthorityContext, request: TokenRequest): Promise<Resource> {
  requireOneAuthMethod(request);
  const subject: ThrottleSubject = { source: request.source };
  await ctx.authThrottle.refresh(subject);
  ctx.authThrottle.check(subject);
  try {
    const { subject: credential } = await verifyAssertion(request.params, {
      algorithms: HOST_ASSERTION_ALGORITHMS,
      audiences: assertionAudiences(ctx, request),
      clock: ctx.clock,
      replay: ctx.store.replay,
      resolveKey: async ({ header, payload }) => {
        if (typeof header.kid !== 'string') throw TokenErrors.assertionKeyNotRegistered();
        const found = await ctx.store.hostCredentials.get(header.kid);
        if (found !== undefined) {
          subject.client = `host:${found.keyId}`;
          await ctx.authThrottle.refresh(subject);
          ctx.authThrottle.check(subject);
        }
        if (!isUsable(found, ctx.clock.now()) || typeof payload.iss !== 'string' || armKey(payload.iss) !== armKey(found.hostResourceId)) {
          throw TokenErrors.hostNotRecognised();
        }
        return { key: hostPublicKey(found), issuer: payload.iss, subject: found };
      },
    });
    // Read again after verification: the credential must still be live and its host exist.
    const host = await authenticatedHost(ctx.store, credential, ctx.clock.now());
    if (host === undefined) throw TokenErrors.hostNotRecognised();
    return host;
  } catch (err) {
    if (err instanceof OAuthError && err.status !== 429) await ctx.authThrottle.failed(subject);
    throw err;
  }
}

/**
 * Host public keys, imported once per key id and material (an import cost about as much as the rest of the
 * assertion check). Only the import is remembered: the credential itself, its revocation and expiry, is read and
 * checked on every grant. A KeyObject is algorithm-agnostic; jose checks it against the header's allow-listed
 * algorithm (an EC key never verifies an RS256 assertion). Bounded: cleared when full.
 */
const importedHostKeys = new Map<string, KeyObject>();

function hostPublicKey(credential: HostCredential): KeyObject {
  const jwk = credential.publicJwk;
  const member = (name: string): string => (typeof jwk[name] === 'string' ? jwk[name] : '');
  const id = [credential.keyId, member('kty'), member('crv'), member('x'), member('y'), member('n'), member('e')].join('|');
  let key = importedHostKeys.get(id);
  if (key === undefined) {
    if (jwk['d'] !== undefined) throw TokenErrors.hostNotRecognised();
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch {
      throw TokenErrors.hostNotRecognised();
    }
    if (importedHostKeys.size >= 1024) importedHostKeys.clear();
    importedHostKeys.set(id, key);
  }
  return key;
}

function isUsable(credential: HostCredential | undefined, now: number): credential is HostCredential {
  return credential !== undefined && credential.revokedAt === null && now < credential.expiresAt;
}

async function selectIdentity(ctx: AuthorityContext, host: Resource, selector: Selector): Promise<ServicePrincipal | undefined> {
  if (selector.kind === 'system') {
    return host.systemPrincipalId === null ? undefined : ctx.store.servicePrincipals.getByObjectId(host.systemPrincipalId);
  }
  const attached = new Set(host.userAssignedIdentityIds.map(armKey));
  const candidate =
    selector.kind === 'mi_res_id'
      ? await ctx.store.servicePrincipals.getByManagedIdentityResource(selector.value, 'UserAssigned')
      : selector.kind === 'mi_client_id'
        ? await ctx.store.servicePrincipals.getByAppId(selector.value)
        : await ctx.store.servicePrincipals.getByObjectId(selector.value);
  if (candidate?.managedIdentity == null) return undefined;
  // The host's own system identity may also be selected explicitly by its client or object id.
  if (candidate.managedIdentity.type === 'SystemAssigned') return candidate.objectId === host.systemPrincipalId ? candidate : undefined;
  return attached.has(armKey(candidate.managedIdentity.resourceId)) ? candidate : undefined;
}
