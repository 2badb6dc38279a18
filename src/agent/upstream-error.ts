/**
 * The failures of the agent's calls to the authority, by what the agent does about them (see upstream.ts).
 * Its own module so that the authority pool (authority-pool.ts) and the client (upstream.ts) both use it.
 */
export type UpstreamFailureKind = 'unavailable' | 'host-not-recognised' | 'identity-not-found' | 'invalid-resource' | 'refused' | 'federation-refused';

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly kind: UpstreamFailureKind;
  /** HTTP status the authority answered, when it answered. */
  readonly status: number | undefined;
  /** For `federation-refused`: the upstream's OAuth `error` and `error_description` (never the assertion). */
  readonly oauthError: string | undefined;
  readonly description: string | undefined;
  constructor(kind: UpstreamFailureKind, message: string, options: { status?: number; cause?: unknown; oauthError?: string; description?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.status = options.status;
    this.oauthError = options.oauthError;
    this.description = options.description;
  }
}
