/**
 * Service principals: applications (non-managed callers with secrets or certificates) and the principals
 * behind managed identities. The management API shows them in Microsoft Graph's shape.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import { isGuid, newGuid } from '../shared/ids.js';
import type { ManagedIdentityType, Repositories, ServicePrincipal, Store } from '../store/types.js';
import { DirectoryErrors } from './errors.js';

/**
 * Runs `fn` atomically: in a new transaction when given the store, or directly when given a transaction's
 * repositories (the caller's transaction then commits or rolls back everything together).
 */
export function atomically<T>(repos: Repositories | Store, fn: (tx: Repositories) => Promise<T>): Promise<T> {
  return isStore(repos) ? repos.transaction(fn) : fn(repos);
}

function isStore(repos: Repositories | Store): repos is Store {
  return typeof (repos as Partial<Store>).transaction === 'function';
}

const MAX_DISPLAY_NAME = 256;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** True when `value` holds a C0 control character or DEL, which no display name may contain. */
export function hasControlCharacters(value: string): boolean {
  return CONTROL_CHARACTERS.test(value);
}

/** Checks a display name the way Graph does: 1-256 characters, no control characters. */
export function validateDisplayName(displayName: unknown): string {
  if (typeof displayName !== 'string' || displayName.trim() === '') {
    throw DirectoryErrors.badRequest("Property 'displayName' is required and must be a non-empty string.");
  }
  if (displayName.length > MAX_DISPLAY_NAME || hasControlCharacters(displayName)) {
    throw DirectoryErrors.badRequest(`Property 'displayName' must be at most ${String(MAX_DISPLAY_NAME)} characters without control characters.`);
  }
  return displayName;
}

export interface CreateApplicationPrincipalInput {
  tenantId: string;
  displayName: string;
  isDirectoryAdmin?: boolean;
  clock: Clock;
}

/** Creates an application service principal (new GUID object and client ids, no credentials yet). */
export async function createApplicationPrincipal(repos: Repositories | Store, input: CreateApplicationPrincipalInput): Promise<ServicePrincipal> {
  const displayName = validateDisplayName(input.displayName);
  return atomically(repos, async (tx) => {
    if ((await tx.tenants.get(input.tenantId)) === undefined) throw DirectoryErrors.badRequest(`Tenant '${input.tenantId}' does not exist.`);
    const principal: ServicePrincipal = {
      objectId: newGuid(),
      tenantId: input.tenantId,
      appId: newGuid(),
      displayName,
      kind: 'Application',
      managedIdentity: null,
      isDirectoryAdmin: input.isDirectoryAdmin ?? false,
      createdAt: input.clock.now(),
    };
    await tx.servicePrincipals.create(principal);
    return principal;
  });
}

export interface CreateManagedIdentityPrincipalInput {
  tenantId: string;
  /** The resource's name: Azure names a managed identity's principal after its resource. */
  displayName: string;
  type: ManagedIdentityType;
  /** ARM id of the user-assigned identity itself, or of the resource that owns the system-assigned one. */
  resourceId: string;
  clock: Clock;
}

/** Creates the service principal behind a system- or user-assigned managed identity. */
export async function createManagedIdentityPrincipal(repos: Repositories | Store, input: CreateManagedIdentityPrincipalInput): Promise<ServicePrincipal> {
  const principal: ServicePrincipal = {
    objectId: newGuid(),
    tenantId: input.tenantId,
    appId: newGuid(),
    displayName: input.displayName,
    kind: 'ManagedIdentity',
    managedIdentity: { type: input.type, resourceId: input.resourceId },
    isDirectoryAdmin: false,
    createdAt: input.clock.now(),
  };
  await repos.servicePrincipals.create(principal);
  return principal;
}

/**
 * Finds a managed identity's principal by principal (object) id, client (app) id or ARM resource id (of
 * the user-assigned identity, or of the resource whose system-assigned identity it is). Returns undefined
 * for anything that is not a managed identity.
 */
