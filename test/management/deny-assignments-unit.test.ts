/**
 * Who may create and delete deny assignments (src/management/deny-assignments.ts), store-less: the real routes and
 * hooks over the management harness (a recording authoriser) and in-memory repositories. A deny shuts out whoever
 * it names at and below its scope, the root's Owners included, so a PUT or DELETE anywhere also needs
 * `denyAssignments/write` / `/delete` at the tenant root `/`, checked before anything is read or written; the
 * bootstrap admin's break-glass (authorize.ts) keeps every deny deletable by it, never creatable past a deny.
 * The same rules end to end, with real roles: test/management/deny-assignments.test.ts.
 */
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationRequest } from '../../src/rbac/contracts.js';
import type { StoredDenyAssignment } from '../../src/store/types.js';
import { armDenyAssignmentView, denyAssignmentRoutes } from '../../src/management/deny-assignments.js';
import { managementHarness, NOW, PRINCIPALS, send, SUB, TENANT, withRbacRepos, type ManagementHarness } from '../support/management.js';

const V = 'api-version=2022-04-01';
const WRITE = 'Microsoft.Authorization/denyAssignments/write';
const DELETE = 'Microsoft.Authorization/denyAssignments/delete';
const READ = 'Microsoft.Authorization/denyAssignments/read';
const GUID = 'abcdef00-7777-4777-8777-777777777777';
const RG_A = `/subscriptions/${SUB}/resourceGroups/rgA`;
const RG_B = `/subscriptions/${SUB}/resourceGroups/rgB`;
const EVERYONE = '00000000-0000-0000-0000-000000000000';
const GRANTED = { allowed: true, reason: 'granted' } as const;
const NOT_GRANTED = { allowed: false, reason: 'not-granted' } as const;
const DENIED = { allowed: false, reason: 'denied' } as const;

const path = (scope: string, guid = GUID) => `${scope === '/' ? '' : scope}/providers/Microsoft.Authorization/denyAssignments/${guid}?${V}`;
const lockOut = {
  properties: {
    denyAssignmentName: 'everyone but me',
    permissions: [{ actions: ['*'], notActions: [], dataActions: [], notDataActions: [] }],
    principals: [{ id: EVERYONE, type: 'SystemDefined' }],
    excludePrincipals: [{ id: PRINCIPALS.user.objectId, type: 'ServicePrincipal' }],
  },
};

function stored(scope: string, guid = GUID.toLowerCase()): StoredDenyAssignment {
  return {
    id: guid,
    tenantId: TENANT,
    denyAssignmentName: `deny at ${scope}`,
    description: '',
    scope,
    permissions: [{ actions: ['*'], notActions: [], dataActions: [], notDataActions: [] }],
    principals: [{ id: EVERYONE, type: 'SystemDefined' }],
    excludePrincipals: [],
    doNotApplyToChildScopes: false,
    isSystemProtected: false,
    createdAt: 1000,
    createdBy: PRINCIPALS.user.objectId,
  };
}

const checked = (h: ManagementHarness) => h.checks.map((c) => [c.action, c.scope]);
/** The addressed scope granted (the route's hook); the root answers `atRoot`. */
const rootAnswers = (atRoot: ReturnType<ManagementHarness['decide']>) => (c: AuthorizationRequest) => (c.scope === '/' ? atRoot : GRANTED);

