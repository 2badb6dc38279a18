/**
 * The Microsoft.Authorization and Graph group routes through the running authority, on both backends: ARM's
 * shapes, every scope shape (root, subscription, group, resource), `$filter`, Azure-shaped errors that write
 * nothing, and audited mutations.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { newGuid } from '../../../src/shared/ids.js';
import { BUILTIN_ROLE_IDS } from '../../../src/rbac/builtin-roles.js';
import { STORE_BACKENDS, backendSuiteOptions, registerTestApplication, startTestAuthority, type TestAuthority } from '../../support/authority.js';

const ARM = 'https://management.azure.com/';
const GRAPH = 'https://graph.microsoft.com';
const V = 'api-version=2022-04-01';
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';

interface ArmAssignment {
  id: string;
  name: string;
  type: string;
  properties: Record<string, unknown> & { scope: string; principalId: string; roleDefinitionId: string };
}

for (const backend of STORE_BACKENDS) {
  void describe(`rbac management API (${backend})`, { ...backendSuiteOptions(backend), timeout: 120_000 }, () => {
    let t: TestAuthority;
    let arm: string;
    let graph: string;
    let sub: string;
    let rg: string;

    before(async () => {
      t = await startTestAuthority({ backend });
      arm = await t.adminToken(ARM);
      graph = await t.adminToken(GRAPH);
      sub = t.subscriptionId;
      rg = `/subscriptions/${sub}/resourceGroups/rg1`;
      const put = await call('PUT', `${rg}?api-version=2021-04-01`, { location: 'westeurope' });
      assert.ok(put.statusCode < 300, put.body);
    });
    after(async () => {
      await t.close();
    });

    function call(method: string, url: string, body?: unknown): Promise<LightMyRequestResponse> {
      const token = url.startsWith('/v1.0/') ? graph : arm;
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (body !== undefined) headers['content-type'] = 'application/json';
      return t.app.inject({ method: method as 'GET', url, headers, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) });
    }

    function expectError(response: LightMyRequestResponse, status: number, code: string): void {
      assert.equal(response.statusCode, status, response.body);
      assert.equal(response.json<{ error: { code: string } }>().error.code, code, response.body);
    }

    async function rows(): Promise<unknown> {
      const s = t.ctx.store;
      return {
        a: await s.roleAssignments.list({ tenantId: t.tenantId }),
        d: await s.roleDefinitions.list(t.tenantId),
        n: await s.denyAssignments.list(t.tenantId),
        m: await s.groups.listMemberships(t.tenantId),
        g: await s.groups.list({ tenantId: t.tenantId }),
        v: await s.rbacVersions.get(t.tenantId),
      };
    }

    void it('creates, shows, lists and deletes role assignments at every scope shape, in ARM shapes', async () => {
      const app = await registerTestApplication(t, `ra-${newGuid().slice(0, 6)}`, { certificate: false });
      const scopes = ['', `/subscriptions/${sub}`, rg, `${rg}/providers/Microsoft.KeyVault/vaults/v1`];
      const created: ArmAssignment[] = [];
      for (const scope of scopes) {
        const name = newGuid();
        const url = `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}?${V}`;
        const put = await call('PUT', url, {
          properties: {
            roleDefinitionId: `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${READER}`,
            principalId: app.objectId,
            description: 'd',
          },
        });
        assert.equal(put.statusCode, 201, `${scope}: ${put.body}`);
        const body = put.json<ArmAssignment>();
        assert.equal(body.id, `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`);
        assert.equal(body.name, name);
        assert.equal(body.type, 'Microsoft.Authorization/roleAssignments');
        assert.equal(body.properties.scope, scope === '' ? '/' : scope);
        assert.equal(body.properties.principalType, 'ServicePrincipal');
        assert.equal(body.properties.condition, null);
        assert.equal(body.properties.conditionVersion, null);
        assert.equal(body.properties.description, 'd');
        assert.equal(
          body.properties.roleDefinitionId,
          scope === ''
            ? `/providers/Microsoft.Authorization/roleDefinitions/${READER}`
            : `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${READER}`,
        );
        for (const key of ['createdOn', 'updatedOn', 'createdBy', 'updatedBy']) assert.ok(key in body.properties, key);
        const get = await call('GET', url);
        assert.equal(get.statusCode, 200, get.body);
        assert.deepEqual(get.json(), body);
        created.push(body);
      }
      // Listing at the group: at, above and below; atScope(): at and above; by principal; assignedTo.
      const list = (q: string) => call('GET', `${rg}/providers/Microsoft.Authorization/roleAssignments?${V}${q}`);
      // (+1: the bootstrap admin's Owner assignment at `/`, above every scope.)
      assert.equal((await list('')).json<{ value: unknown[] }>().value.length, 5);
      assert.equal((await list(`&$filter=${encodeURIComponent('atScope()')}`)).json<{ value: unknown[] }>().value.length, 4);
      const byPrincipal = await list(`&$filter=${encodeURIComponent(`principalId eq '${app.objectId}'`)}`);
      assert.equal(byPrincipal.json<{ value: unknown[] }>().value.length, 4);
      const assigned = await call(
        'GET',
        `/subscriptions/${sub}/providers/Microsoft.Authorization/roleAssignments?${V}&$filter=${encodeURIComponent(`assignedTo('${app.objectId}')`)}`,
      );
      assert.equal(assigned.json<{ value: unknown[] }>().value.length, 4);
      expectError(await list(`&$filter=${encodeURIComponent('nonsense')}`), 400, 'InvalidFilterInQueryString');
      // Delete: 200 with the deleted assignment, then 204; GET then 404.
      for (const a of created) {
        const url = `${a.id}?${V}`;
        const del = await call('DELETE', url);
        assert.equal(del.statusCode, 200, del.body);
        assert.equal(del.json<ArmAssignment>().name, a.name);
        assert.equal((await call('DELETE', url)).statusCode, 204);
        expectError(await call('GET', url), 404, 'RoleAssignmentNotFound');
      }
      const audit = await t.ctx.store.audit.list({ tenantId: t.tenantId, action: 'roleAssignment.created' });
      assert.ok(audit.length >= 4, 'each creation is audited');
    });

    void it('answers bad assignment requests with Azure-shaped errors and writes nothing', async () => {
      const app = await registerTestApplication(t, `bad-${newGuid().slice(0, 6)}`, { certificate: false });
      const url = (scope: string, name = newGuid()) => `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}?${V}`;
      const props = { roleDefinitionId: READER, principalId: app.objectId };
      const cases: Array<[string, string, unknown, number, string]> = [
        ['unknown role', url(rg), { properties: { ...props, roleDefinitionId: newGuid() } }, 400, 'RoleDefinitionDoesNotExist'],
        ['unknown principal', url(rg), { properties: { ...props, principalId: newGuid() } }, 400, 'PrincipalNotFound'],
        ['condition', url(rg), { properties: { ...props, condition: 'x', conditionVersion: '2.0' } }, 400, 'InvalidRoleAssignmentRequest'],
        ['unknown subscription', url(`/subscriptions/${newGuid()}`), { properties: props }, 404, 'SubscriptionNotFound'],
        ['malformed scope', url(`${rg}/providers/Microsoft.KeyVault`), { properties: props }, 400, 'InvalidScope'],
        ['name not a GUID', url(rg, 'abc'), { properties: props }, 400, 'InvalidRoleAssignmentId'],
        ['no properties', url(rg), { roleDefinitionId: READER }, 400, 'InvalidRoleAssignmentRequest'],
      ];
      for (const [label, u, body, status, code] of cases) {
        const before = await rows();
        const response = await call('PUT', u, body);
        assert.equal(response.statusCode, status, `${label}: ${response.body}`);
        assert.equal(response.json<{ error: { code: string } }>().error.code, code, label);
        assert.deepEqual(await rows(), before, `${label}: nothing written`);
      }
      const ok = await call('PUT', url(rg), { properties: props });
      assert.equal(ok.statusCode, 201, ok.body);
      const before = await rows();
      expectError(await call('PUT', url(rg.toUpperCase().replace('/SUBSCRIPTIONS', '/subscriptions')), { properties: props }), 409, 'RoleAssignmentExists');
      assert.deepEqual(await rows(), before, 'duplicate: nothing written');
      const failures = await t.ctx.store.audit.list({ tenantId: t.tenantId, action: 'roleAssignment.write' });
      assert.ok(
        failures.some((e) => e.outcome === 'failure'),
        'refusals are audited',
      );
      await call('DELETE', `${ok.json<ArmAssignment>().id}?${V}`);
    });

    void it('manages custom role definitions: list with roleName filter, create, update, refuse, delete', async () => {
      const base = `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions`;
      const list = await call('GET', `${base}?${V}&$filter=${encodeURIComponent("roleName eq 'reader'")}`);
      assert.equal(list.statusCode, 200, list.body);
      const readers = list.json<{ value: Array<{ name: string; properties: { roleName: string; type: string } }> }>().value;
      assert.deepEqual(
        readers.map((r) => [r.name, r.properties.roleName, r.properties.type]),
        [[READER, 'Reader', 'BuiltInRole']],
      );
      const id = newGuid();
      const body = {
        properties: {
          roleName: 'VM Operator',
          description: 'start and stop',
          type: 'CustomRole',
          permissions: [{ actions: ['Microsoft.Compute/virtualMachines/start/action'], notActions: [], dataActions: [], notDataActions: [] }],
          assignableScopes: [`/subscriptions/${sub}`],
        },
      };
      const before = await rows();
      expectError(
        await call('PUT', `${base}/${newGuid()}?${V}`, { properties: { ...body.properties, assignableScopes: undefined } }),
        400,
        'InvalidRoleDefinition',
      );
      expectError(await call('PUT', `${base}/${BUILTIN_ROLE_IDS.Owner}?${V}`, body), 400, 'CannotModifyBuiltInRole');
      assert.deepEqual(await rows(), before);
      const put = await call('PUT', `${base}/${id}?${V}`, body);
      assert.equal(put.statusCode, 201, put.body);
      assert.equal(put.json<{ id: string }>().id, `${base}/${id}`);
      expectError(
        await call('PUT', `${base}/${newGuid()}?${V}`, { properties: { ...body.properties, roleName: 'vm operator' } }),
        409,
        'RoleDefinitionWithSameNameExists',
      );
      const update = await call('PUT', `${base}/${id}?${V}`, { properties: { ...body.properties, description: 'changed' } });
      assert.equal(update.statusCode, 200, update.body);
      assert.equal(update.json<{ properties: { description: string } }>().properties.description, 'changed');
      const app = await registerTestApplication(t, `rd-${newGuid().slice(0, 6)}`, { certificate: false });
      const assignment = await call('PUT', `/subscriptions/${sub}/providers/Microsoft.Authorization/roleAssignments/${newGuid()}?${V}`, {
        properties: { roleDefinitionId: `${base}/${id}`, principalId: app.objectId },
      });
      assert.equal(assignment.statusCode, 201, assignment.body);
      expectError(
        await call('PUT', `/providers/Microsoft.Authorization/roleAssignments/${newGuid()}?${V}`, {
          properties: { roleDefinitionId: id, principalId: app.objectId },
        }),
        400,
        'RoleDefinitionNotAssignableAtScope',
      );
      expectError(await call('DELETE', `${base}/${id}?${V}`), 409, 'RoleDefinitionHasAssignments');
      await call('DELETE', `${assignment.json<ArmAssignment>().id}?${V}`);
      assert.equal((await call('DELETE', `${base}/${id}?${V}`)).statusCode, 200);
      expectError(await call('GET', `${base}/${id}?${V}`), 404, 'RoleDefinitionDoesNotExist');
    });

    void it('manages deny assignments at a scope', async () => {
      const url = `${rg}/providers/Microsoft.Authorization/denyAssignments/${newGuid()}?${V}`;
      const put = await call('PUT', url, {
        properties: {
          denyAssignmentName: 'no deletes',
          // Not `*/delete`: deny beats Owner, so that would also deny deleting this deny assignment.
          permissions: [{ actions: ['Microsoft.Compute/*/delete'] }],
          principals: [{ id: '00000000-0000-0000-0000-000000000000', type: 'SystemDefined' }],
          doNotApplyToChildScopes: true,
        },
      });
      assert.equal(put.statusCode, 201, put.body);
      const list = await call('GET', `/subscriptions/${sub}/providers/Microsoft.Authorization/denyAssignments?${V}`);
      assert.equal(list.json<{ value: unknown[] }>().value.length, 1);
      expectError(
        await call('PUT', url, { properties: { denyAssignmentName: 'x', permissions: [{ actions: ['*'] }], principals: [{ id: newGuid() }] } }),
        409,
        'DenyAssignmentExists',
      );
      assert.equal((await call('DELETE', url)).statusCode, 200);
      assert.equal(
        (await call('GET', `/subscriptions/${sub}/providers/Microsoft.Authorization/denyAssignments?${V}`)).json<{ value: unknown[] }>().value.length,
        0,
      );
    });

    void it('manages groups and members through Graph routes', async () => {
      const app = await registerTestApplication(t, `gm-${newGuid().slice(0, 6)}`, { certificate: false });
      const created = await call('POST', '/v1.0/groups', { displayName: 'Ops', mailNickname: 'ops', securityEnabled: true, mailEnabled: false });
      assert.equal(created.statusCode, 201, created.body);
      const group = created.json<{ id: string; displayName: string; securityEnabled: boolean }>();
      assert.equal(group.securityEnabled, true);
      const outer = (await call('POST', '/v1.0/groups', { displayName: 'All', mailNickname: 'all' })).json<{ id: string }>();
      assert.equal((await call('GET', `/v1.0/groups/${group.id}`)).json<{ displayName: string }>().displayName, 'Ops');
      assert.equal((await call('GET', `/v1.0/groups?$filter=${encodeURIComponent("displayName eq 'ops'")}`)).json<{ value: unknown[] }>().value.length, 1);
      const ref = (id: string) => ({ '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${id}` });
      assert.equal((await call('POST', `/v1.0/groups/${group.id}/members/$ref`, ref(app.objectId))).statusCode, 204);
      assert.equal((await call('POST', `/v1.0/groups/${outer.id}/members/$ref`, ref(group.id))).statusCode, 204);
      const before = await rows();
      expectError(await call('POST', `/v1.0/groups/${group.id}/members/$ref`, ref(app.objectId)), 400, 'Request_BadRequest');
      expectError(await call('POST', `/v1.0/groups/${group.id}/members/$ref`, ref(newGuid())), 404, 'Request_ResourceNotFound');
      expectError(await call('POST', `/v1.0/groups/${group.id}/members/$ref`, ref(outer.id)), 400, 'Request_BadRequest');
      assert.deepEqual(await rows(), before);
      const members = (await call('GET', `/v1.0/groups/${group.id}/members`)).json<{ value: Array<{ id: string; '@odata.type': string }> }>().value;
      assert.deepEqual(
        members.map((m) => [m.id, m['@odata.type']]),
        [[app.objectId, '#microsoft.graph.servicePrincipal']],
      );
      const check = await call('POST', `/v1.0/directoryObjects/${app.objectId}/checkMemberGroups`, { groupIds: [group.id, outer.id, newGuid()] });
      assert.deepEqual(check.json<{ value: string[] }>().value.sort(), [group.id, outer.id].sort());
      // A group may be assigned a role.
      const ra = await call('PUT', `${rg}/providers/Microsoft.Authorization/roleAssignments/${newGuid()}?${V}`, {
        properties: { roleDefinitionId: READER, principalId: outer.id },
      });
      assert.equal(ra.json<ArmAssignment>().properties.principalType, 'Group');
      assert.equal((await call('DELETE', `/v1.0/groups/${group.id}/members/${app.objectId}/$ref`)).statusCode, 204);
      expectError(await call('DELETE', `/v1.0/groups/${group.id}/members/${app.objectId}/$ref`), 404, 'Request_ResourceNotFound');
      assert.equal((await call('DELETE', `/v1.0/groups/${outer.id}`)).statusCode, 204);
      assert.deepEqual(await t.ctx.store.roleAssignments.list({ tenantId: t.tenantId, principalIds: [outer.id] }), [], "the group's assignments went with it");
      assert.equal((await call('DELETE', `/v1.0/groups/${group.id}`)).statusCode, 204);
      expectError(await call('GET', `/v1.0/groups/${group.id}`), 404, 'Request_ResourceNotFound');
      const audit = await t.ctx.store.audit.list({ tenantId: t.tenantId, action: 'group.memberAdded' });
      assert.ok(audit.length >= 2);
    });

    void it('leaves other resource routes alone', async () => {
      const uami = await call('PUT', `${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1?api-version=2023-01-31`, { location: 'westeurope' });
      assert.ok(uami.statusCode === 201 || uami.statusCode === 200, uami.body);
      assert.equal((await call('GET', `${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1?api-version=2023-01-31`)).statusCode, 200);
      expectError(await call('GET', `${rg}/providers/Microsoft.KeyVault/vaults/v1/secrets/s1?${V}`), 404, 'NotFound');
    });
  });
}
