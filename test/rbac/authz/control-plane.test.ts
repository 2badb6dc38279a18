/**
 * End to end through the running authority with real tokens (client_credentials through the token endpoint):
 * the management API is authorised by RBAC. On both store backends.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  backendSuiteOptions,
  registerTestApplication,
  startTestAuthority,
  STORE_BACKENDS,
  type TestApplication,
  type TestAuthority,
} from '../../support/authority.js';
import { assignRole, call, clientToken, deleteAssignment, expectAuthorizationFailed, GRAPH, ROLE, V } from './helpers.js';

const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';

for (const backend of STORE_BACKENDS) {
  describe(`management API authorised by RBAC (${backend})`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let admin: string;
    let sub: string;
    const groupA = 'rg-a';
    const groupB = 'rg-b';
    const groupScope = (g: string) => `/subscriptions/${sub}/resourceGroups/${g}`;
    const identityPath = (g: string, name: string) => `${groupScope(g)}/providers/${UAMI}/${name}`;

    async function principal(name: string): Promise<TestApplication & { token: string }> {
      const app = await registerTestApplication(t, name, { certificate: false });
      return { ...app, token: await clientToken(t, app.appId, app.secret) };
    }

    before(async () => {
      t = await startTestAuthority({ backend });
      sub = t.subscriptionId;
      admin = await t.adminToken('https://management.azure.com/');
      for (const g of [groupA, groupB]) {
        const r = await call(t, 'PUT', `${groupScope(g)}?${V}`, admin, { location: 'westeurope' });
        assert.equal(r.status, 201, r.body);
      }
    });
    after(async () => {
      await t.close();
    });

    it('the bootstrap admin is Owner at / and may do everything', async () => {
      const perms = await call(t, 'GET', `/providers/Microsoft.Authorization/permissions?${V}`, admin);
      assert.equal(perms.status, 200, perms.body);
      assert.deepEqual(perms.json<{ value: unknown[] }>().value, [{ actions: ['*'], notActions: [], dataActions: [], notDataActions: [] }]);
      assert.equal((await call(t, 'PUT', `${identityPath(groupB, 'by-admin')}?${V}`, admin, { location: 'westeurope' })).status, 201);
      assert.equal((await call(t, 'GET', `/subscriptions/${sub}/resourceGroups?${V}`, admin)).status, 200);
      assert.equal((await call(t, 'GET', `/openmsi/keys`, admin)).status, 200);
      assert.equal((await call(t, 'GET', `/openmsi/audit`, admin)).status, 200);
      const graph = await t.adminToken(GRAPH);
      assert.equal((await call(t, 'GET', '/v1.0/servicePrincipals', graph)).status, 200);
    });

    it('a principal with no role is refused; Managed Identity Contributor on A allows A only; deleting it refuses again (timed)', async (ctx) => {
      const sp = await principal('no-role');
      const action = `${UAMI}/write`;
      const putIn = (g: string) => call(t, 'PUT', `${identityPath(g, 'from-sp')}?${V}`, sp.token, { location: 'westeurope' });

      expectAuthorizationFailed(await putIn(groupA), sp.appId, sp.objectId, action, identityPath(groupA, 'from-sp'));

      const assignment = await assignRole(t, admin, groupScope(groupA), ROLE.ManagedIdentityContributor, sp.objectId);
      const granted = Date.now();
      let allowedAt: number | undefined;
      for (let i = 0; i < 100 && allowedAt === undefined; i++) {
        const r = await putIn(groupA);
        if (r.status === 201 || r.status === 200) allowedAt = Date.now();
        else await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(allowedAt !== undefined, 'the grant took effect');
      ctx.diagnostic(`grant effective after ${String(allowedAt - granted)} ms`);
      expectAuthorizationFailed(await putIn(groupB), sp.appId, sp.objectId, action, identityPath(groupB, 'from-sp'));
      // Its lists show only what it may read.
      const listed = await call(t, 'GET', `/subscriptions/${sub}/providers/${UAMI}?${V}`, sp.token);
      assert.equal(listed.status, 200, listed.body);
      assert.deepEqual(
        listed.json<{ value: { id: string }[] }>().value.map((i) => i.id.toLowerCase()),
        [identityPath(groupA, 'from-sp').toLowerCase()],
      );

      await deleteAssignment(t, admin, groupScope(groupA), assignment);
      const deleted = Date.now();
      let refusedAt: number | undefined;
      for (let i = 0; i < 200 && refusedAt === undefined; i++) {
        const r = await putIn(groupA);
        if (r.status === 403) {
          refusedAt = Date.now();
          expectAuthorizationFailed(r, sp.appId, sp.objectId, action, identityPath(groupA, 'from-sp'));
        } else await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.ok(refusedAt !== undefined, 'refused again after the deletion');
      ctx.diagnostic(`revocation: first refusal ${String(refusedAt - deleted)} ms after the DELETE's response (same process)`);
      assert.ok(refusedAt - deleted < 1000, 'refused within 1 s');
    });

    it('attaching a user-assigned identity needs assign/action on it: Contributor alone is refused, Managed Identity Operator on the identity allows', async () => {
      const sp = await principal('vm-owner');
      await assignRole(t, admin, groupScope(groupB), ROLE.Contributor, sp.objectId);
      const idPath = identityPath(groupA, 'shared-id');
      assert.equal((await call(t, 'PUT', `${idPath}?${V}`, admin, { location: 'westeurope' })).status, 201);
      const vmPath = `${groupScope(groupB)}/providers/Microsoft.Compute/virtualMachines/vm-1`;
      const withIdentity = { location: 'westeurope', identity: { type: 'UserAssigned', userAssignedIdentities: { [idPath]: {} } } };
      expectAuthorizationFailed(
        await call(t, 'PUT', `${vmPath}?${V}`, sp.token, withIdentity),
        sp.appId,
        sp.objectId,
        'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action',
        idPath,
      );
      const plain = await call(t, 'PUT', `${vmPath}?${V}`, sp.token, { location: 'westeurope' });
      assert.equal(plain.status, 201, plain.body);
      // Managed Identity Operator's `userAssignedIdentities/*/assign/action` grants the assign action itself.
      await assignRole(t, admin, idPath, 'f1a07417-d97a-45cb-824c-7a7467783830', sp.objectId);
      const attached = await call(t, 'PUT', `${vmPath}?${V}`, sp.token, withIdentity);
      assert.equal(attached.status, 200, attached.body);
      assert.deepEqual(
        Object.keys(attached.json<{ identity: { userAssignedIdentities: Record<string, unknown> } }>().identity.userAssignedIdentities).map((k) =>
          k.toLowerCase(),
        ),
        [idPath.toLowerCase()],
      );
    });

    it('a Reader may GET but not PUT', async () => {
      const sp = await principal('reader');
      await assignRole(t, admin, `/subscriptions/${sub}`, ROLE.Reader, sp.objectId);
      assert.equal((await call(t, 'GET', `${groupScope(groupA)}?${V}`, sp.token)).status, 200);
      assert.equal((await call(t, 'GET', `/subscriptions/${sub}/resourceGroups?${V}`, sp.token)).status, 200);
      expectAuthorizationFailed(
        await call(t, 'PUT', `${groupScope('rg-reader')}?${V}`, sp.token, { location: 'westeurope' }),
        sp.appId,
        sp.objectId,
        'Microsoft.Resources/subscriptions/resourceGroups/write',
        groupScope('rg-reader'),
      );
      // Graph changes need Owner or User Access Administrator at `/`.
      const graph = await clientToken(t, sp.appId, sp.secret, GRAPH);
      const refused = await call(t, 'POST', '/v1.0/servicePrincipals', graph, { displayName: 'x' });
      assert.equal(refused.status, 403);
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'Authorization_RequestDenied');
    });

    it('assigning a role needs Microsoft.Authorization/roleAssignments/write: Contributor is refused, User Access Administrator may', async () => {
      const contributor = await principal('contributor');
      const uaa = await principal('access-admin');
      const target = await principal('target');
      await assignRole(t, admin, `/subscriptions/${sub}`, ROLE.Contributor, contributor.objectId);
      await assignRole(t, admin, `/subscriptions/${sub}`, ROLE.UserAccessAdministrator, uaa.objectId);
      const id = randomUUID();
      const path = `${groupScope(groupA)}/providers/Microsoft.Authorization/roleAssignments/${id}`;
      const body = {
        properties: {
          roleDefinitionId: `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${ROLE.Reader}`,
          principalId: target.objectId,
          principalType: 'ServicePrincipal',
        },
      };
      // Contributor may create identities but not grant access.
      assert.equal((await call(t, 'PUT', `${identityPath(groupA, 'by-contributor')}?${V}`, contributor.token, { location: 'westeurope' })).status, 201);
      expectAuthorizationFailed(
        await call(t, 'PUT', `${path}?api-version=2022-04-01`, contributor.token, body),
        contributor.appId,
        contributor.objectId,
        'Microsoft.Authorization/roleAssignments/write',
        groupScope(groupA),
      );
      const granted = await call(t, 'PUT', `${path}?api-version=2022-04-01`, uaa.token, body);
      assert.equal(granted.status, 201, granted.body);
      assert.equal((await call(t, 'GET', `${groupScope(groupA)}?${V}`, target.token)).status, 200);
      // Group membership grants roles, so Contributor may not change groups either; User Access Administrator may.
      const groupBody = { displayName: 'escalation', mailNickname: 'escalation', securityEnabled: true, mailEnabled: false };
      const refused = await call(t, 'POST', '/v1.0/groups', await clientToken(t, contributor.appId, contributor.secret, GRAPH), groupBody);
      assert.equal(refused.status, 403, refused.body);
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'Authorization_RequestDenied');
      const uaaRoot = await principal('access-admin-root');
      await assignRole(t, admin, '/', ROLE.UserAccessAdministrator, uaaRoot.objectId);
      const created = await call(t, 'POST', '/v1.0/groups', await clientToken(t, uaaRoot.appId, uaaRoot.secret, GRAPH), groupBody);
      assert.equal(created.status, 201, created.body);
    });

    it('a deny assignment beats Owner', async () => {
      const sp = await principal('denied-owner');
      await assignRole(t, admin, '/', ROLE.Owner, sp.objectId);
      assert.equal((await call(t, 'PUT', `${identityPath(groupB, 'before-deny')}?${V}`, sp.token, { location: 'westeurope' })).status, 201);
      const now = Date.now();
      await t.ctx.store.transaction(async (tx) => {
        await tx.denyAssignments.create({
          id: randomUUID(),
          tenantId: t.tenantId,
          denyAssignmentName: 'no identities in B',
          description: 'test',
          scope: groupScope(groupB),
          permissions: [{ actions: [`${UAMI}/write`], notActions: [], dataActions: [], notDataActions: [] }],
          principals: [{ id: sp.objectId, type: 'ServicePrincipal' }],
          excludePrincipals: [],
          doNotApplyToChildScopes: false,
          isSystemProtected: false,
          createdAt: now,
          createdBy: 'test',
        });
        await tx.rbacVersions.bump(t.tenantId);
      });
      expectAuthorizationFailed(
        await call(t, 'PUT', `${identityPath(groupB, 'after-deny')}?${V}`, sp.token, { location: 'westeurope' }),
        sp.appId,
        sp.objectId,
        `${UAMI}/write`,
        identityPath(groupB, 'after-deny'),
      );
      assert.equal((await call(t, 'PUT', `${identityPath(groupA, 'after-deny')}?${V}`, sp.token, { location: 'westeurope' })).status, 201);
    });

    it('nested group membership grants', async () => {
      const sp = await principal('grouped');
      const outer = randomUUID();
      const inner = randomUUID();
      const now = Date.now();
      await t.ctx.store.transaction(async (tx) => {
        for (const [id, name] of [
          [outer, 'outer'],
          [inner, 'inner'],
        ] as const) {
          await tx.groups.create({ objectId: id, tenantId: t.tenantId, displayName: name, mailNickname: name, description: null, createdAt: now });
        }
        await tx.groups.addMember({ groupId: outer, memberId: inner, tenantId: t.tenantId, createdAt: now });
        await tx.groups.addMember({ groupId: inner, memberId: sp.objectId, tenantId: t.tenantId, createdAt: now });
        await tx.rbacVersions.bump(t.tenantId);
      });
      expectAuthorizationFailed(
        await call(t, 'GET', `${groupScope(groupA)}?${V}`, sp.token),
        sp.appId,
        sp.objectId,
        'Microsoft.Resources/subscriptions/resourceGroups/read',
        groupScope(groupA),
      );
      await assignRole(t, admin, groupScope(groupA), ROLE.Reader, outer, 'Group');
      assert.equal((await call(t, 'GET', `${groupScope(groupA)}?${V}`, sp.token)).status, 200);
      const perms = await call(t, 'GET', `${groupScope(groupA)}/providers/Microsoft.Authorization/permissions?${V}`, sp.token);
      assert.equal(perms.status, 200, perms.body);
      assert.deepEqual(
        perms.json<{ value: { actions: string[] }[] }>().value.map((p) => p.actions),
        [['*/read']],
      );
    });
  });
}
