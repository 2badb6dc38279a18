export { createRbacGuard, type RbacGuard, type RbacGuardOptions, type RbacGuardResult, type RbacRequirement } from './guard.js';
export { RbacGuardError, authorizationFailedMessage, type ArmErrorBody, type RbacGuardErrorCode } from './errors.js';
export { rbacFastifyHook, rbacNodeHttp, rbacResultOf, type RbacNodeHandler } from './middleware.js';
export {
  clientSecretToken,
  createRemoteRbacSource,
  RemoteRbacSourceError,
  type ClientSecretTokenOptions,
  type RemoteRbacSource,
  type RemoteRbacSourceOptions,
} from './remote-source.js';
