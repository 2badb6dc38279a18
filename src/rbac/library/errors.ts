/**
 * The typed refusal of the `openmsi/rbac` library: an HTTP status, the headers to send, and ARM's error body.
 * 401 (+ `WWW-Authenticate: Bearer ...`) for a missing, malformed or rejected token; 403 `AuthorizationFailed`
 * (Azure's exact wording) when the verified principal may not perform the action at the scope.
 */
export type RbacGuardErrorCode =
  'AuthenticationFailed' | 'InvalidAuthenticationToken' | 'ExpiredAuthenticationToken' | 'InvalidAuthenticationTokenAudience' | 'AuthorizationFailed';

export interface ArmErrorBody {
  error: { code: string; message: string };
}

export class RbacGuardError extends Error {
  override readonly name = 'RbacGuardError';
  readonly status: 401 | 403;
  readonly code: RbacGuardErrorCode;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: 401 | 403, code: RbacGuardErrorCode, message: string, headers: Readonly<Record<string, string>> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }

  /** ARM's body: `{ error: { code, message } }`. */
  get body(): ArmErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

/** Azure's `AuthorizationFailed` message, word for word. */
export function authorizationFailedMessage(appId: string, objectId: string, action: string, scope: string): string {
  return `The client '${appId}' with object id '${objectId}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`;
}
