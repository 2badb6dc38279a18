/**
 * Key Vault vaults (`Microsoft.KeyVault/vaults`) with the resource provider's semantics: PUT/PATCH, soft
 * delete with a retention fixed at creation, recovery (`createMode: "recover"`), purge (refused under purge
 * protection), and access-policy edits (`accessPolicies/{add|replace|remove}`).
 *
 * Vault names are DNS labels (`https://{name}.{vaultDomain}/`), so they are unique in the installation, not
 * per group: a name held by another vault, active or soft-deleted, is a conflict, as Azure's global
 * namespace makes it. Every change goes through `store.vaults`, which publishes the vault's id on
 * `VAULT_CHANNEL` so the data plane reloads its access model.
 */
import type { Clock } from '../shared/clock.js';
import { armKey, formatArmResourceId, isGuid, newGuid } from '../shared/ids.js';
import { KEY_PERMISSIONS, SECRET_PERMISSIONS, VAULT_NAME_PATTERN } from '../vault/contracts.js';
import type { AccessPolicyEntry, Repositories, Store, Subscription, Vault, VaultProperties } from '../store/types.js';
import { DirectoryErrors } from './errors.js';
import { atomically } from './principals.js';
import { normalizeLocation, requireSubscription, validateTags } from './arm-common.js';

export const VAULT_TYPE = 'Microsoft.KeyVault/vaults';
export const DELETED_VAULT_TYPE = 'Microsoft.KeyVault/deletedVaults';

const DAY_MS = 86_400_000;
export const DEFAULT_RETENTION_DAYS = 90;
const MIN_RETENTION_DAYS = 7;
/** Azure's limit of access-policy entries per vault. */
export const MAX_ACCESS_POLICIES = 1024;
const PERMISSION_KINDS = ['keys', 'secrets', 'certificates', 'storage'] as const;
type PermissionKind = (typeof PERMISSION_KINDS)[number];

// ---------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------

/** Azure's vault-name rule, or `VaultNameNotValid`. */
export function validateVaultName(name: unknown): string {
  if (typeof name !== 'string' || !VAULT_NAME_PATTERN.test(name)) throw DirectoryErrors.vaultNameNotValid(String(name));
  return name;
}

const bad = (message: string) => DirectoryErrors.vaultBadRequest(message);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalBoolean(properties: Record<string, unknown>, name: string): boolean | undefined {
  const value = properties[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw bad(`The property "${name}" must be true or false.`);
  return value;
}

function validateSku(sku: unknown): VaultProperties['sku'] {
  if (!isObject(sku)) throw bad('The parameter properties.sku is required: {"family": "A", "name": "standard" | "premium"}.');
  const family = sku['family'] ?? 'A';
  const name = typeof sku['name'] === 'string' ? sku['name'].toLowerCase() : undefined;
  if (family !== 'A' || (name !== 'standard' && name !== 'premium')) {
    throw bad('The sku is invalid: the family must be "A" and the name "standard" or "premium".');
  }
  return { family: 'A', name };
}

function validateRetention(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_RETENTION_DAYS || value > DEFAULT_RETENTION_DAYS) {
    throw bad(
      `The property "softDeleteRetentionInDays" must be a whole number of days from ${String(MIN_RETENTION_DAYS)} to ${String(DEFAULT_RETENTION_DAYS)}.`,
    );
  }
  return value;
}

function validatePublicNetworkAccess(value: unknown): VaultProperties['publicNetworkAccess'] {
  if (value === undefined || value === null) return 'Enabled';
  if (typeof value === 'string' && /^enabled$/i.test(value)) return 'Enabled';
  if (typeof value === 'string' && /^disabled$/i.test(value)) return 'Disabled';
  throw bad('The property "publicNetworkAccess" must be "Enabled" or "Disabled".');
}

/** One permission list, lower-cased and de-duplicated; secrets and keys limited to Azure's names (`all` expanded). */
function validatePermissions(kind: PermissionKind, value: unknown, at: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((p) => typeof p !== 'string' || p.length === 0 || p.length > 64)) {
    throw bad(`Invalid value found at ${at}.permissions.${kind}: a list of permission names is expected.`);
  }
  const names = [...new Set((value as string[]).map((p) => p.toLowerCase()))];
  if (kind !== 'secrets' && kind !== 'keys') return names;
  const allowed: readonly string[] = kind === 'secrets' ? SECRET_PERMISSIONS : KEY_PERMISSIONS;
  const unknown = names.filter((p) => p !== 'all' && !allowed.includes(p));
  if (unknown.length > 0) {
    const noun = kind === 'secrets' ? 'secret' : 'key';
    throw bad(`Invalid value found at ${at}.permissions.${kind}: '${unknown[0] ?? ''}'. The ${noun} permissions are: all, ${allowed.join(', ')}.`);
  }
  // `all` is stored as the names it stands for, so the data plane checks one list.
  return names.includes('all') ? [...allowed] : names;
}

