/**
 * The management API's errors, in the ARM/Graph family (`{ error: { code, message } }`): its own catalog
 * ({@link ManagementErrors}) and the one table that gives each directory error its HTTP status
 * ({@link translateDirectoryError}). The failures every such server shares are `ApiErrors`
 * (src/shared/api-error.ts). Codes and messages follow ARM and Microsoft Graph; docs/errors.md lists them.
 */
import { DirectoryError, type DirectoryErrorCode } from '../directory/errors.js';
import { ApiError } from '../shared/api-error.js';
import { ScopeError } from '../rbac/scopes.js';
import type { TokenVerificationErrorCode } from '../shared/token-verifier.js';

/** The two halves of the management API: ARM-shaped (and `/openmsi/...`) and Graph-shaped (`/v1.0/...`). */
export type ApiFamily = 'arm' | 'graph';

/** Headers of a 401: the Bearer challenge naming where to get a token. */
export type Challenge = Readonly<Record<string, string>>;

/** The HTTP status of each directory error, as ARM and Graph answer it. */
const DIRECTORY_ERROR_STATUS: Readonly<Record<DirectoryErrorCode, number>> = {
  SubscriptionNotFound: 404,
  ReadOnlyDisabledSubscription: 409,
  ResourceGroupNotFound: 404,
  InvalidResourceGroup: 400,
  InvalidResourceGroupLocation: 409,
  ResourceNotFound: 404,
  InvalidResourceName: 400,
  InvalidResourceLocation: 409,
  LocationRequired: 400,
  InvalidLocation: 400,
  InvalidTag: 400,
  InvalidRequestContent: 400,
  NoRegisteredProviderFound: 400,
  ResourceTypeNotFound: 404,
  InvalidIdentity: 400,
  InvalidUserAssignedIdentity: 400,
  Request_ResourceNotFound: 404,
  Request_BadRequest: 400,
  InvalidKeyCredential: 400,
  InvalidScope: 400,
  MissingSubscription: 400,
  InvalidRoleAssignmentId: 400,
  InvalidRoleAssignmentRequest: 400,
  RoleAssignmentExists: 409,
  RoleAssignmentNotFound: 404,
  RoleAssignmentUpdateNotPermitted: 400,
  RoleAssignmentLimitExceeded: 400,
  RoleDefinitionDoesNotExist: 400,
  RoleDefinitionNotFound: 404,
  RoleDefinitionNotAssignableAtScope: 400,
  PrincipalNotFound: 400,
  UnmatchedPrincipalType: 400,
  InvalidRoleDefinitionId: 400,
  InvalidRoleDefinition: 400,
  RoleDefinitionWithSameNameExists: 409,
  RoleDefinitionHasAssignments: 409,
  RoleDefinitionLimitExceeded: 400,
  CannotModifyBuiltInRole: 400,
  InvalidDenyAssignment: 400,
  DenyAssignmentExists: 409,
  DenyAssignmentNotFound: 404,
  VaultNameNotValid: 400,
  VaultAlreadyExists: 409,
  ConflictError: 409,
  BadRequest: 400,
  InvalidOperation: 400,
};

/** Directory codes ARM spells differently on the wire (the same code, another status). */
const WIRE_CODE: Readonly<Partial<Record<DirectoryErrorCode, string>>> = {
  ResourceTypeNotFound: 'NoRegisteredProviderFound',
  // A GET of a missing role definition is ARM's 404 RoleDefinitionDoesNotExist; naming one in an assignment is its 400.
  RoleDefinitionNotFound: 'RoleDefinitionDoesNotExist',
};

/**
 * The API error of a directory error, or of a scope the one resource-id parser refused (ARM's 400
 * `InvalidScope`, wherever it surfaces: never a 500); undefined for anything else (the `translate` of the error
 * handler).
 */
