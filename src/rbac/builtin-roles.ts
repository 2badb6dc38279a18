/**
 * Azure's built-in role definitions that openmsi ships, with Azure's GUIDs, names, descriptions and
 * permissions verbatim, so that IaC role ids and `az role` habits carry over.
 *
 * Source: Microsoft's generated reference "Azure built-in roles", MicrosoftDocs/azure-docs,
 * articles/role-based-access-control/built-in-roles/ (ms.date 07/01/2026):
 *   privileged.md  Owner, Contributor, User Access Administrator, Role Based Access Control Administrator
 *                  (commit 0b8729eaf7eb0aabc6390cb17348d19761285f12)
 *   general.md     Reader
 *   identity.md    Managed Identity Contributor, Managed Identity Operator
 *   security.md    Key Vault Administrator, Certificates Officer, Crypto Officer, Crypto User, Crypto Service
 *                  Encryption User, Crypto Service Release User, Reader,
 *                  Secrets Officer, Secrets User (commit 03e5750af10b23b5ba437d5b333ec5e9437844f9)
 *   storage.md     Storage Blob Data Owner/Contributor/Reader, Storage Queue Data Contributor/Reader
 *                  (commit 1b4e136a1da731e1ed16444eb6ce5701bcd8c0f4)
 *   integration.md Azure Service Bus Data Owner/Receiver/Sender
 *   analytics.md   Azure Event Hubs Data Owner/Receiver/Sender
 *   containers.md  AcrPull, AcrPush
 * Published at https://learn.microsoft.com/azure/role-based-access-control/built-in-roles.
 *
 * Role Based Access Control Administrator is Azure's definition; Azure recommends assigning it with an ABAC
 * condition limiting which roles may be assigned, and openmsi does not support conditions (docs/rbac.md).
 */
import type { Permission, RoleDefinition } from './contracts.js';

function perm(actions: string[], notActions: string[] = [], dataActions: string[] = [], notDataActions: string[] = []): Permission {
  return { actions, notActions, dataActions, notDataActions };
}

function role(id: string, roleName: string, description: string, permissions: Permission[]): RoleDefinition {
  return { id, roleName, roleType: 'BuiltInRole', description, permissions, assignableScopes: ['/'], tenantId: null };
}

/** The read/support actions Azure's Key Vault data roles carry beside their data actions. */
const KEY_VAULT_DATA_ROLE_ACTIONS = [
  'Microsoft.Authorization/*/read',
  'Microsoft.Insights/alertRules/*',
  'Microsoft.Resources/deployments/*',
  'Microsoft.Resources/subscriptions/resourceGroups/read',
  'Microsoft.Support/*',
  'Microsoft.KeyVault/checkNameAvailability/read',
  'Microsoft.KeyVault/deletedVaults/read',
  'Microsoft.KeyVault/locations/*/read',
  'Microsoft.KeyVault/vaults/*/read',
  'Microsoft.KeyVault/operations/read',
];

const SERVICE_BUS_READS = ['Microsoft.ServiceBus/*/queues/read', 'Microsoft.ServiceBus/*/topics/read', 'Microsoft.ServiceBus/*/topics/subscriptions/read'];

/** Well-known built-in role GUIDs, by name. */
export const BUILTIN_ROLE_IDS = {
  Owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  Contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  Reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
  UserAccessAdministrator: '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
  RoleBasedAccessControlAdministrator: 'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
  ManagedIdentityOperator: 'f1a07417-d97a-45cb-824c-7a7467783830',
  ManagedIdentityContributor: 'e40ec5ca-96e0-45a2-b4ff-59039f2c2b59',
  KeyVaultAdministrator: '00482a5a-887f-4fb3-b363-3b7fe8e74483',
  KeyVaultCertificatesOfficer: 'a4417e6f-fecd-4de8-b567-7b0420556985',
  KeyVaultCryptoOfficer: '14b46e9e-c2b7-41b4-b07b-48a6ebf60603',
  KeyVaultCryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424',
  KeyVaultCryptoServiceEncryptionUser: 'e147488a-f6f5-4113-8e2d-b22465e65bf6',
  KeyVaultCryptoServiceReleaseUser: '08bbd89e-9f13-488c-ac41-acfcb10c90ab',
  KeyVaultReader: '21090545-7ca7-4776-b22c-e363652d74d2',
  KeyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  KeyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
  StorageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  StorageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
  StorageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1',
  StorageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  StorageQueueDataReader: '19e7f393-937e-4f77-808e-94535e297925',
  ServiceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419',
  ServiceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0',
  ServiceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39',
  EventHubsDataOwner: 'f526a384-b230-433a-b45c-95f59c4a2dec',
  EventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde',
  EventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975',
  AcrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d',
  AcrPush: '8311e382-0749-4cb8-b61a-304f252e45ec',
} as const;