/** Access-policy entries as ARM takes them: `objectId` and `tenantId` GUIDs, `applicationId` optional. */
export function validateAccessPolicies(value: unknown, field = 'properties.accessPolicies'): AccessPolicyEntry[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw bad(`Invalid value found at ${field}: a list of access policy entries is expected.`);
  if (value.length > MAX_ACCESS_POLICIES) throw bad(`A vault can have at most ${String(MAX_ACCESS_POLICIES)} access policy entries.`);
  return value.map((entry: unknown, i) => {
    const at = `${field}[${String(i)}]`;
    if (!isObject(entry)) throw bad(`Invalid value found at ${at}: an access policy entry is expected.`);
    const { tenantId, objectId, applicationId, permissions } = entry;
    if (typeof tenantId !== 'string' || !isGuid(tenantId)) throw bad(`Invalid value found at ${at}.tenantId: a GUID is expected.`);
    if (typeof objectId !== 'string' || !isGuid(objectId)) throw bad(`Invalid value found at ${at}.objectId: a GUID is expected.`);
    if (applicationId !== undefined && applicationId !== null && (typeof applicationId !== 'string' || !isGuid(applicationId))) {
      throw bad(`Invalid value found at ${at}.applicationId: a GUID is expected.`);
    }
    if (!isObject(permissions)) throw bad(`Invalid value found at ${at}.permissions: an object is expected.`);
    const out: AccessPolicyEntry = {
      tenantId: tenantId.toLowerCase(),
      objectId: objectId.toLowerCase(),
      permissions: {
        keys: validatePermissions('keys', permissions['keys'], at),
        secrets: validatePermissions('secrets', permissions['secrets'], at),
        certificates: validatePermissions('certificates', permissions['certificates'], at),
        storage: validatePermissions('storage', permissions['storage'], at),
      },
    };
    if (typeof applicationId === 'string') out.applicationId = applicationId.toLowerCase();
    return out;
  });
}

// ---------------------------------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------------------------------

export interface VaultAddress {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
}

function vaultResourceId(subscriptionId: string, resourceGroup: string, name: string): string {
  return formatArmResourceId({ subscriptionId, resourceGroup, type: VAULT_TYPE, name });
}

/** The active vault at the address, or undefined (another group's vault of that name is not it). */
async function findActive(repos: Repositories, address: VaultAddress): Promise<Vault | undefined> {
  const vault = await repos.vaults.getByName(address.name);
  if (vault === undefined || vault.deletedAt !== null) return undefined;
  const wanted = armKey(vaultResourceId(address.subscriptionId, address.resourceGroup, address.name));
  return armKey(vault.resourceId) === wanted ? vault : undefined;
}

/** The active vault, or ARM's `ResourceNotFound` (or `SubscriptionNotFound`/`ResourceGroupNotFound`). */
export async function getVault(repos: Repositories, address: VaultAddress): Promise<Vault> {
  const subscription = await requireSubscription(repos, address.subscriptionId);
  const group = await repos.resourceGroups.get(subscription.id, address.resourceGroup);
  if (group === undefined) throw DirectoryErrors.resourceGroupNotFound(address.resourceGroup);
  const vault = await findActive(repos, { ...address, subscriptionId: subscription.id });
  if (vault === undefined) throw DirectoryErrors.resourceNotFound(VAULT_TYPE, address.name, group.name);
  return vault;
}

/** Active vaults of a subscription, or of one group (`ResourceGroupNotFound` when it does not exist). */
export async function listVaults(repos: Repositories, filter: { subscriptionId: string; resourceGroup?: string }): Promise<Vault[]> {
  const subscription = await requireSubscription(repos, filter.subscriptionId);
  if (filter.resourceGroup === undefined) return repos.vaults.list({ subscriptionId: subscription.id });
  const group = await repos.resourceGroups.get(subscription.id, filter.resourceGroup);
  if (group === undefined) throw DirectoryErrors.resourceGroupNotFound(filter.resourceGroup);
  return repos.vaults.list({ subscriptionId: subscription.id, resourceGroup: group.name });
}

