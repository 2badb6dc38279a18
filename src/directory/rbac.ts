/**
 * RBAC objects of the directory: role assignments, custom role definitions and deny assignments, validated
 * and refused the way ARM's Microsoft.Authorization provider does (codes in ./errors.ts). Every write bumps
 * the tenant's RBAC version in its own transaction, and nothing is written when a request is refused.
 * Built-in role definitions come from code (the caller passes them); only custom roles are stored.
 */
import type { Clock } from '../shared/clock.js';
import { isGuid, newGuid } from '../shared/ids.js';
import type { DenyAssignment, Permission, PrincipalType, RoleDefinition } from '../rbac/contracts.js';
import { actionPatternError } from '../rbac/actions.js';
import { parseScope, scopeContains, scopeError, type ParsedScope } from '../rbac/scopes.js';
import type { CustomRoleDefinition, Group, Repositories, ServicePrincipal, Store, StoredDenyAssignment, StoredRoleAssignment, User } from '../store/types.js';
import { DirectoryErrors } from './errors.js';
import { atomically } from './principals.js';

/** Azure's limits (fixed there; overridable here so that tests can reach them). */
export interface RbacLimits {
  /** Role assignments at a subscription and every scope below it. */
  assignmentsPerSubscription: number;
  customRolesPerTenant: number;
}

export const AZURE_RBAC_LIMITS: RbacLimits = { assignmentsPerSubscription: 4000, customRolesPerTenant: 5000 };

export interface RbacDirectoryOptions {
  builtInRoles: readonly RoleDefinition[];
  clock: Clock;
  limits?: RbacLimits;
}

const PRINCIPAL_TYPES: readonly PrincipalType[] = ['User', 'Group', 'ServicePrincipal', 'ForeignGroup', 'Device'];
const ROLE_DEFINITION_SEGMENT = /\/providers\/Microsoft\.Authorization\/roleDefinitions\/([^/]+)$/i;

// ---------------------------------------------------------------------------------------------------
// Scopes, roles, principals
// ---------------------------------------------------------------------------------------------------

/**
 * Validates an RBAC scope for `tenantId`: well-formed (ARM's `MissingSubscription` when it is not under the
 * root, a management group or a subscription; `InvalidScope` with the reason otherwise), and its subscription
 * exists in the tenant (`SubscriptionNotFound`). Resource groups and resources need not exist (a role may be
 * assigned before the resource is created, as in Azure templates).
 */
export async function validateScope(repos: Repositories, tenantId: string, scope: unknown): Promise<ParsedScope> {
  if (typeof scope !== 'string') throw DirectoryErrors.missingSubscription();
  const reason = scopeError(scope);
  if (reason !== undefined) {
    if (!/^\/(subscriptions|providers)(\/|$)/i.test(scope) && scope !== '/') throw DirectoryErrors.missingSubscription();
    throw DirectoryErrors.invalidScope(scope, reason);
  }
  const parsed = parseScope(scope);
  if (parsed.subscriptionId !== undefined) {
    const subscription = isGuid(parsed.subscriptionId) ? await repos.subscriptions.get(parsed.subscriptionId) : undefined;
    if (subscription === undefined || subscription.tenantId.toLowerCase() !== tenantId.toLowerCase()) {
      throw DirectoryErrors.subscriptionNotFound(parsed.subscriptionId);
    }
  }
  return parsed;
}

/** True when `role` may be assigned at `scope`: one of its assignable scopes is the scope or an ancestor. */
export function assignableAt(role: Pick<RoleDefinition, 'assignableScopes'>, scope: string): boolean {
  return role.assignableScopes.some((s) => scopeContains(s, scope));
}

/** The GUID in a role definition id given as a GUID or an ARM id (`…/providers/Microsoft.Authorization/roleDefinitions/{guid}`). */
export function roleDefinitionGuid(idOrArmId: string): string | undefined {
  const guid = ROLE_DEFINITION_SEGMENT.exec(idOrArmId)?.[1] ?? idOrArmId;
  return isGuid(guid) ? guid.toLowerCase() : undefined;
}

