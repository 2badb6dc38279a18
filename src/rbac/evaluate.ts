/**
 * Azure RBAC evaluation, pure, over one tenant's {@link RbacState} (semantics: docs/rbac.md and
 * ../shared/specs/peers-security-rbac.md §5.2):
 *
 * 1. The caller is its principal id plus every group it is in, transitively (nested groups; cycles are safe).
 * 2. Deny first: a deny assignment applies when its scope contains the request scope (equals it, with
 *    `doNotApplyToChildScopes`), one of its principals is the caller, one of its groups or everyone (the
 *    all-zero GUID), none of its `excludePrincipals` is the caller or one of its groups, and one of its
 *    permission entries matches the action (actions − notActions, or dataActions − notDataActions).
 * 3. Allow when ONE role of ONE role assignment to the caller or its groups, at a scope containing the request
 *    scope, grants the action within one of its own permission entries. `notActions` subtracts only within its
 *    entry: another role granting the action still allows it. Control-plane `actions` never grant data actions.
 *    An assignment at a scope outside its role's `assignableScopes` (or to an unknown role) grants nothing.
 */
import type { AuthorizationDecision, AuthorizationRequest, DenyAssignment, Permission, RbacState, RoleAssignment, RoleDefinition } from './contracts.js';
import { actionMatcher } from './actions.js';
import { ancestorKeys, keyContains, scopeKey } from './scopes.js';

/** The principal id that means everyone in a deny assignment. */
export const EVERYONE = '00000000-0000-0000-0000-000000000000';

interface CompiledPermission {
  actions: ((a: string) => boolean)[];
  notActions: ((a: string) => boolean)[];
  dataActions: ((a: string) => boolean)[];
  notDataActions: ((a: string) => boolean)[];
}

interface IndexedRole {
  role: RoleDefinition;
  permissions: CompiledPermission[];
  assignableKeys: string[];
}

interface IndexedAssignment {
  assignment: RoleAssignment;
  scopeKey: string;
  role: IndexedRole | undefined;
  /** The assignment's scope is within one of the role's assignable scopes. */
  assignable: boolean;
}

interface IndexedDeny {
  deny: DenyAssignment;
  scopeKey: string;
  everyone: boolean;
  principals: Set<string>;
  excluded: Set<string>;
  permissions: CompiledPermission[];
}

/** A state prepared for evaluation: built once per state (and version), read by every decision. */
export interface RbacIndex {
  readonly state: RbacState;
  readonly tenantId: string;
  readonly version: number;
  /** Role definitions by lower-case GUID. */
  readonly roles: ReadonlyMap<string, IndexedRole>;
  /** Role assignments by lower-case principal id. */
  readonly assignmentsByPrincipal: ReadonlyMap<string, readonly IndexedAssignment[]>;
  /** Deny assignments by scope key. */
  readonly deniesByScope: ReadonlyMap<string, readonly IndexedDeny[]>;
  /** Direct groups of each member (lower-case ids). */
  readonly memberOf: ReadonlyMap<string, readonly string[]>;
  /** Memoised transitive closures. */
  readonly closures: Map<string, readonly string[]>;
}

const id = (s: string): string => s.toLowerCase();

/** The GUID of a role definition id given either as a GUID or as a full ARM id. */
export function roleGuid(roleDefinitionId: string): string {
  const i = roleDefinitionId.lastIndexOf('/');
  return (i === -1 ? roleDefinitionId : roleDefinitionId.slice(i + 1)).toLowerCase();
}

function compilePermission(p: Permission): CompiledPermission {
  return {
    actions: p.actions.map(actionMatcher),
    notActions: p.notActions.map(actionMatcher),
    dataActions: p.dataActions.map(actionMatcher),
    notDataActions: p.notDataActions.map(actionMatcher),
  };
}

function anyMatch(matchers: readonly ((a: string) => boolean)[], action: string): boolean {
  for (const m of matchers) if (m(action)) return true;
  return false;
}

/** True when one permission entry grants the lower-cased `action` (its actions − notActions, or dataActions − notDataActions). */
function permits(permissions: readonly CompiledPermission[], action: string, isDataAction: boolean): boolean {
  for (const p of permissions) {
    if (isDataAction) {
      if (anyMatch(p.dataActions, action) && !anyMatch(p.notDataActions, action)) return true;
    } else if (anyMatch(p.actions, action) && !anyMatch(p.notActions, action)) return true;
  }
  return false;
}

/**
 * True when one of `permissions` grants `action` within its own entry (`actions` − `notActions`, or
 * `dataActions` − `notDataActions`), as a role does in {@link evaluate}; for entries that
 * {@link effectivePermissions} returned, this is the grant half of a decision without the deny half.
 */
export function permissionsGrant(permissions: readonly Permission[], action: string, isDataAction: boolean): boolean {
  return permits(permissions.map(compilePermission), action.toLowerCase(), isDataAction);
}

/** True when `role` may be assigned at `scope`: one of its `assignableScopes` contains it. */
export function isAssignableAt(role: Pick<RoleDefinition, 'assignableScopes'>, scope: string): boolean {
  const key = scopeKey(scope);
  return role.assignableScopes.some((s) => keyContains(scopeKey(s), key));
}

