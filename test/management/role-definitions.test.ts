/**
 * Who may change a custom role (src/management/role-definitions.ts): a role definition is a tenant object, so
 * `roleDefinitions/write` is checked at every assignable scope the role has and every one the request gives it,
 * and `/delete` at every one it has, whatever path the request comes through (Azure: the caller needs the
 * right "on all the AssignableScopes"). And a role's `notDataActions` is enforced by the vault end to end.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { backendSuiteOptions, acrossBackends } from '../support/authority.js';
import { startVaultHarness, V as VAULT_V, type VaultHarness } from '../vault/harness.js';
import {
  assignRole,
  assignRoleInStore,
  authorizationPath,
  call,
  expectAuthorizationFailed,
  ROLE,
  testPrincipal,
  V,
  type TestPrincipal,
} from '../rbac/authz/helpers.js';

const WRITE = 'Microsoft.Authorization/roleDefinitions/write';
const DELETE = 'Microsoft.Authorization/roleDefinitions/delete';
const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';

interface RoleView {
  properties: { roleName: string; assignableScopes: string[]; permissions: { actions: string[] }[] };
}

const roleBody = (roleName: string, assignableScopes: string[], actions: string[] = ['*']) => ({
  properties: { roleName, type: 'CustomRole', permissions: [{ actions, notActions: [], dataActions: [], notDataActions: [] }], assignableScopes },
});

acrossBackends('role definitions: who may change them', (backend) => {
  describe(`role definitions: who may change them (${backend})`, backendSuiteOptions(backend), () => {
    let h: VaultHarness;
    let admin: string;
    let sub: string;
    let rgA: string;
    let rgB: string;
    let idA: string;
    let idA2: string;
    /** Owner of resource group A only. */
    let ownerA: TestPrincipal;
    /** Owner of the identity idA only (a resource-id scope). */
    let ownerIdA: TestPrincipal;
    /** A custom role, assignable at `/`, that nobody but the admin may change. */
    const tenantWide = randomUUID();

    const put = (p: TestPrincipal | string, scope: string, guid: string, body: unknown) =>
      call(h.t, 'PUT', authorizationPath(scope, 'roleDefinitions', guid), typeof p === 'string' ? p : p.token, body);
    const del = (p: TestPrincipal, scope: string, guid: string) => call(h.t, 'DELETE', authorizationPath(scope, 'roleDefinitions', guid), p.token);
    async function stored(guid: string): Promise<RoleView | undefined> {
      const r = await call(h.t, 'GET', authorizationPath('/', 'roleDefinitions', guid), admin);
      return r.status === 200 ? r.json<RoleView>() : undefined;
    }

    before(async () => {
      h = await startVaultHarness({ backend });
      admin = await h.t.adminToken('https://management.azure.com/');
      sub = `/subscriptions/${h.t.subscriptionId}`;
      rgA = `${sub}/resourceGroups/rg-a`;
      rgB = `${sub}/resourceGroups/rg-b`;
      idA = `${rgA}/providers/${UAMI}/id-a`;
      idA2 = `${rgA}/providers/${UAMI}/id-a2`;
      for (const g of [rgA, rgB]) assert.equal((await call(h.t, 'PUT', `${g}?${V}`, admin, { location: 'westeurope' })).status, 201);
      for (const i of [idA, idA2]) assert.equal((await call(h.t, 'PUT', `${i}?${V}`, admin, { location: 'westeurope' })).status, 201);
      ownerA = await testPrincipal(h.t, 'owner-rg-a');
      ownerIdA = await testPrincipal(h.t, 'owner-id-a');
      await assignRole(h.t, admin, rgA, ROLE.Owner, ownerA.objectId);
      await assignRole(h.t, admin, idA, ROLE.Owner, ownerIdA.objectId);
      assert.equal((await put(admin, '/', tenantWide, roleBody('Tenant-wide reader', ['/'], ['*/read']))).status, 201);
    });
    after(async () => h.close());

    it('invariant: the Owner of one group cannot rewrite a tenant-wide custom role through any path it owns (finding 3), and it stays unchanged', async () => {
      const escalation = roleBody('Tenant-wide reader', [rgA], ['*']);
      for (const path of [rgA, idA, `${rgA}/providers/Microsoft.Compute/virtualMachines/vm-x`]) {
        expectAuthorizationFailed(await put(ownerA, path, tenantWide, escalation), ownerA.appId, ownerA.objectId, WRITE, '/');
      }
      // Through the subscription or the root, the path itself is out of reach.
      expectAuthorizationFailed(await put(ownerA, sub, tenantWide, escalation), ownerA.appId, ownerA.objectId, WRITE, sub);
      const role = await stored(tenantWide);
      assert.deepEqual(role?.properties.assignableScopes, ['/']);
      assert.deepEqual(role?.properties.permissions[0]?.actions, ['*/read']);
      // And no subscription-level right came of it.
      expectAuthorizationFailed(
        await call(h.t, 'PUT', `${rgB}?${V}`, ownerA.token, { location: 'westeurope' }),
        ownerA.appId,
        ownerA.objectId,
        'Microsoft.Resources/subscriptions/resourceGroups/write',
        rgB,
      );
    });

    it('invariant: every requested assignable scope needs the write right, whatever its spelling', async () => {
      const sid = h.t.subscriptionId;
      const cases: { scopes: string[]; refusedAt: string }[] = [
        { scopes: ['/'], refusedAt: '/' },
        { scopes: [sub], refusedAt: sub },
        { scopes: [`/SUBSCRIPTIONS/${sid}`], refusedAt: sub },
        { scopes: [`/Subscriptions/${sid}/`], refusedAt: sub },
        { scopes: [rgA, rgB], refusedAt: rgB },
        { scopes: [rgA, `/subscriptions/${sid}/RESOURCEGROUPS/rg-b`], refusedAt: `${sub}/resourceGroups/rg-b` },
        { scopes: [rgA, `${rgB}/providers/${UAMI}/id-b`], refusedAt: `${rgB}/providers/${UAMI}/id-b` },
        { scopes: [`/subscriptions/${sid}/resourceGroups/RG-B`], refusedAt: `${sub}/resourceGroups/RG-B` },
      ];
      for (const c of cases) {
        const guid = randomUUID();
        const r = await put(ownerA, rgA, guid, roleBody(`attempt ${guid}`, c.scopes));
        assert.equal(r.status, 403, `${JSON.stringify(c.scopes)}: ${r.body}`);
        const message = r.json<{ error: { code: string; message: string } }>().error;
        assert.equal(message.code, 'AuthorizationFailed');
        assert.ok(
          message.message.toLowerCase().includes(`perform action '${WRITE.toLowerCase()}' over scope '${c.refusedAt.toLowerCase()}'`),
          `${JSON.stringify(c.scopes)}: ${message.message}`,
        );
        assert.equal(await stored(guid), undefined, 'nothing written');
      }
    });

    it('invariant: an Owner may create, widen within, narrow and delete a role within its own scopes, at a group and at a resource id', async () => {
      const guid = randomUUID();
      assert.equal((await put(ownerA, rgA, guid, roleBody('rg-a role', [rgA]))).status, 201);
      assert.equal((await put(ownerA, rgA, guid, roleBody('rg-a role', [rgA, idA]))).status, 200);
      assert.equal((await put(ownerA, idA, guid, roleBody('rg-a role', [idA]))).status, 200);
      assert.deepEqual((await stored(guid))?.properties.assignableScopes, [idA]);
      assert.equal((await del(ownerA, rgA, guid)).status, 200);
      assert.equal(await stored(guid), undefined);

      // The Owner of one identity (a resource-id scope): its own identity yes, the sibling no.
      const own = randomUUID();
      assert.equal((await put(ownerIdA, idA, own, roleBody('id-a role', [idA]))).status, 201);
      const other = randomUUID();
      expectAuthorizationFailed(await put(ownerIdA, idA, other, roleBody('id-a2 role', [idA2])), ownerIdA.appId, ownerIdA.objectId, WRITE, idA2);
      expectAuthorizationFailed(await put(ownerIdA, idA2, other, roleBody('id-a2 role', [idA2])), ownerIdA.appId, ownerIdA.objectId, WRITE, idA2);
      // Widening its own role beyond the identity is refused, and the role keeps its scopes.
      expectAuthorizationFailed(await put(ownerIdA, idA, own, roleBody('id-a role', [idA, rgA])), ownerIdA.appId, ownerIdA.objectId, WRITE, rgA);
      assert.deepEqual((await stored(own))?.properties.assignableScopes, [idA]);
      assert.equal((await del(ownerIdA, idA, own)).status, 200);
    });

    it('invariant: narrowing a role someone else may assign elsewhere needs the right at the scopes it loses', async () => {
      const guid = randomUUID();
      assert.equal((await put(admin, '/', guid, roleBody('rg-a and rg-b', [rgA, rgB]))).status, 201);
      expectAuthorizationFailed(await put(ownerA, rgA, guid, roleBody('rg-a and rg-b', [rgA], ['*'])), ownerA.appId, ownerA.objectId, WRITE, rgB);
      assert.deepEqual((await stored(guid))?.properties.assignableScopes, [rgA, rgB]);
    });

    it('invariant: deleting a custom role needs the delete right at every scope it is assignable at', async () => {
      for (const path of [rgA, idA]) expectAuthorizationFailed(await del(ownerA, path, tenantWide), ownerA.appId, ownerA.objectId, DELETE, '/');
      assert.ok((await stored(tenantWide)) !== undefined, 'still there');
      const both = randomUUID();
      assert.equal((await put(admin, '/', both, roleBody('both groups', [rgA, rgB]))).status, 201);
      expectAuthorizationFailed(await del(ownerA, rgA, both), ownerA.appId, ownerA.objectId, DELETE, rgB);
      assert.ok((await stored(both)) !== undefined, 'still there');
    });

    it('invariant: a custom role’s notDataActions is enforced by the vault: its holder lists secrets but cannot read one', async () => {
      const vault = await h.createVault('kv-nda');
      const officer = await h.app_('officer');
      await assignRoleInStore(h.t, vault.resourceId, ROLE.KeyVaultSecretsOfficer, officer.objectId);
      assert.equal((await h.call('kv-nda', 'PUT', `/secrets/s1?${VAULT_V}`, await h.token(officer), { value: 'v' })).statusCode, 200);

      const guid = randomUUID();
      const body = {
        properties: {
          roleName: 'Secrets but their values',
          permissions: [
            {
              actions: [],
              notActions: [],
              dataActions: ['Microsoft.KeyVault/vaults/secrets/*'],
              notDataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action'],
            },
          ],
          assignableScopes: [vault.resourceId],
        },
      };
      assert.equal((await put(admin, vault.resourceId, guid, body)).status, 201);
      const holder = await h.app_('nda-holder');
      await assignRole(h.t, admin, vault.resourceId, guid, holder.objectId);
      const token = await h.token(holder);
      assert.equal((await h.call('kv-nda', 'GET', `/secrets?${VAULT_V}`, token)).statusCode, 200, 'readMetadata is granted');
      const refused = await h.call('kv-nda', 'GET', `/secrets/s1?${VAULT_V}`, token);
      assert.equal(refused.statusCode, 403, refused.body);
      assert.equal(refused.json<{ error: { innererror: { code: string } } }>().error.innererror.code, 'ForbiddenByRbac');
    });
  });
});