/** A role definition visible in the tenant (built-in or its own custom role) by GUID or ARM id. */
export async function findRoleDefinition(
  repos: Repositories,
  builtInRoles: readonly RoleDefinition[],
  tenantId: string,
  idOrArmId: string,
): Promise<RoleDefinition | undefined> {
  const guid = roleDefinitionGuid(idOrArmId);
  if (guid === undefined) return undefined;
  return builtInRoles.find((r) => r.id.toLowerCase() === guid) ?? (await repos.roleDefinitions.get(tenantId, guid));
}

/** A role definition by GUID, ARM id or (case-insensitive) role name, as `az role assignment create --role` takes it. */
export async function resolveRoleDefinition(
  repos: Repositories,
  builtInRoles: readonly RoleDefinition[],
  tenantId: string,
  nameOrId: string,
): Promise<RoleDefinition | undefined> {
  const byId = await findRoleDefinition(repos, builtInRoles, tenantId, nameOrId);
  if (byId !== undefined) return byId;
  const lower = nameOrId.toLowerCase();
  return builtInRoles.find((r) => r.roleName.toLowerCase() === lower) ?? (await repos.roleDefinitions.getByName(tenantId, nameOrId));
}

/** A principal an assignment or membership may name: a service principal, a user or a group of the tenant. */
export type DirectoryObject = { kind: 'servicePrincipal'; principal: ServicePrincipal } | { kind: 'user'; user: User } | { kind: 'group'; group: Group };

export async function findDirectoryObject(repos: Repositories, tenantId: string, objectId: string): Promise<DirectoryObject | undefined> {
  if (!isGuid(objectId)) return undefined;
  const sameTenant = (t: string) => t.toLowerCase() === tenantId.toLowerCase();
  const principal = await repos.servicePrincipals.getByObjectId(objectId);
  if (principal !== undefined) return sameTenant(principal.tenantId) ? { kind: 'servicePrincipal', principal } : undefined;
  const user = await repos.users.getByObjectId(objectId);
  if (user !== undefined) return sameTenant(user.tenantId) ? { kind: 'user', user } : undefined;
  const group = await repos.groups.get(objectId);
  return group !== undefined && group.tenantId === tenantId.toLowerCase() ? { kind: 'group', group } : undefined;
}

export function principalTypeOf(object: DirectoryObject): PrincipalType {
  return object.kind === 'group' ? 'Group' : object.kind === 'user' ? 'User' : 'ServicePrincipal';
}

// ---------------------------------------------------------------------------------------------------
// Role assignments
// ---------------------------------------------------------------------------------------------------

export interface PutRoleAssignmentInput {
  tenantId: string;
  /** The assignment's GUID (ARM's `name`); a new one when omitted. */
  id?: string;
  scope: unknown;
  roleDefinitionId: unknown;
  principalId: unknown;
  principalType?: unknown;
  description?: unknown;
  condition?: unknown;
  conditionVersion?: unknown;
  /** Object id of the caller. */
  by: string;
}

/**
 * Creates a role assignment (or, for an existing id with the same scope, role and principal, updates its
 * description, as ARM allows). Refuses, writing nothing: a condition (not supported), a malformed scope, an
 * unknown role, a role not assignable at the scope, an unknown principal or a mismatched principal type, a
 * duplicate (scope, role, principal), and the 4,001st assignment in a subscription.
 */
