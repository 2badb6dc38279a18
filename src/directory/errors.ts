import { CodedError } from '../shared/coded-error.js';

/** The stable codes of {@link DirectoryError}s: what went wrong in the directory, whatever the API. */
export type DirectoryErrorCode =
  | 'SubscriptionNotFound'
  | 'ReadOnlyDisabledSubscription'
  | 'ResourceGroupNotFound'
  | 'InvalidResourceGroup'
  | 'InvalidResourceGroupLocation'
  | 'ResourceNotFound'
  | 'InvalidResourceName'
  | 'InvalidResourceLocation'
  | 'LocationRequired'
  | 'InvalidLocation'
  | 'InvalidTag'
  | 'InvalidRequestContent'
  | 'NoRegisteredProviderFound'
  | 'ResourceTypeNotFound'
  | 'InvalidIdentity'
  | 'InvalidUserAssignedIdentity'
  | 'Request_ResourceNotFound'
  | 'Request_BadRequest'
  | 'InvalidKeyCredential'
  // RBAC (Microsoft.Authorization), in ARM's words
  | 'InvalidScope'
  | 'MissingSubscription'
  | 'InvalidRoleAssignmentId'
  | 'InvalidRoleAssignmentRequest'
  | 'RoleAssignmentExists'
  | 'RoleAssignmentNotFound'
  | 'RoleAssignmentUpdateNotPermitted'
  | 'RoleAssignmentLimitExceeded'
  | 'RoleDefinitionDoesNotExist'
  | 'RoleDefinitionNotFound'
  | 'RoleDefinitionNotAssignableAtScope'
  | 'PrincipalNotFound'
  | 'UnmatchedPrincipalType'
  | 'InvalidRoleDefinitionId'
  | 'InvalidRoleDefinition'
  | 'RoleDefinitionWithSameNameExists'
  | 'RoleDefinitionHasAssignments'
  | 'RoleDefinitionLimitExceeded'
  | 'CannotModifyBuiltInRole'
  | 'InvalidDenyAssignment'
  | 'DenyAssignmentExists'
  | 'DenyAssignmentNotFound'
  // Key Vault (Microsoft.KeyVault/vaults), in its resource provider's words
  | 'VaultNameNotValid'
  | 'VaultAlreadyExists'
  | 'ConflictError'
  | 'BadRequest'
  | 'InvalidOperation';

/**
 * A refusal of the directory (the domain): a stable code and a message for people. It carries no HTTP
 * status; each API maps codes to its statuses (the management API in `src/management/errors.ts`).
 */
export class DirectoryError extends CodedError<DirectoryErrorCode> {
  override readonly name = 'DirectoryError';
}

const fail = (code: DirectoryErrorCode, message: string) => new DirectoryError(code, message);

/**
 * The directory's error catalog. Codes and messages follow Azure Resource Manager (resource groups,
 * resources) and Microsoft Graph (service principals), so users and tools recognise them.
 */
