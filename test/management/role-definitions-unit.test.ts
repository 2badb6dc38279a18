/**
 * Who may change a custom role (src/management/role-definitions.ts), store-less: the real routes and hooks over
 * the management harness (a recording authoriser) and in-memory repositories. A role definition is a tenant
 * object: a PUT checks `roleDefinitions/write` at the addressed scope, then at every assignable scope the role
 * has and every valid one the request gives it (canonical, each once); a DELETE checks `/delete` at every one it
 * has; a role whose scopes changed between those checks and the write is refused in the write's transaction.
 * The same rules end to end, with real roles: test/management/role-definitions.test.ts.
 */
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationRequest } from '../../src/rbac/contracts.js';
import type { CustomRoleDefinition } from '../../src/store/types.js';
import { armRoleDefinitionView, roleDefinitionRoutes } from '../../src/management/role-definitions.js';
import { managementHarness, PRINCIPALS, send, SUB, TENANT, withRbacRepos, type ManagementHarness } from '../support/management.js';

const V = 'api-version=2022-04-01';
const WRITE = 'Microsoft.Authorization/roleDefinitions/write';
const DELETE = 'Microsoft.Authorization/roleDefinitions/delete';
const READ = 'Microsoft.Authorization/roleDefinitions/read';
// Hex letters in the GUID: the stored key is lower case, a path may spell it upper case.
const GUID = 'abcdef00-6666-4666-8666-666666666666';
const RG_A = `/subscriptions/${SUB}/resourceGroups/rgA`;
const RG_B = `/subscriptions/${SUB}/resourceGroups/rgB`;
const SUB_SCOPE = `/subscriptions/${SUB}`;
const MG = '/providers/Microsoft.Management/managementGroups/mg';
const NOT_GRANTED = { allowed: false, reason: 'not-granted' } as const;

const path = (scope: string, guid = GUID) => `${scope === '/' ? '' : scope}/providers/Microsoft.Authorization/roleDefinitions/${guid}?${V}`;
const body = (assignableScopes: unknown, roleName = 'custom', extra: Record<string, unknown> = {}) => ({
  properties: { roleName, permissions: [{ actions: ['*/read'], notActions: [], dataActions: [], notDataActions: [] }], assignableScopes, ...extra },
});

function stored(assignableScopes: string[], guid = GUID.toLowerCase()): CustomRoleDefinition {
  return {
    id: guid,
    roleName: 'custom',
    roleType: 'CustomRole',
    description: '',
    permissions: [{ actions: ['*/read'], notActions: [], dataActions: [], notDataActions: [] }],
    assignableScopes,
    tenantId: TENANT,
    createdAt: 1000,
    createdBy: PRINCIPALS.admin.objectId,
    updatedAt: 2000,
    updatedBy: PRINCIPALS.admin.objectId,
  };
}

/** The (action, scope) pairs checked, in order. */
const checked = (h: ManagementHarness) => h.checks.map((c) => [c.action, c.scope]);