export async function putRoleAssignment(
  store: Store | Repositories,
  options: RbacDirectoryOptions,
  input: PutRoleAssignmentInput,
): Promise<{ assignment: StoredRoleAssignment; created: boolean }> {
  const id = input.id ?? newGuid();
  if (!isGuid(id)) throw DirectoryErrors.invalidRoleAssignmentId(id);
  if ((input.condition !== undefined && input.condition !== null) || (input.conditionVersion !== undefined && input.conditionVersion !== null)) {
    throw DirectoryErrors.conditionNotSupported();
  }
  if (typeof input.roleDefinitionId !== 'string' || input.roleDefinitionId === '') {
    throw DirectoryErrors.invalidRoleAssignmentRequest("'roleDefinitionId' is required");
  }
  if (typeof input.principalId !== 'string' || input.principalId === '') throw DirectoryErrors.invalidRoleAssignmentRequest("'principalId' is required");
  if (input.principalType !== undefined && input.principalType !== null && !PRINCIPAL_TYPES.includes(input.principalType as PrincipalType)) {
    throw DirectoryErrors.invalidRoleAssignmentRequest(`'principalType' must be one of ${PRINCIPAL_TYPES.join(', ')}`);
  }
  if (input.description !== undefined && input.description !== null && (typeof input.description !== 'string' || input.description.length > 2048)) {
    throw DirectoryErrors.invalidRoleAssignmentRequest("'description' must be a string of at most 2048 characters");
  }
  const roleDefinitionId = input.roleDefinitionId;
  const principalId = input.principalId;
  const description = typeof input.description === 'string' ? input.description : null;
  const limits = options.limits ?? AZURE_RBAC_LIMITS;

  return atomically(store, async (tx) => {
    const scope = await validateScope(tx, input.tenantId, input.scope);
    const role = await findRoleDefinition(tx, options.builtInRoles, input.tenantId, roleDefinitionId);
    if (role === undefined) throw DirectoryErrors.roleDefinitionDoesNotExist(roleDefinitionGuid(roleDefinitionId) ?? roleDefinitionId);
    if (!assignableAt(role, scope.scope)) throw DirectoryErrors.roleDefinitionNotAssignableAtScope(role.roleName, scope.scope);
    const object = await findDirectoryObject(tx, input.tenantId, principalId);
    if (object === undefined) throw DirectoryErrors.rbacPrincipalNotFound(principalId, input.tenantId);
    const actualType = principalTypeOf(object);
    if (input.principalType !== undefined && input.principalType !== null && input.principalType !== actualType) {
      throw DirectoryErrors.unmatchedPrincipalType(principalId, actualType, input.principalType as string);
    }
    const now = options.clock.now();

    const existing = await tx.roleAssignments.get(input.tenantId, id);
    if (existing !== undefined) {
      const same =
        existing.scope.toLowerCase() === scope.key && existing.roleDefinitionId === role.id.toLowerCase() && existing.principalId === principalId.toLowerCase();
      if (!same) throw DirectoryErrors.roleAssignmentUpdateNotPermitted();
      if (existing.description !== description) {
        await tx.roleAssignments.updateDescription(input.tenantId, id, description, now, input.by);
        await tx.rbacVersions.bump(input.tenantId);
        return { assignment: { ...existing, description, updatedAt: now, updatedBy: input.by }, created: false };
      }
      return { assignment: existing, created: false };
    }
    if ((await tx.roleAssignments.find(input.tenantId, scope.scope, role.id, principalId)) !== undefined) throw DirectoryErrors.roleAssignmentExists();
    if (
      scope.subscriptionId !== undefined &&
      (await tx.roleAssignments.countInSubscription(input.tenantId, scope.subscriptionId)) >= limits.assignmentsPerSubscription
    ) {
      throw DirectoryErrors.roleAssignmentLimitExceeded(limits.assignmentsPerSubscription);
    }
    const assignment: StoredRoleAssignment = {
      id: id.toLowerCase(),
      tenantId: input.tenantId.toLowerCase(),
      scope: scope.scope,
      roleDefinitionId: role.id.toLowerCase(),
      principalId: principalId.toLowerCase(),
      principalType: actualType,
      description,
      createdAt: now,
      createdBy: input.by,
      updatedAt: now,
      updatedBy: input.by,
    };
    // A concurrent writer may have won the unique (scope, role, principal) or the id since the checks above.
    if (!(await tx.roleAssignments.create(assignment))) throw DirectoryErrors.roleAssignmentExists();
    await tx.rbacVersions.bump(input.tenantId);
    return { assignment, created: true };
  });
}

/** Deletes an assignment by id (at `scope`, when given, as ARM addresses it). Undefined when there was none. */
export async function deleteRoleAssignment(
  store: Store | Repositories,
  input: { tenantId: string; id: string; scope?: string },
): Promise<StoredRoleAssignment | undefined> {
  if (!isGuid(input.id)) throw DirectoryErrors.invalidRoleAssignmentId(input.id);
  return atomically(store, async (tx) => {
    const existing = await tx.roleAssignments.get(input.tenantId, input.id);
    if (existing === undefined) return undefined;
    if (input.scope !== undefined && existing.scope.toLowerCase() !== parseScope(input.scope).key) return undefined;
    await tx.roleAssignments.delete(input.tenantId, existing.id);
    await tx.rbacVersions.bump(input.tenantId);
    return existing;
  });
}

