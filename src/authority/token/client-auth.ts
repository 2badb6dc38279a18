import { X509Certificate } from 'node:crypto';
import type { AuthorityContext } from '../context.js';
import type { ClientCredential, ServicePrincipal, Tenant } from '../../store/types.js';
import type { ClientAuthMethod } from '../token-issuer.js';
import { TokenErrors } from '../errors.js';
import { OAuthError } from '../../shared/oauth-error.js';
import { requireParam, type FormParams } from './form.js';
import { verifyAssertion } from './assertion.js';
import { isFederatedAssertion, verifyFederatedAssertion } from '../federation/federated-assertion.js';
import { canFederate } from '../../directory/federated-credentials.js';

/** Algorithms we accept on client assertions: msal's RS256 (`x5t`) and @azure/identity's PS256 (`x5t#S256`). */
export const CLIENT_ASSERTION_ALGORITHMS: readonly string[] = ['RS256', 'PS256'];

export interface ClientAuthRequest {
  tenant: Tenant;
  /** The path segment the caller used for the tenant (an id or a domain): assertion audiences may use either. */
  tenantSegment: string;
  params: FormParams;
  basic: { clientId: string; clientSecret: string } | undefined;
  /** The caller's address, which failed authentications are throttled by. */
  source: string;
}

export interface AuthenticatedClient {
  principal: ServicePrincipal;
  method: Extract<ClientAuthMethod, 'secret' | 'certificate' | 'federated'>;
  /** Id of the credential that matched (a secret's or certificate's keyId, a federated credential's id), for the audit trail. */
  credentialId: string;
  /** For a federated assertion: the external token's issuer and subject, and the credential's name. */
  federated?: { issuer: string; subject: string; credentialName: string };
}

/**
 * The client authentication methods a request uses. RFC 6749 §2.3.1: "The client MUST NOT use more than one
 * authentication method in each request", so two of them (say a Basic header and a form `client_secret`)
 * are refused rather than one silently chosen.
 */
export function requireOneAuthMethod(request: { params: FormParams; basic: unknown }): void {
  const methods = [
    ...(request.basic === undefined ? [] : ['Authorization: Basic']),
    ...(request.params['client_secret'] === undefined ? [] : ['client_secret']),
    ...(request.params['client_assertion'] === undefined ? [] : ['client_assertion']),
  ];
  if (methods.length > 1) throw TokenErrors.conflictingCredentials(methods);
}

/**
 * Authenticates an application (non-managed) client by client secret (form or HTTP Basic) or by a
 * certificate-signed client assertion, and an application or a user-assigned identity by a federated
 * assertion (an external token matching one of its federated identity credentials), as Entra's token
 * endpoint does. Failures are throttled per source and
 * per client ({@link ClientAuthThrottle}): an unknown client id counts against its source, a wrong credential
 * against both.
 */
export async function authenticateClient(ctx: AuthorityContext, request: ClientAuthRequest): Promise<AuthenticatedClient> {
  const { params, basic, tenant, source } = request;
  requireOneAuthMethod(request);
  const clientId = basic?.clientId ?? requireParam(params, 'client_id');
  if (basic !== undefined && params['client_id'] !== undefined && params['client_id'] !== basic.clientId) {
    throw TokenErrors.assertionClientMismatch();
  }
  const secret = basic?.clientSecret ?? params['client_secret'];
  const assertion = params['client_assertion'];
  if ((secret === undefined || secret === '') && (assertion === undefined || assertion === '')) throw TokenErrors.credentialRequired();
  // A locked source is refused before it costs a lookup.
  await ctx.authThrottle.refresh({ source });
  ctx.authThrottle.check({ source });

  // Cached, and dropped on every replica as a principal or credential changes (client-directory.ts).
  const client = await ctx.clients.get(clientId);
  const principal = client?.principal;
  // A user-assigned identity has no secrets or certificates: only a federated assertion makes it a client.
  const federated = (secret === undefined || secret === '') && isFederatedAssertion(params, clientId);
  if (principal?.tenantId !== tenant.id || !(principal.kind === 'Application' || (federated && canFederate(principal)))) {
    await ctx.authThrottle.failed({ source });
    throw TokenErrors.applicationNotFound(clientId, request.tenantSegment);
  }
  const credentials = principal.kind === 'Application' ? (client?.credentials ?? []) : [];
  const subject = { source, client: `app:${principal.appId.toLowerCase()}` };
  try {
    await ctx.authThrottle.refresh(subject);
    // No `await` between this check and a secret's verification: concurrent guesses on this replica stop at the limit.
    ctx.authThrottle.check(subject);
    if (secret !== undefined && secret !== '') return authenticateWithSecret(ctx, principal, credentials, secret);
    if (federated) {
      const { credential, issuer, subject: sub } = await verifyFederatedAssertion(ctx, params, principal);
      return { principal, method: 'federated', credentialId: credential.id, federated: { issuer, subject: sub, credentialName: credential.name } };
    }
    return await authenticateWithAssertion(ctx, request, principal, credentials);
  } catch (err) {
    // An unreachable issuer is the server's trouble, not a wrong credential: it does not count towards a lockout.
    if (err instanceof OAuthError && err.status !== 429 && err.aadsts !== 50166) await ctx.authThrottle.failed(subject);
    throw err;
  }
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
