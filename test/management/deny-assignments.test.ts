/**
 * Who may create and delete deny assignments (src/management/deny-assignments.ts): a deny shuts out whoever it
 * names at and below its scope, the root's Owners included, so creating or deleting one takes
 * `denyAssignments/write` / `/delete` at the tenant root `/`, wherever it is placed. And the break-glass
 * (src/management/authorize.ts): a deny never stops the bootstrap admin from finding and deleting deny
 * assignments, while its roles still have to grant that.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { STORE_BACKENDS, backendSuiteOptions, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { EVERYONE } from '../../src/rbac/evaluate.js';
import {
  assignRole,
  authorizationPath,
  call,
  deleteAssignment,
  expectAuthorizationFailed,
  ROLE,
  testPrincipal,
  V,
  type TestPrincipal,
} from '../rbac/authz/helpers.js';

const WRITE = 'Microsoft.Authorization/denyAssignments/write';
const DELETE = 'Microsoft.Authorization/denyAssignments/delete';
const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';

/** Everyone but `except`, every control-plane action: the lock-out of finding 6. */
const lockOut = (except: string) => ({
  properties: {
    denyAssignmentName: `everyone but ${except}`,
    permissions: [{ actions: ['*'], notActions: [], dataActions: [], notDataActions: [] }],
    principals: [{ id: EVERYONE, type: 'SystemDefined' }],
    excludePrincipals: [{ id: except, type: 'ServicePrincipal' }],
  },
});