/** One assignment by id (at `scope`, when given); `RoleAssignmentNotFound` otherwise. */
export async function getRoleAssignment(repos: Repositories, input: { tenantId: string; id: string; scope?: string }): Promise<StoredRoleAssignment> {
  const found = isGuid(input.id) ? await repos.roleAssignments.get(input.tenantId, input.id) : undefined;
  if (found === undefined || (input.scope !== undefined && found.scope.toLowerCase() !== parseScope(input.scope).key)) {
    throw DirectoryErrors.roleAssignmentNotFound(input.id);
  }
  return found;
}

export interface ListRoleAssignmentsInput {
  tenantId: string;
  /** The scope listed at: ARM returns assignments at it, above it and (unless `atScope`) below it. */
  scope: string;
  /** `$filter=atScope()`: only at the scope and above. */
  atScope?: boolean;
  /** `$filter=principalId eq '…'`: that principal's own assignments. */
  principalId?: string;
  /** `$filter=assignedTo('…')`: the principal's and its groups' (transitively) assignments. */
  assignedTo?: string;
  roleDefinitionId?: string;
}

export async function listRoleAssignments(repos: Repositories, input: ListRoleAssignmentsInput): Promise<StoredRoleAssignment[]> {
  const scope = parseScope(input.scope).scope;
  let principalIds: string[] | undefined;
  if (input.principalId !== undefined) principalIds = [input.principalId];
  if (input.assignedTo !== undefined) principalIds = [input.assignedTo, ...(await transitiveGroupsOf(repos, input.assignedTo))];
  const all = await repos.roleAssignments.list({
    tenantId: input.tenantId,
    ...(principalIds === undefined ? {} : { principalIds }),
    ...(input.roleDefinitionId === undefined ? {} : { roleDefinitionId: roleDefinitionGuid(input.roleDefinitionId) ?? input.roleDefinitionId }),
  });
  return all.filter((a) => scopeContains(a.scope, scope) || (input.atScope !== true && scopeContains(scope, a.scope)));
}

/** Every group `memberId` belongs to, directly or through nested groups. */
export async function transitiveGroupsOf(repos: Repositories, memberId: string): Promise<string[]> {
  const seen = new Set<string>();
  let frontier = [memberId.toLowerCase()];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const id of frontier) {
      for (const g of await repos.groups.listGroupsOf(id)) {
        if (!seen.has(g)) {
          seen.add(g);
          next.push(g);
        }
      }
    }
    frontier = next;
  }
  return [...seen];
}

// ---------------------------------------------------------------------------------------------------
// Role definitions
// ---------------------------------------------------------------------------------------------------

function stringArray(value: unknown, name: string, fail: (reason: string) => Error, options: { required?: boolean } = {}): string[] {
  if (value === undefined || value === null) {
    if (options.required === true) throw fail(`'${name}' is required`);
    return [];
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw fail(`'${name}' must be an array of strings`);
  return value;
}

/** Checks `permissions[]` as ARM spells it (camelCase; az's `Actions`/`NotActions` spelling is accepted too). */
export function validatePermissions(value: unknown, fail: (reason: string) => Error): Permission[] {
  if (!Array.isArray(value) || value.length === 0) throw fail("'permissions' must be a non-empty array");
  if (value.length > 100) throw fail("'permissions' has more than 100 entries");
  return value.map((entry: unknown, i) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw fail(`permissions[${String(i)}] must be an object`);
    const e = entry as Record<string, unknown>;
    const pick = (camel: string) => e[camel] ?? e[camel.charAt(0).toUpperCase() + camel.slice(1)];
    const permission: Permission = {
      actions: stringArray(pick('actions'), `permissions[${String(i)}].actions`, fail),
      notActions: stringArray(pick('notActions'), `permissions[${String(i)}].notActions`, fail),
      dataActions: stringArray(pick('dataActions'), `permissions[${String(i)}].dataActions`, fail),
      notDataActions: stringArray(pick('notDataActions'), `permissions[${String(i)}].notDataActions`, fail),
    };
    for (const pattern of [...permission.actions, ...permission.notActions, ...permission.dataActions, ...permission.notDataActions]) {
      const reason = actionPatternError(pattern);
      if (reason !== undefined) throw fail(`'${pattern.slice(0, 100)}': ${reason}`);
    }
    return permission;
  });
}

