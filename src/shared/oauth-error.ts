import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from './clock.js';
import { bodyLimitOf, logServerFailure, requestFailureOf, type ErrorHandlerOptions } from './request-failure.js';

/**
 * The OAuth / IMDS error family: `{error, error_description}` bodies, extended with Entra's
 * `error_codes`, `timestamp`, `trace_id` and `correlation_id`. Every token-endpoint and managed-identity
 * failure is one of these; {@link serializeOAuthError} is the only place that renders them.
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_resource'
  | 'temporarily_unavailable'
  | 'unsupported_response_type'
  | 'access_denied'
  | 'authorization_pending'
  | 'slow_down'
  | 'expired_token'
  | 'authorization_declined'
  | 'server_error';

export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  /** The OAuth `error` value. */
  readonly error: OAuthErrorCode;
  /** Entra's numeric AADSTS code (e.g. 7000215), rendered as `AADSTS7000215:` in the description. */
  readonly aadsts: number | undefined;
  readonly status: number;
  /** Extra headers the response must carry (e.g. `Retry-After` on 429). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, error: OAuthErrorCode, description: string, options?: { aadsts?: number; cause?: unknown; headers?: Record<string, string> }) {
    if (!Number.isInteger(status) || status < 400 || status > 599) throw new TypeError(`an OAuth error's status must be 4xx or 5xx, not ${String(status)}`);
    super(description, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.error = error;
    this.aadsts = options?.aadsts;
    this.headers = options?.headers ?? {};
  }

  /** The human-readable description, with the `AADSTSnnn:` prefix Entra puts on it. */
  get description(): string {
    return this.aadsts === undefined ? this.message : `AADSTS${String(this.aadsts)}: ${this.message}`;
  }
}

/** The body of an OAuth error response, as Entra sends it. */
export interface OAuthErrorBody {
  error: OAuthErrorCode;
  error_description: string;
  error_codes?: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
}

/**
 * Renders any thrown value as an Entra-shaped error. Anything that is not an {@link OAuthError} becomes a
 * generic 500 `server_error`, so internals never leak to callers.
 */
export function serializeOAuthError(
  err: unknown,
  context: { now: number; correlationId?: string | undefined; traceId?: string | undefined },
): { status: number; headers: Readonly<Record<string, string>>; body: OAuthErrorBody } {
  const known = err instanceof OAuthError ? err : OAuthErrors.internal(err);
  const traceId = context.traceId ?? randomUUID();
  const correlationId = context.correlationId ?? randomUUID();
  const timestamp = new Date(context.now)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  const body: OAuthErrorBody = {
    error: known.error,
    error_description: `${known.description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    ...(known.aadsts === undefined ? {} : { error_codes: [known.aadsts] }),
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
  };
  return { status: known.status, headers: known.headers, body };
}

/**
 * The failures every OAuth-shaped server shares, whatever its routes: the request as fastify refused it,
 * and the generic 500. Route-specific failures live in the server's own catalog (e.g. the token
 * service's `TokenErrors`).
 */
export const OAuthErrors = {
  /** Anything unexpected: no internals reach the caller. */
  internal: (cause?: unknown) =>
    new OAuthError(500, 'server_error', 'An unexpected error occurred. Retry the request.', cause === undefined ? { aadsts: 90033 } : { aadsts: 90033, cause }),
  bodyTooLarge: (limit: number) =>
    new OAuthError(413, 'invalid_request', `The request body is larger than the ${String(limit)}-byte limit.`, { aadsts: 900561 }),
  unsupportedMediaType: () => new OAuthError(400, 'invalid_request', `The request body must be sent as application/x-www-form-urlencoded.`, { aadsts: 900561 }),
} as const;

/**
 * Maps anything thrown while serving a request to the OAuth error the caller sees: OAuth errors pass,
 * fastify's own request errors (see {@link requestFailureOf}) become `invalid_request`, anything else is a
 * 500 `server_error`.
 */
export function toOAuthError(err: unknown, options: { bodyLimit: number }): OAuthError {
  if (err instanceof OAuthError) return err;
  switch (requestFailureOf(err)?.kind) {
    case 'bodyTooLarge':
      return OAuthErrors.bodyTooLarge(options.bodyLimit);
    case 'unsupportedMediaType':
    case 'invalidContentLength':
    case 'emptyJsonBody':
    case 'invalidJsonBody':
      return OAuthErrors.unsupportedMediaType();
    default:
      return OAuthErrors.internal(err);
  }
}

/** The caller's `client-request-id` when it is a GUID (MSAL sends one): Entra echoes it as the correlation id. */
export function correlationIdOf(request: FastifyRequest): string | undefined {
  const header = request.headers['client-request-id'];
  return typeof header === 'string' && /^[0-9a-f-]{36}$/i.test(header) ? header : undefined;
}

export interface OAuthErrorHandlerOptions extends ErrorHandlerOptions<OAuthError> {
  clock: Clock;
  /** Headers every error response carries (e.g. `cache-control: no-store` on token endpoints). */
  headers?: Readonly<Record<string, string>>;
}

/**
 * The fastify error handler of an OAuth-shaped server (token, discovery, managed-identity endpoints):
 * `app.setErrorHandler(oauthErrorHandler({ clock, bodyLimit, logMessage }))`. Every failure is rendered
 * by {@link serializeOAuthError}, with the request id as trace id.
 */
export function oauthErrorHandler(options: OAuthErrorHandlerOptions): (err: unknown, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply> {
  return async (err, request, reply) => {
    const error = toOAuthError(err, { bodyLimit: bodyLimitOf(request, options) });
    logServerFailure(request, error.status, err, options);
    const { status, headers, body } = serializeOAuthError(error, { now: options.clock.now(), correlationId: correlationIdOf(request), traceId: request.id });
    if (options.onError !== undefined) await options.onError(request, error);
    return reply
      .code(status)
      .headers({ ...options.headers, ...headers })
      .send(body);
  };
}