/** Soft-deleted vaults of a subscription. */
export async function listDeletedVaults(repos: Repositories, subscriptionId: string): Promise<Vault[]> {
  const subscription = await requireSubscription(repos, subscriptionId);
  return repos.vaults.list({ subscriptionId: subscription.id, deleted: true });
}

/** The soft-deleted vault of this name in the subscription and location, or `ResourceNotFound`. */
export async function getDeletedVault(repos: Repositories, input: { subscriptionId: string; location: string; name: string }): Promise<Vault> {
  const subscription = await requireSubscription(repos, input.subscriptionId);
  const vault = await repos.vaults.getByName(input.name);
  const location = input.location.replace(/\s+/g, '').toLowerCase();
  if (vault?.deletedAt == null || vault.subscriptionId !== subscription.id || vault.location !== location) {
    throw DirectoryErrors.resourceNotFound(`Microsoft.KeyVault/locations/${input.location}/deletedVaults`, input.name, '<null>');
  }
  return vault;
}

/** ARM's `checkNameAvailability`: invalid, taken (active or soft-deleted, anywhere in the installation) or free. */
export async function checkVaultNameAvailability(
  repos: Repositories,
  name: unknown,
): Promise<{ nameAvailable: boolean; reason?: 'AccountNameInvalid' | 'AlreadyExists'; message?: string }> {
  if (typeof name !== 'string' || !VAULT_NAME_PATTERN.test(name)) {
    return { nameAvailable: false, reason: 'AccountNameInvalid', message: DirectoryErrors.vaultNameNotValid(String(name)).message };
  }
  if ((await repos.vaults.getByName(name)) === undefined) return { nameAvailable: true };
  return { nameAvailable: false, reason: 'AlreadyExists', message: `The vault name '${name}' is already in use.` };
}

// ---------------------------------------------------------------------------------------------------
// PUT / PATCH
// ---------------------------------------------------------------------------------------------------

export interface PutVaultInput extends VaultAddress {
  /** Defaults to the group's location. */
  location?: unknown;
  tags?: unknown;
  /** ARM's `properties`, as sent. */
  properties: unknown;
  clock: Clock;
  /** See {@link PermissionModelGuard}. */
  permissionModelChange: PermissionModelGuard;
}

/**
 * Called inside a vault write's transaction when the write would change an existing vault's permission model
 * (`enableRbacAuthorization`, either way); throws to refuse the write. Azure requires unrestricted
 * `Microsoft.Authorization/roleAssignments/write` for that change ("Changing the permission model requires
 * unrestricted 'Microsoft.Authorization/roleAssignments/write' permission, which is part of the Owner and User
 * Access Administrator roles": learn.microsoft.com/azure/key-vault/general/rbac-guide, and rbac-migration),
 * because on an access-policy vault whoever may write the vault may grant itself data access
 * (learn.microsoft.com/azure/key-vault/general/rbac-access-policy). The management API checks the caller;
 * trusted in-process callers (`openmsi dev`'s seed) pass {@link ALLOW_PERMISSION_MODEL_CHANGE}. Creating a
 * vault, with either model, is not a change: Azure checks on change only, and a new vault holds nothing.
 */
export type PermissionModelGuard = (change: { from: boolean; to: boolean }) => void;

/** The guard of a trusted in-process caller: every permission-model change is allowed. */
export const ALLOW_PERMISSION_MODEL_CHANGE: PermissionModelGuard = () => undefined;

export type PutVaultOutcome = 'created' | 'updated' | 'recovered';

/**
 * ARM PUT: creates the vault, replaces its definition (PUT semantics: what is not sent takes its default, but
 * the retention cannot change and purge protection cannot be turned off), or, with `createMode: "recover"`,
 * recovers the soft-deleted vault of that name into its group.
 */
