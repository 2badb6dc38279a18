/**
 * Who may create a join token (src/management/hosts.ts): the agent it enrols gets a token for every identity on
 * the machine, so creating one needs `Microsoft.HybridCompute/machines/write` on the machine and, for an
 * existing machine, `userAssignedIdentities/assign/action` on each user-assigned identity already on it (what
 * attaching that identity would need): a join token never hands over an identity its creator could not attach.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_BACKENDS, backendSuiteOptions, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { HOST_API_PATHS, type HostDescription } from '../../src/shared/host-protocol.js';
import { call as hostCall, hostAssertion, hostKey } from '../authority/hosts/helpers.js';
import { assignRole, call, expectAuthorizationFailed, ROLE, testPrincipal, V, type TestPrincipal } from '../rbac/authz/helpers.js';

const MACHINES = 'Microsoft.HybridCompute/machines';
const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const ASSIGN = `${UAMI}/assign/action`;

for (const backend of STORE_BACKENDS) {
  describe(`join tokens: who may create them (${backend})`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let admin: string;
    let sub: string;
    let rgA: string;
    let rgB: string;
    let idA: string;
    /** Contributor of group B (the machines' group). */
    let contributorB: TestPrincipal;
    const machine = (name: string, group = 'rg-b') => `${sub}/resourceGroups/${group}/providers/${MACHINES}/${name}`;
    const createJoinToken = (p: TestPrincipal | string, id: string) => call(t, 'POST', `${id}/createJoinToken?${V}`, typeof p === 'string' ? p : p.token, {});

    before(async () => {
      t = await startTestAuthority({ backend });
      admin = await t.adminToken('https://management.azure.com/');
      sub = `/subscriptions/${t.subscriptionId}`;
      rgA = `${sub}/resourceGroups/rg-a`;
      rgB = `${sub}/resourceGroups/rg-b`;
      idA = `${rgA}/providers/${UAMI}/id-a`;
      for (const g of [rgA, rgB]) assert.equal((await call(t, 'PUT', `${g}?${V}`, admin, { location: 'westeurope' })).status, 201);
      assert.equal((await call(t, 'PUT', `${idA}?${V}`, admin, { location: 'westeurope' })).status, 201);
      contributorB = await testPrincipal(t, 'contributor-rg-b');
      await assignRole(t, admin, rgB, ROLE.Contributor, contributorB.objectId);
    });
    after(async () => t.close());

    it('invariant: creating a join token needs machines/write on the machine: no role, a Reader, a Contributor of another group are refused, in any spelling of the machine', async () => {
      const nobody = await testPrincipal(t, 'no-role');
      const reader = await testPrincipal(t, 'reader-rg-b');
      await assignRole(t, admin, rgB, ROLE.Reader, reader.objectId);
      const contributorA = await testPrincipal(t, 'contributor-rg-a');
      await assignRole(t, admin, rgA, ROLE.Contributor, contributorA.objectId);
      assert.equal((await call(t, 'PUT', `${machine('existing-host')}?${V}`, admin, { location: 'westeurope' })).status, 201);
      for (const p of [nobody, reader, contributorA]) {
        for (const id of [machine('new-host'), machine('existing-host'), machine('EXISTING-HOST', 'RG-B')]) {
          expectAuthorizationFailed(await createJoinToken(p, id), p.appId, p.objectId, `${MACHINES}/write`, id);
        }
      }
      assert.equal((await call(t, 'GET', `${machine('new-host')}?${V}`, admin)).status, 404, 'no machine was created');
    });

    it('invariant: the Contributor of the group may enrol a new machine, and an existing one that has no user-assigned identity', async () => {
      const created = await createJoinToken(contributorB, machine('fresh-host'));
      assert.equal(created.status, 200, created.body);
      assert.equal(created.json<{ machineCreated: boolean }>().machineCreated, true);
      assert.equal(
        (await call(t, 'PUT', `${machine('plain-host')}?${V}`, admin, { location: 'westeurope', identity: { type: 'SystemAssigned' } })).status,
        201,
      );
      const again = await createJoinToken(contributorB, machine('plain-host'));
      assert.equal(again.status, 200, again.body);
      assert.equal(again.json<{ machineCreated: boolean }>().machineCreated, false);
    });

    it('invariant: a join token for an existing machine needs assign/action on each user-assigned identity on it; with it, the enrolled agent gets that identity', async () => {
      const shared = machine('shared-host');
      const put = await call(t, 'PUT', `${shared}?${V}`, admin, {
        location: 'westeurope',
        identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [idA]: {} } },
      });
      assert.equal(put.status, 201, put.body);
      for (const id of [shared, machine('SHARED-HOST'), machine('shared-host', 'RG-B')]) {
        expectAuthorizationFailed(await createJoinToken(contributorB, id), contributorB.appId, contributorB.objectId, ASSIGN, idA);
      }

      // Managed Identity Operator on the identity is what attaching it needs, and so what handing it over needs.
      await assignRole(t, admin, idA, ROLE.ManagedIdentityOperator, contributorB.objectId);
      const created = await createJoinToken(contributorB, shared);
      assert.equal(created.status, 200, created.body);
      const { token, hostResourceId } = created.json<{ token: string; hostResourceId: string }>();
      const key = await hostKey();
      const enrolled = await hostCall(t, 'POST', HOST_API_PATHS.enrol, { body: { joinToken: token, publicJwk: key.publicJwk }, remoteAddress: '10.1.0.1' });
      assert.equal(enrolled.status, 201, enrolled.body);
      const self = await hostCall(t, 'GET', HOST_API_PATHS.self, { bearer: await hostAssertion(t, key, hostResourceId) });
      assert.equal(self.status, 200, self.body);
      assert.ok(
        self.json<HostDescription>().identities.some((i) => i.resourceId.toLowerCase() === idA.toLowerCase()),
        'the enrolled agent holds the identity',
      );
    });
  });
}
