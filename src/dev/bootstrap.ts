/**
 * The dev stack's directory, made on first run and checked on every run (each step is idempotent, so a first
 * run cut short is finished by the next): resource group `dev`; this machine as a host with a system-assigned
 * identity and the user-assigned identity `dev-app`; vault `dev` with Key Vault Secrets Officer and Crypto Officer for both
 * identities and for the admin; Reader (no data actions) on the subscription for this host's system-assigned
 * identity, so `az login --identity` finds the subscription, and the directory-read role at `/` for it, so
 * `az ad sp list|show` run as this host. Everything goes through the directory's own functions, as the
 * management API would, in this process.
 */
import { hostname } from 'node:os';
import type { Clock } from '../shared/clock.js';
import type { AdminCredentialFile } from '../shared/data-dir.js';
import type { Store } from '../store/types.js';
import { BUILTIN_ROLE_IDS, BUILTIN_ROLES } from '../rbac/builtin-roles.js';
import { createJoinToken, HOST_RESOURCE_TYPE } from '../directory/hosts.js';
import { putResource, putResourceGroup, putUserAssignedIdentity, userAssignedIdentityProperties } from '../directory/resources.js';
import { putRoleAssignment, putRoleDefinition } from '../directory/rbac.js';
import { ALLOW_PERMISSION_MODEL_CHANGE, putVault } from '../directory/vaults.js';
import { formatArmResourceId } from '../shared/ids.js';
import { DEV_NAMES } from './layout.js';

/** Key Vault Secrets Officer and Crypto Officer: every secret and every key operation, no control-plane rights. */
const VAULT_DATA_ROLES = [BUILTIN_ROLE_IDS.KeyVaultSecretsOfficer, BUILTIN_ROLE_IDS.KeyVaultCryptoOfficer] as const;

/**
 * The dev tenant's custom role for reading the directory (Entra's "Directory Readers", in openmsi's Graph
 * actions): Graph reads are checked at `/` (docs/rbac.md), and Reader at `/` would also open every
 * subscription, the audit trail and the signing-key metadata. A fixed id, so every start finds it.
 */
export const DEV_DIRECTORY_READER = {
  id: '6f0d6a44-5e0b-4b8e-9d53-0d1f7e1c2a01',
  roleName: 'openmsi dev directory reader',
  description: 'Reads service principals and groups (Graph-shaped /v1.0): az ad sp list|show as the dev host identity.',
  actions: ['Microsoft.Authorization/servicePrincipals/read', 'Microsoft.Authorization/groups/read'],
} as const;

export interface DevDirectory {
  hostName: string;
  hostResourceId: string;
  systemPrincipalId: string;
  app: { resourceId: string; clientId: string; principalId: string };
  vault: { resourceId: string; name: string };
  /** A single-use join token when the host still has to enrol (first run), else undefined. */
  joinToken: string | undefined;
}

/** This machine's name as an ARM resource name (letters, digits, `-`, `_`, `.`). */
export function devHostName(name: string = hostname()): string {
  const cleaned = name
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .replace(/[.]+$/, '')
    .slice(0, 63);
  return cleaned === '' ? 'dev-machine' : cleaned;
}

export interface BootstrapOptions {
  store: Store;
  clock: Clock;
  tenantId: string;
  subscriptionId: string;
  admin: AdminCredentialFile;
  /** True when the agent already holds a host credential (no join token needed). */
  hostEnrolled: boolean;
  location?: string;
}

