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
  if (err instanceof ApiError) {
    return { status: err.status, headers: err.headers, body: { error: { code: err.code, message: err.message } } };
  }
  return {
    status: 500,
    headers: {},
    body: { error: { code: 'InternalServerError', message: 'The server encountered an internal error. Retry the request.' } },
  };
}