export function translateDirectoryError(err: unknown): ApiError | undefined {
  if (err instanceof ScopeError) return new ApiError(400, 'InvalidScope', err.message, { cause: err });
  if (!(err instanceof DirectoryError)) return undefined;
  return new ApiError(DIRECTORY_ERROR_STATUS[err.code], WIRE_CODE[err.code] ?? err.code, err.message, { cause: err });
}

/** The code a failure is audited with: what the caller is told, or `InternalServerError`. */
export function errorCodeOf(err: unknown): string {
  if (err instanceof ApiError) return err.code;
  return translateDirectoryError(err)?.code ?? 'InternalServerError';
}

const graphBadRequest = (message: string) => new ApiError(400, 'Request_BadRequest', message);
const graphUnauthenticated = (message: string, challenge: Challenge) => new ApiError(401, 'InvalidAuthenticationToken', message, { headers: challenge });
const armUnauthenticated = (code: string, message: string, challenge: Challenge) => new ApiError(401, code, message, { headers: challenge });

/** Graph's messages for the token failures it words specially; the others share one message. */
const GRAPH_TOKEN_MESSAGES: Partial<Record<TokenVerificationErrorCode, (audiences: readonly string[]) => string>> = {
  expired: () => 'Lifetime validation failed, the token is expired.',
  bad_audience: (audiences) => `Invalid audience. The token must be issued for ${audiences.join(' or ')}.`,
};

