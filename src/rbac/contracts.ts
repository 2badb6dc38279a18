/**
 * The RBAC contract shared by the evaluation engine (src/rbac), its store-backed state source, the
 * management API that edits assignments, and every service that authorises requests (management today,
 * the vault next). Semantics: ../shared/specs/peers-security-rbac.md §5 (Azure RBAC, faithfully).
 */

/** One `permissions[]` entry of a role definition or deny assignment, as ARM spells it. */
export interface Permission {
  actions: string[];
  notActions: string[];
  dataActions: string[];
  notDataActions: string[];
}

/** A role definition. Built-ins carry Azure's GUIDs and `assignableScopes: ['/']`. */
export interface RoleDefinition {
  /** The GUID (ARM's `name`); the ARM id is `{scope}/providers/Microsoft.Authorization/roleDefinitions/{id}`. */
  id: string;
  roleName: string;
  roleType: 'BuiltInRole' | 'CustomRole';
  description: string;
  permissions: Permission[];
  assignableScopes: string[];
  /** The tenant a custom role belongs to; null for built-ins (every tenant sees them). */
  tenantId: string | null;
}

export type PrincipalType = 'User' | 'Group' | 'ServicePrincipal' | 'ForeignGroup' | 'Device';

/** (principal, role, scope): inherited by every scope below `scope`. */
export interface RoleAssignment {
  /** The GUID (ARM's `name`); the ARM id is `{scope}/providers/Microsoft.Authorization/roleAssignments/{id}`. */
  id: string;
  tenantId: string;
  /** As given (normalised: no trailing slash, `/` for the tenant root); compared case-insensitively. */
  scope: string;
  roleDefinitionId: string;
  principalId: string;
  principalType: PrincipalType;
  description: string | null;
  createdAt: number;
  createdBy: string;
}

export interface DenyAssignment {
  id: string;
  tenantId: string;
  denyAssignmentName: string;
  description: string;
  scope: string;
  permissions: Permission[];
  /** Principal ids the deny applies to; the all-zero GUID means everyone. */
  principals: { id: string; type: PrincipalType | 'SystemDefined' }[];
  excludePrincipals: { id: string; type: PrincipalType | 'SystemDefined' }[];
  doNotApplyToChildScopes: boolean;
  isSystemProtected: boolean;
}

/** `memberId` (a principal or a group) is a direct member of `groupId`; nesting is followed transitively. */
export interface GroupMembership {
  groupId: string;
  memberId: string;
}

/** Everything evaluation needs for one tenant, loaded at once and kept in memory (the hot path reads no store). */
export interface RbacState {
  tenantId: string;
  /** Built-ins and the tenant's custom roles. */
  roleDefinitions: readonly RoleDefinition[];
  roleAssignments: readonly RoleAssignment[];
  denyAssignments: readonly DenyAssignment[];
  groupMemberships: readonly GroupMembership[];
  /** Monotonic per tenant; bumped by every RBAC-relevant write (assignment, role, deny, membership, principal deletion). */
  version: number;
}

/** Where an authoriser gets RBAC state and learns of changes (the store in production). */
export interface RbacStateSource {
  load(tenantId: string): Promise<RbacState>;
  /** The tenant's current version, cheaply (for periodic reconciliation of missed notifications). */
  version(tenantId: string): Promise<number>;
  /**
   * Calls `listener(tenantId)` after a committed change: at once in this process, and from other
   * replicas via PostgreSQL LISTEN/NOTIFY. Returns an unsubscribe function.
   */
  onChange(listener: (tenantId: string) => void): () => void;
}

export interface AuthorizationRequest {
  tenantId: string;
  principalId: string;
  /** e.g. `Microsoft.ManagedIdentity/userAssignedIdentities/write` or `Microsoft.KeyVault/vaults/secrets/getSecret/action`. */
  action: string;
  /** True for a data action (matched against dataActions/notDataActions only; `*` in actions never grants it). */
  isDataAction: boolean;
  /** The ARM scope acted on: `/`, `/subscriptions/{s}`, `/subscriptions/{s}/resourceGroups/{rg}`, or a resource id. */
  scope: string;
}

export interface AuthorizationDecision {
  allowed: boolean;
  /** `denied`: a deny assignment matched; `not-granted`: no role grants the action at the scope. */
  reason: 'granted' | 'denied' | 'not-granted';
  /** The assignment that granted, or the deny assignment that denied. */
  assignmentId?: string;
}

/** Request-time authorisation with a decision cache that every change invalidates. */
export interface Authorizer {
  check(request: AuthorizationRequest): Promise<AuthorizationDecision>;
  /** The caller's effective permissions at `scope` (ARM's `…/providers/Microsoft.Authorization/permissions`). */
  permissionsAt(tenantId: string, principalId: string, scope: string): Promise<Permission[]>;
  close(): void;
}
