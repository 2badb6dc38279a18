/**
 * Resource groups, user-assigned identities and the allow-listed resource types that can carry managed
 * identities, with ARM's PUT/GET/DELETE semantics (the management API shows them in ARM's shape).
 *
 * Identity lifecycle: enabling `SystemAssigned` on a resource creates its service principal; disabling it,
 * or deleting the resource (or its group), deletes that principal and revokes the resource's host credentials
 * (the agent's keys, see hosts.ts). Deleting a user-assigned identity
 * detaches it from every resource and deletes its principal. The token grants look principals up on every
 * request, so once a principal is deleted no token is issued for it again.
 */
import type { Clock } from '../shared/clock.js';
import { armKey, formatArmResourceId, resourceGroupId } from '../shared/ids.js';
import { parseResourceId, ScopeError } from '../rbac/scopes.js';
import type { Repositories, Resource, ResourceGroup, ServicePrincipal, Store, Subscription } from '../store/types.js';
import { DirectoryErrors } from './errors.js';
import { atomically, createManagedIdentityPrincipal, deleteManagedIdentityPrincipal } from './principals.js';
import { softDeleteGroupVaults } from './vaults.js';
import { normalizeLocation, requireSubscription, validateTags } from './arm-common.js';

export { normalizeLocation, requireSubscription, validateTags } from './arm-common.js';

export const RESOURCE_GROUP_TYPE = 'Microsoft.Resources/resourceGroups';
export const USER_ASSIGNED_IDENTITY_TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities';

/**
 * Resource types that may be created through the generic resource API (and carry an `identity`). Vaults are
 * not among them: they have their own routes and store (vaults.ts).
 */
export const SUPPORTED_RESOURCE_TYPES = [
  'Microsoft.Compute/virtualMachines',
  'Microsoft.HybridCompute/machines',
  'Microsoft.Web/sites',
  'Microsoft.App/containerApps',
  'Microsoft.ContainerInstance/containerGroups',
  'Microsoft.Storage/storageAccounts',
] as const;

const TYPES_BY_KEY = new Map<string, string>(SUPPORTED_RESOURCE_TYPES.map((t) => [t.toLowerCase(), t]));

/** The canonical casing of an allow-listed generic resource type, or undefined. */
export function canonicalResourceType(type: string): string | undefined {
  return TYPES_BY_KEY.get(type.toLowerCase());
}

// ---------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------

const RESOURCE_GROUP_NAME = /^[-\p{L}\p{N}_.()]+$/u;

/** ARM's rule: 1-90 letters, digits, `-`, `_`, `.`, `(`, `)`, not ending in `.`. */
export function validateResourceGroupName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw DirectoryErrors.invalidResourceGroupName(String(name), 'it is empty');
  if (name.length > 90) throw DirectoryErrors.invalidResourceGroupName(name, 'it is longer than 90 characters');
  if (!RESOURCE_GROUP_NAME.test(name)) {
    const bad = [...new Set([...name].filter((c) => !RESOURCE_GROUP_NAME.test(c)))].join('');
    throw DirectoryErrors.invalidResourceGroupName(
      name,
      `it has these invalid characters: '${bad}'. The name can only be a letter, digit, '-', '.', '(', ')' or '_'`,
    );
  }
  if (name.endsWith('.')) throw DirectoryErrors.invalidResourceGroupName(name, "it ends with '.'");
  return name;
}

const UAMI_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/;

/** Microsoft.ManagedIdentity's rule: 3-128 characters, alphanumerics, `-` and `_`, starting alphanumeric. */
export function validateUserAssignedIdentityName(name: unknown): string {
  return requireResourceName(
    name,
    UAMI_NAME,
    'A user-assigned identity name must be 3 to 128 characters of letters, digits, hyphens and underscores, and start with a letter or digit.',
  );
}

const RESOURCE_NAME = /^[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,126}[a-zA-Z0-9_-])?$/;

/** A conservative rule every allow-listed type accepts: 1-128 letters, digits, `.`, `-`, `_`, no trailing `.`. */
export function validateResourceName(name: unknown): string {
  return requireResourceName(
    name,
    RESOURCE_NAME,
    "A resource name must be 1 to 128 characters of letters, digits, '.', '-' and '_', start with a letter or digit, and not end with '.'.",
  );
}

/** `name` when it is a string matching `pattern`; otherwise `InvalidResourceName` explaining `rule`. */
function requireResourceName(name: unknown, pattern: RegExp, rule: string): string {
  if (typeof name !== 'string' || !pattern.test(name)) throw DirectoryErrors.invalidResourceName(String(name), rule);
  return name;
}