export async function putVault(repos: Repositories | Store, input: PutVaultInput): Promise<{ vault: Vault; outcome: PutVaultOutcome }> {
  const name = validateVaultName(input.name);
  const tags = validateTags(input.tags);
  const requestedLocation = input.location === undefined || input.location === null ? undefined : normalizeLocation(input.location);
  if (!isObject(input.properties)) throw bad('The parameter properties is required: {"tenantId": ..., "sku": {...}}.');
  const properties = input.properties;
  const createMode = typeof properties['createMode'] === 'string' ? properties['createMode'].toLowerCase() : 'default';
  if (createMode !== 'default' && createMode !== 'recover') throw bad('The property "createMode" must be "default" or "recover".');

  return atomically(repos, async (tx) => {
    const subscription = await requireSubscription(tx, input.subscriptionId, { forWrite: true });
    const group = await tx.resourceGroups.get(subscription.id, input.resourceGroup);
    if (group === undefined) throw DirectoryErrors.resourceGroupNotFound(input.resourceGroup);
    const resourceId = vaultResourceId(subscription.id, group.name, name);
    const holder = await tx.vaults.getByName(name);
    const now = input.clock.now();

    if (createMode === 'recover') {
      requireTenant(properties['tenantId'], subscription);
      if (holder?.deletedAt == null) {
        throw DirectoryErrors.resourceNotFound(DELETED_VAULT_TYPE, name, group.name);
      }
      if (armKey(holder.resourceId) !== armKey(resourceId)) throw DirectoryErrors.vaultDeletedConflict();
      if (!(await tx.vaults.recover(holder.id, now))) throw DirectoryErrors.resourceNotFound(DELETED_VAULT_TYPE, name, group.name);
      const recovered: Vault = { ...holder, deletedAt: null, scheduledPurgeAt: null, updatedAt: now };
      return { vault: recovered, outcome: 'recovered' as const };
    }

    if (holder !== undefined) {
      if (holder.deletedAt !== null) throw DirectoryErrors.vaultDeletedConflict();
      if (armKey(holder.resourceId) !== armKey(resourceId)) throw DirectoryErrors.vaultAlreadyExists(name);
    }
    const existing = holder;
    const location = requestedLocation ?? existing?.location ?? group.location;
    if (existing !== undefined && existing.location !== location) {
      throw DirectoryErrors.resourceLocationConflict(existing.name, existing.location, location, group.name);
    }
    const vaultProperties = buildProperties(properties, subscription, existing?.properties);
    if (existing !== undefined && existing.properties.enableRbacAuthorization !== vaultProperties.enableRbacAuthorization) {
      input.permissionModelChange({ from: existing.properties.enableRbacAuthorization, to: vaultProperties.enableRbacAuthorization });
    }
    const vault: Vault = {
      id: existing?.id ?? newGuid(),
      resourceId: existing?.resourceId ?? resourceId,
      name: existing?.name ?? name,
      tenantId: subscription.tenantId,
      subscriptionId: subscription.id,
      resourceGroup: group.name,
      location,
      tags,
      properties: vaultProperties,
      deletedAt: null,
      scheduledPurgeAt: null,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    const outcome = await tx.vaults.put(vault);
    // The name was taken between the read and the write (another replica): the same answer as above.
    if (outcome === 'conflict') throw DirectoryErrors.vaultAlreadyExists(name);
    return { vault, outcome };
  });
}

function requireTenant(tenantId: unknown, subscription: Subscription): string {
  if (typeof tenantId !== 'string' || !isGuid(tenantId)) throw bad('The parameter properties.tenantId is required and must be a GUID.');
  if (tenantId.toLowerCase() !== subscription.tenantId.toLowerCase()) {
    throw bad(
      `The tenant '${tenantId}' is not the tenant of subscription '${subscription.id}' ('${subscription.tenantId}'); a vault must use its subscription's tenant.`,
    );
  }
  return subscription.tenantId;
}

/** The stored properties of a PUT body; `existing` when the vault exists (its fixed properties are checked). */
function buildProperties(p: Record<string, unknown>, subscription: Subscription, existing: VaultProperties | undefined): VaultProperties {
  const tenantId = requireTenant(p['tenantId'], subscription);
  const sku = validateSku(p['sku']);
  if (p['enableSoftDelete'] === false) {
    throw bad('The property "enableSoftDelete" cannot be set to false: soft delete is always on.');
  }
  const retention = validateRetention(p['softDeleteRetentionInDays']);
  if (existing !== undefined && retention !== undefined && retention !== existing.softDeleteRetentionInDays) {
    throw bad(`The property "softDeleteRetentionInDays" cannot be changed once the vault exists (it is ${String(existing.softDeleteRetentionInDays)}).`);
  }
  const purgeProtection = optionalBoolean(p, 'enablePurgeProtection');
  if (purgeProtection === false && (existing?.enablePurgeProtection === true || existing === undefined)) {
    throw bad('The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection for a vault is an irreversible action.');
  }
  return {
    tenantId,
    sku,
    // Azure's default since API 2026-02-01: new vaults use RBAC unless told otherwise; an existing vault keeps
    // its model unless the write names one ("Existing vaults keep their current access control model unless you
    // explicitly change enableRbacAuthorization": learn.microsoft.com/azure/key-vault/general/access-control-default).
    enableRbacAuthorization: optionalBoolean(p, 'enableRbacAuthorization') ?? existing?.enableRbacAuthorization ?? true,
    accessPolicies: validateAccessPolicies(p['accessPolicies']),
    enableSoftDelete: true,
    softDeleteRetentionInDays: existing?.softDeleteRetentionInDays ?? retention ?? DEFAULT_RETENTION_DAYS,
    enablePurgeProtection: existing?.enablePurgeProtection === true ? true : (purgeProtection ?? null),
    publicNetworkAccess: validatePublicNetworkAccess(p['publicNetworkAccess']),
  };
}

export interface PatchVaultInput extends VaultAddress {
  tags?: unknown;
  properties?: unknown;
  clock: Clock;
  /** See {@link PermissionModelGuard}. */
  permissionModelChange: PermissionModelGuard;
}

/** ARM PATCH: the given tags replace the vault's, the given properties replace theirs; the rest is kept. */
export async function patchVault(repos: Repositories | Store, input: PatchVaultInput): Promise<Vault> {
  if (input.properties !== undefined && input.properties !== null && !isObject(input.properties)) throw bad('The parameter properties must be an object.');
  return atomically(repos, async (tx) => {
    const existing = await getVault(tx, input);
    const current = existing.properties;
    const patch = isObject(input.properties) ? input.properties : {};
    if (typeof patch['createMode'] === 'string' && patch['createMode'].toLowerCase() === 'recover') {
      throw bad('createMode "recover" is a PUT of the deleted vault, not a PATCH.');
    }
    const merged: Record<string, unknown> = {
      tenantId: current.tenantId,
      sku: current.sku,
      enableRbacAuthorization: current.enableRbacAuthorization,
      accessPolicies: current.accessPolicies,
      softDeleteRetentionInDays: current.softDeleteRetentionInDays,
      enablePurgeProtection: current.enablePurgeProtection,
      publicNetworkAccess: current.publicNetworkAccess,
    };
    for (const [key, value] of Object.entries(patch)) if (value !== undefined && value !== null) merged[key] = value;
    const { vault } = await putVault(tx, {
      subscriptionId: existing.subscriptionId,
      resourceGroup: existing.resourceGroup,
      name: existing.name,
      location: existing.location,
      tags: input.tags === undefined ? existing.tags : input.tags,
      properties: merged,
      clock: input.clock,
      permissionModelChange: input.permissionModelChange,
    });
    return vault;
  });
}

// ---------------------------------------------------------------------------------------------------
// Access policies
// ---------------------------------------------------------------------------------------------------

export type AccessPolicyOperation = 'add' | 'replace' | 'remove';

/** `add`, `replace` or `remove` (case-insensitive), or undefined. */
export function accessPolicyOperation(value: string): AccessPolicyOperation | undefined {
  const lower = value.toLowerCase();
  return lower === 'add' || lower === 'replace' || lower === 'remove' ? lower : undefined;
}

const entryKey = (e: AccessPolicyEntry) => `${e.tenantId}|${e.objectId}|${e.applicationId ?? ''}`;

const union = (a: readonly string[], b: readonly string[]) => [...new Set([...a, ...b])];

/**
 * Azure's `accessPolicies/{operationKind}` merge, entry by entry (matched on tenant, object and application
 * id): `add` unions the permissions into the matching entry (or appends the entry), `replace` makes the
 * matching entry's permissions the given ones (or appends it), `remove` takes the given permissions away
 * and drops an entry left with none (an entry given with no permissions at all is dropped whole).
 */
export function mergeAccessPolicies(
  current: readonly AccessPolicyEntry[],
  changes: readonly AccessPolicyEntry[],
  operation: AccessPolicyOperation,
): AccessPolicyEntry[] {
  const out = current.map((e) => ({ ...e, permissions: { ...e.permissions } }));
  for (const change of changes) {
    const index = out.findIndex((e) => entryKey(e) === entryKey(change));
    const found = index === -1 ? undefined : out[index];
    if (operation === 'remove') {
      if (found === undefined) continue;
      const wholeEntry = PERMISSION_KINDS.every((k) => change.permissions[k].length === 0);
      for (const k of PERMISSION_KINDS) found.permissions[k] = found.permissions[k].filter((p) => !change.permissions[k].includes(p));
      if (wholeEntry || PERMISSION_KINDS.every((k) => found.permissions[k].length === 0)) out.splice(index, 1);
      continue;
    }
    if (found === undefined) {
      out.push({ ...change, permissions: { ...change.permissions } });
      continue;
    }
    for (const k of PERMISSION_KINDS)
      found.permissions[k] = operation === 'add' ? union(found.permissions[k], change.permissions[k]) : [...change.permissions[k]];
  }
  if (out.length > MAX_ACCESS_POLICIES) throw bad(`A vault can have at most ${String(MAX_ACCESS_POLICIES)} access policy entries.`);
  return out;
}

/** Applies an access-policy edit to the active vault; the vault as stored afterwards. */
export async function updateAccessPolicies(
  repos: Repositories | Store,
  input: VaultAddress & { operation: AccessPolicyOperation; accessPolicies: unknown; clock: Clock },
): Promise<Vault> {
  const changes = validateAccessPolicies(input.accessPolicies);
  return atomically(repos, async (tx) => {
    const existing = await getVault(tx, input);
    const accessPolicies = mergeAccessPolicies(existing.properties.accessPolicies, changes, input.operation);
    const vault: Vault = { ...existing, properties: { ...existing.properties, accessPolicies }, updatedAt: input.clock.now() };
    const outcome = await tx.vaults.put(vault);
    if (outcome === 'conflict') throw DirectoryErrors.vaultAlreadyExists(existing.name);
    return vault;
  });
}

// ---------------------------------------------------------------------------------------------------
// Delete, purge
// ---------------------------------------------------------------------------------------------------

/** When a vault deleted at `deletedAt` is purged: its retention (fixed at creation) later. */
export function scheduledPurgeTime(vault: Vault, deletedAt: number): number {
  return deletedAt + vault.properties.softDeleteRetentionInDays * DAY_MS;
}

/** Soft-deletes the active vault; undefined when there is none (ARM answers 204). */
export async function deleteVault(repos: Repositories | Store, input: VaultAddress & { clock: Clock }): Promise<Vault | undefined> {
  return atomically(repos, async (tx) => {
    const subscription = await requireSubscription(tx, input.subscriptionId, { forWrite: true });
    const group = await tx.resourceGroups.get(subscription.id, input.resourceGroup);
    if (group === undefined) throw DirectoryErrors.resourceGroupNotFound(input.resourceGroup);
    const vault = await findActive(tx, { ...input, subscriptionId: subscription.id });
    if (vault === undefined) return undefined;
    return softDeleteIn(tx, vault, input.clock.now());
  });
}

/** Soft-deletes every active vault of a group (its deletion does, as in Azure); the vaults deleted. */
export async function softDeleteGroupVaults(tx: Repositories, input: { subscriptionId: string; resourceGroup: string; clock: Clock }): Promise<Vault[]> {
  const deleted: Vault[] = [];
  const now = input.clock.now();
  for (const vault of await tx.vaults.list({ subscriptionId: input.subscriptionId, resourceGroup: input.resourceGroup })) {
    const done = await softDeleteIn(tx, vault, now);
    if (done !== undefined) deleted.push(done);
  }
  return deleted;
}

async function softDeleteIn(tx: Repositories, vault: Vault, now: number): Promise<Vault | undefined> {
  const scheduledPurgeAt = scheduledPurgeTime(vault, now);
  if (!(await tx.vaults.softDelete(vault.id, now, scheduledPurgeAt))) return undefined;
  return { ...vault, deletedAt: now, scheduledPurgeAt, updatedAt: now };
}

/**
 * Purges a soft-deleted vault and all its secrets. Under purge protection it is refused until its scheduled
 * purge date (the automatic purge then does it), as in Azure.
 */
export async function purgeDeletedVault(
  repos: Repositories | Store,
  input: { subscriptionId: string; location: string; name: string; clock: Clock },
): Promise<Vault> {
  return atomically(repos, async (tx) => {
    const vault = await getDeletedVault(tx, input);
    if (vault.properties.enablePurgeProtection === true && input.clock.now() < (vault.scheduledPurgeAt ?? 0)) throw DirectoryErrors.purgeProtected();
    if (!(await tx.vaults.purge(vault.id))) {
      throw DirectoryErrors.resourceNotFound(`Microsoft.KeyVault/locations/${input.location}/deletedVaults`, input.name, '<null>');
    }
    return vault;
  });
}