for (const backend of STORE_BACKENDS) {
  describe(`deny assignments: who may create and delete them (${backend})`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let admin: string;
    let sub: string;
    let rgA: string;
    let idA: string;
    /** Owner of resource group A. */
    let ownerA: TestPrincipal;
    /** Owner of the identity idA (a resource-id scope). */
    let ownerIdA: TestPrincipal;
    /** User Access Administrator at `/`: holds Microsoft.Authorization/* at the root. */
    let rootUaa: TestPrincipal;
    /** A second Owner at `/` (not the bootstrap admin). */
    let rootOwner: TestPrincipal;

    const put = (token: string, scope: string, guid: string, body: unknown) => call(t, 'PUT', authorizationPath(scope, 'denyAssignments', guid), token, body);
    const del = (token: string, scope: string, guid: string) => call(t, 'DELETE', authorizationPath(scope, 'denyAssignments', guid), token);
    const exists = async (scope: string, guid: string) => (await call(t, 'GET', authorizationPath(scope, 'denyAssignments', guid), admin)).status === 200;

    before(async () => {
      t = await startTestAuthority({ backend });
      admin = await t.adminToken('https://management.azure.com/');
      sub = `/subscriptions/${t.subscriptionId}`;
      rgA = `${sub}/resourceGroups/rg-a`;
      idA = `${rgA}/providers/${UAMI}/id-a`;
      assert.equal((await call(t, 'PUT', `${rgA}?${V}`, admin, { location: 'westeurope' })).status, 201);
      assert.equal((await call(t, 'PUT', `${idA}?${V}`, admin, { location: 'westeurope' })).status, 201);
      ownerA = await testPrincipal(t, 'owner-rg-a');
      ownerIdA = await testPrincipal(t, 'owner-id-a');
      rootUaa = await testPrincipal(t, 'root-uaa');
      rootOwner = await testPrincipal(t, 'root-owner');
      await assignRole(t, admin, rgA, ROLE.Owner, ownerA.objectId);
      await assignRole(t, admin, idA, ROLE.Owner, ownerIdA.objectId);
      await assignRole(t, admin, '/', ROLE.UserAccessAdministrator, rootUaa.objectId);
      await assignRole(t, admin, '/', ROLE.Owner, rootOwner.objectId);
    });
    after(async () => t.close());

    it('invariant: the Owner of a group or of a resource cannot create a deny there (finding 6): the right is needed at /', async () => {
      const cases: { who: () => TestPrincipal; scope: () => string }[] = [
        { who: () => ownerA, scope: () => rgA },
        { who: () => ownerA, scope: () => idA },
        { who: () => ownerIdA, scope: () => idA },
      ];
      for (const c of cases) {
        const p = c.who();
        const guid = randomUUID();
        expectAuthorizationFailed(await put(p.token, c.scope(), guid, lockOut(p.objectId)), p.appId, p.objectId, WRITE, '/');
        assert.equal(await exists(c.scope(), guid), false, 'nothing written');
      }
      // The root Owner still reads the group.
      assert.equal((await call(t, 'GET', `${rgA}?${V}`, rootOwner.token)).status, 200);
    });

    it('invariant: a principal with denyAssignments/write and /delete at / may create and delete a deny at a resource id and at a group', async () => {
      for (const scope of [idA, rgA]) {
        const guid = randomUUID();
        const created = await put(rootUaa.token, scope, guid, lockOut(rootUaa.objectId));
        assert.equal(created.status, 201, created.body);
        // The group's Owner is shut out of it now, and cannot delete the deny either.
        expectAuthorizationFailed(await del(ownerA.token, scope, guid), ownerA.appId, ownerA.objectId, DELETE, scope);
        assert.equal((await del(rootUaa.token, scope, guid)).status, 200);
        assert.equal(await exists(scope, guid), false);
      }
    });

    it('invariant: deleting a deny takes the delete right at /: the Owner of its group is refused even when the deny does not target it', async () => {
      const guid = randomUUID();
      const body = {
        properties: { ...lockOut(rootUaa.objectId).properties, principals: [{ id: rootOwner.objectId, type: 'ServicePrincipal' }], excludePrincipals: [] },
      };
      assert.equal((await put(admin, rgA, guid, body)).status, 201);
      expectAuthorizationFailed(await del(ownerA.token, rgA, guid), ownerA.appId, ownerA.objectId, DELETE, '/');
      assert.equal(await exists(rgA, guid), true);
      assert.equal((await del(admin, rgA, guid)).status, 200);
    });

    it('invariant: break-glass: a deny at / for everyone but one principal never stops the bootstrap admin from listing and deleting it; only the bootstrap admin', async () => {
      const guid = randomUUID();
      assert.equal((await put(rootUaa.token, '/', guid, lockOut(rootUaa.objectId))).status, 201);
      // The deny applies to the bootstrap admin and to another root Owner for everything else ...
      expectAuthorizationFailed(
        await call(t, 'GET', `${rgA}?${V}`, admin),
        t.admin.clientId,
        t.admin.objectId,
        'Microsoft.Resources/subscriptions/resourceGroups/read',
        rgA,
      );
      expectAuthorizationFailed(await put(admin, rgA, randomUUID(), lockOut(t.admin.objectId)), t.admin.clientId, t.admin.objectId, WRITE, rgA);
      expectAuthorizationFailed(await del(rootOwner.token, '/', guid), rootOwner.appId, rootOwner.objectId, DELETE, '/');
      expectAuthorizationFailed(
        await call(t, 'GET', authorizationPath('/', 'denyAssignments'), rootOwner.token),
        rootOwner.appId,
        rootOwner.objectId,
        'Microsoft.Authorization/denyAssignments/read',
        '/',
      );
      // ... but the bootstrap admin finds it and deletes it.
      const listed = await call(t, 'GET', authorizationPath('/', 'denyAssignments'), admin);
      assert.equal(listed.status, 200, listed.body);
      assert.ok(listed.json<{ value: { name: string }[] }>().value.some((d) => d.name === guid));
      assert.equal((await call(t, 'GET', authorizationPath('/', 'denyAssignments', guid), admin)).status, 200);
      assert.equal((await del(admin, '/', guid)).status, 200);
      assert.equal((await call(t, 'GET', `${rgA}?${V}`, rootOwner.token)).status, 200, 'the tenant is open again');
    });

    it('invariant: the break-glass skips only the deny: a bootstrap admin whose Owner assignment was removed cannot delete a deny', async () => {
      const guid = randomUUID();
      assert.equal((await put(rootUaa.token, rgA, guid, lockOut(rootUaa.objectId))).status, 201);
      const assignments = await call(
        t,
        'GET',
        `${authorizationPath('/', 'roleAssignments')}&$filter=${encodeURIComponent(`principalId eq '${t.admin.objectId}'`)}`,
        rootOwner.token,
      );
      assert.equal(assignments.status, 200, assignments.body);
      for (const a of assignments.json<{ value: { name: string; properties: { scope: string } }[] }>().value)
        await deleteAssignment(t, rootOwner.token, a.properties.scope, a.name);
      expectAuthorizationFailed(await del(admin, rgA, guid), t.admin.clientId, t.admin.objectId, DELETE, rgA);
      assert.equal((await del(rootUaa.token, rgA, guid)).status, 200);
    });
  });
}
