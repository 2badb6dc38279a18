import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { isFederatedAssertion } from '../federation/federated-assertion.js';
import type { AuthorityContext } from '../context.js';
import type { Grant, GrantResult, TokenRequest } from '../grants/grant.js';
import { clientCredentialsGrant } from '../grants/client-credentials.js';
import { MANAGED_IDENTITY_GRANT_TYPE, managedIdentityGrant } from '../grants/managed-identity.js';
import { passwordGrant } from '../grants/password.js';
import { refreshTokenGrant } from '../grants/refresh-token.js';
import { authorizationCodeGrant } from '../grants/authorization-code.js';
import { adalDeviceCodeGrant, deviceCodeGrant } from '../grants/device-code.js';
import { OAuthError, correlationIdOf, oauthErrorHandler } from '../../shared/oauth-error.js';
import { TokenErrors } from '../errors.js';
import { TOKEN_BODY_LIMIT, acceptFormsOnly, parseBasicAuth, requireParam, type FormParams } from '../token/form.js';
import { resolveTenant } from './tenant.js';
import { RefusalAudit } from '../refusal-audit.js';
import type { Tenant } from '../../store/types.js';

const GRANTS: ReadonlyMap<string, Grant> = new Map(
  [clientCredentialsGrant, managedIdentityGrant, passwordGrant, refreshTokenGrant, authorizationCodeGrant, deviceCodeGrant, adalDeviceCodeGrant].map((g) => [
    g.grantType,
    g,
  ]),
);

/**
 * Entra's token endpoints: v1 `POST /{tenant}/oauth2/token` (`resource`, string numbers in the response,
 * as ADAL and the seeds' PowerShell expect) and v2 `POST /{tenant}/oauth2/v2.0/token` (`scope`, numeric
 * `expires_in`, as MSAL expects). Errors are Entra-shaped; nothing a client sends is ever logged.
 */
export function tokenRoutes(app: FastifyInstance, opts: { ctx: AuthorityContext }): Promise<void> {
  const { ctx } = opts;
  const tenants = new WeakMap<FastifyRequest, Tenant>();
  // Refusals that name no known caller are counted per source and reason, not written one row each.
  const refusals = new RefusalAudit({
    record: (event) => ctx.audit.record(event),
    clock: ctx.clock,
    onError: (err: unknown) => ctx.logger.warn({ err: { message: (err as Error).message } }, 'refusal audit write failed'),
  });
  refusals.start();
  // A known caller's refusals: the first per (tenant, caller, source, reason) and interval is its own row at
  // once, the rest are counted; so a flood of wrong secrets for one client cannot grow the audit store either.
  const knownRefusals = new RefusalAudit({
    record: (event) => ctx.audit.record(event),
    clock: ctx.clock,
    writeFirst: true,
    onError: (err: unknown) => ctx.logger.warn({ err: { message: (err as Error).message } }, 'refusal audit write failed'),
  });
  knownRefusals.start();
  app.addHook('onClose', async () => {
    await Promise.all([refusals.close(), knownRefusals.close()]);
  });

  // Token endpoints take forms only; a JSON body is refused rather than half-understood.
  acceptFormsOnly(app);

  // Entra names every token response with these, and support cases are traced by them.
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-ms-request-id', request.id);
    const clientRequestId = correlationIdOf(request);
    if (clientRequestId !== undefined) reply.header('client-request-id', clientRequestId);
  });

  app.setErrorHandler(
    oauthErrorHandler({
      clock: ctx.clock,
      bodyLimit: TOKEN_BODY_LIMIT,
      headers: noStore,
      logMessage: 'token request failed',
      onError: (request, error) => recordFailure(ctx, request, error, tenants.get(request), { anonymous: refusals, known: knownRefusals }),
    }),
  );

  const handler = (endpoint: 'v1' | 'v2') => {
    const serve = grantHandler(endpoint);
    const metrics = ctx.metrics;
    if (metrics === undefined) return serve;
    return async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
      const started = performance.now();
      try {
        const sent = await serve(request, reply);
        metrics.grant(grantLabel(request), 'success', (performance.now() - started) / 1000);
        return sent;
      } catch (err) {
        metrics.grant(grantLabel(request), err instanceof OAuthError ? err.error : 'server_error', (performance.now() - started) / 1000);
        throw err;
      }
    };
  };

  const grantHandler = (endpoint: 'v1' | 'v2') => async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
    const params = formBody(request);
    const tenant = await resolveTenant(ctx, request.params.tenant, { forGrant: true });
    tenants.set(request, tenant);
    const grantType = requireParam(params, 'grant_type');
    const grant = GRANTS.get(grantType);
    if (grant === undefined) throw TokenErrors.unsupportedGrantType(grantType);
    const tokenRequest: TokenRequest = {
      tenant,
      tenantSegment: request.params.tenant,
      endpoint,
      params,
      basic: parseBasicAuth(request.headers.authorization),
      source: request.ip,
      host: request.headers.host,
    };
    const result = await grant.handle(ctx, tokenRequest);
    await ctx.audit.record({
      tenantId: tenant.id,
      actor: result.principal.objectId,
      action: 'token.issued',
      target: result.resource,
      outcome: 'success',
      detail: {
        grantType,
        endpoint,
        appId: result.principal.appId,
        tokenId: result.issued.tokenId,
        kid: result.issued.kid,
        expiresOn: result.issued.expiresOn,
        ...result.detail,
      },
    });
    return reply
      .code(200)
      .headers(noStore)
      .send(endpoint === 'v1' ? v1Response(result) : v2Response(result));
  };

  const bodyLimit = TOKEN_BODY_LIMIT;
  app.post('/:tenant/oauth2/token', { bodyLimit }, handler('v1'));
  app.post('/:tenant/oauth2/v2.0/token', { bodyLimit }, handler('v2'));
  return Promise.resolve();
}