export interface PutRoleDefinitionInput {
  tenantId: string;
  /** The GUID (ARM's `name`); a new one when omitted. */
  id?: string;
  roleName: unknown;
  description?: unknown;
  permissions: unknown;
  assignableScopes: unknown;
  by: string;
  /**
   * Called in the write's transaction with the stored role (undefined when there is none) and the validated
   * `assignableScopes`, before anything is written; it throws to refuse. The management API checks the
   * caller's rights at every existing and requested assignable scope before the transaction (the
   * authoriser cannot run inside one) and uses this to refuse when the role changed in between.
   */
  guard?: (existing: CustomRoleDefinition | undefined, assignableScopes: readonly string[]) => void;
}

/**
 * Creates or updates a custom role. `assignableScopes` is required (each a valid scope of the tenant; the root
 * `/` is allowed, as for built-ins); names are unique per tenant case-insensitively; built-ins are immutable;
 * 5,000 custom roles per tenant.
 */
export async function putRoleDefinition(
  store: Store | Repositories,
  options: RbacDirectoryOptions,
  input: PutRoleDefinitionInput,
): Promise<{ definition: CustomRoleDefinition; created: boolean }> {
  const id = input.id ?? newGuid();
  if (!isGuid(id)) throw DirectoryErrors.invalidRoleDefinitionId(id);
  const builtIn = options.builtInRoles.find((r) => r.id.toLowerCase() === id.toLowerCase());
  if (builtIn !== undefined) throw DirectoryErrors.cannotModifyBuiltInRole(builtIn.roleName);
  const fail = (reason: string) => DirectoryErrors.invalidRoleDefinition(reason);
  if (typeof input.roleName !== 'string' || input.roleName.trim() === '' || input.roleName.length > 512) {
    throw fail("'roleName' is required: 1 to 512 characters");
  }
  const roleName = input.roleName;
  if (options.builtInRoles.some((r) => r.roleName.toLowerCase() === roleName.toLowerCase())) throw DirectoryErrors.roleDefinitionWithSameNameExists(roleName);
  if (input.description !== undefined && input.description !== null && typeof input.description !== 'string') throw fail("'description' must be a string");
  const description = typeof input.description === 'string' ? input.description : '';
  const permissions = validatePermissions(input.permissions, fail);
  const scopes = stringArray(input.assignableScopes, 'assignableScopes', fail, { required: true });
  if (scopes.length === 0) throw fail("'assignableScopes' must name at least one scope");
  const limits = options.limits ?? AZURE_RBAC_LIMITS;

  return atomically(store, async (tx) => {
    const assignableScopes: string[] = [];
    for (const s of scopes) assignableScopes.push((await validateScope(tx, input.tenantId, s)).scope);
    const now = options.clock.now();
    const existing = await tx.roleDefinitions.get(input.tenantId, id);
    input.guard?.(existing, assignableScopes);
    const sameName = await tx.roleDefinitions.getByName(input.tenantId, roleName);
    if (sameName !== undefined && sameName.id !== id.toLowerCase()) throw DirectoryErrors.roleDefinitionWithSameNameExists(roleName);
    const definition: CustomRoleDefinition = {
      id: id.toLowerCase(),
      roleName,
      roleType: 'CustomRole',
      description,
      permissions,
      assignableScopes,
      tenantId: input.tenantId.toLowerCase(),
      createdAt: existing?.createdAt ?? now,
      createdBy: existing?.createdBy ?? input.by,
      updatedAt: now,
      updatedBy: input.by,
    };
    if (existing !== undefined) {
      if (!(await tx.roleDefinitions.update(definition))) throw DirectoryErrors.roleDefinitionWithSameNameExists(roleName);
    } else {
      if ((await tx.roleDefinitions.count(input.tenantId)) >= limits.customRolesPerTenant)
        throw DirectoryErrors.roleDefinitionLimitExceeded(limits.customRolesPerTenant);
      if (!(await tx.roleDefinitions.create(definition))) throw DirectoryErrors.roleDefinitionWithSameNameExists(roleName);
    }
    await tx.rbacVersions.bump(input.tenantId);
    return { definition, created: existing === undefined };
  });
}