function validateProperties(properties: unknown): Record<string, unknown> {
  if (properties === undefined || properties === null) return {};
  if (typeof properties !== 'object' || Array.isArray(properties)) throw DirectoryErrors.invalidProperties("'properties' must be an object");
  const { provisioningState: _ignored, ...rest } = properties as Record<string, unknown>;
  return rest;
}

// ---------------------------------------------------------------------------------------------------
// Subscriptions
// ---------------------------------------------------------------------------------------------------

/** The subscription (as {@link requireSubscription}) and its group `name`, or `ResourceGroupNotFound`. */
async function requireResourceGroup(
  repos: Repositories,
  subscriptionId: string,
  name: string,
  options: { forWrite?: boolean } = {},
): Promise<{ subscription: Subscription; group: ResourceGroup }> {
  const subscription = await requireSubscription(repos, subscriptionId, options);
  const group = await repos.resourceGroups.get(subscription.id, name);
  if (group === undefined) throw DirectoryErrors.resourceGroupNotFound(name);
  return { subscription, group };
}

// ---------------------------------------------------------------------------------------------------
// Resource groups
// ---------------------------------------------------------------------------------------------------

export interface PutResourceGroupInput {
  subscriptionId: string;
  name: string;
  location: unknown;
  tags?: unknown;
  clock: Clock;
}

