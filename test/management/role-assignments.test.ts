/**
 * Role assignment writes at resource-id scopes (src/management/role-assignments.ts): `roleAssignments/write`
 * and `/delete` are checked at the resource id addressed, so the Owner of one resource (an identity, a vault)
 * may grant on it and on nothing beside it, in any spelling of the id; Contributor may not grant at all.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { backendSuiteOptions, startTestAuthority, type TestAuthority, acrossBackends } from '../support/authority.js';
import { assignRole, authorizationPath, call, expectAuthorizationFailed, ROLE, testPrincipal, V, type TestPrincipal } from '../rbac/authz/helpers.js';

const WRITE = 'Microsoft.Authorization/roleAssignments/write';
const DELETE = 'Microsoft.Authorization/roleAssignments/delete';
const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';

acrossBackends('role assignments at resource-id scopes', (backend) => {
  describe(`role assignments at resource-id scopes (${backend})`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let admin: string;
    let rgA: string;
    let grantee: TestPrincipal;

    const body = (scope: string, role: string = ROLE.Reader) => ({
      properties: {
        roleDefinitionId: `${scope}/providers/Microsoft.Authorization/roleDefinitions/${role}`,
        principalId: grantee.objectId,
        principalType: 'ServicePrincipal',
      },
    });
    const put = (p: TestPrincipal | string, scope: string, guid = randomUUID()) =>
      call(t, 'PUT', authorizationPath(scope, 'roleAssignments', guid), typeof p === 'string' ? p : p.token, body(scope));
    const del = (p: TestPrincipal, scope: string, guid: string) => call(t, 'DELETE', authorizationPath(scope, 'roleAssignments', guid), p.token);

    before(async () => {
      t = await startTestAuthority({ backend });
      admin = await t.adminToken('https://management.azure.com/');
      rgA = `/subscriptions/${t.subscriptionId}/resourceGroups/rg-a`;
      assert.equal((await call(t, 'PUT', `${rgA}?${V}`, admin, { location: 'westeurope' })).status, 201);
      grantee = await testPrincipal(t, 'grantee');
    });
    after(async () => t.close());

    const resources = () => [
      { kind: 'managed identity', own: `${rgA}/providers/${UAMI}/id-a`, sibling: `${rgA}/providers/${UAMI}/id-a2` },
      { kind: 'vault', own: `${rgA}/providers/Microsoft.KeyVault/vaults/kv-a`, sibling: `${rgA}/providers/Microsoft.KeyVault/vaults/kv-b` },
    ];

    it('invariant: the Owner of a resource may grant and revoke at its id, and is refused at the sibling resource in every spelling', async () => {
      for (const r of resources()) {
        const owner = await testPrincipal(t, `owner-of-${r.kind}`);
        await assignRole(t, admin, r.own, ROLE.Owner, owner.objectId);
        const guid = randomUUID();
        const granted = await put(owner, r.own, guid);
        assert.equal(granted.status, 201, `${r.kind}: ${granted.body}`);
        assert.equal((await del(owner, r.own, guid)).status, 200);

        const spellings = [
          r.sibling,
          r.sibling.toUpperCase().replace('/SUBSCRIPTIONS/', '/subscriptions/'),
          r.sibling.replace('/resourceGroups/', '/RESOURCEGROUPS/'),
        ];
        for (const scope of spellings) {
          const refused = await put(owner, scope);
          assert.equal(refused.status, 403, `${r.kind} ${scope}: ${refused.body}`);
          const error = refused.json<{ error: { code: string; message: string } }>().error;
          assert.equal(error.code, 'AuthorizationFailed');
          assert.ok(error.message.includes(`'${WRITE}'`), error.message);
        }
        // An assignment the admin made on the sibling: the resource's Owner cannot delete it.
        const theirs = randomUUID();
        assert.equal((await put(admin, r.sibling, theirs)).status, 201);
        expectAuthorizationFailed(await del(owner, r.sibling, theirs), owner.appId, owner.objectId, DELETE, r.sibling);
        assert.equal((await call(t, 'GET', authorizationPath(r.sibling, 'roleAssignments', theirs), admin)).status, 200, 'still there');
      }
    });

    it('invariant: a Contributor of a resource cannot grant on it (Microsoft.Authorization/*/Write is among its notActions)', async () => {
      for (const r of resources()) {
        const contributor = await testPrincipal(t, `contributor-of-${r.kind}`);
        await assignRole(t, admin, r.own, ROLE.Contributor, contributor.objectId);
        expectAuthorizationFailed(await put(contributor, r.own), contributor.appId, contributor.objectId, WRITE, r.own);
      }
    });
  });
});
