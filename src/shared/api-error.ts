import type { FastifyReply, FastifyRequest } from 'fastify';
import { bodyLimitOf, logServerFailure, requestFailureOf, type ErrorHandlerOptions } from './request-failure.js';

/**
 * The resource-API error family: `{error: {code, message}}`, the shape shared by Azure Resource Manager,
 * Microsoft Graph and Key Vault. {@link serializeApiError} is the only place that renders it.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  /** A stable, Azure-style error code, e.g. `ResourceGroupNotFound`. */
  readonly code: string;
  /** Extra headers the response must carry (e.g. `WWW-Authenticate` on 401). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, code: string, message: string, options?: { headers?: Record<string, string>; cause?: unknown }) {
    if (!Number.isInteger(status) || status < 400 || status > 599) throw new TypeError(`an API error's status must be 4xx or 5xx, not ${String(status)}`);
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.code = code;
    this.headers = options?.headers ?? {};
  }
}

export interface ApiErrorBody {
  error: { code: string; message: string };
}

/** Renders any thrown value; unknown failures become a generic 500 `InternalServerError`. */
export function serializeApiError(err: unknown): { status: number; headers: Readonly<Record<string, string>>; body: ApiErrorBody } {
  const known = err instanceof ApiError ? err : ApiErrors.internal();
  return { status: known.status, headers: known.headers, body: { error: { code: known.code, message: known.message } } };
}

/**
 * The failures every ARM/Graph/Key Vault-shaped server shares, whatever its resource types: the request
 * as fastify refused it, a path no route serves, and the generic 500. Resource-specific failures live in
 * the server's own catalog (e.g. `ManagementErrors`).
 */
export const ApiErrors = {
  /** Anything unexpected: no internals reach the caller. */
  internal: (cause?: unknown) =>
    new ApiError(500, 'InternalServerError', 'The server encountered an internal error. Retry the request.', cause === undefined ? undefined : { cause }),
  routeNotFound: (method: string, path: string) => new ApiError(404, 'NotFound', `No route matches ${method} ${path}.`),
  /** The body is not what the API takes; `reason` completes "The request content was invalid: ...". */
  invalidContent: (reason: string) => new ApiError(400, 'InvalidRequestContent', `The request content was invalid: ${reason}.`),
  invalidJson: () => new ApiError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized: the body is not valid JSON.'),
  contentLengthMismatch: () => new ApiError(400, 'InvalidRequestContent', 'The request content length does not match the Content-Length header.'),
  bodyTooLarge: (limit: number) => new ApiError(413, 'RequestEntityTooLarge', `The request content is larger than the ${String(limit)}-byte limit.`),
  unsupportedMediaType: () => new ApiError(415, 'UnsupportedMediaType', "The request content type is not supported; send 'application/json'."),
  /** Any other client error fastify raised, with its status. */
  badRequest: (status: number) => new ApiError(status, 'BadRequest', 'The request is invalid.'),
} as const;

export interface ToApiErrorOptions {
  /** The body limit of the routes, named in the 413's message. */
  bodyLimit: number;
  /**
   * Maps the errors of the layers below (e.g. the directory's domain errors) to API errors; undefined for
   * an error it does not know.
   */
  translate?: ((err: unknown) => ApiError | undefined) | undefined;
}

/**
 * Maps anything thrown while serving a request to the API error the caller sees: API errors pass, lower
 * layers' errors are translated, fastify's own request errors (see {@link requestFailureOf}) become 4xx,
 * anything else is a 500 `InternalServerError`.
 */
export function toApiError(err: unknown, options: ToApiErrorOptions): ApiError {
  if (err instanceof ApiError) return err;
  const translated = options.translate?.(err);
  if (translated !== undefined) return translated;
  const failure = requestFailureOf(err);
  switch (failure?.kind) {
    case undefined:
      return ApiErrors.internal(err);
    case 'validation':
      return ApiErrors.invalidContent(failure.message);
    case 'bodyTooLarge':
      return ApiErrors.bodyTooLarge(options.bodyLimit);
    case 'unsupportedMediaType':
      return ApiErrors.unsupportedMediaType();
    case 'emptyJsonBody':
      return ApiErrors.invalidContent('the JSON body is empty');
    case 'invalidJsonBody':
      return ApiErrors.invalidJson();
    case 'invalidContentLength':
      return ApiErrors.contentLengthMismatch();
    case 'clientError':
      return ApiErrors.badRequest(failure.status);
  }
}

export interface ApiErrorHandlerOptions extends ErrorHandlerOptions<ApiError>, Pick<ToApiErrorOptions, 'translate'> {}

/**
 * The fastify error handler of an ARM/Graph/Key Vault-shaped server:
 * `app.setErrorHandler(apiErrorHandler({ bodyLimit, translate, logMessage }))`. Every failure is rendered by
 * {@link serializeApiError}, with the headers the error names.
 */
export function apiErrorHandler(options: ApiErrorHandlerOptions): (err: unknown, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply> {
  return async (err, request, reply) => {
    const error = toApiError(err, { bodyLimit: bodyLimitOf(request, options), translate: options.translate });
    logServerFailure(request, error.status, err, options);
    if (options.onError !== undefined) await options.onError(request, error);
    const { status, headers, body } = serializeApiError(error);
    return reply.code(status).headers(headers).send(body);
  };
}

/** The fastify not-found handler of a server whose unknown paths answer in this family: 404 `NotFound`. */
export async function apiNotFoundHandler(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { status, headers, body } = serializeApiError(ApiErrors.routeNotFound(request.method, request.url.split('?')[0] ?? ''));
  return reply.code(status).headers(headers).send(body);
}
