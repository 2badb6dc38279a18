/**
 * The data plane's errors, in Key Vault's shape: `{error: {code, message, innererror?: {code}}}` (spec §1.9).
 * {@link VaultError} is an {@link ApiError} with Key Vault's inner code; {@link vaultErrorHandler} renders it.
 * Messages are Key Vault's verbatim where the spec quotes them; the others are marked "(ours)".
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, serializeApiError, toApiError } from '../shared/api-error.js';
import { logServerFailure, requestFailureOf } from '../shared/request-failure.js';
import type { TokenVerificationErrorCode } from '../shared/token-verifier.js';

/** An ApiError with Key Vault's `innererror.code` (e.g. `ForbiddenByRbac`, `SecretDisabled`). */
export class VaultError extends ApiError {
  readonly innerCode: string | undefined;

  constructor(status: number, code: string, message: string, options?: { innerCode?: string; headers?: Record<string, string> }) {
    super(status, code, message, options?.headers === undefined ? undefined : { headers: options.headers });
    this.innerCode = options?.innerCode;
  }
}

/** Body of every data-plane error. */
export interface VaultErrorBody {
  error: { code: string; message: string; innererror?: { code: string } };
}

const recoverHint = (noun: 'secret' | 'key'): string =>
  `If you recently deleted this ${noun} you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`;

/** `{vault};location={region}`, as Key Vault names a vault in its messages. */
export const vaultLabel = (vault: { name: string; location: string }): string => `${vault.name};location=${vault.location}`;

const TOKEN_MESSAGES: Record<TokenVerificationErrorCode, string> = {
  // Verbatim prefixes for audience, issuer and key (spec §1.9); the others are ours, in the same family.
  bad_audience: 'AKV10022: Invalid audience.',
  bad_issuer: 'AKV10032: Invalid issuer.',
  unknown_key: 'AKV10046: Unable to resolve the key used for signature validation.',
  bad_signature: 'AKV10046: Unable to validate the token signature.',
  expired: 'AKV10020: Invalid token. The token has expired.',
  not_yet_valid: 'AKV10021: Invalid token. The token is not yet valid.',
  malformed: 'AKV10001: Invalid token. The token is malformed.',
  unsupported_alg: 'AKV10001: Invalid token. The token algorithm is not supported.',
  missing_claim: 'AKV10001: Invalid token. A required claim is missing.',
};