/** Makes (or finds) everything the dev stack needs in the directory. */
export async function bootstrapDevDirectory(options: BootstrapOptions): Promise<DevDirectory> {
  const { store, clock, subscriptionId } = options;
  const rg = DEV_NAMES.resourceGroup;
  const location = options.location ?? 'local';
  if ((await store.resourceGroups.get(subscriptionId, rg)) === undefined) {
    await putResourceGroup(store, { subscriptionId, name: rg, location, clock });
  }
  const appId = formatArmResourceId({
    subscriptionId,
    resourceGroup: rg,
    type: 'Microsoft.ManagedIdentity/userAssignedIdentities',
    name: DEV_NAMES.userAssignedIdentity,
  });
  let app = await store.resources.get(appId);
  app ??= (await putUserAssignedIdentity(store, { subscriptionId, resourceGroup: rg, name: DEV_NAMES.userAssignedIdentity, clock })).resource;
  const appProperties = userAssignedIdentityProperties(app);

  const hostName = devHostName();
  const hostId = formatArmResourceId({ subscriptionId, resourceGroup: rg, type: HOST_RESOURCE_TYPE, name: hostName });
  let host = await store.resources.get(hostId);
  let joinToken: string | undefined;
  if (host === undefined || !options.hostEnrolled) {
    const created = await createJoinToken(store, {
      subscriptionId,
      resourceGroup: rg,
      name: hostName,
      ttlSeconds: 600,
      createdBy: options.admin.objectId,
      clock,
    });
    joinToken = created.token;
    host = created.machine;
  }
  if (!host.userAssignedIdentityIds.some((id) => id.toLowerCase() === app.id.toLowerCase())) {
    const userAssigned = Object.fromEntries([...host.userAssignedIdentityIds, app.id].map((id) => [id, {}]));
    host = (
      await putResource(store, {
        subscriptionId,
        resourceGroup: rg,
        type: HOST_RESOURCE_TYPE,
        name: host.name,
        location: host.location,
        tags: host.tags,
        properties: host.properties,
        identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: userAssigned },
        clock,
      })
    ).resource;
  }
  if (host.systemPrincipalId === null) throw new Error(`the dev host ${host.id} has no system-assigned identity`);

  let vault = await store.vaults.getByName(DEV_NAMES.vault);
  if (vault !== undefined && vault.deletedAt !== null) {
    throw new Error(
      `the dev vault '${DEV_NAMES.vault}' is soft-deleted: recover it (\`openmsi keyvault recover -n ${DEV_NAMES.vault}\`) or purge it, then start again`,
    );
  }
  vault ??= (
    await putVault(store, {
      subscriptionId,
      resourceGroup: rg,
      name: DEV_NAMES.vault,
      properties: { tenantId: options.tenantId, sku: { family: 'A', name: 'standard' }, enableRbacAuthorization: true },
      clock,
      permissionModelChange: ALLOW_PERMISSION_MODEL_CHANGE,
    })
  ).vault;
  for (const principalId of [host.systemPrincipalId, appProperties.principalId, options.admin.objectId]) {
    for (const roleDefinitionId of VAULT_DATA_ROLES) {
      const existing = await store.roleAssignments.find(options.tenantId, vault.resourceId, roleDefinitionId, principalId);
      if (existing !== undefined) continue;
      await putRoleAssignment(
        store,
        { builtInRoles: BUILTIN_ROLES, clock },
        { tenantId: options.tenantId, scope: vault.resourceId, roleDefinitionId, principalId, description: 'openmsi dev', by: options.admin.objectId },
      );
    }
  }
  // `az login --identity` lists GET /subscriptions and stops when it is empty, and the management API lists
  // only the subscriptions the caller may read: Reader on the dev subscription lets az log in as this host.
  const subscriptionScope = `/subscriptions/${subscriptionId}`;
  if ((await store.roleAssignments.find(options.tenantId, subscriptionScope, BUILTIN_ROLE_IDS.Reader, host.systemPrincipalId)) === undefined) {
    await putRoleAssignment(
      store,
      { builtInRoles: BUILTIN_ROLES, clock },
      {
        tenantId: options.tenantId,
        scope: subscriptionScope,
        roleDefinitionId: BUILTIN_ROLE_IDS.Reader,
        principalId: host.systemPrincipalId,
        description: 'openmsi dev: az login --identity',
        by: options.admin.objectId,
      },
    );
  }
  // `az ad sp list|show` as this host (az login --identity): Graph reads are checked at `/`.
  if ((await store.roleDefinitions.get(options.tenantId, DEV_DIRECTORY_READER.id)) === undefined) {
    await putRoleDefinition(
      store,
      { builtInRoles: BUILTIN_ROLES, clock },
      {
        tenantId: options.tenantId,
        id: DEV_DIRECTORY_READER.id,
        roleName: DEV_DIRECTORY_READER.roleName,
        description: DEV_DIRECTORY_READER.description,
        permissions: [{ actions: [...DEV_DIRECTORY_READER.actions], notActions: [], dataActions: [], notDataActions: [] }],
        assignableScopes: ['/'],
        by: options.admin.objectId,
      },
    );
  }
  if ((await store.roleAssignments.find(options.tenantId, '/', DEV_DIRECTORY_READER.id, host.systemPrincipalId)) === undefined) {
    await putRoleAssignment(
      store,
      { builtInRoles: BUILTIN_ROLES, clock },
      {
        tenantId: options.tenantId,
        scope: '/',
        roleDefinitionId: DEV_DIRECTORY_READER.id,
        principalId: host.systemPrincipalId,
        description: 'openmsi dev: az ad sp list|show',
        by: options.admin.objectId,
      },
    );
  }
  return {
    hostName: host.name,
    hostResourceId: host.id,
    systemPrincipalId: host.systemPrincipalId,
    app: { resourceId: app.id, clientId: appProperties.clientId, principalId: appProperties.principalId },
    vault: { resourceId: vault.resourceId, name: vault.name },
    joinToken,
  };
}