export const DirectoryErrors = {
  subscriptionNotFound: (subscriptionId: string) => fail('SubscriptionNotFound', `The subscription '${subscriptionId}' could not be found.`),
  subscriptionDisabled: (subscriptionId: string) =>
    fail('ReadOnlyDisabledSubscription', `The subscription '${subscriptionId}' is disabled and therefore marked as read only.`),
  resourceGroupNotFound: (name: string) => fail('ResourceGroupNotFound', `Resource group '${name}' could not be found.`),
  invalidResourceGroupName: (name: string, reason: string) => fail('InvalidResourceGroup', `The provided resource group name '${name}' is invalid: ${reason}.`),
  resourceGroupLocationConflict: (name: string, existing: string, requested: string) =>
    fail(
      'InvalidResourceGroupLocation',
      `Invalid resource group location '${requested}'. The Resource group already exists in location '${existing}'. Resource group '${name}' cannot be moved.`,
    ),
  resourceNotFound: (type: string, name: string, resourceGroup: string) =>
    fail('ResourceNotFound', `The Resource '${type}/${name}' under resource group '${resourceGroup}' was not found.`),
  invalidResourceName: (name: string, rule: string) => fail('InvalidResourceName', `The resource name '${name}' is invalid. ${rule}`),
  resourceLocationConflict: (name: string, existing: string, requested: string, resourceGroup: string) =>
    fail(
      'InvalidResourceLocation',
      `The resource '${name}' already exists in location '${existing}' in resource group '${resourceGroup}'. A resource with the same name cannot be created in location '${requested}'. Please select a new resource name.`,
    ),
  invalidLocation: (location: unknown) =>
    location === undefined || location === null || location === ''
      ? fail('LocationRequired', 'The location property is required for this definition.')
      : fail('InvalidLocation', `The location ${describe(location)} is invalid: use a region-style name such as 'westeurope'.`),
  invalidTags: (reason: string) => fail('InvalidTag', `The tags are invalid: ${reason}.`),
  invalidProperties: (reason: string) => fail('InvalidRequestContent', `The request content was invalid: ${reason}.`),
  /** A resource of an unsupported type cannot be created. */
  noRegisteredProvider: (type: string, supported: readonly string[]) => fail('NoRegisteredProviderFound', noProviderMessage(type, supported)),
  /** A resource of an unsupported type cannot exist, so it cannot be addressed. */
  resourceTypeNotFound: (type: string, supported: readonly string[]) => fail('ResourceTypeNotFound', noProviderMessage(type, supported)),
  invalidIdentity: (reason: string) => fail('InvalidIdentity', `The identity property is invalid: ${reason}.`),
  userAssignedIdentityNotFound: (id: string) =>
    fail('InvalidUserAssignedIdentity', `The user-assigned identity '${id}' does not exist, or is not in the same tenant as the resource it is assigned to.`),
  principalNotFound: (id: string) =>
    fail('Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`),
  badRequest: (message: string) => fail('Request_BadRequest', message),
  /** A federated identity credential refused: ARM's `BadRequest`, Graph's `Request_BadRequest`. */
  invalidFederatedCredential: (family: 'arm' | 'graph', message: string) => fail(family === 'arm' ? 'BadRequest' : 'Request_BadRequest', message),
  federatedCredentialNotFound: (family: 'arm' | 'graph', name: string) =>
    family === 'arm'
      ? fail('ResourceNotFound', `The federated identity credential '${name.slice(0, 120)}' could not be found.`)
      : fail('Request_ResourceNotFound', `Resource '${name.slice(0, 120)}' does not exist or one of its queried reference-property objects are not present.`),
  invalidCertificate: (reason: string) => fail('InvalidKeyCredential', `The key credential is not a usable certificate: ${reason}.`),

  // RBAC
  invalidScope: (scope: string, reason: string) => fail('InvalidScope', `The scope '${scope.slice(0, 300)}' is not valid: ${reason}.`),
  missingSubscription: () => fail('MissingSubscription', 'The request did not have a subscription or a valid tenant level resource provider.'),
  invalidRoleAssignmentId: (id: string) =>
    fail('InvalidRoleAssignmentId', `The role assignment ID '${id.slice(0, 100)}' is not valid. The role assignment ID must be a GUID.`),
  invalidRoleAssignmentRequest: (reason: string) => fail('InvalidRoleAssignmentRequest', `The role assignment request is invalid: ${reason}.`),
  conditionNotSupported: () =>
    fail(
      'InvalidRoleAssignmentRequest',
      'Role assignment conditions (ABAC) are not supported by openmsi: remove condition and conditionVersion. openmsi refuses them rather than ignore them, which would grant more than intended.',
    ),
  roleAssignmentExists: () => fail('RoleAssignmentExists', 'The role assignment already exists.'),
  roleAssignmentNotFound: (id: string) => fail('RoleAssignmentNotFound', `The role assignment '${id.slice(0, 100)}' is not found.`),
  roleAssignmentUpdateNotPermitted: () =>
    fail('RoleAssignmentUpdateNotPermitted', 'Tenant ID, application ID, principal ID, and scope are not allowed to be updated.'),
  roleAssignmentLimitExceeded: (limit: number) =>
    fail('RoleAssignmentLimitExceeded', `No more role assignments can be created: the subscription has reached the limit of ${String(limit)}.`),
  roleDefinitionDoesNotExist: (id: string) => fail('RoleDefinitionDoesNotExist', `The specified role definition with ID '${id.slice(0, 300)}' does not exist.`),
  roleDefinitionNotFound: (id: string) => fail('RoleDefinitionNotFound', `The role definition '${id.slice(0, 300)}' could not be found.`),
  roleDefinitionNotAssignableAtScope: (roleName: string, scope: string) =>
    fail(
      'RoleDefinitionNotAssignableAtScope',
      `The role definition '${roleName}' cannot be assigned at scope '${scope}': the scope is not within the role's assignableScopes.`,
    ),
  rbacPrincipalNotFound: (principalId: string, tenantId: string) =>
    fail(
      'PrincipalNotFound',
      `Principal ${principalId.slice(0, 100)} does not exist in the directory ${tenantId}. Check that you have the correct principal ID.`,
    ),
  unmatchedPrincipalType: (principalId: string, actual: string, given: string) =>
    fail(
      'UnmatchedPrincipalType',
      `The PrincipalId '${principalId}' has type '${actual}', which is different from specified PrincipalType '${given.slice(0, 50)}'.`,
    ),
  invalidRoleDefinitionId: (id: string) =>
    fail('InvalidRoleDefinitionId', `The role definition ID '${id.slice(0, 100)}' is not valid. The role definition ID must be a GUID.`),
  invalidRoleDefinition: (reason: string) => fail('InvalidRoleDefinition', `The role definition is invalid: ${reason}.`),
  roleDefinitionWithSameNameExists: (roleName: string) =>
    fail('RoleDefinitionWithSameNameExists', `A custom role with the same name '${roleName}' already exists in this directory. Use a different name.`),
  roleDefinitionHasAssignments: (count: number) =>
    fail('RoleDefinitionHasAssignments', `There are ${String(count)} existing role assignment(s) referencing this role. Delete them before deleting the role.`),
  roleDefinitionLimitExceeded: (limit: number) =>
    fail('RoleDefinitionLimitExceeded', `No more custom roles can be created: the directory has reached the limit of ${String(limit)}.`),
  cannotModifyBuiltInRole: (roleName: string) => fail('CannotModifyBuiltInRole', `The built-in role '${roleName}' cannot be created, updated or deleted.`),
  invalidDenyAssignment: (reason: string) => fail('InvalidDenyAssignment', `The deny assignment is invalid: ${reason}.`),
  denyAssignmentExists: () => fail('DenyAssignmentExists', 'A deny assignment with this id, or with this name at this scope, already exists.'),
  denyAssignmentNotFound: (id: string) => fail('DenyAssignmentNotFound', `The deny assignment '${id.slice(0, 100)}' could not be found.`),
  /** What the caller was authorised for changed before the write (another writer in between): nothing was written. */
  changedWhileAuthorising: (what: string) =>
    fail('ConflictError', `${what} changed while this request was being authorised; nothing was changed. Retry the request.`),

  // Key Vault
  vaultNameNotValid: (name: string) =>
    fail(
      'VaultNameNotValid',
      `The vault name '${name.slice(0, 100)}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.`,
    ),
  vaultAlreadyExists: (name: string) =>
    fail(
      'VaultAlreadyExists',
      `The vault name '${name}' is already in use. Vault names are globally unique so it is possible that the name is already taken. If you are sure that the vault name was not taken then it is possible that a vault with the same name was recently deleted but not purged after being placed in a recoverable state. If the vault is in a recoverable state then the vault will need to be purged before reusing the name.`,
    ),
  vaultDeletedConflict: () =>
    fail('ConflictError', 'A vault with the same name already exists in deleted state. You need to either recover or purge existing key vault.'),
  vaultBadRequest: (message: string) => fail('BadRequest', message),
  purgeProtected: () => fail('InvalidOperation', "Operation 'DeletedVaultPurge' is not allowed."),
} as const;

function noProviderMessage(type: string, supported: readonly string[]): string {
  return `No registered resource provider found for resource type '${type}'. The supported resource types are: ${supported.join(', ')}.`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  return typeof value === 'string' ? `'${value}'` : typeof value;
}