describe('deny assignments: the checks a write makes (store-less)', () => {
  let h: ManagementHarness;
  let repos: ReturnType<typeof withRbacRepos>;

  beforeEach(async () => {
    h = managementHarness();
    repos = withRbacRepos(h);
    denyAssignmentRoutes(h.app, h.ctx);
    await h.app.ready();
  });

  it('a PUT at a group checks write at the group, then at the root, and creates the deny at the canonical group scope', async () => {
    const r = await send(h, 'user', 'PUT', path(`/SUBSCRIPTIONS/${SUB}/RESOURCEGROUPS/rgA`), lockOut);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(checked(h), [
      [WRITE, RG_A],
      [WRITE, '/'],
    ]);
    assert.ok(h.checks.every((c) => c.principalId === PRINCIPALS.user.objectId && c.tenantId === TENANT && !c.isDataAction));
    const deny = repos.denyAssignments.get(GUID.toLowerCase());
    assert.ok(deny !== undefined, 'created');
    assert.equal(deny.scope, RG_A);
    assert.equal(deny.createdBy, PRINCIPALS.user.objectId);
    assert.equal(deny.createdAt, NOW);
    assert.equal(repos.versions.bumps, 1);
    assert.deepEqual(r.body, armDenyAssignmentView(deny));
    assert.deepEqual(repos.audit.at(-1), {
      tenantId: TENANT,
      actor: PRINCIPALS.user.objectId,
      action: 'denyAssignment.created',
      target: `${RG_A}/providers/Microsoft.Authorization/denyAssignments/${GUID}`,
      outcome: 'success',
      detail: { denyAssignmentName: 'everyone but me', scope: RG_A },
    });
  });

  it('a PUT refused at the root is 403 whatever the caller holds at the scope (an Owner of one group cannot lock out the tenant), audited, nothing created', async () => {
    for (const [who, atRoot] of [
      ['user', NOT_GRANTED],
      ['user', DENIED],
      // The break-glass covers reading and deleting denies only, never creating one.
      ['admin', DENIED],
    ] as const) {
      h.decide = rootAnswers(atRoot);
      h.permissions = [{ actions: ['*'], notActions: [], dataActions: [], notDataActions: [] }];
      h.checks.length = 0;
      const r = await send(h, who, 'PUT', path(RG_A), lockOut);
      assert.equal(r.status, 403, `${who} ${atRoot.reason}`);
      assert.equal(r.body.error?.code, 'AuthorizationFailed');
      assert.ok(r.body.error.message.includes(`'${WRITE}'`) && r.body.error.message.includes("scope '/'"), r.body.error.message);
      assert.deepEqual(checked(h), [
        [WRITE, RG_A],
        [WRITE, '/'],
      ]);
      assert.equal(repos.denyAssignments.size, 0);
      assert.deepEqual(repos.audit.at(-1), {
        tenantId: TENANT,
        actor: PRINCIPALS[who].objectId,
        action: 'denyAssignment.created',
        target: `${RG_A}/providers/Microsoft.Authorization/denyAssignments/${GUID}`,
        outcome: 'failure',
        detail: { code: 'AuthorizationFailed' },
      });
      assert.equal(h.denied.get(path(RG_A)), PRINCIPALS[who].objectId);
    }
    assert.equal(repos.versions.bumps, 0);
  });

  it('the root check comes before the body is read: a caller without it learns nothing from a bad body', async () => {
    h.decide = rootAnswers(NOT_GRANTED);
    for (const payload of [{}, { properties: null }, { properties: [] }, []]) {
      const r = await send(h, 'user', 'PUT', path(RG_A), payload);
      assert.equal(r.status, 403, JSON.stringify(payload));
    }
    h.decide = () => GRANTED;
    for (const payload of [{}, { properties: null }, { properties: [] }, { properties: 'x' }, []]) {
      const r = await send(h, 'user', 'PUT', path(RG_A), payload);
      assert.equal(r.status, 400, JSON.stringify(payload));
      assert.equal(r.body.error?.code, Array.isArray(payload) ? 'InvalidRequestContent' : 'InvalidDenyAssignment', JSON.stringify(r.body));
      if (!Array.isArray(payload)) assert.match(r.body.error.message, /the body must be \{ properties: \{ denyAssignmentName, permissions, principals/);
    }
    assert.equal(repos.denyAssignments.size, 0);
  });

  it('a PUT at the root checks write at the root (twice: the route, then the rule) and an existing id is refused', async () => {
    assert.equal((await send(h, 'user', 'PUT', path('/'), lockOut)).status, 201);
    assert.deepEqual(checked(h), [
      [WRITE, '/'],
      [WRITE, '/'],
    ]);
    assert.equal(repos.denyAssignments.get(GUID.toLowerCase())?.scope, '/');
    const again = await send(h, 'user', 'PUT', path('/'), lockOut);
    assert.equal(again.status, 409, JSON.stringify(again.body));
  });

  it('a DELETE checks delete at the scope, then at the root; refused at the root it is 403 and the deny stays', async () => {
    repos.denyAssignments.set(GUID.toLowerCase(), stored(RG_A));
    for (const atRoot of [NOT_GRANTED, DENIED]) {
      h.decide = rootAnswers(atRoot);
      h.checks.length = 0;
      const r = await send(h, 'user', 'DELETE', path(RG_A));
      assert.equal(r.status, 403, atRoot.reason);
      assert.ok(r.body.error?.message.includes(`'${DELETE}'`), r.body.error?.message);
      assert.deepEqual(checked(h), [
        [DELETE, RG_A],
        [DELETE, '/'],
      ]);
      assert.equal(repos.denyAssignments.size, 1, 'kept');
      assert.equal(repos.audit.at(-1)?.outcome, 'failure');
      assert.equal(repos.audit.at(-1)?.action, 'denyAssignment.deleted');
    }
    h.decide = () => GRANTED;
    const r = await send(h, 'user', 'DELETE', path(RG_A));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(repos.denyAssignments.size, 0);
    assert.deepEqual(repos.audit.at(-1), {
      tenantId: TENANT,
      actor: PRINCIPALS.user.objectId,
      action: 'denyAssignment.deleted',
      target: `${RG_A}/providers/Microsoft.Authorization/denyAssignments/${GUID}`,
      outcome: 'success',
      detail: { denyAssignmentName: `deny at ${RG_A}` },
    });
  });

  it('break-glass: a deny at the root never stops the bootstrap admin from deleting a deny, when its roles grant it; nobody else', async () => {
    repos.denyAssignments.set(GUID.toLowerCase(), stored('/'));
    h.decide = () => DENIED;
    h.permissions = [];
    assert.equal((await send(h, 'admin', 'DELETE', path('/'))).status, 403, "the admin's roles do not grant it");
    h.permissions = [{ actions: ['*'], notActions: [], dataActions: [], notDataActions: [] }];
    assert.equal((await send(h, 'user', 'DELETE', path('/'))).status, 403, 'not the bootstrap admin');
    assert.equal(repos.denyAssignments.size, 1);
    const r = await send(h, 'admin', 'DELETE', path('/'));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(repos.denyAssignments.size, 0);
  });

  it('a DELETE through another scope than the deny is at deletes nothing (204); an unknown one, 204', async () => {
    repos.denyAssignments.set(GUID.toLowerCase(), stored(RG_B));
    const r = await send(h, 'user', 'DELETE', path(RG_A));
    assert.equal(r.status, 204);
    assert.equal(repos.denyAssignments.size, 1, 'the deny at another scope stays');
    assert.deepEqual(repos.audit.at(-1)?.detail, { existed: false });
    assert.equal((await send(h, 'user', 'DELETE', path(RG_B, 'abcdef00-7777-4777-8777-000000000000'))).status, 204);
    assert.equal((await send(h, 'user', 'DELETE', path(RG_B.toUpperCase().replace(SUB.toUpperCase(), SUB)))).status, 200, 'the same scope in another case');
  });
});

describe('deny assignments: reads (store-less)', () => {
  let h: ManagementHarness;
  let repos: ReturnType<typeof withRbacRepos>;

  beforeEach(async () => {
    h = managementHarness();
    repos = withRbacRepos(h);
    denyAssignmentRoutes(h.app, h.ctx);
    await h.app.ready();
  });

  it('GET one only at its own scope; the list at, above and below the scope, or at and above with atScope()', async () => {
    const above = 'abcdef00-7777-4777-8777-000000000001';
    const below = 'abcdef00-7777-4777-8777-000000000002';
    const aside = 'abcdef00-7777-4777-8777-000000000003';
    repos.denyAssignments.set(GUID.toLowerCase(), stored(RG_A));
    repos.denyAssignments.set(above, stored('/', above));
    repos.denyAssignments.set(below, stored(`${RG_A}/providers/Microsoft.KeyVault/vaults/kv`, below));
    repos.denyAssignments.set(aside, stored(RG_B, aside));
    const one = await send(h, 'user', 'GET', path(RG_A));
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, armDenyAssignmentView(stored(RG_A)));
    assert.equal((await send(h, 'user', 'GET', path(RG_B))).status, 404, 'not through another scope');
    const list = await send(h, 'user', 'GET', `${RG_A}/providers/Microsoft.Authorization/denyAssignments?${V}`);
    const names = (r: typeof list) => (r.body['value'] as { name: string }[]).map((d) => d.name).sort();
    assert.deepEqual(names(list), [GUID.toLowerCase(), above, below].sort());
    const atScope = await send(h, 'user', 'GET', `${RG_A}/providers/Microsoft.Authorization/denyAssignments?${V}&$filter=atScope()`);
    assert.deepEqual(names(atScope), [GUID.toLowerCase(), above].sort());
    assert.deepEqual(
      checked(h).map(([action]) => action),
      [READ, READ, READ, READ],
    );
    assert.equal(repos.audit.length, 0);
  });

  it("the view: the deny's own scope in its id, every field, its creator as updater", () => {
    const d = stored(RG_B);
    d.excludePrincipals = [{ id: PRINCIPALS.user.objectId, type: 'ServicePrincipal' }];
    assert.deepEqual(armDenyAssignmentView(d), {
      id: `${RG_B}/providers/Microsoft.Authorization/denyAssignments/${GUID.toLowerCase()}`,
      name: GUID.toLowerCase(),
      type: 'Microsoft.Authorization/denyAssignments',
      properties: {
        denyAssignmentName: `deny at ${RG_B}`,
        description: '',
        permissions: d.permissions,
        scope: RG_B,
        doNotApplyToChildScopes: false,
        principals: [{ id: EVERYONE, type: 'SystemDefined' }],
        excludePrincipals: [{ id: PRINCIPALS.user.objectId, type: 'ServicePrincipal' }],
        isSystemProtected: false,
        createdOn: new Date(1000).toISOString(),
        updatedOn: new Date(1000).toISOString(),
        createdBy: PRINCIPALS.user.objectId,
        updatedBy: PRINCIPALS.user.objectId,
      },
    });
  });
});