/** Deletes a custom role; refused for built-ins and while any assignment uses it (and by `guard`, in the transaction). Undefined when there was none. */
export async function deleteRoleDefinition(
  store: Store | Repositories,
  options: Pick<RbacDirectoryOptions, 'builtInRoles'>,
  input: { tenantId: string; id: string; guard?: (existing: CustomRoleDefinition) => void },
): Promise<CustomRoleDefinition | undefined> {
  const guid = roleDefinitionGuid(input.id);
  if (guid === undefined) throw DirectoryErrors.invalidRoleDefinitionId(input.id);
  const builtIn = options.builtInRoles.find((r) => r.id.toLowerCase() === guid);
  if (builtIn !== undefined) throw DirectoryErrors.cannotModifyBuiltInRole(builtIn.roleName);
  return atomically(store, async (tx) => {
    const existing = await tx.roleDefinitions.get(input.tenantId, guid);
    if (existing === undefined) return undefined;
    input.guard?.(existing);
    const uses = await tx.roleAssignments.countByRoleDefinition(input.tenantId, guid);
    if (uses > 0) throw DirectoryErrors.roleDefinitionHasAssignments(uses);
    await tx.roleDefinitions.delete(input.tenantId, guid);
    await tx.rbacVersions.bump(input.tenantId);
    return existing;
  });
}

/** Built-ins and the tenant's custom roles, optionally by (case-insensitive) name; custom roles only when asked. */
export async function listRoleDefinitions(
  repos: Repositories,
  builtInRoles: readonly RoleDefinition[],
  input: { tenantId: string; roleName?: string; customOnly?: boolean; type?: 'BuiltInRole' | 'CustomRole' },
): Promise<RoleDefinition[]> {
  const custom = await repos.roleDefinitions.list(input.tenantId);
  let all: RoleDefinition[] = [...(input.customOnly === true ? [] : builtInRoles), ...custom];
  if (input.roleName !== undefined) {
    const lower = input.roleName.toLowerCase();
    all = all.filter((r) => r.roleName.toLowerCase() === lower);
  }
  if (input.type !== undefined) all = all.filter((r) => r.roleType === input.type);
  return all;
}

/** One role definition by GUID or ARM id; `RoleDefinitionDoesNotExist` (404) otherwise. */
export async function getRoleDefinition(
  repos: Repositories,
  builtInRoles: readonly RoleDefinition[],
  input: { tenantId: string; id: string },
): Promise<RoleDefinition> {
  const found = await findRoleDefinition(repos, builtInRoles, input.tenantId, input.id);
  if (found === undefined) throw DirectoryErrors.roleDefinitionNotFound(input.id);
  return found;
}

// ---------------------------------------------------------------------------------------------------
// Deny assignments (openmsi lets an administrator create them; in Azure they are read-only)
// ---------------------------------------------------------------------------------------------------

export interface PutDenyAssignmentInput {
  tenantId: string;
  id?: string;
  scope: unknown;
  properties: Record<string, unknown>;
  by: string;
}

function denyPrincipals(value: unknown, name: string, required: boolean): DenyAssignment['principals'] {
  const fail = (reason: string) => DirectoryErrors.invalidDenyAssignment(reason);
  if (value === undefined || value === null) {
    if (required) throw fail(`'${name}' is required`);
    return [];
  }
  if (!Array.isArray(value)) throw fail(`'${name}' must be an array of { id, type }`);
  return value.map((p: unknown, i) => {
    const entry = (p ?? {}) as Record<string, unknown>;
    const id = entry['id'];
    const type = entry['type'] ?? 'ServicePrincipal';
    if (typeof id !== 'string' || !isGuid(id)) throw fail(`${name}[${String(i)}].id must be a GUID`);
    if (typeof type !== 'string' || ![...PRINCIPAL_TYPES, 'SystemDefined'].includes(type)) throw fail(`${name}[${String(i)}].type is not a principal type`);
    return { id: id.toLowerCase(), type: type as PrincipalType | 'SystemDefined' };
  });
}

