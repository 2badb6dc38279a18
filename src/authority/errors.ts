import { OAuthError, OAuthErrors } from '../shared/oauth-error.js';

/**
 * The authority's error catalog (token and discovery endpoints): one factory per failure, each with its
 * Entra AADSTS code, so every caller-visible failure is greppable here and documented in docs/errors.md.
 * The failures every OAuth server shares (fastify's own, the generic 500) are {@link OAuthErrors}.
 */
export const TokenErrors = {
  missingParameter: (name: string) =>
    new OAuthError(400, 'invalid_request', `The request body must contain the following parameter: '${name}'.`, { aadsts: 900144 }),
  duplicateParameter: (name: string) =>
    new OAuthError(400, 'invalid_request', `The request contains the parameter '${name}' more than once.`, { aadsts: 90015 }),
  malformedBody: (reason: string) => new OAuthError(400, 'invalid_request', `The request body is not valid: ${reason}.`, { aadsts: 900561 }),
  bodyTooLarge: OAuthErrors.bodyTooLarge,
  unsupportedMediaType: OAuthErrors.unsupportedMediaType,
  tenantNotFound: (tenant: string) =>
    new OAuthError(
      400,
      'invalid_request',
      `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
      { aadsts: 90002 },
    ),
  tenantRequired: (tenant: string) =>
    new OAuthError(400, 'invalid_request', `The '${tenant}' endpoint cannot be used for this grant; name a specific tenant.`, { aadsts: 90014 }),
  unsupportedGrantType: (grantType: string) =>
    new OAuthError(400, 'unsupported_grant_type', `The app requested an unsupported grant type '${grantType}'.`, { aadsts: 70003 }),
  applicationNotFound: (clientId: string, tenant: string) =>
    new OAuthError(
      400,
      'unauthorized_client',
      `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`,
      { aadsts: 700016 },
    ),
  credentialRequired: () =>
    new OAuthError(401, 'invalid_client', `The request body must contain the following parameter: 'client_assertion' or 'client_secret'.`, { aadsts: 7000218 }),
  /** RFC 6749 §2.3.1: "The client MUST NOT use more than one authentication method in each request." */
  conflictingCredentials: (methods: readonly string[]) =>
    new OAuthError(
      400,
      'invalid_request',
      `The request uses more than one client authentication method (${methods.join(', ')}); use exactly one of an Authorization: Basic header, 'client_secret' and 'client_assertion'.`,
      { aadsts: 7000216 },
    ),
  invalidSecret: (clientId: string) =>
    new OAuthError(
      401,
      'invalid_client',
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
      { aadsts: 7000215 },
    ),
  secretExpired: (clientId: string) =>
    new OAuthError(401, 'invalid_client', `The provided client secret keys for app '${clientId}' are expired.`, { aadsts: 7000222 }),
  /**
   * Too many failed client authentications for this client or from this address. Entra's code for a lockout
   * after repeated wrong credentials is AADSTS50053 (IdsLocked,
   * https://learn.microsoft.com/entra/identity-platform/reference-error-codes); it throttles
   * `client_credentials` with 429 and `Retry-After`
   * (https://learn.microsoft.com/entra/msal/dotnet/advanced/client-and-server-throttling), which the Azure
   * SDKs and MSAL honour.
   */
  throttled: (retryAfterSeconds: number) =>
    new OAuthError(
      429,
      'invalid_client',
      `The client is locked: it tried to authenticate too many times with a wrong credential. Try again in ${String(retryAfterSeconds)} seconds.`,
      { aadsts: 50053, headers: { 'retry-after': String(retryAfterSeconds) } },
    ),
  invalidAssertionType: () =>
    new OAuthError(400, 'invalid_request', `client_assertion_type must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.`, { aadsts: 50027 }),
  malformedAssertion: (reason: string) => new OAuthError(400, 'invalid_request', `JWT token is invalid or is malformed: ${reason}.`, { aadsts: 50027 }),
  unsupportedAssertionAlg: (alg: string, allowed: readonly string[]) =>
    new OAuthError(
      401,
      'invalid_client',
      `'${alg}' is not a supported client assertion signature algorithm; use ${allowed.slice(0, -1).join(', ')}${allowed.length > 1 ? ' or ' : ''}${allowed.at(-1) ?? ''}.`,
      { aadsts: 5002738 },
    ),
  assertionKeyNotRegistered: () =>
    new OAuthError(401, 'invalid_client', `The certificate with identifier used to sign the client assertion is not registered on application.`, {
      aadsts: 700027,
    }),
  assertionSignatureInvalid: (reason: string) =>
    new OAuthError(401, 'invalid_client', `Client assertion contains an invalid signature. [Reason - ${reason}]`, { aadsts: 700027 }),
  assertionClientMismatch: () =>
    new OAuthError(401, 'invalid_client', `Client assertion application identifier doesn't match 'client_id' parameter.`, { aadsts: 700021 }),
  assertionAudienceInvalid: () =>
    new OAuthError(401, 'invalid_client', `The audience claim of the client assertion does not match this token endpoint.`, { aadsts: 50013 }),
  assertionExpired: () => new OAuthError(401, 'invalid_client', `Client assertion is not within its valid time range.`, { aadsts: 700024 }),
  assertionReplayed: () =>
    new OAuthError(401, 'invalid_client', `The client assertion has already been used; every assertion needs a new 'jti'.`, { aadsts: 700229 }),
  // Workload identity federation: an external token as the client assertion (Entra's codes and wording).
  federatedEntraIssuer: () => new OAuthError(401, 'invalid_client', `AAD-issued tokens may not be used for federated identity flows.`, { aadsts: 700222 }),
  federatedIssuerNotMatched: (issuer: string) =>
    new OAuthError(
      401,
      'invalid_client',
      `No matching federated identity record found for presented assertion issuer '${issuer.slice(0, 600)}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
      { aadsts: 700211 },
    ),
  federatedIssuerUnavailable: () => new OAuthError(400, 'invalid_request', `Request to External OIDC endpoint failed.`, { aadsts: 50166 }),
  federatedKeyNotFound: (kid: string, issuer: string) =>
    new OAuthError(
      401,
      'invalid_client',
      `The certificate with identifier '${kid.slice(0, 256)}' used to sign the federated credential could not be found in the metadata of identity provider '${issuer.slice(0, 600)}'.`,
      { aadsts: 7000272 },
    ),
  federatedSignatureInvalid: (reason: string) =>
    new OAuthError(401, 'invalid_client', `Client assertion failed signature validation. [Reason - ${reason}]`, { aadsts: 700027 }),
  federatedLifetime: (iat: number, exp: number) =>
    new OAuthError(
      400,
      'invalid_request',
      `External OIDC Provider token must have a lifetime of less than or equal to 1.01:00:00 and a valid 'iat' claim. Token issued at ${String(iat)}, expires at ${String(exp)}.`,
      { aadsts: 70023 },
    ),
  federatedAudienceNotMatched: (audiences: readonly string[]) =>
    new OAuthError(
      401,
      'invalid_client',
      `No matching federated identity record found for presented assertion audience '${audiences.join(', ').slice(0, 600)}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
      { aadsts: 700212 },
    ),
  federatedSubjectNotMatched: (subject: string) =>
    new OAuthError(
      401,
      'invalid_client',
      `No matching federated identity record found for presented assertion subject '${subject.slice(0, 600)}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. Please note that matching is done using a case-sensitive comparison. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
      { aadsts: 700213 },
    ),
  federatedSubjectCaseMismatch: (subject: string) =>
    new OAuthError(
      401,
      'invalid_client',
      `No matching federated identity record found for presented assertion subject '${subject.slice(0, 600)}'. The subject matches with case-insensitive comparison, but not with case-sensitive comparison. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
      { aadsts: 7002138 },
    ),
  invalidScope: (scope: string) =>
    new OAuthError(
      400,
      'invalid_scope',
      `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      { aadsts: 1002012 },
    ),
  invalidResource: (resource: string) =>
    new OAuthError(
      400,
      'invalid_resource',
      `The resource principal named ${resource} was not found in the tenant. A resource is an absolute https:// or api:// URI, or an application id.`,
      { aadsts: 500011 },
    ),
  identityNotFound: () => new OAuthError(400, 'invalid_request', 'Identity not found', { aadsts: 700241 }),
  hostNotRecognised: () =>
    new OAuthError(401, 'invalid_client', `The host credential is unknown, revoked or expired, or its host no longer exists.`, { aadsts: 700027 }),
  // Users (resource-owner password and refresh-token grants): Entra's codes and wording
  // (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
  /** Wrong password, and (so that names cannot be probed) also an unknown user. */
  invalidUserCredentials: () => new OAuthError(400, 'invalid_grant', 'Error validating credentials due to invalid username or password.', { aadsts: 50126 }),
  /** Too many wrong passwords for this user from this source: locked for the rest of the window. */
  userLocked: (retryAfterSeconds: number) =>
    new OAuthError(
      400,
      'invalid_grant',
      `The account is locked, you've tried to sign in too many times with an incorrect user ID or password. Try again in ${String(retryAfterSeconds)} seconds.`,
      {
        aadsts: 50053,
        headers: { 'retry-after': String(retryAfterSeconds) },
      },
    ),
  userDisabled: () => new OAuthError(400, 'invalid_grant', 'The user account is disabled.', { aadsts: 50057 }),
  passwordExpired: () =>
    new OAuthError(400, 'invalid_grant', 'The password is expired. The user must change the password (it was set with forceChangePasswordNextSignIn).', {
      aadsts: 50055,
    }),
  /** The grant is for public clients (no secret): a confidential or unknown client id. */
  notPublicClient: (clientId: string) =>
    new OAuthError(
      400,
      'unauthorized_client',
      `The client '${clientId.slice(0, 64)}' is not a public client of this authority; the password and refresh-token grants are for public clients (the Azure CLI's and Azure PowerShell's).`,
      { aadsts: 700016 },
    ),
  invalidRefreshToken: () =>
    new OAuthError(400, 'invalid_grant', "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid.", { aadsts: 9002313 }),
  refreshTokenRevoked: () =>
    new OAuthError(
      400,
      'invalid_grant',
      'The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password, signed out, or the token was used twice.',
      { aadsts: 50173 },
    ),
  refreshTokenExpired: () => new OAuthError(400, 'invalid_grant', 'The refresh token has expired due to inactivity.', { aadsts: 700082 }),
  refreshTokenOtherClient: () => new OAuthError(400, 'invalid_grant', 'The refresh token was issued to a different client or tenant.', { aadsts: 700003 }),
  invalidUserScope: (scope: string) =>
    new OAuthError(400, 'invalid_scope', `The provided value for the input parameter 'scope' is not valid. The scope ${scope} does not name one resource.`, {
      aadsts: 70011,
    }),
  unknownAuthorizationEndpoint: () => new OAuthError(400, 'invalid_request', `The authorization_endpoint is not one this authority serves.`, { aadsts: 50049 }),
} as const;
