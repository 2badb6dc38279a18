/**
 * The management API: ARM-shaped (`/subscriptions/...`), Graph-shaped (`/v1.0/servicePrincipals...`) and
 * openmsi's own (`/openmsi/keys`, `/openmsi/audit`), authenticated by bearer tokens from this authority and
 * open to directory admins only. Every error is rendered as `{ error: { code, message } }`.
 *
 * Register it as an encapsulated plugin (it sets its own error handler):
 * `await app.register(managementRoutes, { ctx })`. The server should route case-insensitively
 * (`routerOptions.caseSensitive: false`) and allow long path parameters, as ARM ids and names need.
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, serializeApiError } from '../shared/api-error.js';
import type { ManagementContext } from './context.js';
import { auditRoutes } from './audit.js';
import { deniedPrincipalOf } from './authenticate.js';
import { MANAGEMENT_BODY_LIMIT } from './common.js';
import { keyRoutes } from './keys.js';
import { principalRoutes } from './principals.js';
import { resourceGroupRoutes } from './resource-groups.js';
import { resourceRoutes } from './resources.js';
import { subscriptionRoutes } from './subscriptions.js';
import { userAssignedIdentityRoutes } from './user-assigned-identities.js';

export interface ManagementOptions {
  ctx: ManagementContext;
}

/** Maps anything thrown while serving a request to the API error the caller sees. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const fe = err as Partial<FastifyError> | undefined;
  if (fe?.validation !== undefined) return new ApiError(400, 'InvalidRequestContent', `The request content was invalid: ${fe.message ?? 'validation failed'}.`);
  switch (fe?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'RequestEntityTooLarge', `The request content is larger than the ${String(MANAGEMENT_BODY_LIMIT)}-byte limit.`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'UnsupportedMediaType', "The request content type is not supported; send 'application/json'.");
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'InvalidRequestContent', 'The request content was invalid: the JSON body is empty.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized: the body is not valid JSON.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'InvalidRequestContent', 'The request content length does not match the Content-Length header.');
    default:
      break;
  }
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 400 && (err instanceof SyntaxError || /JSON/i.test(fe?.message ?? ''))) {
    return new ApiError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized: the body is not valid JSON.');
  }
  if (status >= 400 && status < 500) return new ApiError(status, 'BadRequest', 'The request is invalid.');
  return new ApiError(500, 'InternalServerError', 'The server encountered an internal error. Retry the request.', { cause: err });
}

const MUTATING = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);

async function auditDenied(ctx: ManagementContext, request: FastifyRequest, err: ApiError): Promise<void> {
  const principal = deniedPrincipalOf(request);
  if (err.status !== 403 || principal === undefined || !MUTATING.has(request.method)) return;
  await ctx.audit
    .record({
      tenantId: principal.tenantId,
      actor: principal.objectId,
      action: 'management.denied',
      target: request.url.split('?')[0] ?? '/',
      outcome: 'failure',
      detail: { method: request.method, code: err.code },
    })
    .catch(() => undefined);
}

/** The management API as a fastify plugin: `app.register(managementRoutes, { ctx })`. */
export async function managementRoutes(app: FastifyInstance, opts: ManagementOptions): Promise<void> {
  const { ctx } = opts;

  app.setErrorHandler(async (err: unknown, request, reply) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500) {
      const e = err as Error;
      request.log.error({ err: { message: e.message, stack: e.stack } }, 'management request failed');
    }
    await auditDenied(ctx, request, apiError);
    const { status, headers, body } = serializeApiError(apiError);
    return reply.code(status).headers(headers).send(body);
  });

  // JSON only: a text/plain body is a 415, not a string a handler has to reject.
  app.removeContentTypeParser('text/plain');

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-ms-request-id', request.id);
    reply.header('cache-control', 'no-cache');
  });

  subscriptionRoutes(app, ctx);
  resourceGroupRoutes(app, ctx);
  userAssignedIdentityRoutes(app, ctx);
  resourceRoutes(app, ctx);
  principalRoutes(app, ctx);
  keyRoutes(app, ctx);
  auditRoutes(app, ctx);
  return Promise.resolve();
}

/** Alias of {@link managementRoutes}. */
export const managementPlugin = managementRoutes;
