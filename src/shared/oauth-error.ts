import { randomUUID } from 'node:crypto';

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
  | 'server_error';

export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  /** The OAuth `error` value. */
  readonly error: OAuthErrorCode;
  /** Entra's numeric AADSTS code (e.g. 7000215), rendered as `AADSTS7000215:` in the description. */
  readonly aadsts: number | undefined;
  readonly status: number;

  constructor(status: number, error: OAuthErrorCode, description: string, options?: { aadsts?: number; cause?: unknown }) {
    super(description, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.error = error;
    this.aadsts = options?.aadsts;
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
): { status: number; body: OAuthErrorBody } {
  const known = err instanceof OAuthError ? err : new OAuthError(500, 'server_error', 'An unexpected error occurred. Retry the request.', { aadsts: 90033 });
  const traceId = context.traceId ?? randomUUID();
  const correlationId = context.correlationId ?? randomUUID();
  const timestamp = new Date(context.now).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  const body: OAuthErrorBody = {
    error: known.error,
    error_description: `${known.description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    ...(known.aadsts === undefined ? {} : { error_codes: [known.aadsts] }),
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
  };
  return { status: known.status, body };
}