export async function findManagedIdentityPrincipal(repos: Repositories, idOrResourceId: string): Promise<ServicePrincipal | undefined> {
  let found: ServicePrincipal | undefined;
  if (isGuid(idOrResourceId)) {
    found = await findPrincipal(repos, idOrResourceId);
  } else if (idOrResourceId.startsWith('/')) {
    found =
      (await repos.servicePrincipals.getByManagedIdentityResource(idOrResourceId, 'UserAssigned')) ??
      (await repos.servicePrincipals.getByManagedIdentityResource(idOrResourceId, 'SystemAssigned'));
  }
  return found?.kind === 'ManagedIdentity' ? found : undefined;
}

/** Finds any principal by object id or client (app) id. */
export async function findPrincipal(repos: Repositories, objectOrAppId: string): Promise<ServicePrincipal | undefined> {
  if (!isGuid(objectOrAppId)) return undefined;
  return (await repos.servicePrincipals.getByObjectId(objectOrAppId)) ?? (await repos.servicePrincipals.getByAppId(objectOrAppId));
}

/**
 * Deletes an application principal and its credentials. Managed-identity principals are deleted with
 * their resource, never directly.
 */
export async function deleteApplicationPrincipal(repos: Repositories | Store, objectId: string): Promise<ServicePrincipal | undefined> {
  return atomically(repos, async (tx) => {
    const principal = await tx.servicePrincipals.getByObjectId(objectId);
    if (principal === undefined) return undefined;
    if (principal.kind !== 'Application') {
      throw DirectoryErrors.badRequest(
        `Service principal '${principal.objectId}' belongs to a managed identity; it is deleted with its resource (${principal.managedIdentity?.resourceId ?? 'unknown'}).`,
      );
    }
    await tx.credentials.deleteByApp(principal.appId);
    await tx.federatedCredentials.deleteByOwner(principal.objectId);
    await forgetPrincipalAccess(tx, principal);
    await tx.servicePrincipals.delete(principal.objectId);
    return principal;
  });
}

/** Deletes a managed identity's principal (used when its resource or identity goes away). */
export async function deleteManagedIdentityPrincipal(tx: Repositories, objectId: string): Promise<boolean> {
  const principal = await tx.servicePrincipals.getByObjectId(objectId);
  if (principal === undefined) return false;
  // Managed identities have no client credentials, but never leave any behind.
  await tx.credentials.deleteByApp(principal.appId);
  await tx.federatedCredentials.deleteByOwner(principal.objectId);
  await tx.federationLinks.delete(principal.objectId);
  await forgetPrincipalAccess(tx, principal);
  return tx.servicePrincipals.delete(principal.objectId);
}

/**
 * Deletes a principal's role assignments and group memberships and bumps its tenant's RBAC version, in the
 * caller's transaction. Azure leaves such assignments behind as orphans ("Identity not found"); openmsi does
 * not, so that nothing can ever grant to a deleted id (or to a new principal that reused it).
 */
export async function forgetPrincipalAccess(tx: Repositories, principal: Pick<ServicePrincipal, 'objectId' | 'tenantId'>): Promise<void> {
  await tx.roleAssignments.deleteByPrincipal(principal.objectId);
  await tx.groups.removeMemberEverywhere(principal.objectId);
  await tx.rbacVersions.bump(principal.tenantId);
}

/** Azure's service principal name for a managed identity: a hash of its lower-cased resource id. */
export function managedIdentityServicePrincipalName(resourceId: string): string {
  return `https://identity.azure.net/${createHash('sha256').update(resourceId.toLowerCase(), 'utf8').digest('base64')}`;
}

/** Graph's `servicePrincipalNames` and `alternativeNames` of a principal (what `$filter` can match too). */
export function principalNames(sp: ServicePrincipal): { servicePrincipalNames: string[]; alternativeNames: string[] } {
  const mi = sp.managedIdentity;
  return {
    servicePrincipalNames: mi === null ? [sp.appId] : [sp.appId, managedIdentityServicePrincipalName(mi.resourceId)],
    alternativeNames: mi === null ? [] : [mi.type === 'UserAssigned' ? 'isExplicit=True' : 'isExplicit=False', mi.resourceId],
  };
}