/** Creates a deny assignment; an existing id is refused (`DenyAssignmentExists`), there is no update. */
export async function createDenyAssignment(
  store: Store | Repositories,
  options: Pick<RbacDirectoryOptions, 'clock'>,
  input: PutDenyAssignmentInput,
): Promise<StoredDenyAssignment> {
  const id = input.id ?? newGuid();
  const fail = (reason: string) => DirectoryErrors.invalidDenyAssignment(reason);
  if (!isGuid(id)) throw fail(`the id '${id.slice(0, 100)}' must be a GUID`);
  const p = input.properties;
  const name = p['denyAssignmentName'];
  if (typeof name !== 'string' || name.trim() === '' || name.length > 256) throw fail("'denyAssignmentName' is required: 1 to 256 characters");
  if (p['description'] !== undefined && p['description'] !== null && typeof p['description'] !== 'string') throw fail("'description' must be a string");
  const permissions = validatePermissions(p['permissions'], fail);
  const principals = denyPrincipals(p['principals'], 'principals', true);
  if (principals.length === 0) throw fail("'principals' must name at least one principal (the all-zero GUID with type SystemDefined is everyone)");
  const excludePrincipals = denyPrincipals(p['excludePrincipals'], 'excludePrincipals', false);
  const childScopes = p['doNotApplyToChildScopes'] ?? false;
  if (typeof childScopes !== 'boolean') throw fail("'doNotApplyToChildScopes' must be a boolean");
  const isSystemProtected = p['isSystemProtected'] ?? false;
  if (typeof isSystemProtected !== 'boolean') throw fail("'isSystemProtected' must be a boolean");

  return atomically(store, async (tx) => {
    const scope = await validateScope(tx, input.tenantId, input.scope);
    const deny: StoredDenyAssignment = {
      id: id.toLowerCase(),
      tenantId: input.tenantId.toLowerCase(),
      denyAssignmentName: name,
      description: typeof p['description'] === 'string' ? p['description'] : '',
      scope: scope.scope,
      permissions,
      principals,
      excludePrincipals,
      doNotApplyToChildScopes: childScopes,
      isSystemProtected,
      createdAt: options.clock.now(),
      createdBy: input.by,
    };
    if ((await tx.denyAssignments.get(input.tenantId, id)) !== undefined || !(await tx.denyAssignments.create(deny))) {
      throw DirectoryErrors.denyAssignmentExists();
    }
    await tx.rbacVersions.bump(input.tenantId);
    return deny;
  });
}

export async function deleteDenyAssignment(
  store: Store | Repositories,
  input: { tenantId: string; id: string; scope?: string },
): Promise<StoredDenyAssignment | undefined> {
  if (!isGuid(input.id)) return undefined;
  return atomically(store, async (tx) => {
    const existing = await tx.denyAssignments.get(input.tenantId, input.id);
    if (existing === undefined) return undefined;
    if (input.scope !== undefined && existing.scope.toLowerCase() !== parseScope(input.scope).key) return undefined;
    await tx.denyAssignments.delete(input.tenantId, existing.id);
    await tx.rbacVersions.bump(input.tenantId);
    return existing;
  });
}

export async function getDenyAssignment(repos: Repositories, input: { tenantId: string; id: string; scope?: string }): Promise<StoredDenyAssignment> {
  const found = isGuid(input.id) ? await repos.denyAssignments.get(input.tenantId, input.id) : undefined;
  if (found === undefined || (input.scope !== undefined && found.scope.toLowerCase() !== parseScope(input.scope).key)) {
    throw DirectoryErrors.denyAssignmentNotFound(input.id);
  }
  return found;
}

/** Deny assignments at, above and (unless `atScope`) below `scope`. */
export async function listDenyAssignments(repos: Repositories, input: { tenantId: string; scope: string; atScope?: boolean }): Promise<StoredDenyAssignment[]> {
  const scope = parseScope(input.scope).scope;
  const all = await repos.denyAssignments.list(input.tenantId);
  return all.filter((d) => scopeContains(d.scope, scope) || (input.atScope !== true && scopeContains(scope, d.scope)));
}
