/** What the host API's endpoint files share: their context, body checks and the credential grant view. */
import type { FastifyRequest } from 'fastify';
import { HostErrors, type RegisteredHostCredential } from '../../directory/hosts.js';
import { AUDIT_UPLOAD_MAX_BYTES, AUDIT_UPLOAD_MAX_RECORDS, type HostCredentialGrant } from '../../shared/host-protocol.js';
import type { AuthorityContext } from '../context.js';
import type { EnrolmentThrottle } from './rate-limit.js';
import type { HostChanges } from './changes.js';

/** Body limit of the enrol, renew and self endpoints (a JWK and a token). */
export const HOST_API_BODY_LIMIT = 64 * 1024;
/** Body limit of audit uploads (at most {@link MAX_AUDIT_RECORDS} records). */
export const HOST_AUDIT_BODY_LIMIT = AUDIT_UPLOAD_MAX_BYTES;
/** Records per audit upload. */
export const MAX_AUDIT_RECORDS = AUDIT_UPLOAD_MAX_RECORDS;

export interface HostApiContext {
  ctx: AuthorityContext;
  /** Failed enrolments per remote address, counted across replicas. */
  enrolmentFailures: EnrolmentThrottle;
  /** Wakes `self` long polls on changes to what a host's description depends on. */
  hostChanges: HostChanges;
}

/** The request body as a JSON object, or `400 InvalidRequest`. */
export function bodyObject(request: FastifyRequest): Record<string, unknown> {
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw HostErrors.invalidRequest('the body must be a JSON object (Content-Type: application/json)');
  return body as Record<string, unknown>;
}

/** The contract's view of a registered credential; the token endpoint is on the origin the host called. */
export function credentialGrant(ctx: AuthorityContext, request: FastifyRequest, registered: RegisteredHostCredential): HostCredentialGrant {
  const origin = ctx.urls.forHost(request.headers.host).origin;
  return {
    tenantId: registered.tenantId,
    hostResourceId: registered.host.id,
    keyId: registered.credential.keyId,
    issuedOn: Math.floor(registered.credential.createdAt / 1000),
    expiresOn: Math.floor(registered.credential.expiresAt / 1000),
    tokenEndpoint: `${origin}/${registered.tenantId}/oauth2/token`,
  };
}
