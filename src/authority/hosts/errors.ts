/**
 * The host API's errors: the API family (`{ error: { code, message } }`) with the contract's codes
 * (`HostApiErrorCode` in src/shared/host-protocol.ts). The directory's {@link HostError}s get their status
 * here; a body fastify could not read (not JSON, too large, wrong content type) is `400 InvalidRequest`,
 * as the contract names every malformed body.
 */
import { HostError } from '../../directory/hosts.js';
import { ApiError } from '../../shared/api-error.js';
import type { HostApiErrorCode } from '../../shared/host-protocol.js';
import { requestFailureOf } from '../../shared/request-failure.js';

const STATUS: Readonly<Record<HostApiErrorCode, number>> = {
  JoinTokenInvalid: 401,
  JoinTokenUsed: 401,
  JoinTokenExpired: 401,
  TooManyRequests: 429,
  HostNotRecognised: 401,
  InvalidRequest: 400,
  IdentityNotFound: 404,
  NotFederated: 409,
};

/** A 401 names the scheme the host API takes. */
const CHALLENGE = { 'www-authenticate': 'Bearer error="invalid_token"' };

function fromHostError(err: HostError): ApiError {
  const status = STATUS[err.code];
  const headers = err.code === 'HostNotRecognised' ? CHALLENGE : {};
  return new ApiError(status, err.code, err.message, { headers, cause: err });
}

export const HostApiErrors = {
  tooManyRequests: (retryAfterSeconds: number) =>
    new ApiError(429, 'TooManyRequests', `Too many failed enrolment attempts from this address; retry after ${String(retryAfterSeconds)} seconds.`, {
      headers: { 'retry-after': String(retryAfterSeconds) },
    }),
} as const;

/** What the contract calls a body of the wrong shape, for each way fastify can refuse one. */
const REQUEST_FAILURE_MESSAGES = {
  bodyTooLarge: 'the body is larger than this endpoint accepts',
  unsupportedMediaType: 'the body must be JSON (Content-Type: application/json)',
  emptyJsonBody: 'the JSON body is empty',
  invalidJsonBody: 'the body is not valid JSON',
  invalidContentLength: 'the body length does not match the Content-Length header',
} as const;

/** The `translate` of the host API's error handler: host errors and unreadable bodies; undefined for the rest. */
export function translateHostFailure(err: unknown): ApiError | undefined {
  if (err instanceof HostError) return fromHostError(err);
  const failure = requestFailureOf(err);
  if (failure === undefined) return undefined;
  const reason =
    failure.kind === 'validation' ? failure.message : failure.kind === 'clientError' ? 'the request could not be read' : REQUEST_FAILURE_MESSAGES[failure.kind];
  return new ApiError(400, 'InvalidRequest', `The request is invalid: ${reason}.`, { cause: err });
}
