import type { FastifyInstance, FastifyRequest } from 'fastify';
import { iso } from '../shared/clock.js';
import { formatArmResourceId } from '../shared/ids.js';
import type { AccessPolicyEntry, Tags, Vault, VaultProperties } from '../store/types.js';
import { vaultUri } from '../vault/contracts.js';
import type { ManagementContext } from './context.js';
import {
  DELETED_VAULT_TYPE,
  VAULT_TYPE,
  accessPolicyOperation,
  checkVaultNameAvailability,
  deleteVault,
  getDeletedVault,
  getVault,
  listDeletedVaults,
  listVaults,
  patchVault,
  purgeDeletedVault,
  putVault,
  updateAccessPolicies,
  type PermissionModelGuard,
} from '../directory/vaults.js';
import { DirectoryErrors } from '../directory/errors.js';
import { apiVersionHook } from './api-version.js';
import { pathParam } from './resource-ids.js';
import { authenticate, markDenied } from './authenticate.js';
import { authorizationFailed, authorize, decide, resourceGroupScope, resourceScope, subscriptionScope } from './authorize.js';
import { armDeleteHandler, armGetHandler, armListHandler, armPutHandler, armScope, audited, jsonObject, params, route, type ArmScope } from './common.js';

const PROVIDER = 'providers/Microsoft.KeyVault';
const IN_GROUP = `/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/${PROVIDER}/vaults`;
const ONE = `${IN_GROUP}/:resourceName`;
const DELETED = `/subscriptions/:subscriptionId/${PROVIDER}/locations/:location/deletedVaults/:resourceName`;

/** The ARM actions of Microsoft.KeyVault the routes check. */
export const VAULT_ACTIONS = {
  read: `${VAULT_TYPE}/read`,
  write: `${VAULT_TYPE}/write`,
  delete: `${VAULT_TYPE}/delete`,
  accessPoliciesWrite: `${VAULT_TYPE}/accessPolicies/write`,
  deletedRead: 'Microsoft.KeyVault/locations/deletedVaults/read',
  purge: 'Microsoft.KeyVault/locations/deletedVaults/purge/action',
  checkName: 'Microsoft.KeyVault/checkNameAvailability/read',
  /**
   * What changing a vault's permission model (`enableRbacAuthorization`) takes besides `vaults/write`, at the
   * vault: Azure's rule (docs/vault.md "Who may change the permission model").
   */
  permissionModel: 'Microsoft.Authorization/roleAssignments/write',
} as const;

/** An access-policy entry as ARM shows it (`applicationId` null unless a compound identity). */
export interface ArmAccessPolicy {
  tenantId: string;
  objectId: string;
  applicationId: string | null;
  permissions: AccessPolicyEntry['permissions'];
}

/** A vault as ARM (and az) shows it. */
export interface ArmVault {
  id: string;
  name: string;
  type: typeof VAULT_TYPE;
  location: string;
  tags: Tags;
  systemData: { createdAt: string; lastModifiedAt: string };
  properties: {
    sku: VaultProperties['sku'];
    tenantId: string;
    accessPolicies: ArmAccessPolicy[];
    vaultUri: string;
    enabledForDeployment: false;
    enabledForDiskEncryption: false;
    enabledForTemplateDeployment: false;
    enableSoftDelete: true;
    softDeleteRetentionInDays: number;
    enableRbacAuthorization: boolean;
    enablePurgeProtection: boolean | null;
    provisioningState: 'Succeeded';
    publicNetworkAccess: VaultProperties['publicNetworkAccess'];
  };
}

/** A soft-deleted vault as ARM shows it. */
export interface ArmDeletedVault {
  id: string;
  name: string;
  type: typeof DELETED_VAULT_TYPE;
  properties: {
    vaultId: string;
    location: string;
    deletionDate: string;
    scheduledPurgeDate: string;
    tags: Tags;
    purgeProtectionEnabled: boolean;
  };
}

/** The port vaults are served on: the authority's (`openmsi server` serves both). */
export function vaultPort(ctx: ManagementContext): number {
  const url = new URL(ctx.authority.origin);
  return url.port === '' ? 443 : Number(url.port);
}