const R = BUILTIN_ROLE_IDS;

/** The built-in roles, in Azure's spelling. Frozen: callers copy before changing anything. */
export const BUILTIN_ROLES: readonly RoleDefinition[] = deepFreeze([
  role(R.Owner, 'Owner', 'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.', [perm(['*'])]),
  role(
    R.Contributor,
    'Contributor',
    'Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.',
    [
      perm(
        ['*'],
        [
          'Microsoft.Authorization/*/Delete',
          'Microsoft.Authorization/*/Write',
          'Microsoft.Authorization/elevateAccess/Action',
          'Microsoft.Blueprint/blueprintAssignments/write',
          'Microsoft.Blueprint/blueprintAssignments/delete',
          'Microsoft.Compute/galleries/share/action',
          'Microsoft.Purview/consents/write',
          'Microsoft.Purview/consents/delete',
          'Microsoft.Resources/deploymentStacks/manageDenySetting/action',
          'Microsoft.Subscription/cancel/action',
          'Microsoft.Subscription/enable/action',
        ],
      ),
    ],
  ),
  role(R.Reader, 'Reader', 'View all resources, but does not allow you to make any changes.', [perm(['*/read'])]),
  role(R.UserAccessAdministrator, 'User Access Administrator', 'Lets you manage user access to Azure resources.', [
    perm(['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*']),
  ]),
  role(
    R.RoleBasedAccessControlAdministrator,
    'Role Based Access Control Administrator',
    'Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.',
    [perm(['Microsoft.Authorization/roleAssignments/write', 'Microsoft.Authorization/roleAssignments/delete', '*/read', 'Microsoft.Support/*'])],
  ),
  role(R.ManagedIdentityOperator, 'Managed Identity Operator', 'Read and Assign User Assigned Identity', [
    perm([
      'Microsoft.ManagedIdentity/userAssignedIdentities/*/read',
      'Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action',
      'Microsoft.Authorization/*/read',
      'Microsoft.Insights/alertRules/*',
      'Microsoft.Resources/subscriptions/resourceGroups/read',
      'Microsoft.Resources/deployments/*',
      'Microsoft.Support/*',
    ]),
  ]),
  role(R.ManagedIdentityContributor, 'Managed Identity Contributor', 'Create, Read, Update, and Delete User Assigned Identity', [
    perm([
      'Microsoft.ManagedIdentity/userAssignedIdentities/read',
      'Microsoft.ManagedIdentity/userAssignedIdentities/write',
      'Microsoft.ManagedIdentity/userAssignedIdentities/delete',
      'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read',
      'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write',
      'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete',
      'Microsoft.ManagedIdentity/userAssignedIdentities/revokeTokens/action',
      'Microsoft.Authorization/*/read',
      'Microsoft.Insights/alertRules/*',
      'Microsoft.Resources/subscriptions/resourceGroups/read',
      'Microsoft.Resources/deployments/*',
      'Microsoft.Support/*',
    ]),
  ]),
  role(
    R.KeyVaultAdministrator,
    'Key Vault Administrator',
    "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets. Cannot manage key vault resources or manage role assignments. Only works for key vaults that use the 'Azure role-based access control' permission model.",
    [perm([...KEY_VAULT_DATA_ROLE_ACTIONS], [], ['Microsoft.KeyVault/vaults/*'])],
  ),
  role(
    R.KeyVaultCertificatesOfficer,
    'Key Vault Certificates Officer',
    "Perform any action on the certificates of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
    [
      perm(
        [...KEY_VAULT_DATA_ROLE_ACTIONS],
        [],
        ['Microsoft.KeyVault/vaults/certificatecas/*', 'Microsoft.KeyVault/vaults/certificates/*', 'Microsoft.KeyVault/vaults/certificatecontacts/write'],
      ),
    ],
  ),
  role(
    R.KeyVaultCryptoOfficer,
    'Key Vault Crypto Officer',
    "Perform any action on the keys of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
    [perm([...KEY_VAULT_DATA_ROLE_ACTIONS], [], ['Microsoft.KeyVault/vaults/keys/*', 'Microsoft.KeyVault/vaults/keyrotationpolicies/*'])],
  ),
  role(
    R.KeyVaultCryptoUser,
    'Key Vault Crypto User',
    "Perform cryptographic operations using keys. Only works for key vaults that use the 'Azure role-based access control' permission model.",
    [
      perm(
        [],
        [],
        [
          'Microsoft.KeyVault/vaults/keys/read',
          'Microsoft.KeyVault/vaults/keys/update/action',
          'Microsoft.KeyVault/vaults/keys/backup/action',
          'Microsoft.KeyVault/vaults/keys/encrypt/action',
          'Microsoft.KeyVault/vaults/keys/decrypt/action',
          'Microsoft.KeyVault/vaults/keys/wrap/action',
          'Microsoft.KeyVault/vaults/keys/unwrap/action',
          'Microsoft.KeyVault/vaults/keys/sign/action',
          'Microsoft.KeyVault/vaults/keys/verify/action',
        ],
      ),
    ],
  ),
  role(
    R.KeyVaultCryptoServiceEncryptionUser,
    'Key Vault Crypto Service Encryption User',
    "Read metadata of keys and perform wrap/unwrap operations. Only works for key vaults that use the 'Azure role-based access control' permission model.",
    [
      perm(
        ['Microsoft.EventGrid/eventSubscriptions/write', 'Microsoft.EventGrid/eventSubscriptions/read', 'Microsoft.EventGrid/eventSubscriptions/delete'],
        [],
        ['Microsoft.KeyVault/vaults/keys/read', 'Microsoft.KeyVault/vaults/keys/wrap/action', 'Microsoft.KeyVault/vaults/keys/unwrap/action'],
      ),
    ],
  ),
  role(
    R.KeyVaultCryptoServiceReleaseUser,
    'Key Vault Crypto Service Release User',
    "Release keys. Only works for key vaults that use the 'Azure role-based access control' permission model.",
    [perm([], [], ['Microsoft.KeyVault/vaults/keys/release/action'])],
  ),
  role(
    R.KeyVaultReader,
    'Key Vault Reader',
    "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material. Only works for key vaults that use the 'Azure role-based access control' permission model.",
    [perm([...KEY_VAULT_DATA_ROLE_ACTIONS], [], ['Microsoft.KeyVault/vaults/*/read', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'])],
  ),
  role(
    R.KeyVaultSecretsOfficer,
    'Key Vault Secrets Officer',
    "Perform any action on the secrets of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
    [perm([...KEY_VAULT_DATA_ROLE_ACTIONS], [], ['Microsoft.KeyVault/vaults/secrets/*'])],
  ),
  role(
    R.KeyVaultSecretsUser,
    'Key Vault Secrets User',
    "Read secret contents. Only works for key vaults that use the 'Azure role-based access control' permission model.",
    [perm([], [], ['Microsoft.KeyVault/vaults/secrets/getSecret/action', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'])],
  ),
  role(
    R.StorageBlobDataOwner,
    'Storage Blob Data Owner',
    'Allows for full access to Azure Storage blob containers and data, including assigning POSIX access control.',
    [
      perm(
        ['Microsoft.Storage/storageAccounts/blobServices/containers/*', 'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action'],
        [],
        ['Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*'],
      ),
    ],
  ),
  role(R.StorageBlobDataContributor, 'Storage Blob Data Contributor', 'Allows for read, write and delete access to Azure Storage blob containers and data', [
    perm(
      [
        'Microsoft.Storage/storageAccounts/blobServices/containers/delete',
        'Microsoft.Storage/storageAccounts/blobServices/containers/read',
        'Microsoft.Storage/storageAccounts/blobServices/containers/write',
        'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action',
      ],
      [],
      [
        'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete',
        'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read',
        'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write',
        'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action',
        'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action',
      ],
    ),
  ]),
  role(R.StorageBlobDataReader, 'Storage Blob Data Reader', 'Allows for read access to Azure Storage blob containers and data', [
    perm(
      ['Microsoft.Storage/storageAccounts/blobServices/containers/read', 'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action'],
      [],
      ['Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'],
    ),
  ]),
  role(
    R.StorageQueueDataContributor,
    'Storage Queue Data Contributor',
    'Allows for read, write, and delete access to Azure Storage queues and queue messages',
    [
      perm(
        [
          'Microsoft.Storage/storageAccounts/queueServices/queues/delete',
          'Microsoft.Storage/storageAccounts/queueServices/queues/read',
          'Microsoft.Storage/storageAccounts/queueServices/queues/write',
        ],
        [],
        [
          'Microsoft.Storage/storageAccounts/queueServices/queues/messages/delete',
          'Microsoft.Storage/storageAccounts/queueServices/queues/messages/read',
          'Microsoft.Storage/storageAccounts/queueServices/queues/messages/write',
          'Microsoft.Storage/storageAccounts/queueServices/queues/messages/process/action',
        ],
      ),
    ],
  ),
  role(R.StorageQueueDataReader, 'Storage Queue Data Reader', 'Allows for read access to Azure Storage queues and queue messages', [
    perm(['Microsoft.Storage/storageAccounts/queueServices/queues/read'], [], ['Microsoft.Storage/storageAccounts/queueServices/queues/messages/read']),
  ]),
  role(R.ServiceBusDataOwner, 'Azure Service Bus Data Owner', 'Allows for full access to Azure Service Bus resources.', [
    perm(['Microsoft.ServiceBus/*'], [], ['Microsoft.ServiceBus/*']),
  ]),
  role(R.ServiceBusDataReceiver, 'Azure Service Bus Data Receiver', 'Allows for receive access to Azure Service Bus resources.', [
    perm([...SERVICE_BUS_READS], [], ['Microsoft.ServiceBus/*/receive/action']),
  ]),
  role(R.ServiceBusDataSender, 'Azure Service Bus Data Sender', 'Allows for send access to Azure Service Bus resources.', [
    perm([...SERVICE_BUS_READS], [], ['Microsoft.ServiceBus/*/send/action']),
  ]),
  role(R.EventHubsDataOwner, 'Azure Event Hubs Data Owner', 'Allows for full access to Azure Event Hubs resources.', [
    perm(['Microsoft.EventHub/*'], [], ['Microsoft.EventHub/*']),
  ]),
  role(R.EventHubsDataReceiver, 'Azure Event Hubs Data Receiver', 'Allows receive access to Azure Event Hubs resources.', [
    perm(['Microsoft.EventHub/*/eventhubs/consumergroups/read'], [], ['Microsoft.EventHub/*/receive/action']),
  ]),
  role(R.EventHubsDataSender, 'Azure Event Hubs Data Sender', 'Allows send access to Azure Event Hubs resources.', [
    perm(['Microsoft.EventHub/*/eventhubs/read'], [], ['Microsoft.EventHub/*/send/action']),
  ]),
  role(R.AcrPull, 'AcrPull', 'acr pull', [perm(['Microsoft.ContainerRegistry/registries/pull/read'])]),
  role(R.AcrPush, 'AcrPush', 'acr push', [perm(['Microsoft.ContainerRegistry/registries/pull/read', 'Microsoft.ContainerRegistry/registries/push/write'])]),
]);

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const byId = new Map(BUILTIN_ROLES.map((r) => [r.id.toLowerCase(), r]));
const byName = new Map(BUILTIN_ROLES.map((r) => [r.roleName.toLowerCase(), r]));

/** A built-in role by GUID (or full ARM role definition id), case-insensitively. */
export function builtinRoleById(id: string): RoleDefinition | undefined {
  const i = id.lastIndexOf('/');
  return byId.get((i === -1 ? id : id.slice(i + 1)).toLowerCase());
}

/** A built-in role by name (`Owner`, `Key Vault Secrets User`, …), case-insensitively, as az resolves `--role`. */
export function builtinRoleByName(name: string): RoleDefinition | undefined {
  return byName.get(name.toLowerCase());
}