/** The data plane's error catalog. */
export const VaultErrors = {
  vaultNotFound: (host: string) =>
    // Key Vault has no HTTP answer for an unknown vault (DNS fails first); the code follows ARM's vault 404.
    new VaultError(404, 'VaultNotFound', `No vault is served at '${host}'.`),
  missingToken: (challenge: Record<string, string>) =>
    new VaultError(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.', { headers: challenge }),
  tokenRejected: (reason: TokenVerificationErrorCode, challenge: Record<string, string>, detail = '') =>
    new VaultError(401, 'Unauthorized', `${TOKEN_MESSAGES[reason]}${detail}`, { headers: challenge }),
  /** (ours) A valid token of a principal that was deleted since it was issued: refused as the management API refuses it. */
  principalUnknown: (objectId: string, challenge: Record<string, string>) =>
    new VaultError(401, 'Unauthorized', `AKV10001: Invalid token. The principal '${objectId}' named by the token no longer exists.`, { headers: challenge }),
  wrongTenant: (expectedIssuer: string, found: string, challenge: Record<string, string>) =>
    new VaultError(401, 'Unauthorized', `AKV10032: Invalid issuer. Expected one of ${expectedIssuer}, found ${found}.`, { headers: challenge }),
  apiVersionMissing: () => new VaultError(400, 'BadParameter', 'The api-version query parameter is missing.'),
  apiVersionUnknown: (version: string, latest: string) =>
    new VaultError(400, 'BadParameter', `The specified version (${version}) is not recognized. Consider using the latest supported version (${latest}).`),
  invalidName: (name: string) => new VaultError(400, 'BadParameter', `The request URI contains an invalid name: ${name}`),
  badParameter: (message: string) => new VaultError(400, 'BadParameter', message),
  secretNotFound: (nameOrId: string) =>
    new VaultError(404, 'SecretNotFound', `A secret with (name/id) ${nameOrId} was not found in this key vault. ${recoverHint('secret')}`),
  deletedSecretNotFound: (name: string) => new VaultError(404, 'SecretNotFound', `Deleted Secret not found: ${name}`),
  secretDisabled: () => new VaultError(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', { innerCode: 'SecretDisabled' }),
  deletedButRecoverable: (name: string) =>
    new VaultError(
      409,
      'Conflict',
      `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
      { innerCode: 'ObjectIsDeletedButRecoverable' },
    ),
  restoreConflict: (name: string) =>
    new VaultError(409, 'Conflict', `Secret ${name} already exists in this vault (active or deleted); it cannot be restored over.`),
  restoreOtherSubscription: () =>
    // (ours) Key Vault restores only within the subscription the backup was taken in.
    new VaultError(
      400,
      'BadParameter',
      'Backup blob cannot be restored into this vault: a backup can only be restored into a key vault of the subscription it was taken from.',
    ),
  keyNotFound: (nameOrId: string) =>
    new VaultError(404, 'KeyNotFound', `A key with (name/id) ${nameOrId} was not found in this key vault. ${recoverHint('key')}`),
  deletedKeyNotFound: (name: string) => new VaultError(404, 'KeyNotFound', `Deleted Key not found: ${name}`),
  keyDeletedButRecoverable: (name: string) =>
    new VaultError(
      409,
      'Conflict',
      `Key ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.`,
      { innerCode: 'ObjectIsDeletedButRecoverable' },
    ),
  keyRestoreConflict: (name: string) =>
    new VaultError(409, 'Conflict', `Key ${name} already exists in this vault (active or deleted); it cannot be restored over.`),
  /** The operation is not in the key's `key_ops` (keys spec §1.6, [E1]). */
  keyOperationForbidden: (op: string) =>
    new VaultError(403, 'Forbidden', `Operation ${op} is not permitted on this key.`, { innerCode: 'KeyOperationForbidden' }),
  keyDisabled: (op: string) => new VaultError(403, 'Forbidden', `Operation ${op} is not allowed on a disabled key.`, { innerCode: 'KeyDisabled' }),
  /** (ours; Key Vault's inner code for this is not public) outside the key's `nbf`..`exp` window. */
  keyNotValidNow: (op: string, why: 'expired' | 'not yet valid') =>
    new VaultError(403, 'Forbidden', `Operation ${op} is not allowed on a key that is ${why}.`, {
      innerCode: why === 'expired' ? 'KeyExpired' : 'KeyNotYetValid',
    }),
  /** (ours) Secure key release needs an attestation service this installation does not have (keys spec §1.9). */
  releaseNotSupported: () =>
    new VaultError(400, 'BadParameter', 'Key release is not supported by this vault: it needs an attestation service, which openmsi does not provide.'),
  purgeProtected: (vault: { name: string; location: string }) =>
    new VaultError(
      403,
      'Forbidden',
      `Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.\r\nVault: ${vaultLabel(vault)}`,
    ),
  accessDenied: (callerLabel: string, permission: string, objects: 'secrets' | 'keys', vault: { name: string; location: string }) =>
    new VaultError(
      403,
      'Forbidden',
      `The user, group or application '${callerLabel}' does not have ${objects} ${permission} permission on key vault '${vaultLabel(vault)}'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`,
      { innerCode: 'AccessDenied' },
    ),
  forbiddenByRbac: (d: { caller: string; action: string; resource: string; denyAssignmentId: string | undefined; vault: { name: string; location: string } }) =>
    new VaultError(
      403,
      'Forbidden',
      'Caller is not authorized to perform action on resource.\r\n' +
        'If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n' +
        `Caller: ${d.caller}\r\n` +
        `Action: '${d.action}'\r\n` +
        `Resource: '${d.resource.toLowerCase()}'\r\n` +
        'Assignment: (not found)\r\n' +
        `DenyAssignmentId: ${d.denyAssignmentId ?? 'null'}\r\n` +
        `DecisionReason: '${d.denyAssignmentId === undefined ? 'DeniedWithNoValidRBAC' : 'DeniedWithDenyAssignment'}' \r\n` +
        `Vault: ${vaultLabel(d.vault)}\r\n`,
      { innerCode: 'ForbiddenByRbac' },
    ),
} as const;

/** fastify's own request failures as Key Vault answers them: every malformed body is a 400 `BadParameter`. */
function translate(err: unknown): ApiError | undefined {
  const failure = requestFailureOf(err);
  switch (failure?.kind) {
    case 'invalidJsonBody':
    case 'emptyJsonBody':
      return VaultErrors.badParameter('The request body is not valid JSON.');
    case 'unsupportedMediaType':
      return VaultErrors.badParameter('The request content type is not supported; send application/json.');
    default:
      return undefined;
  }
}

/** Renders an error in Key Vault's shape (with `innererror` when it has one). */
export function serializeVaultError(error: ApiError): { status: number; headers: Readonly<Record<string, string>>; body: VaultErrorBody } {
  const { status, headers, body } = serializeApiError(error);
  const out: VaultErrorBody = { error: { ...body.error } };
  if (error instanceof VaultError && error.innerCode !== undefined) out.error.innererror = { code: error.innerCode };
  return { status, headers, body: out };
}

/** The data plane's fastify error handler. */
export function vaultErrorHandler(bodyLimit: number) {
  return async (err: unknown, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const error = toApiError(err, { bodyLimit, translate });
    logServerFailure(request, error.status, err, { logMessage: 'vault request failed' });
    const { status, headers, body } = serializeVaultError(error);
    return reply.code(status).headers(headers).header('x-ms-error-code', body.error.code).send(body);
  };
}
