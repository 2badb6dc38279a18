/**
 * `openmsi/rbac`: Azure RBAC for TypeScript services. Verify the caller's bearer token with the shared
 * verifier (`openmsi/verifier`) and check an action or data action at an ARM scope, in one call
 * ({@link createRbacGuard}); ready middleware for fastify ({@link rbacFastifyHook}) and `node:http`
 * ({@link rbacNodeHttp}). RBAC state comes from the authority over HTTPS ({@link createRemoteRbacSource});
 * openmsi's own services that share the store use `createStoreRbacSource` from `src/store/rbac-state-source.ts`
 * (not exported here, so the library never loads the store). {@link createAuthorizer} caches decisions over
 * either and drops them at every change.
 */
export type {
  AuthorizationDecision,
  AuthorizationRequest,
  Authorizer,
  DenyAssignment,
  GroupMembership,
  Permission,
  PrincipalType,
  RbacState,
  RbacStateSource,
  RoleAssignment,
  RoleDefinition,
} from './contracts.js';
export { createAuthorizer } from './authorizer.js';
export { BUILTIN_ROLES, BUILTIN_ROLE_IDS, builtinRoleById, builtinRoleByName } from './builtin-roles.js';
export * from './library/index.js';
