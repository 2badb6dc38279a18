import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthorityContext } from '../context.js';
import type { Grant, GrantResult, TokenRequest } from '../grants/grant.js';
import { clientCredentialsGrant } from '../grants/client-credentials.js';
import { managedIdentityGrant } from '../grants/managed-identity.js';
import { correlationIdOf, oauthErrorHandler, type OAuthError } from '../../shared/oauth-error.js';
import { TokenErrors } from '../errors.js';
import { TOKEN_BODY_LIMIT, parseBasicAuth, parseForm, requireParam, type FormParams } from '../token/form.js';
import { resolveTenant } from './tenant.js';

const GRANTS: ReadonlyMap<string, Grant> = new Map([clientCredentialsGrant, managedIdentityGrant].map((g) => [g.grantType, g]));

/**
 * Entra's token endpoints: v1 `POST /{tenant}/oauth2/token` (`resource`, string numbers in the response,
 * as ADAL and the seeds' PowerShell expect) and v2 `POST /{tenant}/oauth2/v2.0/token` (`scope`, numeric
 * `expires_in`, as MSAL expects). Errors are Entra-shaped; nothing a client sends is ever logged.
 */
export function tokenRoutes(app: FastifyInstance, opts: { ctx: AuthorityContext }): Promise<void> {
  const { ctx } = opts;

  // Token endpoints take forms only; a JSON body is refused rather than half-understood.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: TOKEN_BODY_LIMIT }, (_req, body, done) => {
    try {
      done(null, parseForm(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

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
      onError: (request, error) => recordFailure(ctx, request, error),
    }),
  );

  const handler = (endpoint: 'v1' | 'v2') => async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
    const params = formBody(request);
    const tenant = await resolveTenant(ctx, request.params.tenant, { forGrant: true });
    const grantType = requireParam(params, 'grant_type');
    const grant = GRANTS.get(grantType);
    if (grant === undefined) throw TokenErrors.unsupportedGrantType(grantType);
    const tokenRequest: TokenRequest = {
      tenant,
      tenantSegment: request.params.tenant,
      endpoint,
      params,
      basic: parseBasicAuth(request.headers.authorization),
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
    return reply.code(200).headers(noStore).send(endpoint === 'v1' ? v1Response(result) : v2Response(result));
  };

  const bodyLimit = TOKEN_BODY_LIMIT;
  app.post('/:tenant/oauth2/token', { bodyLimit }, handler('v1'));
  app.post('/:tenant/oauth2/v2.0/token', { bodyLimit }, handler('v2'));
  return Promise.resolve();
}

const noStore = { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' };

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
  };
}

/** v2 (MSAL) shape: numbers are numbers. */
function v2Response(result: GrantResult): Record<string, string | number> {
  const { issued } = result;
  return { token_type: 'Bearer', expires_in: issued.expiresIn, ext_expires_in: issued.expiresIn, access_token: issued.accessToken };
}

/** Failed requests are audited too (who tried what, and why it failed), never with what they presented. */
async function recordFailure(ctx: AuthorityContext, request: FastifyRequest, error: OAuthError): Promise<void> {
  const params = request.body !== null && typeof request.body === 'object' ? (request.body as FormParams) : {};
  try {
    await ctx.audit.record({
      tenantId: null,
      actor: typeof params['client_id'] === 'string' ? params['client_id'].slice(0, 64) : 'anonymous',
      action: 'token.denied',
      target: (request.params as { tenant?: string }).tenant?.slice(0, 128) ?? '',
      outcome: 'failure',
      detail: { error: error.error, aadsts: error.aadsts, grantType: params['grant_type']?.slice(0, 128), status: error.status },
    });
  } catch {
    // The failure is already being reported to the caller; an audit outage must not turn it into a 500.
  }
}