const noStore = { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' };

/** The request's grant type as a metric label: a grant this authority has, else `other` (labels stay a bounded set). */
function grantLabel(request: FastifyRequest): string {
  const body = request.body as FormParams | undefined | null;
  const grantType = body !== null && typeof body === 'object' ? body['grant_type'] : undefined;
  return grantType !== undefined && GRANTS.has(grantType) ? grantType : 'other';
}

function formBody(request: FastifyRequest): FormParams {
  const body = request.body;
  if (body === undefined || body === null) throw TokenErrors.missingParameter('grant_type');
  if (typeof body !== 'object' || Array.isArray(body)) throw TokenErrors.unsupportedMediaType();
  return body as FormParams;
}

/** v1 (ADAL) shape: every number is a string, and `resource`, `expires_on`, `not_before` are present. */
function v1Response(result: GrantResult): Record<string, string> {
  const { issued } = result;
  return {
    token_type: 'Bearer',
    expires_in: String(issued.expiresIn),
    ext_expires_in: String(issued.expiresIn),
    expires_on: String(issued.expiresOn),
    not_before: String(issued.notBefore),
    resource: result.resource,
    access_token: issued.accessToken,
    ...result.response,
  };
}

/** v2 (MSAL) shape: numbers are numbers. */
function v2Response(result: GrantResult): Record<string, string | number> {
  const { issued } = result;
  return { token_type: 'Bearer', expires_in: issued.expiresIn, ext_expires_in: issued.expiresIn, access_token: issued.accessToken, ...result.response };
}

/**
 * Failed requests are audited too (who tried what, and why it failed), never with what they presented. A
 * refusal of a known caller (an application of the tenant, or a registered host credential) is kept per
 * caller, source and reason; any other refusal (unknown tenant or client, malformed request) per source and
 * reason. Both are bounded per interval ({@link RefusalAudit}).
 */
async function recordFailure(
  ctx: AuthorityContext,
  request: FastifyRequest,
  error: OAuthError,
  tenant: Tenant | undefined,
  refusals: { anonymous: RefusalAudit; known: RefusalAudit },
): Promise<void> {
  const params = request.body !== null && typeof request.body === 'object' ? (request.body as FormParams) : {};
  const reason = `${error.error}/${String(error.aadsts)}`;
  try {
    if (tenant === undefined || !(await namesKnownCaller(ctx, request, params, tenant))) {
      refusals.anonymous.count({ source: request.ip, reason });
      return;
    }
    refusals.known.count({
      source: request.ip,
      reason,
      tenantId: tenant.id,
      actor: (clientIdOf(request, params) ?? 'anonymous').slice(0, 64),
      target: (request.params as { tenant?: string }).tenant?.slice(0, 128) ?? '',
      detail: {
        error: error.error,
        aadsts: error.aadsts,
        grantType: params['grant_type']?.slice(0, 128),
        status: error.status,
        ...federatedClaimsOf(params, clientIdOf(request, params)),
      },
    });
  } catch {
    // The failure is already being reported to the caller; an audit outage must not turn it into a 500.
  }
}

/**
 * Whether a refused request named a caller this tenant knows: an application or a user-assigned identity (a
 * federated assertion's) by client id, or a host credential by `kid`.
 */
async function namesKnownCaller(ctx: AuthorityContext, request: FastifyRequest, params: FormParams, tenant: Tenant): Promise<boolean> {
  const clientId = clientIdOf(request, params);
  if (clientId !== undefined && clientId !== '') {
    const principal = clientId.length <= 256 ? await ctx.store.servicePrincipals.getByAppId(clientId) : undefined;
    return principal?.tenantId === tenant.id && (principal.kind === 'Application' || principal.managedIdentity?.type === 'UserAssigned');
  }
  const assertion = params['client_assertion'];
  if (params['grant_type'] !== MANAGED_IDENTITY_GRANT_TYPE || assertion === undefined) return false;
  let kid: unknown;
  try {
    kid = decodeProtectedHeader(assertion).kid;
  } catch {
    return false;
  }
  return typeof kid === 'string' && kid.length <= 256 && (await ctx.store.hostCredentials.get(kid)) !== undefined;
}

/** A refused federated assertion's issuer and subject (as claimed: unverified), for the audit trail. */
function federatedClaimsOf(params: FormParams, clientId: string | undefined): Record<string, string> {
  if (clientId === undefined || !isFederatedAssertion(params, clientId)) return {};
  try {
    const { iss, sub } = decodeJwt(params['client_assertion']?.trim() ?? '');
    return { federatedIssuer: String(iss).slice(0, 600), ...(typeof sub === 'string' ? { federatedSubject: sub.slice(0, 600) } : {}) };
  } catch {
    return {};
  }
}

/** The client id a request names: the Basic header's, else the form's. */
function clientIdOf(request: FastifyRequest, params: FormParams): string | undefined {
  return parseBasicAuth(request.headers.authorization)?.clientId ?? params['client_id'];
}
