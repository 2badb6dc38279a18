import { X509Certificate } from 'node:crypto';
import type { AuthorityContext } from '../context.js';
import type { ClientCredential, ServicePrincipal, Tenant } from '../../store/types.js';
import type { ClientAuthMethod } from '../token-issuer.js';
import { TokenErrors } from '../errors.js';
import { requireParam, type FormParams } from './form.js';
import { verifyAssertion } from './assertion.js';

/** Algorithms we accept on client assertions: msal's RS256 (`x5t`) and @azure/identity's PS256 (`x5t#S256`). */
export const CLIENT_ASSERTION_ALGORITHMS: readonly string[] = ['RS256', 'PS256'];

export interface ClientAuthRequest {
  tenant: Tenant;
  /** The path segment the caller used for the tenant (an id or a domain): assertion audiences may use either. */
  tenantSegment: string;
  params: FormParams;
  basic: { clientId: string; clientSecret: string } | undefined;
}

export interface AuthenticatedClient {
  principal: ServicePrincipal;
  method: Extract<ClientAuthMethod, 'secret' | 'certificate'>;
  /** Id of the credential that matched (a secret's or certificate's keyId), for the audit trail. */
  credentialId: string;
}

/**
 * Authenticates an application (non-managed) client by client secret (form or HTTP Basic) or by a
 * certificate-signed client assertion, as Entra's token endpoint does.
 */
export async function authenticateClient(ctx: AuthorityContext, request: ClientAuthRequest): Promise<AuthenticatedClient> {
  const { params, basic, tenant } = request;
  const clientId = basic?.clientId ?? requireParam(params, 'client_id');
  if (basic !== undefined && params['client_id'] !== undefined && params['client_id'] !== basic.clientId) {
    throw TokenErrors.assertionClientMismatch();
  }
  const secret = basic?.clientSecret ?? params['client_secret'];
  const assertion = params['client_assertion'];
  if (secret !== undefined && assertion !== undefined) throw TokenErrors.conflictingCredentials();
  if ((secret === undefined || secret === '') && (assertion === undefined || assertion === '')) throw TokenErrors.credentialRequired();

  const principal = await ctx.store.servicePrincipals.getByAppId(clientId);
  if (principal?.tenantId !== tenant.id || principal.kind !== 'Application') {
    throw TokenErrors.applicationNotFound(clientId, request.tenantSegment);
  }
  const credentials = await ctx.store.credentials.listByApp(clientId);
  if (secret !== undefined && secret !== '') return authenticateWithSecret(ctx, principal, credentials, secret);
  return authenticateWithAssertion(ctx, request, principal, credentials);
}

function authenticateWithSecret(
  ctx: AuthorityContext,
  principal: ServicePrincipal,
  credentials: readonly ClientCredential[],
  secret: string,
): AuthenticatedClient {
  const now = ctx.clock.now();
  let expired = false;
  for (const credential of credentials) {
    if (credential.type !== 'Password' || credential.secretHash === null) continue;
    if (!ctx.masterKey.verifySecret(secret, credential.secretHash)) continue;
    if (now < credential.startAt || now >= credential.endAt) {
      expired = true;
      continue;
    }
    return { principal, method: 'secret', credentialId: credential.keyId };
  }
  throw expired ? TokenErrors.secretExpired(principal.appId) : TokenErrors.invalidSecret(principal.appId);
}

async function authenticateWithAssertion(
  ctx: AuthorityContext,
  request: ClientAuthRequest,
  principal: ServicePrincipal,
  credentials: readonly ClientCredential[],
): Promise<AuthenticatedClient> {
  const { subject: credential } = await verifyAssertion(request.params, {
    algorithms: CLIENT_ASSERTION_ALGORITHMS,
    audiences: assertionAudiences(ctx, request),
    clock: ctx.clock,
    replay: ctx.store.replay,
    resolveKey: ({ header }) => {
      const found = findCertificate(credentials, header);
      if (found?.certificate == null) throw TokenErrors.assertionKeyNotRegistered();
      const cert = new X509Certificate(Buffer.from(found.certificate, 'base64'));
      const now = ctx.clock.now();
      if (now < Math.max(Date.parse(cert.validFrom), found.startAt) || now >= Math.min(Date.parse(cert.validTo), found.endAt)) {
        throw TokenErrors.assertionSignatureInvalid('The key used is expired.');
      }
      return Promise.resolve({ key: cert.publicKey, issuer: principal.appId, subject: found });
    },
  });
  return { principal, method: 'certificate', credentialId: credential.keyId };
}

/** Finds the registered certificate by `x5t#S256`, `x5t` (SHA-1), or a `kid` holding either thumbprint in hex. */
function findCertificate(credentials: readonly ClientCredential[], header: Readonly<Record<string, unknown>>): ClientCredential | undefined {
  const certs = credentials.filter((c) => c.type === 'AsymmetricX509Cert');
  const sha256 = typeof header['x5t#S256'] === 'string' ? base64UrlToHex(header['x5t#S256']) : undefined;
  const sha1 = typeof header['x5t'] === 'string' ? base64UrlToHex(header['x5t']) : undefined;
  const kid = typeof header['kid'] === 'string' ? header['kid'].toLowerCase() : undefined;
  return certs.find(
    (c) =>
      (sha256 !== undefined && c.thumbprintSha256 === sha256) ||
      (sha1 !== undefined && c.thumbprintSha1 === sha1) ||
      (kid !== undefined && (c.thumbprintSha1 === kid || c.thumbprintSha256 === kid)),
  );
}

function base64UrlToHex(value: string): string {
  return Buffer.from(value, 'base64url').toString('hex');
}

/**
 * Entra accepts an assertion addressed to either token endpoint of the tenant, by id or domain, or to its
 * issuer; we accept those on every origin the authority advertises (each name of its certificate).
 */
export function assertionAudiences(ctx: AuthorityContext, request: { tenant: Tenant; tenantSegment: string }): string[] {
  return ctx.urls.assertionAudiences([request.tenant.id, request.tenant.defaultDomain, request.tenantSegment]);
}