export function armAccessPolicyView(entry: AccessPolicyEntry): ArmAccessPolicy {
  return {
    tenantId: entry.tenantId,
    objectId: entry.objectId,
    applicationId: entry.applicationId ?? null,
    permissions: {
      keys: [...entry.permissions.keys],
      secrets: [...entry.permissions.secrets],
      certificates: [...entry.permissions.certificates],
      storage: [...entry.permissions.storage],
    },
  };
}

export function armVaultView(ctx: ManagementContext, vault: Vault): ArmVault {
  const p = vault.properties;
  return {
    id: vault.resourceId,
    name: vault.name,
    type: VAULT_TYPE,
    location: vault.location,
    tags: vault.tags,
    systemData: { createdAt: iso(vault.createdAt), lastModifiedAt: iso(vault.updatedAt) },
    properties: {
      sku: { family: 'A', name: p.sku.name },
      tenantId: p.tenantId,
      accessPolicies: p.accessPolicies.map(armAccessPolicyView),
      vaultUri: vaultUri(vault.name, ctx.vaultDomain, vaultPort(ctx)),
      enabledForDeployment: false,
      enabledForDiskEncryption: false,
      enabledForTemplateDeployment: false,
      enableSoftDelete: true,
      softDeleteRetentionInDays: p.softDeleteRetentionInDays,
      enableRbacAuthorization: p.enableRbacAuthorization,
      enablePurgeProtection: p.enablePurgeProtection,
      provisioningState: 'Succeeded',
      publicNetworkAccess: p.publicNetworkAccess,
    },
  };
}

/** The id of a soft-deleted vault: `/subscriptions/{s}/providers/Microsoft.KeyVault/locations/{l}/deletedVaults/{name}`. */
export function deletedVaultId(vault: Vault): string {
  return `/subscriptions/${vault.subscriptionId}/${PROVIDER}/locations/${vault.location}/deletedVaults/${vault.name}`;
}

export function armDeletedVaultView(vault: Vault): ArmDeletedVault {
  return {
    id: deletedVaultId(vault),
    name: vault.name,
    type: DELETED_VAULT_TYPE,
    properties: {
      vaultId: vault.resourceId,
      location: vault.location,
      deletionDate: iso(vault.deletedAt ?? vault.updatedAt),
      scheduledPurgeDate: iso(vault.scheduledPurgeAt ?? vault.updatedAt),
      tags: vault.tags,
      purgeProtectionEnabled: vault.properties.enablePurgeProtection === true,
    },
  };
}

/** The addressed vault's id, as requested. */
const addressedVault = (scope: ArmScope) =>
  formatArmResourceId({ subscriptionId: scope.subscription.id, resourceGroup: scope.resourceGroup, type: VAULT_TYPE, name: scope.name });

const address = (scope: ArmScope) => ({ subscriptionId: scope.subscription.id, resourceGroup: scope.resourceGroup, name: scope.name });

/** What the audit trail records of a vault: its settings, never anything secret (a vault holds no secret itself). */
function auditDetail(vault: Vault): Record<string, unknown> {
  return {
    vaultId: vault.id,
    enableRbacAuthorization: vault.properties.enableRbacAuthorization,
    accessPolicies: vault.properties.accessPolicies.length,
    softDeleteRetentionInDays: vault.properties.softDeleteRetentionInDays,
    enablePurgeProtection: vault.properties.enablePurgeProtection,
  };
}

/**
 * The caller's {@link PermissionModelGuard} for a write to the addressed vault: decided before the write (the
 * authoriser is not consulted inside the store's transaction), enforced inside it only when the write turns
 * out to change the model, so that a concurrent change cannot slip between the check and the write. The
 * refusal is ARM's `AuthorizationFailed` naming `Microsoft.Authorization/roleAssignments/write` at the vault.
 */
async function permissionModelGuard(ctx: ManagementContext, request: FastifyRequest, scope: ArmScope): Promise<PermissionModelGuard> {
  const check = { action: VAULT_ACTIONS.permissionModel, scope: resourceScope(request, VAULT_TYPE) };
  if ((await decide(ctx, scope.caller, check)).allowed) return () => undefined;
  return () => {
    markDenied(request, scope.caller.principal);
    throw authorizationFailed(scope.caller.principal.appId, scope.caller.principal.objectId, check.action, check.scope);
  };
}

