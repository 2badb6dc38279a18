import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DenyAssignment, GroupMembership, RbacState, RoleAssignment, RoleDefinition } from '../../src/rbac/contracts.js';
import { BUILTIN_ROLE_IDS as R, BUILTIN_ROLES } from '../../src/rbac/builtin-roles.js';
import fc from 'fast-check';
import { effectivePermissions, evaluate, EVERYONE, isAssignableAt, permissionsGrant, principalClosure, roleGuid } from '../../src/rbac/evaluate.js';

const T = 'tenant-1';
const SUB = '/subscriptions/0e2f8d1c-3b4a-4c5d-8e9f-a0b1c2d3e4f5';
const RG = `${SUB}/resourceGroups/rg-a`;
const RG_B = `${SUB}/resourceGroups/rg-b`;
const UAI = `${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1`;
const VAULT = `${RG}/providers/Microsoft.KeyVault/vaults/v1`;
const SECRET = `${VAULT}/secrets/s1`;

const ALICE = 'a11ce000-0000-0000-0000-000000000001';
const BOB = 'b0b00000-0000-0000-0000-000000000002';
const GROUP = '96000000-0000-0000-0000-000000000010';
const OUTER = '96000000-0000-0000-0000-000000000011';
const CYCLE_A = '96000000-0000-0000-0000-00000000000a';
const CYCLE_B = '96000000-0000-0000-0000-00000000000b';

const UAI_WRITE = 'Microsoft.ManagedIdentity/userAssignedIdentities/write';
const UAI_READ = 'Microsoft.ManagedIdentity/userAssignedIdentities/read';
const RA_WRITE = 'Microsoft.Authorization/roleAssignments/write';
const GET_SECRET = 'Microsoft.KeyVault/vaults/secrets/getSecret/action';

let n = 0;
function ra(principalId: string, roleDefinitionId: string, scope: string, id = `ra-${++n}`): RoleAssignment {
  return { id, tenantId: T, scope, roleDefinitionId, principalId, principalType: 'User', description: null, createdAt: 0, createdBy: 'test' };
}

function deny(partial: Partial<DenyAssignment> & Pick<DenyAssignment, 'scope' | 'principals'>): DenyAssignment {
  return {
    id: `deny-${++n}`,
    tenantId: T,
    denyAssignmentName: 'd',
    description: '',
    permissions: [{ actions: ['*'], notActions: [], dataActions: [], notDataActions: [] }],
    excludePrincipals: [],
    doNotApplyToChildScopes: false,
    isSystemProtected: false,
    ...partial,
  };
}

function custom(
  id: string,
  roleName: string,
  actions: string[],
  notActions: string[],
  assignableScopes: string[],
  dataActions: string[] = [],
  notDataActions: string[] = [],
): RoleDefinition {
  return {
    id,
    roleName,
    roleType: 'CustomRole',
    description: '',
    permissions: [{ actions, notActions, dataActions, notDataActions }],
    assignableScopes,
    tenantId: T,
  };
}

function state(parts: { assignments?: RoleAssignment[]; denies?: DenyAssignment[]; groups?: GroupMembership[]; roles?: RoleDefinition[] }): RbacState {
  return {
    tenantId: T,
    roleDefinitions: [...BUILTIN_ROLES, ...(parts.roles ?? [])],
    roleAssignments: parts.assignments ?? [],
    denyAssignments: parts.denies ?? [],
    groupMemberships: parts.groups ?? [],
    version: 1,
  };
}

const NO_UAI_WRITE = 'c0570000-0000-0000-0000-000000000001';
const ONLY_UAI_WRITE = 'c0570000-0000-0000-0000-000000000002';
const RG_SCOPED = 'c0570000-0000-0000-0000-000000000003';
const SECRETS_BUT_GET = 'c0570000-0000-0000-0000-000000000004';
const ALL_BUT_DATA = 'c0570000-0000-0000-0000-000000000005';
const DATA_NOT_ACTIONS = 'c0570000-0000-0000-0000-000000000006';
const SECRETS_ALL = 'Microsoft.KeyVault/vaults/secrets/*';
const SET_SECRET = 'Microsoft.KeyVault/vaults/secrets/setSecret/action';
const READ_SECRET_METADATA = 'Microsoft.KeyVault/vaults/secrets/readMetadata/action';
/** Every secret data action except reading a value. */
const secretsButGet = () => custom(SECRETS_BUT_GET, 'Secrets but get', [], [], ['/'], [SECRETS_ALL], [GET_SECRET]);