describe('role definitions: the checks a write makes (store-less)', () => {
  let h: ManagementHarness;
  let repos: ReturnType<typeof withRbacRepos>;

  beforeEach(async () => {
    h = managementHarness();
    repos = withRbacRepos(h);
    roleDefinitionRoutes(h.app, h.ctx);
    await h.app.ready();
  });

  it('a new role: write at the addressed scope, then at every requested assignable scope in canonical form, each once', async () => {
    const requested = [RG_A, `/SUBSCRIPTIONS/${SUB}/RESOURCEGROUPS/rgA/`, RG_B.toLowerCase().replace('resourcegroups', 'resourceGroups'), MG, '/'];
    const r = await send(h, 'user', 'PUT', path(RG_A), body(requested));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(checked(h), [
      [WRITE, RG_A],
      [WRITE, RG_A],
      [WRITE, `/subscriptions/${SUB}/resourceGroups/rgb`],
      [WRITE, MG],
      [WRITE, '/'],
    ]);
    for (const c of h.checks) {
      assert.deepEqual(
        { tenantId: c.tenantId, principalId: c.principalId, isDataAction: c.isDataAction },
        {
          tenantId: TENANT,
          principalId: PRINCIPALS.user.objectId,
          isDataAction: false,
        },
      );
    }
    const role = repos.roleDefinitions.get(GUID.toLowerCase());
    assert.ok(role !== undefined, 'written');
    assert.equal(role.createdBy, PRINCIPALS.user.objectId);
    assert.equal(role.tenantId, TENANT);
    assert.deepEqual(repos.audit.at(-1), {
      tenantId: TENANT,
      actor: PRINCIPALS.user.objectId,
      action: 'roleDefinition.created',
      target: `${RG_A}/providers/Microsoft.Authorization/roleDefinitions/${GUID}`,
      outcome: 'success',
      detail: { roleName: 'custom', assignableScopes: role.assignableScopes },
    });
    assert.deepEqual(r.body, armRoleDefinitionView(role, RG_A) as unknown as Record<string, unknown>);
    assert.deepEqual((r.body['properties'] as { assignableScopes: unknown }).assignableScopes, [
      RG_A,
      RG_A,
      `/subscriptions/${SUB}/resourceGroups/rgb`,
      MG,
      '/',
    ]);
  });

  it('an existing role: write at every scope it has, then at every scope requested (a group path cannot rewrite a tenant-wide role)', async () => {
    repos.roleDefinitions.set(GUID.toLowerCase(), stored(['/', RG_B]));
    const r = await send(h, 'user', 'PUT', path(RG_A, GUID.toUpperCase()), body([RG_A], 'custom', { description: 'why' }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(repos.roleDefinitions.get(GUID.toLowerCase())?.description, 'why');
    assert.deepEqual(checked(h), [
      [WRITE, RG_A],
      [WRITE, '/'],
      [WRITE, RG_B],
      [WRITE, RG_A],
    ]);
    const role = repos.roleDefinitions.get(GUID.toLowerCase());
    assert.deepEqual(role?.assignableScopes, [RG_A]);
    assert.equal(role.createdBy, PRINCIPALS.admin.objectId, 'the creator is kept');
    assert.equal(role.updatedBy, PRINCIPALS.user.objectId);
    assert.equal(repos.audit.at(-1)?.action, 'roleDefinition.updated');
  });

  it('a refusal at any existing or requested assignable scope is 403, audited as a failure, nothing written', async () => {
    for (const refusedAt of ['/', RG_B, RG_A, MG]) {
      const original = stored(['/', RG_B]);
      repos.roleDefinitions.set(GUID.toLowerCase(), original);
      h.checks.length = 0;
      // The addressed scope (the hook's check) is granted: only the assignable scopes decide.
      let first = true;
      h.decide = (c: AuthorizationRequest) => {
        if (first) {
          first = false;
          return { allowed: true, reason: 'granted' };
        }
        return c.scope === refusedAt ? NOT_GRANTED : { allowed: true, reason: 'granted' };
      };
      const r = await send(h, 'user', 'PUT', path(RG_A), body([RG_A, MG], 'renamed'));
      assert.equal(r.status, 403, refusedAt);
      assert.equal(r.body.error?.code, 'AuthorizationFailed', refusedAt);
      assert.ok(r.body.error.message.includes(`'${WRITE}'`), r.body.error.message);
      assert.ok(r.body.error.message.includes(`'${refusedAt}'`), r.body.error.message);
      assert.equal(repos.roleDefinitions.get(GUID.toLowerCase()), original, `${refusedAt}: unchanged`);
      assert.deepEqual(repos.audit.at(-1), {
        tenantId: TENANT,
        actor: PRINCIPALS.user.objectId,
        action: 'roleDefinition.write',
        target: `${RG_A}/providers/Microsoft.Authorization/roleDefinitions/${GUID}`,
        outcome: 'failure',
        detail: { code: 'AuthorizationFailed' },
      });
      assert.equal(h.denied.get(path(RG_A)), PRINCIPALS.user.objectId, 'the refusal names the caller');
    }
    assert.equal(repos.versions.bumps, 0);
  });

  it('a requested scope that is not a valid scope is never checked, and the directory refuses it (400)', async () => {
    const r = await send(h, 'user', 'PUT', path(RG_A), body([RG_A, '/subscriptions//resourceGroups/x', 42, 'not a scope']));
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.deepEqual(checked(h), [
      [WRITE, RG_A],
      [WRITE, RG_A],
    ]);
    assert.equal(repos.roleDefinitions.size, 0);
    const notArray = await send(h, 'user', 'PUT', path(RG_A), body(RG_B));
    assert.equal(notArray.status, 400);
    assert.deepEqual(checked(h).slice(2), [[WRITE, RG_A]], 'a string is not a list of scopes');
  });

  it("refuses, in the write's transaction, a role whose assignable scopes changed after the checks (409, nothing written)", async () => {
    repos.roleDefinitions.set(GUID.toLowerCase(), stored([RG_B]));
    let gets = 0;
    repos.onGet.hook = (id) => {
      gets += 1;
      // The second read is the transaction's: another writer made the role tenant-wide in between.
      if (gets === 2) repos.roleDefinitions.set(id, stored(['/', RG_B]));
    };
    const r = await send(h, 'user', 'PUT', path(RG_A), body([RG_A]));
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.error?.code, 'ConflictError');
    assert.match(r.body.error.message, /^The role definition's assignable scopes changed while this request was being authorised/);
    assert.deepEqual(repos.roleDefinitions.get(GUID.toLowerCase())?.assignableScopes, ['/', RG_B], 'not overwritten');
    assert.deepEqual(checked(h), [
      [WRITE, RG_A],
      [WRITE, RG_B],
      [WRITE, RG_A],
    ]);
  });

  it('a role created by another writer between the checks and the write: its scopes were never checked, refused', async () => {
    let gets = 0;
    repos.onGet.hook = (id) => {
      gets += 1;
      if (gets === 2) repos.roleDefinitions.set(id, stored(['/']));
    };
    const r = await send(h, 'user', 'PUT', path(RG_A), body([RG_A]));
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.deepEqual(repos.roleDefinitions.get(GUID.toLowerCase())?.assignableScopes, ['/']);
  });

  it('the same scopes spelled otherwise in the transaction are the ones checked: written', async () => {
    repos.roleDefinitions.set(GUID.toLowerCase(), stored([RG_B]));
    let gets = 0;
    repos.onGet.hook = (id) => {
      gets += 1;
      if (gets === 2) repos.roleDefinitions.set(id, stored([RG_B.toUpperCase()]));
    };
    const r = await send(h, 'user', 'PUT', path(RG_A), body([RG_A]));
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });

  it("a PUT's body must be { properties } and a type other than CustomRole is refused, before any assignable-scope check", async () => {
    for (const payload of [{ properties: null }, { properties: [] }, { properties: 'x' }, {}, [], body([RG_A], 'x', { type: 'BuiltInRole' })]) {
      h.checks.length = 0;
      const r = await send(h, 'user', 'PUT', path(RG_A), payload);
      assert.equal(r.status, 400, JSON.stringify(payload));
      assert.deepEqual(checked(h), [[WRITE, RG_A]], JSON.stringify(payload));
      if (!Array.isArray(payload)) {
        assert.equal(r.body.error?.code, 'InvalidRoleDefinition', JSON.stringify(r.body));
        const typed = JSON.stringify(payload).includes('BuiltInRole');
        assert.match(r.body.error.message, typed ? /'type' must be 'CustomRole'/ : /the body must be \{ properties: \{ roleName/);
      }
    }
    for (const type of ['CustomRole', null]) {
      const r = await send(h, 'user', 'PUT', path(RG_A), body([RG_A], `typed-${String(type)}`, { type }));
      assert.equal(r.status, repos.roleDefinitions.size === 1 && type === null ? 200 : 201, String(type));
    }
    assert.equal(repos.roleDefinitions.size, 1);
  });

  it('a DELETE: delete at the addressed scope, then at every scope the role has; a refusal at any is 403 and nothing is deleted', async () => {
    for (const refusedAt of ['/', RG_B]) {
      const original = stored(['/', RG_B, RG_B.toUpperCase()]);
      repos.roleDefinitions.set(GUID.toLowerCase(), original);
      h.checks.length = 0;
      let first = true;
      h.decide = (c: AuthorizationRequest) => {
        if (first) {
          first = false;
          return { allowed: true, reason: 'granted' };
        }
        return c.scope === refusedAt ? NOT_GRANTED : { allowed: true, reason: 'granted' };
      };
      const r = await send(h, 'user', 'DELETE', path(RG_A));
      assert.equal(r.status, 403, refusedAt);
      assert.ok(r.body.error?.message.includes(`'${DELETE}'`), r.body.error?.message);
      assert.equal(repos.roleDefinitions.get(GUID.toLowerCase()), original, 'kept');
      assert.equal(repos.audit.at(-1)?.outcome, 'failure');
      assert.equal(repos.audit.at(-1)?.action, 'roleDefinition.deleted');
    }
    h.decide = () => ({ allowed: true, reason: 'granted' });
    h.checks.length = 0;
    const r = await send(h, 'user', 'DELETE', path(RG_A));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(checked(h), [
      [DELETE, RG_A],
      [DELETE, '/'],
      [DELETE, RG_B],
    ]);
    assert.equal(repos.roleDefinitions.size, 0);
    assert.deepEqual(repos.audit.at(-1), {
      tenantId: TENANT,
      actor: PRINCIPALS.user.objectId,
      action: 'roleDefinition.deleted',
      target: `${RG_A}/providers/Microsoft.Authorization/roleDefinitions/${GUID}`,
      outcome: 'success',
      detail: { roleName: 'custom' },
    });
  });

  it('a DELETE of a role whose scopes changed after the checks is refused (409); of no role, 204 after the one check', async () => {
    repos.roleDefinitions.set(GUID.toLowerCase(), stored([RG_B]));
    let gets = 0;
    repos.onGet.hook = (id) => {
      gets += 1;
      if (gets === 2) repos.roleDefinitions.set(id, stored(['/', RG_B]));
    };
    const r = await send(h, 'user', 'DELETE', path(RG_A));
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(repos.roleDefinitions.size, 1, 'kept');
    repos.onGet.hook = undefined;
    repos.roleDefinitions.clear();
    h.checks.length = 0;
    const none = await send(h, 'user', 'DELETE', path(RG_A));
    assert.equal(none.status, 204);
    assert.deepEqual(checked(h), [[DELETE, RG_A]]);
    assert.deepEqual(repos.audit.at(-1)?.detail, { existed: false });
  });

  it('a name that is not a GUID reads no stored role (the directory refuses it) and checks nothing more', async () => {
    repos.roleDefinitions.set(GUID.toLowerCase(), stored(['/']));
    let gets = 0;
    repos.onGet.hook = () => (gets += 1);
    const r = await send(h, 'user', 'PUT', path(RG_A, 'not-a-guid'), body([RG_A]));
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(gets, 0);
    assert.deepEqual(checked(h), [
      [WRITE, RG_A],
      [WRITE, RG_A],
    ]);
    h.checks.length = 0;
    const del = await send(h, 'user', 'DELETE', path(RG_A, 'not-a-guid'));
    assert.equal(del.status, 400, JSON.stringify(del.body));
    assert.deepEqual(checked(h), [[DELETE, RG_A]]);
  });
});

describe('role definitions: reads and views (store-less)', () => {
  let h: ManagementHarness;
  let repos: ReturnType<typeof withRbacRepos>;

  beforeEach(async () => {
    h = managementHarness();
    repos = withRbacRepos(h);
    roleDefinitionRoutes(h.app, h.ctx);
    await h.app.ready();
  });

  it('GET one and the list check read at the addressed scope and return ids under its subscription (or the root)', async () => {
    repos.roleDefinitions.set(GUID.toLowerCase(), stored([RG_B]));
    const one = await send(h, 'user', 'GET', path(RG_A));
    assert.equal(one.status, 200);
    assert.equal(one.body['id'], `${SUB_SCOPE}/providers/Microsoft.Authorization/roleDefinitions/${GUID.toLowerCase()}`);
    const props = one.body['properties'] as Record<string, unknown>;
    assert.equal(props['createdOn'], new Date(1000).toISOString());
    assert.equal(props['updatedOn'], new Date(2000).toISOString());
    assert.equal(props['createdBy'], PRINCIPALS.admin.objectId);
    const list = await send(h, 'user', 'GET', `/providers/Microsoft.Authorization/roleDefinitions?${V}&$filter=${encodeURIComponent("type eq 'CustomRole'")}`);
    assert.equal(list.status, 200);
    const value = list.body['value'] as { id: string }[];
    assert.deepEqual(
      value.map((d) => d.id),
      [`/providers/Microsoft.Authorization/roleDefinitions/${GUID.toLowerCase()}`],
    );
    const builtIn = await send(
      h,
      'user',
      'GET',
      `${SUB_SCOPE}/providers/Microsoft.Authorization/roleDefinitions?${V}&$filter=${encodeURIComponent("roleName eq 'reader'")}`,
    );
    const reader = builtIn.body['value'] as { properties: { roleName: string; type: string; createdOn: unknown; createdBy: unknown } }[];
    assert.deepEqual(
      reader.map((d) => [d.properties.roleName, d.properties.type, d.properties.createdOn, d.properties.createdBy]),
      [['Reader', 'BuiltInRole', null, null]],
    );
    const builtIns = await send(
      h,
      'user',
      'GET',
      `/providers/Microsoft.Authorization/roleDefinitions?${V}&$filter=${encodeURIComponent("type eq 'BuiltInRole'")}`,
    );
    assert.ok((builtIns.body['value'] as unknown[]).length > 1);
    assert.ok(!(builtIns.body['value'] as { name: string }[]).some((d) => d.name === GUID.toLowerCase()), 'no custom role');
    const other = await send(h, 'user', 'GET', `/providers/Microsoft.Authorization/roleDefinitions?${V}&$filter=${encodeURIComponent("type eq 'Other'")}`);
    assert.ok(
      (other.body['value'] as { name: string }[]).some((d) => d.name === GUID.toLowerCase()),
      'an unknown type filters nothing',
    );
    assert.deepEqual(
      checked(h).map(([action]) => action),
      [READ, READ, READ, READ, READ],
    );
    assert.equal(repos.audit.length, 0, 'reads are not audited');
  });

  it("the view of a stored custom role: its id under the scope's subscription, every permission list copied", () => {
    const role = stored(['/']);
    role.permissions = [{ actions: ['a'], notActions: ['b'], dataActions: ['c'], notDataActions: ['d'] }];
    const view = armRoleDefinitionView(role, `/SUBSCRIPTIONS/${SUB}/resourceGroups/x`);
    assert.equal(view.id, `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${GUID.toLowerCase()}`);
    assert.deepEqual(view.properties.permissions, [{ actions: ['a'], notActions: ['b'], dataActions: ['c'], notDataActions: ['d'] }]);
    assert.equal(view.properties.updatedBy, PRINCIPALS.admin.objectId);
    assert.equal(view.type, 'Microsoft.Authorization/roleDefinitions');
  });
});
