/**
 * The failures fastify raises itself, before a route handler runs: a body over the limit, a content type
 * no parser accepts, a body that is not valid JSON, a Content-Length that does not match, a schema
 * validation failure. They are recognised here, once; each error family (`oauth-error.ts` and
 * `api-error.ts` beside this file) renders them in its own shape. What the two families' error-handler
 * factories share (their options, the logging of a 5xx, the body limit a 413 names) is here too.
 */
import type { FastifyError, FastifyRequest } from 'fastify';

/** A failure of the request itself, detected by the framework. */
export type RequestFailure =
  | { kind: 'bodyTooLarge' }
  | { kind: 'unsupportedMediaType' }
  | { kind: 'emptyJsonBody' }
  | { kind: 'invalidJsonBody' }
  | { kind: 'invalidContentLength' }
  /** A route schema refused the request; `message` is fastify's description of what failed. */
  | { kind: 'validation'; message: string }
  /** Any other 4xx fastify raised, with its status. */
  | { kind: 'clientError'; status: number };

const BY_CODE: Readonly<Record<string, RequestFailure>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { kind: 'bodyTooLarge' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { kind: 'unsupportedMediaType' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { kind: 'emptyJsonBody' },
  FST_ERR_CTP_INVALID_JSON_BODY: { kind: 'invalidJsonBody' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { kind: 'invalidContentLength' },
};

/**
 * What was wrong with the request, when `err` is one of fastify's own request errors; undefined for
 * anything else (a bug or an outage: the families render it as a generic 500).
 */
export function requestFailureOf(err: unknown): RequestFailure | undefined {
  const fe = err as Partial<FastifyError> | null | undefined;
  if (fe === null || fe === undefined || typeof fe !== 'object') return undefined;
  if (fe.validation !== undefined) return { kind: 'validation', message: fe.message ?? 'validation failed' };
  const known = typeof fe.code === 'string' ? BY_CODE[fe.code] : undefined;
  if (known !== undefined) return known;
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 400 && (err instanceof SyntaxError || /JSON/i.test(fe.message ?? ''))) return { kind: 'invalidJsonBody' };
  if (status >= 400 && status < 500) return { kind: 'clientError', status };
  return undefined;
}

/** What both families' error handlers take. */
export interface ErrorHandlerOptions<E> {
  /** The body limit named in the 413's message; by default the limit of the route the request hit. */
  bodyLimit?: number;
  /** The log message of a 5xx (logged with the cause's message and stack, never the request). */
  logMessage: string;
  /** Runs with each error before it is sent (e.g. to audit a refusal); it must not throw. */
  onError?: (request: FastifyRequest, error: E) => Promise<void>;
}

/** Logs a failure of the server's own (a 5xx), with the cause's message and stack only. */
export function logServerFailure(request: FastifyRequest, status: number, cause: unknown, options: { logMessage: string }): void {
  if (status < 500) return;
  const { message, stack } = (cause ?? {}) as Partial<Error>;
  request.log.error({ err: { message, stack } }, options.logMessage);
}

/** The body limit a 413 names: the handler's, else the route's own. */
export function bodyLimitOf(request: FastifyRequest, options: { bodyLimit?: number | undefined }): number {
  return options.bodyLimit ?? request.routeOptions.bodyLimit;
}