/** ARM PUT: creates the group, or replaces its tags (its location cannot change). */
export async function putResourceGroup(repos: Repositories | Store, input: PutResourceGroupInput): Promise<{ group: ResourceGroup; created: boolean }> {
  const name = validateResourceGroupName(input.name);
  const location = normalizeLocation(input.location);
  const tags = validateTags(input.tags);
  return atomically(repos, async (tx) => {
    const subscription = await requireSubscription(tx, input.subscriptionId, { forWrite: true });
    const existing = await tx.resourceGroups.get(subscription.id, name);
    if (existing !== undefined && existing.location !== location) {
      throw DirectoryErrors.resourceGroupLocationConflict(existing.name, existing.location, location);
    }
    const now = input.clock.now();
    const group: ResourceGroup = {
      id: existing?.id ?? resourceGroupId(subscription.id, name),
      subscriptionId: subscription.id,
      name: existing?.name ?? name,
      location,
      tags,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    const outcome = await tx.resourceGroups.put(group);
    return { group, created: outcome === 'created' };
  });
}

/** The group, or `ResourceGroupNotFound`. */
export async function getResourceGroup(repos: Repositories, subscriptionId: string, name: string): Promise<ResourceGroup> {
  const { group } = await requireResourceGroup(repos, subscriptionId, name);
  return group;
}

export async function listResourceGroups(repos: Repositories, subscriptionId: string): Promise<ResourceGroup[]> {
  const subscription = await requireSubscription(repos, subscriptionId);
  return repos.resourceGroups.list(subscription.id);
}

/** What a deletion removed, for the response and the audit trail. */
export interface DeletionSummary {
  /** ARM ids of the resources deleted (for a group, everything it held). */
  deletedResourceIds: string[];
  /** Object ids of the managed-identity principals deleted with them. */
  deletedPrincipalIds: string[];
  /** Resources outside the deletion that had a deleted user-assigned identity detached. */
  detachedFrom: string[];
}

/**
 * Deletes the group and everything in it (principals included); its vaults are soft-deleted, as Azure does, so
 * they can be recovered (into a group of the same name) until their retention ends. Undefined when there is
 * no such group.
 */
export async function deleteResourceGroup(
  repos: Repositories | Store,
  input: { subscriptionId: string; name: string; clock: Clock },
): Promise<({ group: ResourceGroup; softDeletedVaultIds: string[] } & DeletionSummary) | undefined> {
  return atomically(repos, async (tx) => {
    const subscription = await requireSubscription(tx, input.subscriptionId, { forWrite: true });
    const group = await tx.resourceGroups.get(subscription.id, input.name);
    if (group === undefined) return undefined;
    const summary: DeletionSummary = { deletedResourceIds: [], deletedPrincipalIds: [], detachedFrom: [] };
    const resources = await tx.resources.list({ subscriptionId: subscription.id, resourceGroup: group.name });
    // Identities first: each is detached from every resource that holds it (in this group or another).
    const ordered = [...resources].sort((a, b) => Number(isUami(b)) - Number(isUami(a)));
    const doomed = new Set(resources.map((r) => armKey(r.id)));
    for (const resource of ordered) await deleteResourceIn(tx, resource, input.clock, summary, doomed);
    const vaults = await softDeleteGroupVaults(tx, { subscriptionId: subscription.id, resourceGroup: group.name, clock: input.clock });
    await tx.resourceGroups.delete(subscription.id, group.name);
    return { group, softDeletedVaultIds: vaults.map((v) => v.resourceId), ...summary };
  });
}

// ---------------------------------------------------------------------------------------------------
// User-assigned identities
// ---------------------------------------------------------------------------------------------------

/** The properties stored on (and shown for) a user-assigned identity. */
export interface UserAssignedIdentityProperties {
  tenantId: string;
  principalId: string;
  clientId: string;
}

/** A user-assigned identity's properties as stored; '' for any that is missing (or for another resource). */
export function userAssignedIdentityProperties(resource: Resource | undefined): UserAssignedIdentityProperties {
  const p = resource?.properties;
  return { tenantId: stringProperty(p, 'tenantId'), principalId: stringProperty(p, 'principalId'), clientId: stringProperty(p, 'clientId') };
}

function stringProperty(properties: Record<string, unknown> | undefined, name: string): string {
  const value = properties?.[name];
  return typeof value === 'string' ? value : '';
}

export interface PutUserAssignedIdentityInput {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  /** Defaults to the group's location. */
  location?: unknown;
  tags?: unknown;
  clock: Clock;
}

/** ARM PUT of a user-assigned identity: creates it with its principal, or replaces its tags. */
export async function putUserAssignedIdentity(
  repos: Repositories | Store,
  input: PutUserAssignedIdentityInput,
): Promise<{ resource: Resource; principal: ServicePrincipal; created: boolean }> {
  const name = validateUserAssignedIdentityName(input.name);
  const tags = validateTags(input.tags);
  const requestedLocation = input.location === undefined || input.location === null ? undefined : normalizeLocation(input.location);
  return atomically(repos, async (tx) => {
    const { subscription, group } = await requireResourceGroup(tx, input.subscriptionId, input.resourceGroup, { forWrite: true });
    const location = requestedLocation ?? group.location;
    const id = formatArmResourceId({ subscriptionId: subscription.id, resourceGroup: group.name, type: USER_ASSIGNED_IDENTITY_TYPE, name });
    const existing = await tx.resources.get(id);
    const now = input.clock.now();

    if (existing !== undefined) {
      if (existing.location !== location) throw DirectoryErrors.resourceLocationConflict(existing.name, existing.location, location, group.name);
      let principal = await tx.servicePrincipals.getByManagedIdentityResource(existing.id, 'UserAssigned');
      // A principal lost to an earlier failure is recreated, so the identity is always usable.
      principal ??= await createManagedIdentityPrincipal(tx, {
        tenantId: subscription.tenantId,
        displayName: existing.name,
        type: 'UserAssigned',
        resourceId: existing.id,
        clock: input.clock,
      });
      const resource: Resource = { ...existing, tags, properties: uamiProperties(principal), updatedAt: now };
      await tx.resources.put(resource);
      return { resource, principal, created: false };
    }

    const principal = await createManagedIdentityPrincipal(tx, {
      tenantId: subscription.tenantId,
      displayName: name,
      type: 'UserAssigned',
      resourceId: id,
      clock: input.clock,
    });
    const resource: Resource = {
      id,
      subscriptionId: subscription.id,
      resourceGroup: group.name,
      type: USER_ASSIGNED_IDENTITY_TYPE,
      name,
      location,
      tags,
      properties: uamiProperties(principal),
      systemPrincipalId: null,
      userAssignedIdentityIds: [],
      createdAt: now,
      updatedAt: now,
    };
    await tx.resources.put(resource);
    return { resource, principal, created: true };
  });
}

function uamiProperties(principal: ServicePrincipal): Record<string, unknown> {
  const properties: UserAssignedIdentityProperties = { tenantId: principal.tenantId, principalId: principal.objectId, clientId: principal.appId };
  return { ...properties };
}

export interface ResourceAddress {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
}

/** The identity, or `ResourceGroupNotFound` / `ResourceNotFound`. */
export async function getUserAssignedIdentity(repos: Repositories, address: ResourceAddress): Promise<Resource> {
  return getResource(repos, { ...address, type: USER_ASSIGNED_IDENTITY_TYPE });
}

export async function listUserAssignedIdentities(repos: Repositories, filter: { subscriptionId: string; resourceGroup?: string }): Promise<Resource[]> {
  return listResources(repos, { ...filter, type: USER_ASSIGNED_IDENTITY_TYPE });
}

/** Deletes the identity and its principal, detaching it everywhere; undefined when it does not exist. */
export async function deleteUserAssignedIdentity(
  repos: Repositories | Store,
  input: ResourceAddress & { clock: Clock },
): Promise<({ resource: Resource } & DeletionSummary) | undefined> {
  return deleteResource(repos, { ...input, type: USER_ASSIGNED_IDENTITY_TYPE });
}

// ---------------------------------------------------------------------------------------------------
// Generic resources
// ---------------------------------------------------------------------------------------------------

const MAX_USER_ASSIGNED = 100;

/** Parses ARM's `identity` property (type names case-insensitive; `principalId`/`tenantId` are read-only and ignored). */
function parseIdentity(value: unknown): { systemAssigned: boolean; userAssignedIds: string[] } {
  if (value === undefined || value === null) return { systemAssigned: false, userAssignedIds: [] };
  if (typeof value !== 'object' || Array.isArray(value)) throw DirectoryErrors.invalidIdentity("'identity' must be an object");
  const { type, userAssignedIdentities } = value as { type?: unknown; userAssignedIdentities?: unknown };
  if (typeof type !== 'string') {
    throw DirectoryErrors.invalidIdentity("'identity.type' must be one of 'None', 'SystemAssigned', 'UserAssigned', 'SystemAssigned, UserAssigned'");
  }
  const parts = type
    .split(',')
    .map((p) => p.trim().toLowerCase())
    .filter((p) => p !== '');
  const known = new Set(['none', 'systemassigned', 'userassigned']);
  if (parts.length === 0 || parts.some((p) => !known.has(p)) || new Set(parts).size !== parts.length || (parts.includes('none') && parts.length > 1)) {
    throw DirectoryErrors.invalidIdentity(
      `'${type}' is not a valid identity type; use 'None', 'SystemAssigned', 'UserAssigned' or 'SystemAssigned, UserAssigned'`,
    );
  }
  const systemAssigned = parts.includes('systemassigned');
  const wantsUser = parts.includes('userassigned');
  let ids: string[] = [];
  if (userAssignedIdentities !== undefined && userAssignedIdentities !== null) {
    if (typeof userAssignedIdentities !== 'object' || Array.isArray(userAssignedIdentities)) {
      throw DirectoryErrors.invalidIdentity("'identity.userAssignedIdentities' must be an object keyed by identity resource id");
    }
    const entries = Object.entries(userAssignedIdentities as Record<string, unknown>);
    for (const [id, v] of entries) {
      if (v !== null && (typeof v !== 'object' || Array.isArray(v))) {
        throw DirectoryErrors.invalidIdentity(`the value for user-assigned identity '${id}' must be an object (usually {})`);
      }
    }
    // A null value removes an identity in ARM PATCH; in a PUT it simply is not assigned.
    ids = entries.filter(([, v]) => v !== null).map(([id]) => id);
  }
  if (wantsUser && ids.length === 0) {
    throw DirectoryErrors.invalidIdentity("identity type 'UserAssigned' needs at least one entry in 'userAssignedIdentities'");
  }
  if (!wantsUser && ids.length > 0) {
    throw DirectoryErrors.invalidIdentity("'userAssignedIdentities' may only be given when the identity type includes 'UserAssigned'");
  }
  if (ids.length > MAX_USER_ASSIGNED) throw DirectoryErrors.invalidIdentity(`at most ${String(MAX_USER_ASSIGNED)} user-assigned identities may be assigned`);
  return { systemAssigned, userAssignedIds: ids };
}

/**
 * Resolves requested user-assigned identity ids to existing identities in the same tenant, each parsed by the
 * one resource-id parser (src/rbac/scopes.ts) and looked up by its canonical form: the management API passes
 * ids it already parsed and authorised in that form (src/management/resource-ids.ts).
 */
async function resolveUserAssigned(tx: Repositories, ids: readonly string[], tenantId: string): Promise<string[]> {
  const out = new Map<string, string>();
  for (const id of ids) {
    let canonical: string;
    try {
      canonical = parseResourceId(id, USER_ASSIGNED_IDENTITY_TYPE).scope;
    } catch (err) {
      if (!(err instanceof ScopeError)) throw err;
      throw DirectoryErrors.invalidIdentity(`'${id.slice(0, 300)}' is not the resource id of a ${USER_ASSIGNED_IDENTITY_TYPE} resource: ${err.reason}`);
    }
    const identity = await tx.resources.get(canonical);
    if (identity === undefined || identity.type !== USER_ASSIGNED_IDENTITY_TYPE) throw DirectoryErrors.userAssignedIdentityNotFound(id);
    const subscription = await tx.subscriptions.get(identity.subscriptionId);
    if (subscription?.tenantId !== tenantId) throw DirectoryErrors.userAssignedIdentityNotFound(id);
    out.set(armKey(identity.id), identity.id);
  }
  return [...out.values()];
}

export interface PutResourceInput {
  subscriptionId: string;
  resourceGroup: string;
  /** `Namespace/type`, any casing; must be allow-listed. */
  type: string;
  name: string;
  /** Defaults to the group's location. */
  location?: unknown;
  tags?: unknown;
  properties?: unknown;
  /** ARM `identity`; absent means none (a PUT replaces the whole resource). */
  identity?: unknown;
  clock: Clock;
}

export interface PutResourceResult {
  resource: Resource;
  created: boolean;
  /** Object id of a system-assigned principal this PUT created. */
  systemPrincipalCreated: string | null;
  /** Object id of a system-assigned principal this PUT deleted. */
  systemPrincipalDeleted: string | null;
}

/** ARM PUT of an allow-listed resource, managing its system-assigned principal and attached identities. */
export async function putResource(repos: Repositories | Store, input: PutResourceInput): Promise<PutResourceResult> {
  const type = canonicalResourceType(input.type);
  if (type === undefined) throw DirectoryErrors.noRegisteredProvider(input.type, SUPPORTED_RESOURCE_TYPES);
  const name = validateResourceName(input.name);
  const tags = validateTags(input.tags);
  const properties = validateProperties(input.properties);
  const identity = parseIdentity(input.identity);
  const requestedLocation = input.location === undefined || input.location === null ? undefined : normalizeLocation(input.location);

  return atomically(repos, async (tx) => {
    const { subscription, group } = await requireResourceGroup(tx, input.subscriptionId, input.resourceGroup, { forWrite: true });
    const location = requestedLocation ?? group.location;
    const id = formatArmResourceId({ subscriptionId: subscription.id, resourceGroup: group.name, type, name });
    const existing = await tx.resources.get(id);
    if (existing !== undefined && existing.location !== location) {
      throw DirectoryErrors.resourceLocationConflict(existing.name, existing.location, location, group.name);
    }
    const resourceId = existing?.id ?? id;
    const resourceName = existing?.name ?? name;
    const userAssigned = await resolveUserAssigned(tx, identity.userAssignedIds, subscription.tenantId);

    let systemPrincipalId = existing?.systemPrincipalId ?? null;
    let systemPrincipalCreated: string | null = null;
    let systemPrincipalDeleted: string | null = null;
    if (identity.systemAssigned) {
      const current = systemPrincipalId === null ? undefined : await tx.servicePrincipals.getByObjectId(systemPrincipalId);
      if (current === undefined) {
        const principal = await createManagedIdentityPrincipal(tx, {
          tenantId: subscription.tenantId,
          displayName: resourceName,
          type: 'SystemAssigned',
          resourceId,
          clock: input.clock,
        });
        systemPrincipalId = principal.objectId;
        systemPrincipalCreated = principal.objectId;
      }
    } else if (systemPrincipalId !== null) {
      await deleteManagedIdentityPrincipal(tx, systemPrincipalId);
      systemPrincipalDeleted = systemPrincipalId;
      systemPrincipalId = null;
    }

    const now = input.clock.now();
    const resource: Resource = {
      id: resourceId,
      subscriptionId: subscription.id,
      resourceGroup: group.name,
      type,
      name: resourceName,
      location,
      tags,
      properties,
      systemPrincipalId,
      userAssignedIdentityIds: userAssigned,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    const outcome = await tx.resources.put(resource);
    return { resource, created: outcome === 'created', systemPrincipalCreated, systemPrincipalDeleted };
  });
}

/** The canonical casing of a type a resource can be addressed by (allow-listed, or user-assigned identity); `ResourceTypeNotFound` for any other. */
function addressableType(type: string): string {
  const canonical = type.toLowerCase() === USER_ASSIGNED_IDENTITY_TYPE.toLowerCase() ? USER_ASSIGNED_IDENTITY_TYPE : canonicalResourceType(type);
  if (canonical === undefined) throw DirectoryErrors.resourceTypeNotFound(type, SUPPORTED_RESOURCE_TYPES);
  return canonical;
}

/** The resource, or `SubscriptionNotFound`, `ResourceGroupNotFound`, `ResourceNotFound`. */
export async function getResource(repos: Repositories, address: ResourceAddress & { type: string }): Promise<Resource> {
  const type = addressableType(address.type);
  const { subscription, group } = await requireResourceGroup(repos, address.subscriptionId, address.resourceGroup);
  const resource = await repos.resources.get(formatArmResourceId({ subscriptionId: subscription.id, resourceGroup: group.name, type, name: address.name }));
  if (resource?.type !== type) throw DirectoryErrors.resourceNotFound(type, address.name, group.name);
  return resource;
}

/** Resources of a subscription, optionally of one group and/or type (`ResourceGroupNotFound` when the group does not exist). */
export async function listResources(repos: Repositories, filter: { subscriptionId: string; resourceGroup?: string; type?: string }): Promise<Resource[]> {
  const { subscription, group } =
    filter.resourceGroup === undefined
      ? { subscription: await requireSubscription(repos, filter.subscriptionId), group: undefined }
      : await requireResourceGroup(repos, filter.subscriptionId, filter.resourceGroup);
  return repos.resources.list({
    subscriptionId: subscription.id,
    ...(group === undefined ? {} : { resourceGroup: group.name }),
    ...(filter.type === undefined ? {} : { type: filter.type }),
  });
}

/** Deletes a resource and its principals; undefined when it does not exist (ARM answers 204). */
export async function deleteResource(
  repos: Repositories | Store,
  input: ResourceAddress & { type: string; clock: Clock },
): Promise<({ resource: Resource } & DeletionSummary) | undefined> {
  const type = addressableType(input.type);
  return atomically(repos, async (tx) => {
    const { subscription, group } = await requireResourceGroup(tx, input.subscriptionId, input.resourceGroup, { forWrite: true });
    const resource = await tx.resources.get(formatArmResourceId({ subscriptionId: subscription.id, resourceGroup: group.name, type, name: input.name }));
    if (resource?.type !== type) return undefined;
    const summary: DeletionSummary = { deletedResourceIds: [], deletedPrincipalIds: [], detachedFrom: [] };
    await deleteResourceIn(tx, resource, input.clock, summary, new Set([armKey(resource.id)]));
    return { resource, ...summary };
  });
}

/** True for a user-assigned identity (`Microsoft.ManagedIdentity/userAssignedIdentities`). */
export function isUami(resource: Resource): boolean {
  return resource.type === USER_ASSIGNED_IDENTITY_TYPE;
}

/** Deletes one resource inside `tx`: its system principal, and for an identity its principal and attachments. */
async function deleteResourceIn(tx: Repositories, resource: Resource, clock: Clock, summary: DeletionSummary, doomed: ReadonlySet<string>): Promise<void> {
  if (isUami(resource)) {
    const key = armKey(resource.id);
    for (const attachedId of await tx.resources.listAttachedTo(resource.id)) {
      const holder = await tx.resources.get(attachedId);
      if (holder === undefined) continue;
      await tx.resources.put({ ...holder, userAssignedIdentityIds: holder.userAssignedIdentityIds.filter((id) => armKey(id) !== key), updatedAt: clock.now() });
      if (!doomed.has(armKey(holder.id)) && !summary.detachedFrom.includes(holder.id)) summary.detachedFrom.push(holder.id);
    }
    const principal = await tx.servicePrincipals.getByManagedIdentityResource(resource.id, 'UserAssigned');
    if (principal !== undefined && (await deleteManagedIdentityPrincipal(tx, principal.objectId))) summary.deletedPrincipalIds.push(principal.objectId);
  }
  if (resource.systemPrincipalId !== null && (await deleteManagedIdentityPrincipal(tx, resource.systemPrincipalId))) {
    summary.deletedPrincipalIds.push(resource.systemPrincipalId);
  }
  // Any system principal recorded against this resource id (belt and braces: one could outlive a failed PUT).
  const stray = await tx.servicePrincipals.getByManagedIdentityResource(resource.id, 'SystemAssigned');
  if (stray !== undefined && (await deleteManagedIdentityPrincipal(tx, stray.objectId))) summary.deletedPrincipalIds.push(stray.objectId);
  // A host's registered keys die with it: a resource created again under the same id starts with none.
  await tx.hostCredentials.revokeByHost(resource.id, clock.now());
  if (await tx.resources.delete(resource.id)) summary.deletedResourceIds.push(resource.id);
}
