import { ApiError } from '../shared/api-error.js';

/**
 * The directory's error catalog. Codes and messages follow Azure Resource Manager (resource groups,
 * resources) and Microsoft Graph (service principals), so users and tools recognise them.
 */
export const DirectoryErrors = {
  subscriptionNotFound: (subscriptionId: string) =>
    new ApiError(404, 'SubscriptionNotFound', `The subscription '${subscriptionId}' could not be found.`),
  resourceGroupNotFound: (name: string) => new ApiError(404, 'ResourceGroupNotFound', `Resource group '${name}' could not be found.`),
  invalidResourceGroupName: (name: string, reason: string) =>
    new ApiError(400, 'InvalidResourceGroup', `The provided resource group name '${name}' is invalid: ${reason}.`),
  resourceGroupLocationConflict: (name: string, existing: string, requested: string) =>
    new ApiError(
      409,
      'InvalidResourceGroupLocation',
      `Invalid resource group location '${requested}'. The Resource group already exists in location '${existing}'. Resource group '${name}' cannot be moved.`,
    ),
  resourceNotFound: (type: string, name: string, resourceGroup: string) =>
    new ApiError(404, 'ResourceNotFound', `The Resource '${type}/${name}' under resource group '${resourceGroup}' was not found.`),
  invalidResourceName: (name: string, rule: string) => new ApiError(400, 'InvalidResourceName', `The resource name '${name}' is invalid. ${rule}`),
  resourceLocationConflict: (name: string, existing: string, requested: string, resourceGroup: string) =>
    new ApiError(
      409,
      'InvalidResourceLocation',
      `The resource '${name}' already exists in location '${existing}' in resource group '${resourceGroup}'. A resource with the same name cannot be created in location '${requested}'. Please select a new resource name.`,
    ),
  invalidLocation: (location: unknown) =>
    location === undefined || location === null || location === ''
      ? new ApiError(400, 'LocationRequired', 'The location property is required for this definition.')
      : new ApiError(400, 'InvalidLocation', `The location ${describe(location)} is invalid: use a region-style name such as 'westeurope'.`),
  invalidTags: (reason: string) => new ApiError(400, 'InvalidTag', `The tags are invalid: ${reason}.`),
  invalidProperties: (reason: string) => new ApiError(400, 'InvalidRequestContent', `The request content was invalid: ${reason}.`),
  noRegisteredProvider: (type: string, supported: readonly string[], status = 400) =>
    new ApiError(
      status,
      'NoRegisteredProviderFound',
      `No registered resource provider found for resource type '${type}'. The supported resource types are: ${supported.join(', ')}.`,
    ),
  invalidIdentity: (reason: string) => new ApiError(400, 'InvalidIdentity', `The identity property is invalid: ${reason}.`),
  userAssignedIdentityNotFound: (id: string) =>
    new ApiError(
      400,
      'InvalidUserAssignedIdentity',
      `The user-assigned identity '${id}' does not exist, or is not in the same tenant as the resource it is assigned to.`,
    ),
  principalNotFound: (id: string) =>
    new ApiError(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`),
  badRequest: (message: string) => new ApiError(400, 'Request_BadRequest', message),
  invalidCertificate: (reason: string) => new ApiError(400, 'InvalidKeyCredential', `The key credential is not a usable certificate: ${reason}.`),
} as const;

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  return typeof value === 'string' ? `'${value}'` : typeof value;
}