/**
 * `Microsoft.KeyVault`: vaults (PUT/GET/PATCH/DELETE one, list per group and per subscription), their access
 * policies (`accessPolicies/{add|replace|remove}`), soft-deleted vaults (list, get, purge) and
 * `checkNameAvailability`. Deleting a vault soft-deletes it; `PUT` with `createMode: "recover"` recovers it.
 * The deleted-vault actions are checked at the subscription (RBAC scopes have no provider-level resources
 * outside groups).
 */
export function vaultRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook];
  const atVault = (action: string) => [...onRequest, authorize(ctx, (request) => ({ action, scope: resourceScope(request, VAULT_TYPE) }))];
  const atSubscription = (action: string) => [...onRequest, authorize(ctx, (request) => ({ action, scope: subscriptionScope(request) }))];
  const view = (vault: Vault) => armVaultView(ctx, vault);

  const listHandler = (scope: 'subscription' | 'group') =>
    armListHandler(
      ctx,
      (s) => listVaults(ctx.store, { subscriptionId: s.subscription.id, ...(scope === 'group' ? { resourceGroup: s.resourceGroup } : {}) }),
      view,
      {
        read: (vault) => ({ action: VAULT_ACTIONS.read, scope: vault.resourceId }),
        listScope: (request) => ({ action: VAULT_ACTIONS.read, scope: scope === 'group' ? resourceGroupScope(request) : subscriptionScope(request) }),
      },
    );
  route(app, { method: 'GET', url: `/subscriptions/:subscriptionId/${PROVIDER}/vaults`, onRequest, handler: listHandler('subscription') });
  route(app, { method: 'GET', url: IN_GROUP, onRequest, handler: listHandler('group') });

  route(app, {
    method: 'GET',
    url: ONE,
    onRequest: atVault(VAULT_ACTIONS.read),
    handler: armGetHandler(ctx, (scope) => getVault(ctx.store, address(scope)), view),
  });

  route(app, {
    method: 'PUT',
    url: ONE,
    onRequest: atVault(VAULT_ACTIONS.write),
    handler: armPutHandler(ctx, {
      kind: 'vault',
      target: addressedVault,
      write: async (scope, request) => {
        const body = jsonObject(request.body);
        const { vault, outcome } = await putVault(ctx.store, {
          ...address(scope),
          location: body['location'],
          tags: body['tags'],
          properties: body['properties'],
          clock: ctx.clock,
          permissionModelChange: await permissionModelGuard(ctx, request, scope),
        });
        return { item: vault, created: outcome === 'created', id: vault.resourceId, detail: { ...auditDetail(vault), recovered: outcome === 'recovered' } };
      },
      view,
    }),
  });

  route(app, {
    method: 'PATCH',
    url: ONE,
    onRequest: atVault(VAULT_ACTIONS.write),
    handler: async (request) => {
      const scope = await armScope(ctx, request);
      const body = jsonObject(request.body);
      const entry = { tenantId: scope.subscription.tenantId, actor: scope.caller.principal.objectId, action: 'vault.updated', target: addressedVault(scope) };
      const vault = await audited(ctx, entry, async () => {
        const result = await patchVault(ctx.store, {
          ...address(scope),
          tags: body['tags'],
          properties: body['properties'],
          clock: ctx.clock,
          permissionModelChange: await permissionModelGuard(ctx, request, scope),
        });
        return { result, target: result.resourceId, detail: auditDetail(result) };
      });
      return view(vault);
    },
  });

  route(app, {
    method: 'DELETE',
    url: ONE,
    onRequest: atVault(VAULT_ACTIONS.delete),
    handler: armDeleteHandler(ctx, {
      kind: 'vault',
      target: addressedVault,
      remove: async (scope) => {
        const vault = await deleteVault(ctx.store, { ...address(scope), clock: ctx.clock });
        if (vault === undefined) return undefined;
        return { id: vault.resourceId, detail: { vaultId: vault.id, softDeleted: true, scheduledPurgeDate: iso(vault.scheduledPurgeAt ?? 0) } };
      },
    }),
  });

  route(app, {
    method: 'PUT',
    url: `${ONE}/accessPolicies/:operationKind`,
    onRequest: atVault(VAULT_ACTIONS.accessPoliciesWrite),
    handler: async (request) => {
      const scope = await armScope(ctx, request);
      const requested = params(request)['operationKind'] ?? '';
      const operation = accessPolicyOperation(requested);
      const target = `${addressedVault(scope)}/accessPolicies/${requested}`;
      const entry = {
        tenantId: scope.subscription.tenantId,
        actor: scope.caller.principal.objectId,
        action: `vault.accessPolicies.${operation ?? 'write'}`,
        target,
      };
      const vault = await audited(ctx, entry, async () => {
        if (operation === undefined)
          throw DirectoryErrors.vaultBadRequest(`The access policy operation '${requested.slice(0, 32)}' is invalid: use add, replace or remove.`);
        const body = jsonObject(request.body);
        const properties = body['properties'];
        if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) {
          throw DirectoryErrors.vaultBadRequest('The parameter properties is required: {"accessPolicies": [...]}.');
        }
        const result = await updateAccessPolicies(ctx.store, {
          ...address(scope),
          operation,
          accessPolicies: (properties as Record<string, unknown>)['accessPolicies'],
          clock: ctx.clock,
        });
        return { result, detail: { vaultId: result.id, accessPolicies: result.properties.accessPolicies.length } };
      });
      return {
        id: `${vault.resourceId}/accessPolicies/${operation ?? requested}`,
        name: operation,
        type: 'Microsoft.KeyVault/vaults/accessPolicies',
        location: vault.location,
        properties: { accessPolicies: vault.properties.accessPolicies.map(armAccessPolicyView) },
      };
    },
  });

  route(app, {
    method: 'GET',
    url: `/subscriptions/:subscriptionId/${PROVIDER}/deletedVaults`,
    onRequest: atSubscription(VAULT_ACTIONS.deletedRead),
    handler: async (request) => {
      const scope = await armScope(ctx, request);
      return { value: (await listDeletedVaults(ctx.store, scope.subscription.id)).map(armDeletedVaultView) };
    },
  });

  const deletedAddress = (scope: ArmScope, request: FastifyRequest) => ({
    subscriptionId: scope.subscription.id,
    location: pathParam(request, 'location'),
    name: scope.name,
  });

  route(app, {
    method: 'GET',
    url: DELETED,
    onRequest: atSubscription(VAULT_ACTIONS.deletedRead),
    handler: async (request) => {
      const scope = await armScope(ctx, request);
      return armDeletedVaultView(await getDeletedVault(ctx.store, deletedAddress(scope, request)));
    },
  });

  route(app, {
    method: 'POST',
    url: `${DELETED}/purge`,
    onRequest: atSubscription(VAULT_ACTIONS.purge),
    handler: async (request, reply) => {
      const scope = await armScope(ctx, request);
      const where = deletedAddress(scope, request);
      const target = `/subscriptions/${scope.subscription.id}/${PROVIDER}/locations/${where.location}/deletedVaults/${where.name}`;
      const entry = { tenantId: scope.subscription.tenantId, actor: scope.caller.principal.objectId, action: 'vault.purged', target };
      await audited(ctx, entry, async () => {
        const vault = await purgeDeletedVault(ctx.store, { ...where, clock: ctx.clock });
        return { result: vault, detail: { vaultId: vault.id, vaultResourceId: vault.resourceId } };
      });
      return reply.code(200).send();
    },
  });

  route(app, {
    method: 'POST',
    url: `/subscriptions/:subscriptionId/${PROVIDER}/checkNameAvailability`,
    onRequest: atSubscription(VAULT_ACTIONS.checkName),
    handler: async (request) => {
      await armScope(ctx, request);
      const body = jsonObject(request.body);
      const type = body['type'];
      if (typeof type === 'string' && type.toLowerCase() !== VAULT_TYPE.toLowerCase()) {
        throw DirectoryErrors.vaultBadRequest(`The type '${type.slice(0, 100)}' is invalid: only '${VAULT_TYPE}' names are checked.`);
      }
      return checkVaultNameAvailability(ctx.store, body['name']);
    },
  });
}
