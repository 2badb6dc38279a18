/**
 * Authenticates a host API call: `Authorization: Bearer <host assertion>`, checked by the one assertion
 * verifier (`token/assertion.ts`) with the host's algorithms, the host API's audiences (each advertised
 * origin + `HOST_API_BASE`), the shared replay store, and the contract's lifetime cap; then the credential
 * and its host are read again (revoked, expired, deleted or re-created hosts are refused at once). Every
 * refusal is `401 HostNotRecognised`.
 */
import type { FastifyRequest } from 'fastify';
import { importJWK } from 'jose';
import { authenticatedHost, findHostCredential, HostErrors, type HostError } from '../../directory/hosts.js';
import { HOST_API_BASE, HOST_ASSERTION_MAX_LIFETIME_SECONDS } from '../../shared/host-protocol.js';
import { armKey } from '../../shared/ids.js';
import { OAuthError } from '../../shared/oauth-error.js';
import type { HostCredential, Resource } from '../../store/types.js';
import type { AuthorityContext } from '../context.js';
import { HOST_ASSERTION_ALGORITHMS } from '../grants/managed-identity.js';
import { JWT_BEARER_ASSERTION_TYPE, verifyAssertion } from '../token/assertion.js';

export interface AuthenticatedHost {
  host: Resource;
  credential: HostCredential;
  tenantId: string;
}

/** The audiences a host assertion may name: the host API on every advertised origin. */
export function hostApiAudiences(ctx: AuthorityContext): string[] {
  return ctx.urls.advertisedOrigins().map((urls) => `${urls.origin}${HOST_API_BASE}`);
}

const BEARER = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]+)[ \t]*$/i;

export async function authenticateHost(ctx: AuthorityContext, request: FastifyRequest): Promise<AuthenticatedHost> {
  const header = request.headers.authorization;
  const assertion = header === undefined ? undefined : BEARER.exec(header)?.[1];
  if (assertion === undefined) throw HostErrors.hostNotRecognised("the 'Authorization: Bearer <host assertion>' header is missing or malformed");

  // The credential the assertion names, once found: refusals after that point name its host in the audit trail.
  let known: { credential: HostCredential; tenantId: string | undefined } | undefined;
  const about = (err: HostError): HostError =>
    known?.tenantId === undefined ? err : err.about({ hostResourceId: known.credential.hostResourceId, tenantId: known.tenantId });

  let verified: { payload: { iat?: number; exp?: number }; subject: HostCredential };
  try {
    verified = await verifyAssertion(
      { client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: assertion },
      {
        algorithms: HOST_ASSERTION_ALGORITHMS,
        audiences: hostApiAudiences(ctx),
        clock: ctx.clock,
        replay: ctx.store.replay,
        resolveKey: async ({ header: jwsHeader, payload, alg }) => {
          if (typeof jwsHeader.kid !== 'string') throw HostErrors.hostNotRecognised("the assertion's header names no 'kid'");
          known = await findHostCredential(ctx.store, jwsHeader.kid);
          if (known === undefined) throw HostErrors.hostNotRecognised('no host credential has this key id');
          const { credential } = known;
          if (credential.revokedAt !== null) throw about(HostErrors.hostNotRecognised('the host credential is revoked'));
          if (ctx.clock.now() >= credential.expiresAt) throw about(HostErrors.hostNotRecognised('the host credential has expired'));
          if (typeof payload.iss !== 'string' || armKey(payload.iss) !== armKey(credential.hostResourceId)) {
            throw about(HostErrors.hostNotRecognised("the assertion's 'iss' is not the host the credential belongs to"));
          }
          const key = await importJWK({ ...credential.publicJwk, alg }, alg);
          if (key instanceof Uint8Array) throw about(HostErrors.hostNotRecognised('the credential is not a public key'));
          return { key, issuer: payload.iss, subject: credential };
        },
      },
    );
  } catch (err) {
    if (err instanceof OAuthError) throw about(HostErrors.hostNotRecognised(`the host assertion was refused (${err.message})`));
    throw err;
  }
  const { payload, subject: credential } = verified;
  if (typeof payload.iat !== 'number' || typeof payload.exp !== 'number' || payload.exp - payload.iat > HOST_ASSERTION_MAX_LIFETIME_SECONDS) {
    throw about(HostErrors.hostNotRecognised(`the host assertion needs 'iat' and 'exp' at most ${String(HOST_ASSERTION_MAX_LIFETIME_SECONDS)} seconds apart`));
  }
  const host = await authenticatedHost(ctx.store, credential, ctx.clock.now());
  if (host === undefined || known?.tenantId === undefined) throw about(HostErrors.hostNotRecognised('the host no longer exists'));
  return { host, credential, tenantId: known.tenantId };
}

/**
 * Reads again what {@link authenticateHost} read for a caller it authenticated earlier in the same request (a
 * long poll that waited): the credential and its host, refused with `401 HostNotRecognised` when the credential
 * was revoked or has expired, or the host was deleted, meanwhile.
 */
export async function reauthenticateHost(ctx: AuthorityContext, caller: AuthenticatedHost): Promise<AuthenticatedHost> {
  const about = (err: HostError): HostError => err.about({ hostResourceId: caller.credential.hostResourceId, tenantId: caller.tenantId });
  const known = await findHostCredential(ctx.store, caller.credential.keyId);
  const now = ctx.clock.now();
  if (known === undefined || known.credential.revokedAt !== null) throw about(HostErrors.hostNotRecognised('the host credential is revoked'));
  if (now >= known.credential.expiresAt) throw about(HostErrors.hostNotRecognised('the host credential has expired'));
  const host = await authenticatedHost(ctx.store, known.credential, now);
  if (host === undefined || known.tenantId === undefined) throw about(HostErrors.hostNotRecognised('the host no longer exists'));
  return { host, credential: known.credential, tenantId: known.tenantId };
}