interface Row {
  name: string;
  state: RbacState;
  principal?: string;
  action: string;
  data?: boolean;
  scope: string;
  expect: 'granted' | 'denied' | 'not-granted';
  assignmentId?: string;
}

const rows: Row[] = [
  // Inheritance and scope.
  {
    name: 'an assignment at the subscription is inherited by a resource below it',
    state: state({ assignments: [ra(ALICE, R.ManagedIdentityContributor, SUB)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'an assignment at the tenant root is inherited everywhere',
    state: state({ assignments: [ra(ALICE, R.Owner, '/')] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'an assignment at the exact scope applies',
    state: state({ assignments: [ra(ALICE, R.ManagedIdentityContributor, UAI)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'an assignment on a sibling resource group does not apply',
    state: state({ assignments: [ra(ALICE, R.ManagedIdentityContributor, RG_B)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'not-granted',
  },
  {
    name: 'an assignment below the request scope does not apply upwards',
    state: state({ assignments: [ra(ALICE, R.ManagedIdentityContributor, UAI)] }),
    action: UAI_WRITE,
    scope: RG,
    expect: 'not-granted',
  },
  {
    name: 'a name-prefix scope is not an ancestor (rg-a vs rg-ab)',
    state: state({ assignments: [ra(ALICE, R.Owner, RG)] }),
    action: UAI_WRITE,
    scope: `${SUB}/resourceGroups/rg-ab`,
    expect: 'not-granted',
  },
  {
    name: 'another principal’s assignment does not apply',
    state: state({ assignments: [ra(BOB, R.Owner, '/')] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'not-granted',
  },
  { name: 'no assignments: not granted', state: state({}), action: UAI_READ, scope: UAI, expect: 'not-granted' },
  // Case differences.
  {
    name: 'scopes compare case-insensitively',
    state: state({ assignments: [ra(ALICE, R.ManagedIdentityContributor, RG.toUpperCase())] }),
    action: UAI_WRITE,
    scope: UAI.toLowerCase(),
    expect: 'granted',
  },
  {
    name: 'actions compare case-insensitively',
    state: state({ assignments: [ra(ALICE, R.ManagedIdentityContributor, RG)] }),
    action: UAI_WRITE.toUpperCase(),
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'principal ids compare case-insensitively',
    state: state({ assignments: [ra(ALICE.toUpperCase(), R.Owner, RG)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'a role definition id given as a full ARM id resolves',
    state: state({ assignments: [ra(ALICE, `${SUB}/providers/Microsoft.Authorization/roleDefinitions/${R.Owner.toUpperCase()}`, RG)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  // Wildcards and notActions.
  { name: 'Reader’s */read grants a read', state: state({ assignments: [ra(ALICE, R.Reader, SUB)] }), action: UAI_READ, scope: UAI, expect: 'granted' },
  {
    name: 'Reader’s */read does not grant a write',
    state: state({ assignments: [ra(ALICE, R.Reader, SUB)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'not-granted',
  },
  {
    name: 'Contributor’s notActions removes role assignment writes',
    state: state({ assignments: [ra(ALICE, R.Contributor, SUB)] }),
    action: RA_WRITE,
    scope: RG,
    expect: 'not-granted',
  },
  {
    name: 'Contributor’s notActions (Microsoft.Authorization/*/Write) matches any case',
    state: state({ assignments: [ra(ALICE, R.Contributor, SUB)] }),
    action: 'microsoft.authorization/ROLEDEFINITIONS/write',
    scope: RG,
    expect: 'not-granted',
  },
  {
    name: 'notActions in one role while a second role grants: allowed',
    state: state({ assignments: [ra(ALICE, R.Contributor, SUB), ra(ALICE, R.UserAccessAdministrator, RG, 'ra-uaa')] }),
    action: RA_WRITE,
    scope: RG,
    expect: 'granted',
    assignmentId: 'ra-uaa',
  },
  {
    name: 'notActions of a custom role does not block another role',
    state: state({
      roles: [custom(NO_UAI_WRITE, 'No UAI write', ['*'], [UAI_WRITE], ['/'])],
      assignments: [ra(ALICE, NO_UAI_WRITE, SUB), ra(ALICE, R.ManagedIdentityContributor, RG, 'ra-mic')],
    }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
    assignmentId: 'ra-mic',
  },
  {
    name: 'notActions of a custom role alone: not granted',
    state: state({ roles: [custom(NO_UAI_WRITE, 'No UAI write', ['*'], [UAI_WRITE], ['/'])], assignments: [ra(ALICE, NO_UAI_WRITE, SUB)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'not-granted',
  },
  {
    name: 'Managed Identity Operator’s userAssignedIdentities/*/read matches a child read',
    state: state({ assignments: [ra(ALICE, R.ManagedIdentityOperator, RG)] }),
    action: 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read',
    scope: UAI,
    expect: 'granted',
  },
  // A `/*/` segment also matches no segment: Managed Identity Operator reads and assigns identities, as Azure documents.
  {
    name: 'Managed Identity Operator’s userAssignedIdentities/*/read grants userAssignedIdentities/read',
    state: state({ assignments: [ra(ALICE, R.ManagedIdentityOperator, RG)] }),
    action: UAI_READ,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'Managed Identity Operator’s userAssignedIdentities/*/assign/action grants userAssignedIdentities/assign/action',
    state: state({ assignments: [ra(ALICE, R.ManagedIdentityOperator, RG)] }),
    action: 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action',
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'Managed Identity Operator does not write identities',
    state: state({ assignments: [ra(ALICE, R.ManagedIdentityOperator, RG)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'not-granted',
  },
  // Data actions.
  {
    name: 'Owner’s * does not grant a data action (cannot read secrets)',
    state: state({ assignments: [ra(ALICE, R.Owner, '/')] }),
    action: GET_SECRET,
    data: true,
    scope: SECRET,
    expect: 'not-granted',
  },
  {
    name: 'Key Vault Secrets User grants getSecret',
    state: state({ assignments: [ra(ALICE, R.KeyVaultSecretsUser, VAULT)] }),
    action: GET_SECRET,
    data: true,
    scope: SECRET,
    expect: 'granted',
  },
  {
    name: 'Key Vault Secrets User grants no control-plane action of the same name',
    state: state({ assignments: [ra(ALICE, R.KeyVaultSecretsUser, VAULT)] }),
    action: GET_SECRET,
    data: false,
    scope: SECRET,
    expect: 'not-granted',
  },
  {
    name: 'Key Vault Reader does not grant getSecret',
    state: state({ assignments: [ra(ALICE, R.KeyVaultReader, VAULT)] }),
    action: GET_SECRET,
    data: true,
    scope: SECRET,
    expect: 'not-granted',
  },
  {
    name: 'AcrPull is a control-plane action, so Contributor pulls',
    state: state({ assignments: [ra(ALICE, R.Contributor, SUB)] }),
    action: 'Microsoft.ContainerRegistry/registries/pull/read',
    scope: `${RG}/providers/Microsoft.ContainerRegistry/registries/r`,
    expect: 'granted',
  },
  // Deny assignments.
  {
    name: 'deny beats allow',
    state: state({ assignments: [ra(ALICE, R.Owner, '/')], denies: [deny({ id: 'deny-1', scope: RG, principals: [{ id: ALICE, type: 'User' }] })] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'denied',
    assignmentId: 'deny-1',
  },
  {
    name: 'a deny on a sibling scope does not apply',
    state: state({ assignments: [ra(ALICE, R.Owner, '/')], denies: [deny({ scope: RG_B, principals: [{ id: ALICE, type: 'User' }] })] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'a deny whose permissions do not cover the action does not apply',
    state: state({
      assignments: [ra(ALICE, R.Owner, '/')],
      denies: [
        deny({
          scope: RG,
          principals: [{ id: ALICE, type: 'User' }],
          permissions: [{ actions: ['*/delete'], notActions: [], dataActions: [], notDataActions: [] }],
        }),
      ],
    }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'a deny’s notActions exempts the action',
    state: state({
      assignments: [ra(ALICE, R.Owner, '/')],
      denies: [
        deny({
          scope: RG,
          principals: [{ id: ALICE, type: 'User' }],
          permissions: [{ actions: ['*'], notActions: [UAI_WRITE], dataActions: [], notDataActions: [] }],
        }),
      ],
    }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'a deny with doNotApplyToChildScopes applies at its own scope',
    state: state({
      assignments: [ra(ALICE, R.Owner, '/')],
      denies: [deny({ scope: RG, principals: [{ id: ALICE, type: 'User' }], doNotApplyToChildScopes: true })],
    }),
    action: UAI_WRITE,
    scope: RG,
    expect: 'denied',
  },
  {
    name: 'a deny with doNotApplyToChildScopes does not apply below it',
    state: state({
      assignments: [ra(ALICE, R.Owner, '/')],
      denies: [deny({ scope: RG, principals: [{ id: ALICE, type: 'User' }], doNotApplyToChildScopes: true })],
    }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'an everyone deny applies to anybody',
    state: state({ assignments: [ra(ALICE, R.Owner, '/')], denies: [deny({ scope: RG, principals: [{ id: EVERYONE, type: 'SystemDefined' }] })] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'denied',
  },
  {
    name: 'an everyone deny spares a directly excluded principal',
    state: state({
      assignments: [ra(ALICE, R.Owner, '/')],
      denies: [deny({ scope: RG, principals: [{ id: EVERYONE, type: 'SystemDefined' }], excludePrincipals: [{ id: ALICE, type: 'User' }] })],
    }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'an everyone deny spares a principal excluded via its group',
    state: state({
      assignments: [ra(ALICE, R.Owner, '/')],
      groups: [{ groupId: GROUP, memberId: ALICE }],
      denies: [deny({ scope: RG, principals: [{ id: EVERYONE, type: 'SystemDefined' }], excludePrincipals: [{ id: GROUP, type: 'Group' }] })],
    }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'an everyone deny still applies to someone not excluded',
    state: state({
      assignments: [ra(BOB, R.Owner, '/')],
      groups: [{ groupId: GROUP, memberId: ALICE }],
      denies: [deny({ scope: RG, principals: [{ id: EVERYONE, type: 'SystemDefined' }], excludePrincipals: [{ id: GROUP, type: 'Group' }] })],
    }),
    principal: BOB,
    action: UAI_WRITE,
    scope: UAI,
    expect: 'denied',
  },
  {
    name: 'a deny to a group applies to its nested members',
    state: state({
      assignments: [ra(ALICE, R.Owner, '/')],
      groups: [
        { groupId: GROUP, memberId: ALICE },
        { groupId: OUTER, memberId: GROUP },
      ],
      denies: [deny({ scope: SUB, principals: [{ id: OUTER, type: 'Group' }] })],
    }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'denied',
  },
  {
    name: 'a data-action deny blocks the data action',
    state: state({
      assignments: [ra(ALICE, R.KeyVaultAdministrator, VAULT)],
      denies: [
        deny({
          scope: VAULT,
          principals: [{ id: ALICE, type: 'User' }],
          permissions: [{ actions: [], notActions: [], dataActions: ['Microsoft.KeyVault/vaults/secrets/*'], notDataActions: [] }],
        }),
      ],
    }),
    action: GET_SECRET,
    data: true,
    scope: SECRET,
    expect: 'denied',
  },
  {
    name: 'a control-plane * deny does not block a data action',
    state: state({ assignments: [ra(ALICE, R.KeyVaultAdministrator, VAULT)], denies: [deny({ scope: VAULT, principals: [{ id: ALICE, type: 'User' }] })] }),
    action: GET_SECRET,
    data: true,
    scope: SECRET,
    expect: 'granted',
  },
  // notDataActions: the data-plane twin of notActions, subtracting within its own entry only.
  {
    name: 'invariant: notDataActions removes a data action from its role (getSecret refused)',
    state: state({ roles: [secretsButGet()], assignments: [ra(ALICE, SECRETS_BUT_GET, VAULT)] }),
    action: GET_SECRET,
    data: true,
    scope: SECRET,
    expect: 'not-granted',
  },
  {
    name: 'invariant: notDataActions matches case-insensitively',
    state: state({ roles: [secretsButGet()], assignments: [ra(ALICE, SECRETS_BUT_GET, VAULT)] }),
    action: GET_SECRET.toUpperCase(),
    data: true,
    scope: SECRET,
    expect: 'not-granted',
  },
  {
    name: 'notDataActions leaves the role’s other data actions granted',
    state: state({ roles: [secretsButGet()], assignments: [ra(ALICE, SECRETS_BUT_GET, VAULT)] }),
    action: READ_SECRET_METADATA,
    data: true,
    scope: SECRET,
    expect: 'granted',
  },
  {
    name: 'notDataActions of one role does not block another role granting the data action',
    state: state({ roles: [secretsButGet()], assignments: [ra(ALICE, SECRETS_BUT_GET, VAULT), ra(ALICE, R.KeyVaultSecretsUser, SECRET, 'ra-ksu')] }),
    action: GET_SECRET,
    data: true,
    scope: SECRET,
    expect: 'granted',
    assignmentId: 'ra-ksu',
  },
  {
    name: 'notDataActions does not subtract control-plane actions',
    state: state({ roles: [custom(ALL_BUT_DATA, 'All but data', ['*'], [], ['/'], [], ['*'])], assignments: [ra(ALICE, ALL_BUT_DATA, RG)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'notActions does not subtract data actions',
    state: state({
      roles: [custom(DATA_NOT_ACTIONS, 'Data, notActions *', [], ['*'], ['/'], [SECRETS_ALL])],
      assignments: [ra(ALICE, DATA_NOT_ACTIONS, VAULT)],
    }),
    action: GET_SECRET,
    data: true,
    scope: SECRET,
    expect: 'granted',
  },
  {
    name: 'invariant: a deny’s notDataActions exempts that data action only',
    state: state({
      assignments: [ra(ALICE, R.KeyVaultAdministrator, VAULT)],
      denies: [
        deny({
          scope: VAULT,
          principals: [{ id: ALICE, type: 'User' }],
          permissions: [{ actions: [], notActions: [], dataActions: [SECRETS_ALL], notDataActions: [GET_SECRET] }],
        }),
      ],
    }),
    action: GET_SECRET,
    data: true,
    scope: SECRET,
    expect: 'granted',
  },
  {
    name: 'a deny with notDataActions still denies the other data actions',
    state: state({
      assignments: [ra(ALICE, R.KeyVaultAdministrator, VAULT)],
      denies: [
        deny({
          scope: VAULT,
          principals: [{ id: ALICE, type: 'User' }],
          permissions: [{ actions: [], notActions: [], dataActions: [SECRETS_ALL], notDataActions: [GET_SECRET] }],
        }),
      ],
    }),
    action: SET_SECRET,
    data: true,
    scope: SECRET,
    expect: 'denied',
  },
  // Groups.
  {
    name: 'an assignment to a group applies to its member',
    state: state({ assignments: [ra(GROUP, R.ManagedIdentityContributor, RG)], groups: [{ groupId: GROUP, memberId: ALICE }] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'an assignment to an outer group applies through nesting',
    state: state({
      assignments: [ra(OUTER, R.ManagedIdentityContributor, RG)],
      groups: [
        { groupId: GROUP, memberId: ALICE },
        { groupId: OUTER, memberId: GROUP },
      ],
    }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'group membership does not flow downwards (a group is not its members)',
    state: state({ assignments: [ra(ALICE, R.Owner, RG)], groups: [{ groupId: GROUP, memberId: ALICE }] }),
    principal: GROUP,
    action: UAI_WRITE,
    scope: UAI,
    expect: 'not-granted',
  },
  {
    name: 'a membership cycle terminates and still grants',
    state: state({
      assignments: [ra(CYCLE_B, R.Reader, RG)],
      groups: [
        { groupId: CYCLE_A, memberId: ALICE },
        { groupId: CYCLE_B, memberId: CYCLE_A },
        { groupId: CYCLE_A, memberId: CYCLE_B },
      ],
    }),
    action: UAI_READ,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'a membership cycle without assignments: not granted',
    state: state({
      groups: [
        { groupId: CYCLE_A, memberId: CYCLE_B },
        { groupId: CYCLE_B, memberId: CYCLE_A },
        { groupId: CYCLE_A, memberId: ALICE },
      ],
    }),
    action: UAI_READ,
    scope: UAI,
    expect: 'not-granted',
  },
  // Assignable scopes.
  {
    name: 'a custom role assigned inside its assignableScopes grants',
    state: state({ roles: [custom(RG_SCOPED, 'RG writer', [UAI_WRITE], [], [RG])], assignments: [ra(ALICE, RG_SCOPED, RG)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'granted',
  },
  {
    name: 'a custom role assigned outside its assignableScopes grants nothing',
    state: state({ roles: [custom(RG_SCOPED, 'RG writer', [UAI_WRITE], [], [RG_B])], assignments: [ra(ALICE, RG_SCOPED, RG)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'not-granted',
  },
  {
    name: 'a custom role assigned above its assignableScopes grants nothing even below them',
    state: state({ roles: [custom(RG_SCOPED, 'RG writer', [UAI_WRITE], [], [RG])], assignments: [ra(ALICE, RG_SCOPED, SUB)] }),
    action: UAI_WRITE,
    scope: UAI,
    expect: 'not-granted',
  },
  {
    name: 'an assignment to an unknown role grants nothing',
    state: state({ assignments: [ra(ALICE, 'deadbeef-0000-0000-0000-000000000000', '/')] }),
    action: UAI_READ,
    scope: UAI,
    expect: 'not-granted',
  },
  {
    name: 'another tenant’s custom role is ignored',
    state: {
      ...state({ assignments: [ra(ALICE, ONLY_UAI_WRITE, RG)] }),
      roleDefinitions: [...BUILTIN_ROLES, { ...custom(ONLY_UAI_WRITE, 'x', [UAI_WRITE], [], ['/']), tenantId: 'other' }],
    },
    action: UAI_WRITE,
    scope: UAI,
    expect: 'not-granted',
  },
];

describe('evaluate: the rules, table-driven', () => {
  for (const row of rows) {
    it(row.name, () => {
      const d = evaluate(row.state, {
        tenantId: T,
        principalId: row.principal ?? ALICE,
        action: row.action,
        isDataAction: row.data ?? false,
        scope: row.scope,
      });
      assert.equal(d.reason, row.expect);
      assert.equal(d.allowed, row.expect === 'granted');
      if (row.assignmentId) assert.equal(d.assignmentId, row.assignmentId);
      if (row.expect !== 'not-granted') assert.ok(d.assignmentId, 'names the assignment that decided');
    });
  }
});

describe('evaluate: helpers', () => {
  it('isAssignableAt follows assignableScopes', () => {
    const role = custom(RG_SCOPED, 'x', [], [], [RG]);
    assert.equal(isAssignableAt(role, RG), true);
    assert.equal(isAssignableAt(role, UAI.toUpperCase()), true);
    assert.equal(isAssignableAt(role, SUB), false);
    assert.equal(isAssignableAt(role, RG_B), false);
    assert.equal(isAssignableAt(BUILTIN_ROLES[0]!, UAI), true);
  });

  it('principalClosure follows nesting and survives cycles', () => {
    const s = state({
      groups: [
        { groupId: CYCLE_A, memberId: ALICE },
        { groupId: CYCLE_B, memberId: CYCLE_A },
        { groupId: CYCLE_A, memberId: CYCLE_B },
      ],
    });
    assert.deepEqual([...principalClosure(s, ALICE)].sort(), [ALICE, CYCLE_A, CYCLE_B].sort());
    assert.deepEqual(principalClosure(s, BOB), [BOB]);
  });

  it('effectivePermissions is the union of the matching roles’ entries, each role once', () => {
    const s = state({
      assignments: [ra(ALICE, R.Reader, SUB), ra(GROUP, R.ManagedIdentityContributor, RG), ra(ALICE, R.Reader, RG), ra(ALICE, R.Owner, RG_B)],
      groups: [{ groupId: GROUP, memberId: ALICE }],
    });
    const perms = effectivePermissions(s, ALICE, UAI);
    assert.equal(perms.length, 2);
    assert.deepEqual(perms[0]!.actions, ['*/read']);
    assert.ok(perms[1]!.actions.includes(UAI_WRITE));
    assert.deepEqual(effectivePermissions(s, BOB, UAI), []);
    // The returned arrays are copies: mutating them does not change the state.
    perms[0]!.actions.push('x');
    assert.deepEqual(effectivePermissions(s, ALICE, UAI)[0]!.actions, ['*/read']);
  });

  it('invariant: permissionsGrant over effectivePermissions is evaluate without its deny half (notActions and notDataActions included)', () => {
    // The bootstrap admin's break-glass (src/management/authorize.ts) decides this way; it must agree with evaluate.
    const pattern = fc.constantFrom('*', '*/read', 'Microsoft.KeyVault/*', SECRETS_ALL, GET_SECRET, SET_SECRET, UAI_WRITE, 'Microsoft.ManagedIdentity/*/write');
    const entry = fc.record({
      actions: fc.array(pattern, { maxLength: 3 }),
      notActions: fc.array(pattern, { maxLength: 2 }),
      dataActions: fc.array(pattern, { maxLength: 3 }),
      notDataActions: fc.array(pattern, { maxLength: 2 }),
    });
    fc.assert(
      fc.property(
        fc.array(fc.array(entry, { minLength: 1, maxLength: 2 }), { minLength: 1, maxLength: 3 }),
        fc.constantFrom(GET_SECRET, SET_SECRET, UAI_WRITE, UAI_READ),
        fc.boolean(),
        (roles, action, data) => {
          const defs = roles.map((permissions, i): RoleDefinition => ({
            ...custom(`c0570000-0000-0000-0000-0000000001${String(i).padStart(2, '0')}`, `r${String(i)}`, [], [], ['/']),
            permissions,
          }));
          const s = state({
            roles: defs,
            assignments: defs.map((d) => ra(ALICE, d.id, VAULT)),
            denies: [
              deny({
                scope: VAULT,
                principals: [{ id: EVERYONE, type: 'SystemDefined' }],
                permissions: [{ actions: ['*'], notActions: [], dataActions: ['*'], notDataActions: [] }],
              }),
            ],
          });
          const withoutDenies = { ...s, denyAssignments: [] };
          const expected = evaluate(withoutDenies, { principalId: ALICE, action, isDataAction: data, scope: SECRET }).allowed;
          assert.equal(permissionsGrant(effectivePermissions(s, ALICE, SECRET), action, data), expected);
          // And the deny does deny: the break-glass is the only way past it.
          assert.equal(evaluate(s, { principalId: ALICE, action, isDataAction: data, scope: SECRET }).allowed, false);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('evaluate: mutation-found edges', () => {
  const OTHER_TENANT = 'tenant-2';
  const two = () => custom('c0570000-0000-0000-0000-0000000000a1', 'Two scopes', [UAI_WRITE], [], [RG_B, RG]);

  it('invariant: a role with several assignable scopes is assignable (and grants) under any one of them', () => {
    assert.equal(isAssignableAt(two(), UAI), true);
    assert.equal(isAssignableAt(two(), SUB), false);
    const s = state({ roles: [two()], assignments: [ra(ALICE, two().id, RG)] });
    assert.equal(evaluate(s, { principalId: ALICE, action: UAI_WRITE, isDataAction: false, scope: UAI }).allowed, true);
  });

  it('invariant: assignments and denies of another tenant never take part in a decision', () => {
    const foreign = { ...ra(ALICE, R.Owner, '/'), tenantId: OTHER_TENANT };
    assert.equal(evaluate(state({ assignments: [foreign] }), { principalId: ALICE, action: UAI_WRITE, isDataAction: false, scope: UAI }).allowed, false);
    assert.deepEqual(effectivePermissions(state({ assignments: [foreign] }), ALICE, UAI), []);
    const foreignDeny = { ...deny({ scope: '/', principals: [{ id: EVERYONE, type: 'Group' }] }), tenantId: OTHER_TENANT };
    const s = state({ assignments: [ra(ALICE, R.Owner, '/')], denies: [foreignDeny] });
    assert.equal(evaluate(s, { principalId: ALICE, action: UAI_WRITE, isDataAction: false, scope: UAI }).allowed, true);
  });

  it('invariant: every deny at a scope applies, not only the last one written there', () => {
    const denies = [deny({ scope: RG, principals: [{ id: ALICE, type: 'User' }] }), deny({ scope: RG, principals: [{ id: BOB, type: 'User' }] })];
    const s = state({ assignments: [ra(ALICE, R.Owner, '/'), ra(BOB, R.Owner, '/')], denies });
    for (const p of [ALICE, BOB]) assert.equal(evaluate(s, { principalId: p, action: UAI_WRITE, isDataAction: false, scope: UAI }).reason, 'denied');
  });

  it('invariant: a deny targets only its principals (and everyone only by the all-zero id)', () => {
    const s = state({ assignments: [ra(ALICE, R.Owner, '/')], denies: [deny({ scope: RG, principals: [{ id: BOB, type: 'User' }] })] });
    assert.deepEqual(evaluate(s, { principalId: ALICE, action: UAI_WRITE, isDataAction: false, scope: UAI }).reason, 'granted');
    const everyone = state({
      assignments: [ra(ALICE, R.Owner, '/')],
      denies: [deny({ scope: RG, principals: [{ id: '00000000-0000-0000-0000-000000000000', type: 'Group' }] })],
    });
    assert.equal(evaluate(everyone, { principalId: ALICE, action: UAI_WRITE, isDataAction: false, scope: UAI }).reason, 'denied');
    assert.equal(EVERYONE, '00000000-0000-0000-0000-000000000000');
  });

  it('invariant: group expansion follows every group of a member, and adds nothing else', () => {
    const groups: GroupMembership[] = [
      { groupId: OUTER, memberId: ALICE },
      { groupId: GROUP, memberId: ALICE },
    ];
    const s = state({ groups, assignments: [ra(OUTER, R.Owner, RG)] });
    assert.equal(evaluate(s, { principalId: ALICE, action: UAI_WRITE, isDataAction: false, scope: UAI }).allowed, true);
    assert.deepEqual([...principalClosure(s, ALICE)].sort(), [ALICE, GROUP, OUTER].sort());
  });

  it('invariant: effective permissions leave out assignments that are not assignable there, of unknown roles, or at other scopes', () => {
    const rgOnly = custom(RG_SCOPED, 'RG only', [UAI_READ], [], [RG_B]);
    const s = state({
      roles: [rgOnly],
      assignments: [ra(ALICE, RG_SCOPED, RG), ra(ALICE, 'c0570000-0000-0000-0000-0000000000ff', RG), ra(ALICE, R.Reader, RG_B)],
    });
    assert.deepEqual(effectivePermissions(s, ALICE, UAI), []);
  });

  it('invariant: roleGuid takes the last segment of an id, lower-cased', () => {
    assert.equal(roleGuid('x/ABC'), 'abc');
    assert.equal(roleGuid('ABC'), 'abc');
    assert.equal(roleGuid(`/providers/Microsoft.Authorization/roleDefinitions/${R.Owner.toUpperCase()}`), R.Owner.toLowerCase());
  });
});
