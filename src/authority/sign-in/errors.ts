import { OAuthError } from '../../shared/oauth-error.js';

/**
 * The interactive sign-in flows' errors (authorize, the sign-in page, device code and their grants), each
 * with Entra's AADSTS code (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
 */
export const SignInErrors = {
  /** A redirect URI the client did not register: shown on the page, never redirected to. */
  redirectUriMismatch: (redirectUri: string, clientId: string) =>
    new OAuthError(
      400,
      'invalid_request',
      `The redirect URI '${redirectUri.slice(0, 512)}' specified in the request does not match the redirect URIs configured for the application '${clientId.slice(0, 64)}'.`,
      { aadsts: 50011 },
    ),
  unknownClient: (clientId: string) =>
    new OAuthError(
      400,
      'unauthorized_client',
      `Application with identifier '${clientId.slice(0, 64)}' was not found in the directory, or is not a public client of this authority.`,
      { aadsts: 700016 },
    ),
  unsupportedResponseType: (responseType: string) =>
    new OAuthError(400, 'unsupported_response_type', `The response type '${responseType.slice(0, 64)}' is not supported; use 'code'.`, { aadsts: 900144 }),
  unsupportedResponseMode: (mode: string) =>
    new OAuthError(400, 'invalid_request', `The response mode '${mode.slice(0, 64)}' is not supported; use 'query'.`, { aadsts: 900144 }),
  /** openmsi requires PKCE of every public client (Entra requires it of SPAs and recommends it for all). */
  pkceRequired: () => new OAuthError(400, 'invalid_request', 'Proof Key for Code Exchange is required: send code_challenge.', { aadsts: 9002325 }),
  badChallengeMethod: (method: string) =>
    new OAuthError(400, 'invalid_request', `The code_challenge_method '${method.slice(0, 32)}' is not supported; use 'S256' or 'plain'.`, { aadsts: 501491 }),
  badChallenge: () => new OAuthError(400, 'invalid_request', 'The code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~].', { aadsts: 501491 }),
  /** The sign-in page's form came without its pending authorization, or it expired. */
  signInExpired: () =>
    new OAuthError(400, 'invalid_request', 'The sign-in request expired or is not valid. Start the sign-in again from your application.', { aadsts: 50058 }),
  /** The form post failed the CSRF check (no cookie, wrong token, or another origin). */
  csrf: () =>
    new OAuthError(403, 'invalid_request', 'The sign-in form was not posted from this sign-in page. Start the sign-in again from your application.', {
      aadsts: 90023,
    }),
  invalidCode: () => new OAuthError(400, 'invalid_grant', "The provided value for the input parameter 'code' is not valid.", { aadsts: 9002313 }),
  codeExpired: () =>
    new OAuthError(
      400,
      'invalid_grant',
      'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
      {
        aadsts: 70008,
      },
    ),
  codeRedeemed: () =>
    new OAuthError(400, 'invalid_grant', 'The provided authorization code was already redeemed. Please retry with a new valid code.', { aadsts: 54005 }),
  codeOtherClient: () =>
    new OAuthError(400, 'invalid_grant', 'The authorization code was issued to another client, tenant or redirect URI.', { aadsts: 70000 }),
  badVerifier: () =>
    new OAuthError(400, 'invalid_grant', 'The code_verifier does not match the code_challenge supplied in the authorization request.', { aadsts: 501481 }),
  authorizationPending: () =>
    new OAuthError(400, 'authorization_pending', 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.', { aadsts: 70016 }),
  slowDown: (intervalSeconds: number) =>
    new OAuthError(400, 'slow_down', `Polling too fast: wait ${String(intervalSeconds)} seconds between requests.`, { aadsts: 70016 }),
  deviceCodeExpired: () => new OAuthError(400, 'expired_token', 'Verification code expired.', { aadsts: 70019 }),
  deviceCodeDeclined: () => new OAuthError(400, 'authorization_declined', 'The user declined the sign-in request.', { aadsts: 70000 }),
  invalidDeviceCode: () => new OAuthError(400, 'invalid_grant', "The provided value for the input parameter 'device_code' is not valid.", { aadsts: 9002313 }),
  /** Too many device codes from one source. */
  deviceCodeRateLimited: (retryAfterSeconds: number) =>
    new OAuthError(429, 'temporarily_unavailable', `Too many device code requests from this address; retry in ${String(retryAfterSeconds)} seconds.`, {
      aadsts: 50196,
      headers: { 'retry-after': String(retryAfterSeconds) },
    }),
  duplicateParameter: (name: string) =>
    new OAuthError(400, 'invalid_request', `The request contains the parameter '${name.slice(0, 64)}' more than once.`, { aadsts: 90015 }),
  parameterTooLong: (name: string) => new OAuthError(400, 'invalid_request', `The parameter '${name.slice(0, 64)}' is too long.`, { aadsts: 900144 }),
  /** A user code typed on the verification page that names no pending sign-in. */
  badUserCode: () => new OAuthError(400, 'invalid_grant', 'Invalid verification code: check the code and try again.', { aadsts: 70018 }),
};