/** Builds the evaluation index of a state. {@link evaluate} does this once per state object by itself. */
export function indexState(state: RbacState): RbacIndex {
  const roles = new Map<string, IndexedRole>();
  for (const role of state.roleDefinitions) {
    if (role.tenantId !== null && role.tenantId !== state.tenantId) continue;
    roles.set(id(role.id), { role, permissions: role.permissions.map(compilePermission), assignableKeys: role.assignableScopes.map(scopeKey) });
  }
  const assignmentsByPrincipal = new Map<string, IndexedAssignment[]>();
  for (const assignment of state.roleAssignments) {
    if (assignment.tenantId !== state.tenantId) continue;
    const key = scopeKey(assignment.scope);
    const role = roles.get(roleGuid(assignment.roleDefinitionId));
    const assignable = role !== undefined && role.assignableKeys.some((a) => keyContains(a, key));
    const p = id(assignment.principalId);
    let list = assignmentsByPrincipal.get(p);
    if (!list) assignmentsByPrincipal.set(p, (list = []));
    list.push({ assignment, scopeKey: key, role, assignable });
  }
  const deniesByScope = new Map<string, IndexedDeny[]>();
  for (const deny of state.denyAssignments) {
    if (deny.tenantId !== state.tenantId) continue;
    const key = scopeKey(deny.scope);
    const principals = new Set(deny.principals.map((p) => id(p.id)));
    const entry: IndexedDeny = {
      deny,
      scopeKey: key,
      everyone: principals.has(EVERYONE),
      principals,
      excluded: new Set(deny.excludePrincipals.map((p) => id(p.id))),
      permissions: deny.permissions.map(compilePermission),
    };
    let list = deniesByScope.get(key);
    if (!list) deniesByScope.set(key, (list = []));
    list.push(entry);
  }
  const memberOf = new Map<string, string[]>();
  for (const m of state.groupMemberships) {
    const member = id(m.memberId);
    let list = memberOf.get(member);
    if (!list) memberOf.set(member, (list = []));
    list.push(id(m.groupId));
  }
  return {
    state,
    tenantId: state.tenantId,
    version: state.version,
    roles,
    assignmentsByPrincipal,
    deniesByScope,
    memberOf,
    closures: new Map(),
  };
}

const indexes = new WeakMap<RbacState, RbacIndex>();

function indexOf(state: RbacState | RbacIndex): RbacIndex {
  if ('roles' in state && 'closures' in state) return state;
  let index = indexes.get(state);
  if (!index) indexes.set(state, (index = indexState(state)));
  return index;
}

/** The caller's identities: its own id (first) and every group it is in, transitively; cycle-safe. */
export function principalClosure(state: RbacState | RbacIndex, principalId: string): readonly string[] {
  const index = indexOf(state);
  const start = id(principalId);
  if (!index.memberOf.has(start)) return [start];
  const memo = index.closures.get(start);
  if (memo) return memo;
  const seen = new Set<string>([start]);
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    for (const g of index.memberOf.get(queue[i]!) ?? []) {
      if (!seen.has(g)) {
        seen.add(g);
        queue.push(g);
      }
    }
  }
  const closure = [...seen];
  index.closures.set(start, closure);
  return closure;
}

function denyApplies(d: IndexedDeny, requestKey: string, ids: readonly string[], action: string, isDataAction: boolean): boolean {
  if (d.deny.doNotApplyToChildScopes && d.scopeKey !== requestKey) return false;
  let targeted = d.everyone;
  if (!targeted)
    for (const p of ids)
      if (d.principals.has(p)) {
        targeted = true;
        break;
      }
  if (!targeted) return false;
  for (const p of ids) if (d.excluded.has(p)) return false;
  return permits(d.permissions, action, isDataAction);
}

/**
 * Decides one request against a state (or an index of one). Pure: the same state and request give the same
 * decision. The request scope is compared case-insensitively; callers validate it first (see `parseScope`).
 */
export function evaluate(state: RbacState | RbacIndex, request: Omit<AuthorizationRequest, 'tenantId'> & { tenantId?: string }): AuthorizationDecision {
  const index = indexOf(state);
  const requestKey = scopeKey(request.scope);
  const ids = principalClosure(index, request.principalId);
  const action = request.action.toLowerCase();
  const { isDataAction } = request;

  for (const key of ancestorKeys(requestKey)) {
    const denies = index.deniesByScope.get(key);
    if (!denies) continue;
    for (const d of denies) {
      if (denyApplies(d, requestKey, ids, action, isDataAction)) return { allowed: false, reason: 'denied', assignmentId: d.deny.id };
    }
  }

  for (const p of ids) {
    const assignments = index.assignmentsByPrincipal.get(p);
    if (!assignments) continue;
    for (const a of assignments) {
      if (!a.assignable || !a.role || !keyContains(a.scopeKey, requestKey)) continue;
      if (permits(a.role.permissions, action, isDataAction)) return { allowed: true, reason: 'granted', assignmentId: a.assignment.id };
    }
  }
  return { allowed: false, reason: 'not-granted' };
}

/**
 * The caller's effective permissions at `scope`, as ARM's `…/providers/Microsoft.Authorization/permissions`
 * returns them: the permission entries of every role assigned to the caller or its groups at `scope` or above
 * (each role once, in assignment order). Deny assignments are not folded in (ARM does not either).
 */
export function effectivePermissions(state: RbacState | RbacIndex, principalId: string, scope: string): Permission[] {
  const index = indexOf(state);
  const requestKey = scopeKey(scope);
  const seen = new Set<string>();
  const out: Permission[] = [];
  for (const p of principalClosure(index, principalId)) {
    for (const a of index.assignmentsByPrincipal.get(p) ?? []) {
      if (!a.assignable || !a.role || !keyContains(a.scopeKey, requestKey)) continue;
      const roleId = id(a.role.role.id);
      if (seen.has(roleId)) continue;
      seen.add(roleId);
      for (const perm of a.role.role.permissions) {
        out.push({
          actions: [...perm.actions],
          notActions: [...perm.notActions],
          dataActions: [...perm.dataActions],
          notDataActions: [...perm.notDataActions],
        });
      }
    }
  }
  return out;
}