/** The management API's error catalog: one factory per failure. */
export const ManagementErrors = {
  // api-version (ARM)
  missingApiVersion: () => new ApiError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.'),
  repeatedApiVersion: () => new ApiError(400, 'InvalidApiVersionParameter', 'The api-version query parameter may be given only once.'),
  invalidApiVersion: (value: string) =>
    new ApiError(
      400,
      'InvalidApiVersionParameter',
      `The api-version '${value.slice(0, 64)}' is invalid. The supported versions have the form 'yyyy-mm-dd' or 'yyyy-mm-dd-preview'.`,
    ),

  // query parameters
  repeatedQueryParameter: (name: string, family: ApiFamily) =>
    new ApiError(400, family === 'graph' ? 'BadRequest' : 'InvalidQueryParameter', `The query parameter '${name}' may be given only once.`),
  invalidAuditSince: () =>
    new ApiError(
      400,
      'InvalidQueryParameter',
      "'since' must be an ISO-8601 date and time, epoch milliseconds, or a duration back from now such as 90s, 15m, 1h or 2d.",
    ),
  invalidAuditLimit: (max: number) => new ApiError(400, 'InvalidQueryParameter', `'limit' must be a whole number from 1 to ${String(max)}.`),
  invalidAuditAction: () => new ApiError(400, 'InvalidQueryParameter', "'action' must be a dotted action name such as 'identity.created'."),
  invalidAuditFilter: (name: string) => new ApiError(400, 'InvalidQueryParameter', `'${name}' must be 1 to 512 characters.`),

  // hosts
  hostCredentialNotFound: (keyId: string) =>
    new ApiError(404, 'HostCredentialNotFound', `No host credential with key id '${keyId.slice(0, 128)}' exists in this tenant.`),

  // Graph request bodies (`Request_BadRequest`, as Graph answers them)
  /** `name` is not what the property takes; `expected` completes "'name' must be ...". */
  invalidGraphProperty: (name: string, expected: string) => graphBadRequest(`'${name}' must be ${expected}.`),
  missingGraphProperty: (name: string) => graphBadRequest(`'${name}' is required.`),
  appIdNotAccepted: () => graphBadRequest("openmsi creates the application together with its service principal: send 'displayName' only, not 'appId'."),
  selfDeletion: () => graphBadRequest('A caller cannot delete its own service principal.'),
  unsupportedKeyCredentialType: () => graphBadRequest("Only 'AsymmetricX509Cert' key credentials are supported."),
  unsupportedKeyCredentialUsage: () => graphBadRequest("Only key credentials with usage 'Verify' are supported."),
  credentialNotFound: (kind: 'password' | 'key', keyId: string) => graphBadRequest(`No ${kind} credential with keyId '${keyId}' exists on this application.`),
  invalidPageSize: (top: string) => new ApiError(400, 'BadRequest', `Invalid page size specified: '${top}'. Must be between 1 and 999 inclusive.`),
  /** `GET /v1.0/me` with an app-only token (every token here: there are no users yet), worded as Graph words it. */
  meNeedsDelegatedFlow: () => new ApiError(400, 'BadRequest', '/me request is only valid with delegated authentication flow.'),
  unknownSegment: (segment: string) => new ApiError(400, 'BadRequest', `Resource not found for the segment '${segment.slice(0, 100)}'.`),
  invalidResourceListFilter: (filter: string) =>
    new ApiError(
      400,
      'InvalidFilterInQueryString',
      `Invalid $filter '${filter.slice(0, 200)}' specified in the query string. Supported: resourceType eq '{type}', name eq '{name}', resourceGroup eq '{group}', joined with 'and'.`,
    ),
  invalidResourceListTop: (top: string) =>
    new ApiError(400, 'InvalidTopInQueryString', `Invalid $top '${top.slice(0, 20)}' specified in the query string: a whole number from 1.`),
  unsupportedFilter: (detail: string) =>
    new ApiError(
      400,
      'Request_UnsupportedQuery',
      `Unsupported or invalid query filter clause specified: ${detail}. Supported: displayName, appId, id and servicePrincipalType with 'eq', startswith(displayName,'...'), alternativeNames/any(x:x eq '...'), servicePrincipalNames/any(x:x eq '...'), joined with 'and'.`,
    ),

  // authentication (401, with the Bearer challenge); authorisation (403) is RBAC's, in authorize.ts
  authorizationMissing: (family: ApiFamily, challenge: Challenge) =>
    family === 'graph'
      ? graphUnauthenticated('Access token is empty.', challenge)
      : armUnauthenticated('AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.", challenge),
  authorizationNotBearer: (family: ApiFamily, challenge: Challenge) =>
    family === 'graph'
      ? graphUnauthenticated('CompactToken parsing failed: the Authorization header is not a Bearer token.', challenge)
      : armUnauthenticated('AuthenticationFailed', "Authentication failed. The 'Authorization' header is not in the 'Bearer <token>' format.", challenge),
  tokenRejected: (family: ApiFamily, reason: TokenVerificationErrorCode, audiences: readonly string[], challenge: Challenge) => {
    if (family === 'graph') {
      return graphUnauthenticated(GRAPH_TOKEN_MESSAGES[reason]?.(audiences) ?? 'Access token validation failure. Invalid audience or signature.', challenge);
    }
    switch (reason) {
      case 'expired':
        return armUnauthenticated('ExpiredAuthenticationToken', 'The access token has expired. Get a new token and retry.', challenge);
      case 'bad_audience':
        return armUnauthenticated(
          'InvalidAuthenticationTokenAudience',
          `The access token has been obtained for the wrong audience or resource. It should exactly match one of the allowed audiences: ${audiences.join(', ')}.`,
          challenge,
        );
      default:
        return armUnauthenticated('InvalidAuthenticationToken', `The access token is invalid (${reason.replace(/_/g, ' ')}).`, challenge);
    }
  },
  principalUnknown: (objectId: unknown, tenantId: unknown, challenge: Challenge) =>
    armUnauthenticated(
      'InvalidAuthenticationToken',
      `The principal '${String(objectId)}' named by the access token does not exist in tenant '${String(tenantId)}'.`,
      challenge,
    ),
  wrongTenant: (tokenIssuer: string, subscriptionIssuer: string, authorityUrl: string, challenge: Challenge) =>
    armUnauthenticated(
      'InvalidAuthenticationTokenTenant',
      `The access token is from the wrong issuer '${tokenIssuer}'. It must match the tenant '${subscriptionIssuer}' associated with this subscription. Please use the authority (URL) '${authorityUrl}' to get the token.`,
      challenge,
    ),
} as const;
